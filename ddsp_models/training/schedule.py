"""Step schedules of a training run: one-cycle learning rate and the loss's FFT-size warm-up.

:class:`TrainingSchedule` is a Lightning callback; a recipe turns it on with::

    trainer:
      callbacks:
        - class_path: ddsp_models.training.schedule.TrainingSchedule
          init_args: {lr_schedule: one_cycle, warmup_steps: 100}

Before every training batch it (1) tells the model's loss the step about to be taken
(:meth:`~ddsp_models.nn.losses.MultiResolutionSpectralLoss.set_step`, which picks the loss's
``warmup_fft_sizes`` during its ``warmup_steps``) and (2) with ``lr_schedule: one_cycle`` sets the
learning rate of every parameter group to ``learning_rate * one_cycle_factor(step, ...)``,
overriding the model's own step decay (set ``lr_decay_rate: 1.0`` in such a recipe so the logs
are not confusing). Both are pure functions of the trainer's ``global_step``, so a resumed run
follows exactly the schedule of an uninterrupted one.

With ``total_minutes`` the cycle follows the training clock instead of the step count: the
learning rate at each step is the one-cycle factor at ``trained seconds / (60 * total_minutes)``
of the way through, and the callback stops the run when the time is spent
(``ddsp train --minutes M`` sets it). A machine that makes fewer steps than expected (a slower
CPU, other jobs) still ends its cycle annealed at ``M`` minutes, where a step-sized cycle would
stop near its peak learning rate. The clock is the wall clock from the first training batch
(steps, data, validation and checkpoints all count; a callback may :meth:`exclude` its own
work), and travels in checkpoints, so a resumed run continues its cycle (the time between the
interruption and the resumption is not counted). Such a run is not bit-exact on resumption
(the steps where the learning rate changes depend on the machine's speed); the warm-up of the
loss's FFT sizes stays counted in steps.
"""

from __future__ import annotations

import math
import time

import lightning.pytorch as pl

__all__ = ["TrainingSchedule", "clock_cycle_factor", "one_cycle_factor"]


def one_cycle_factor(step: int, total_steps: int, warmup_steps: int,
                     start_fraction: float = 0.04, final_fraction: float = 0.01) -> float:
    """Multiplier of the peak learning rate at ``step`` (0-based) of a one-cycle schedule.

    Linear warm-up from ``start_fraction`` to 1 over ``warmup_steps`` steps, then a cosine
    from 1 down to ``final_fraction`` at ``total_steps``; held at ``final_fraction`` after it.
    """
    if total_steps < 1 or warmup_steps < 0:
        raise ValueError(f"need total_steps >= 1 and warmup_steps >= 0, got {total_steps}, "
                         f"{warmup_steps}")
    if step < warmup_steps:
        return start_fraction + (1.0 - start_fraction) * step / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress))


def clock_cycle_factor(step: int, progress: float, warmup_steps: int,
                       warmup_progress: float = 0.0, start_fraction: float = 0.04,
                       final_fraction: float = 0.01) -> float:
    """Multiplier of the peak learning rate of a one-cycle schedule over a time budget.

    The linear warm-up over the first ``warmup_steps`` steps (as :func:`one_cycle_factor`),
    then a cosine from 1 to ``final_fraction`` as ``progress`` (the fraction of the time budget
    spent) goes from ``warmup_progress`` (where the warm-up ended) to 1; held at
    ``final_fraction`` past 1.
    """
    if warmup_steps < 0 or not 0.0 <= warmup_progress < 1.0:
        raise ValueError(f"need warmup_steps >= 0 and 0 <= warmup_progress < 1, got "
                         f"{warmup_steps}, {warmup_progress}")
    if step < warmup_steps:
        return start_fraction + (1.0 - start_fraction) * step / warmup_steps
    q = min(1.0, max(0.0, (progress - warmup_progress) / (1.0 - warmup_progress)))
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * q))


