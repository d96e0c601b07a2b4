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
"""

from __future__ import annotations

import math

import lightning.pytorch as pl

__all__ = ["TrainingSchedule", "one_cycle_factor"]


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


class TrainingSchedule(pl.Callback):
    """Sets the loss's step and (optionally) a one-cycle learning rate before each batch.

    Args:
        lr_schedule: ``"model"`` (keep the model's own exponential decay) or ``"one_cycle"``
            (:func:`one_cycle_factor` times the model's ``learning_rate``, the peak).
        warmup_steps: linear learning-rate warm-up of the one-cycle schedule.
        total_steps: length of the cycle; ``None``: the trainer's ``max_steps``.
        start_fraction, final_fraction: learning rate at step 0 and at the end, as fractions
            of the peak.
    """

    def __init__(self, lr_schedule: str = "model", warmup_steps: int = 0,
                 total_steps: int | None = None, start_fraction: float = 0.04,
                 final_fraction: float = 0.01):
        if lr_schedule not in ("model", "one_cycle"):
            raise ValueError(f"lr_schedule must be 'model' or 'one_cycle', got {lr_schedule!r}")
        self.lr_schedule, self.warmup_steps = lr_schedule, int(warmup_steps)
        self.total_steps = None if total_steps is None else int(total_steps)
        self.start_fraction, self.final_fraction = float(start_fraction), float(final_fraction)

    def _total(self, trainer: pl.Trainer) -> int:
        if self.total_steps is not None:
            return self.total_steps
        if trainer.max_steps is None or trainer.max_steps < 1:
            raise ValueError("TrainingSchedule(lr_schedule='one_cycle') needs total_steps or "
                             "trainer.max_steps (the length of the cycle)")
        return int(trainer.max_steps)

    def lr_factor(self, step: int, trainer: pl.Trainer) -> float:
        """The learning-rate multiplier this callback applies at ``step``."""
        return one_cycle_factor(step, self._total(trainer), self.warmup_steps,
                                self.start_fraction, self.final_fraction)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        step = int(trainer.global_step)
        loss = getattr(pl_module, "loss_fn", None)
        if hasattr(loss, "set_step"):
            loss.set_step(step)
        if self.lr_schedule == "one_cycle":
            lr = float(pl_module.hparams.learning_rate) * self.lr_factor(step, trainer)
            for opt in trainer.optimizers:
                for group in opt.param_groups:
                    group["lr"] = lr
