"""Sample-rate conversion of tensors with soxr (high-quality, linear-phase, delay-compensated).

Not differentiable: the audio goes through numpy on the CPU and comes back on its device.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..errors import InvalidInputError

__all__ = ["resample", "resampled_size"]


def resampled_size(n_samples: int, orig_sr: float, new_sr: float) -> int:
    """Length of ``n_samples`` resampled from ``orig_sr`` to ``new_sr`` by :func:`resample`
    or :func:`ddsp_models.audio_io.resample_blocks` (soxr's rule, computed without resampling
    anything)."""
    if orig_sr == new_sr:
        return int(n_samples)
    return int(n_samples / (orig_sr / new_sr) + 0.5)


def resample(audio: Tensor, orig_sr: float, new_sr: float, quality: str = "HQ") -> Tensor:
    """Resample ``audio (..., samples)`` from ``orig_sr`` to ``new_sr`` Hz.

    Sample ``n`` of the input and sample ``n * new_sr / orig_sr`` of the output are the same
    instant (soxr compensates its filter delay). Output length is about
    ``ceil(samples * new_sr / orig_sr)``. dtype (float32/float64) and device follow the input.

    Args:
        audio: ``(..., samples)`` floating tensor.
        orig_sr, new_sr: sample rates in Hz.
        quality: soxr quality: ``"QQ"``, ``"LQ"``, ``"MQ"``, ``"HQ"`` (default) or ``"VHQ"``.
    """
    import soxr

    if not isinstance(audio, Tensor):
        raise TypeError(f"audio must be a torch.Tensor, got {type(audio).__name__}")
    if not audio.is_floating_point():
        raise TypeError(f"audio must be floating point, got {audio.dtype}; use audio.float()")
    if orig_sr <= 0 or new_sr <= 0:
        raise InvalidInputError(f"sample rates must be positive, got {orig_sr} -> {new_sr}")
    if orig_sr == new_sr:
        return audio
    if audio.shape[-1] == 0:
        raise InvalidInputError("cannot resample empty audio")
    lead = audio.shape[:-1]
    np_dtype = np.float64 if audio.dtype == torch.float64 else np.float32
    x = audio.detach().reshape(-1, audio.shape[-1]).to("cpu").numpy().astype(np_dtype, copy=False)
    y = soxr.resample(np.ascontiguousarray(x.T), orig_sr, new_sr, quality=quality)  # (L', C)
    y = torch.from_numpy(np.ascontiguousarray(y.T))
    out_dtype = audio.dtype if audio.dtype in (torch.float32, torch.float64) else torch.float32
    return y.to(device=audio.device, dtype=out_dtype).reshape(*lead, y.shape[-1])