class TrainingSchedule(pl.Callback):
    """Sets the loss's step and (optionally) a one-cycle learning rate before each batch.

    Args:
        lr_schedule: ``"model"`` (keep the model's own exponential decay) or ``"one_cycle"``
            (:func:`one_cycle_factor` times the model's ``learning_rate``, the peak).
        warmup_steps: linear learning-rate warm-up of the one-cycle schedule.
        total_steps: length of the cycle; ``None``: the trainer's ``max_steps``.
        total_minutes: length of the cycle in minutes of training clock (see the module
            docstring); the run stops when they are spent. Takes precedence over
            ``total_steps``; the learning-rate warm-up is still ``warmup_steps`` steps.
        start_fraction, final_fraction: learning rate at step 0 and at the end, as fractions
            of the peak.

    Attributes:
        trained_seconds: the training clock: wall-clock seconds since the first training batch
            (of this and earlier runs of a resumed training), less :meth:`exclude`'s.
    """

    def __init__(self, lr_schedule: str = "model", warmup_steps: int = 0,
                 total_steps: int | None = None, total_minutes: float | None = None,
                 start_fraction: float = 0.04, final_fraction: float = 0.01):
        if lr_schedule not in ("model", "one_cycle"):
            raise ValueError(f"lr_schedule must be 'model' or 'one_cycle', got {lr_schedule!r}")
        if total_minutes is not None and not total_minutes > 0:
            raise ValueError(f"total_minutes must be > 0, got {total_minutes}")
        self.lr_schedule, self.warmup_steps = lr_schedule, int(warmup_steps)
        self.total_steps = None if total_steps is None else int(total_steps)
        self.total_minutes = None if total_minutes is None else float(total_minutes)
        self.start_fraction, self.final_fraction = float(start_fraction), float(final_fraction)
        self.trained_seconds = 0.0
        self.warmup_progress: float | None = None  # clock progress when the warm-up ended
        self._last_tick: float | None = None
        self._excluded = 0.0

    @property
    def state_key(self) -> str:
        return "TrainingSchedule"

    def state_dict(self) -> dict:
        return {"trained_seconds": self.trained_seconds, "warmup_progress": self.warmup_progress}

    def load_state_dict(self, state_dict: dict) -> None:
        self.trained_seconds = float(state_dict.get("trained_seconds", 0.0))
        self.warmup_progress = state_dict.get("warmup_progress")

    def _total(self, trainer: pl.Trainer) -> int:
        if self.total_steps is not None:
            return self.total_steps
        if trainer.max_steps is None or trainer.max_steps < 1:
            raise ValueError("TrainingSchedule(lr_schedule='one_cycle') needs total_steps or "
                             "trainer.max_steps (the length of the cycle)")
        return int(trainer.max_steps)

    def lr_factor(self, step: int, trainer: pl.Trainer) -> float:
        """The learning-rate multiplier this callback applies at ``step`` (with
        ``total_minutes``: at the current training clock, the warm-up still in steps)."""
        if self.total_minutes is not None:
            progress = self.trained_seconds / (60 * self.total_minutes)
            if step >= self.warmup_steps and self.warmup_progress is None:
                self.warmup_progress = min(progress, 0.5)  # a warm-up past half the budget:
            return clock_cycle_factor(step, progress, self.warmup_steps,  # cosine over the rest
                                      self.warmup_progress or 0.0, self.start_fraction,
                                      self.final_fraction)
        return one_cycle_factor(step, self._total(trainer), self.warmup_steps,
                                self.start_fraction, self.final_fraction)

    def exclude(self, seconds: float) -> None:
        """Leave ``seconds`` just spent out of the training clock (an evaluation run from a
        callback, as ``benchmarks/time_to_quality.py`` does)."""
        self._excluded += float(seconds)

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last_tick is not None:
            self.trained_seconds += max(0.0, now - self._last_tick - self._excluded)
        self._last_tick, self._excluded = now, 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        self._last_tick, self._excluded = None, 0.0  # a resumed run: the pause is not counted

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._tick()
        if self.total_minutes is not None and trainer.world_size > 1:
            # one clock for all ranks: the same learning rate everywhere, and all stop together
            self.trained_seconds = float(trainer.strategy.broadcast(self.trained_seconds, src=0))
        if self.total_minutes is not None and self.trained_seconds >= 60 * self.total_minutes:
            trainer.should_stop = True

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._tick()
        step = int(trainer.global_step)
        loss = getattr(pl_module, "loss_fn", None)
        if hasattr(loss, "set_step"):
            loss.set_step(step)
        if self.lr_schedule == "one_cycle":
            lr = float(pl_module.hparams.learning_rate) * self.lr_factor(step, trainer)
            for opt in trainer.optimizers:
                for group in opt.param_groups:
                    group["lr"] = lr
