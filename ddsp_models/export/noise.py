"""Compatibility names for the counter-based noise, which lives in :mod:`ddsp_models.core.noise`."""

from __future__ import annotations

import torch
from torch import Tensor

from ..core import noise as _noise
from ..core.noise import deterministic_noise

__all__ = ["counter_noise", "deterministic_noise"]


def counter_noise(batch: int, start: int, n_samples: int, seed: int = 0,
                  dtype: torch.dtype = torch.float32, device: torch.device | None = None) -> Tensor:
    """:func:`ddsp_models.core.noise.counter_noise` with a dtype and device instead of ``like``."""
    return _noise.counter_noise(batch, start, n_samples, seed, torch.empty(0, dtype=dtype, device=device))
