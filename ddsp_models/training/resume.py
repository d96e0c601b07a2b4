"""Exact resumption of training: the same random draws and the right checkpoint.

**Random draws.** The noise synths (``FilteredNoise``, …) draw their white noise from torch's
global generator during training (:func:`ddsp_models.core.noise.noise_like`). A generator's
state at the moment a checkpoint is written is not the state the next training step starts
from in an uninterrupted run (validation, the data loader's start of an epoch and Lightning's
own hooks draw from it in between), so saving and restoring it is not enough.
:class:`ExactResume` removes the dependence instead: right before every training batch it
seeds the global generators (torch CPU and CUDA) with :func:`step_seed` of the run's base seed,
the optimiser step, the batch within an accumulation cycle and the DDP rank. A step's random
draws are then a function of *which* step it is, never of what ran before it, and a run
resumed from a checkpoint draws exactly what the uninterrupted run drew. The base seed
(``seed_everything``, or the seed Lightning chose) travels in the checkpoint, so a resumed run
keeps it even when the recipe does not fix one.

**Which checkpoint.** :func:`newest_checkpoint` picks the checkpoint with the most optimiser
steps in a folder: ``last.ckpt``, unless the run was killed after writing a step checkpoint
(``epoch=E-step=S.ckpt``) and before rewriting ``last.ckpt``; resuming from the newer one
neither repeats those steps nor makes Lightning write a duplicate ``…-v1.ckpt``.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

__all__ = ["ExactResume", "newest_checkpoint", "step_seed", "checkpoint_step"]

_MASK63 = (1 << 63) - 1


def step_seed(base_seed: int, step: int, micro_batch: int = 0, rank: int = 0) -> int:
    """The seed of one training batch: a 63-bit hash of ``(base_seed, step, micro_batch,
    rank)`` (neighbouring steps get unrelated streams)."""
    key = f"ddsp-models/step-seed:{int(base_seed)}:{int(step)}:{int(micro_batch)}:{int(rank)}"
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") & _MASK63


class ExactResume(pl.Callback):
    """Seed torch's global generators before every training batch from the step number (see
    the module docstring); ``ddsp train`` always adds it.

    Args:
        seed: base seed; ``None`` (default) takes the one Lightning's ``seed_everything``
            set (``PL_GLOBAL_SEED``), else 0. A checkpoint's base seed wins on resume.
    """

    def __init__(self, seed: int | None = None):
        super().__init__()
        self.seed = seed
        self._step = -1
        self._micro = 0

    @property
    def state_key(self) -> str:
        return "ExactResume"

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.seed is None:
            self.seed = int(os.environ.get("PL_GLOBAL_SEED", 0))

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        step = int(trainer.global_step)
        if step != self._step:  # a new optimiser step (checkpoints are written between steps)
            self._step, self._micro = step, 0
        else:  # another batch of the same accumulation cycle
            self._micro += 1
        torch.manual_seed(step_seed(self.seed or 0, step, self._micro, trainer.global_rank))

    def state_dict(self) -> dict:
        return {"seed": int(self.seed or 0), "scheme": "step_seed-v1"}

    def load_state_dict(self, state_dict: dict) -> None:
        if "seed" in state_dict:
            self.seed = int(state_dict["seed"])
        self._step, self._micro = -1, 0


_STEP = re.compile(r"(?:^|[-_])step=(\d+)(?:[-_.]|$)")


def checkpoint_step(path: str | Path) -> int | None:
    """The optimiser step in a checkpoint file name written by ModelCheckpoint's default
    pattern (``epoch=0-step=10.ckpt`` → 10); ``None`` if the name has none."""
    m = _STEP.search(Path(path).stem)
    return int(m.group(1)) if m else None


def _global_step(path: Path) -> int:
    """``global_step`` stored in a checkpoint (read memory-mapped: no full load)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not readable here: the loader reports it with a clear message
        return -1
    return int(ckpt.get("global_step", -1)) if isinstance(ckpt, dict) else -1


def newest_checkpoint(folder: str | Path) -> Path | None:
    """The checkpoint of ``folder`` to resume from: ``last.ckpt``, or a step checkpoint with
    more steps (the run was killed between writing the two); ``None`` if there is none.
    Temporaries (hidden ``*.tmp``) are never candidates."""
    folder = Path(folder)
    last = folder / "last.ckpt"
    named = [(s, p) for p in folder.glob("*.ckpt") if not p.name.startswith(".")
             and p.name != "last.ckpt" and (s := checkpoint_step(p)) is not None]
    if not last.is_file():
        return max(named)[1] if named else None
    last_step = _global_step(last)
    newer = [(s, p) for s, p in named if s > last_step]
    return max(newer)[1] if newer else last
