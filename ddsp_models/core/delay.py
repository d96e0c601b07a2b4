"""Fractional, time-varying delay lines.

``variable_delay(audio, delay_samples)`` reads ``audio`` at ``n - delay_samples[n]`` with
linear or cubic (4-point Lagrange) interpolation; samples before the start read as zero.
It is differentiable in the audio and in the delay (the slope of the interpolant).

``delay_line_read(line, delay_samples)`` is its block form for streaming: the delay line
(the last ``H`` samples before the block, then the block) is carried by the caller, and the
block's samples are read exactly as :func:`variable_delay` reads them from the whole signal.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .shapes import broadcast_shapes

__all__ = ["variable_delay", "delay_line_read"]


def _read(audio: Tensor, index: Tensor) -> Tensor:
    """``audio[..., index]`` with zeros outside ``[0, L)``; ``index`` integer, same shape."""
    n = audio.shape[-1]
    inside = (index >= 0) & (index < n)
    values = audio.gather(-1, index.clamp(0, n - 1))
    return values * inside.to(values.dtype)


def _interpolate(audio: Tensor, position: Tensor, interpolation: str) -> Tensor:
    """``audio`` read at fractional ``position`` (same shape as ``audio``'s last-axis
    reads), zeros outside ``[0, L)``."""
    base = torch.floor(position)
    frac = (position - base).to(audio.dtype)
    i0 = base.long()
    if interpolation == "linear":
        return _read(audio, i0) * (1 - frac) + _read(audio, i0 + 1) * frac
    # 4-point Lagrange through samples i0-1, i0, i0+1, i0+2 at offset frac from i0.
    xm1, x0, x1, x2 = (_read(audio, i0 - 1), _read(audio, i0), _read(audio, i0 + 1),
                       _read(audio, i0 + 2))
    f = frac
    return (
        xm1 * (-f * (f - 1) * (f - 2) / 6)
        + x0 * ((f + 1) * (f - 1) * (f - 2) / 2)
        + x1 * (-(f + 1) * f * (f - 2) / 2)
        + x2 * ((f + 1) * f * (f - 1) / 6)
    )


def delay_line_read(line: Tensor, delay_samples: Tensor, interpolation: str = "linear") -> Tensor:
    """The block form of :func:`variable_delay`: read a block's delayed samples from a line.

    ``y[m] = x(H + m - d[m])`` for the block's samples ``m = 0 .. M-1``, where ``x(·)``
    interpolates ``line`` as :func:`variable_delay` does (so a stream that carries the last
    ``H`` samples reproduces the whole-signal result exactly; zeros in the carried history
    stand for the silence before the stream). TorchScript-compatible.

    Args:
        line: ``(..., H + M)``: the last ``H`` samples before the block, then its ``M``.
        delay_samples: ``(..., M)`` delays in samples, broadcastable with ``line``'s leading
            axes; ``0 <= d <= H - 1`` (linear) or ``H - 2`` (cubic) keeps every read inside
            the line. Cubic reads one sample ahead of the interpolated position: it equals the
            offline result only where ``d >= 1`` (offline reads a sample that a stream has not
            seen yet otherwise; it reads zero here).
        interpolation: ``"linear"`` or ``"cubic"``.

    Returns:
        ``(broadcast leading axes..., M)``.
    """
    m = delay_samples.shape[-1]
    h = line.shape[-1] - m
    lead = torch.broadcast_shapes(line.shape[:-1], delay_samples.shape[:-1])
    line = line.expand(list(lead) + [h + m])
    t = torch.arange(m, device=line.device, dtype=delay_samples.dtype) + h
    position = (t - delay_samples).expand(list(lead) + [m])
    return _interpolate(line, position, interpolation)


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
