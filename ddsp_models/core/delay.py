"""Fractional, time-varying delay lines.

``variable_delay(audio, delay_samples)`` reads ``audio`` at ``n - delay_samples[n]`` with
linear or cubic (4-point Lagrange) interpolation; samples before the start read as zero.
It is differentiable in the audio and in the delay (the slope of the interpolant).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .shapes import broadcast_shapes

__all__ = ["variable_delay"]


def _read(audio: Tensor, index: Tensor) -> Tensor:
    """``audio[..., index]`` with zeros outside ``[0, L)``; ``index`` integer, same shape."""
    n = audio.shape[-1]
    inside = (index >= 0) & (index < n)
    values = audio.gather(-1, index.clamp(0, n - 1))
    return values * inside.to(values.dtype)


def variable_delay(audio: Tensor, delay_samples: Tensor, interpolation: str = "linear") -> Tensor:
    """Delay ``audio`` by a time-varying, fractional number of samples.

    ``y[n] = x(n - d[n])`` where ``x(·)`` interpolates the samples of ``audio`` (zero before
    sample 0).

    Args:
        audio: ``(..., L)``.
        delay_samples: ``(..., L)`` delay in **samples** (≥ 0), broadcastable with ``audio``
            (e.g. ``(B, 1, L)`` for ``(B, C, L)`` audio). For seconds multiply by the
            sample rate first.
        interpolation: ``"linear"`` (2 taps) or ``"cubic"`` (4-point Lagrange).

    Returns:
        ``(broadcast shape..., L)``.
    """
    if interpolation not in ("linear", "cubic"):
        raise ValueError(f"interpolation must be 'linear' or 'cubic', got {interpolation!r}")
    if delay_samples.shape[-1] != audio.shape[-1]:
        raise ValueError(
            f"delay_samples must be audio-rate: last axis {delay_samples.shape[-1]} != "
            f"audio length {audio.shape[-1]}; upsample frame-rate delays first"
        )
    if bool((delay_samples < 0).any()):
        raise ValueError("delay_samples must be >= 0 (a delay line cannot read the future)")
    shape = broadcast_shapes(audio.shape, delay_samples.shape)
    audio = audio.expand(shape)
    n = audio.shape[-1]
    position = torch.arange(n, device=audio.device, dtype=delay_samples.dtype) - delay_samples
    position = position.expand(shape)
    base = torch.floor(position)
    frac = (position - base).to(audio.dtype)
    i0 = base.long()
    if interpolation == "linear":
        return _read(audio, i0) * (1 - frac) + _read(audio, i0 + 1) * frac
    # 4-point Lagrange through samples i0-1, i0, i0+1, i0+2 at offset frac from i0.
    xm1, x0, x1, x2 = (_read(audio, i0 + j) for j in (-1, 0, 1, 2))
    f = frac
    return (
        xm1 * (-f * (f - 1) * (f - 2) / 6)
        + x0 * ((f + 1) * (f - 1) * (f - 2) / 2)
        + x1 * (-(f + 1) * f * (f - 2) / 2)
        + x2 * ((f + 1) * f * (f - 1) / 6)
    )
