"""Centred framing: frame ``t`` of length ``n`` covers samples ``[t*hop - n//2, t*hop - n//2 + n)``.

Samples outside the signal are zeros. Frames are views made with ``unfold`` (no Python loop
over frames, no copy until the caller writes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["frame_centred", "frame_at_centres"]


def frame_centred(
    x: Tensor, frame_length: int, hop: int, n_frames: int, start: int = 0, lead: int | None = None
) -> Tensor:
    """Frames ``start .. start + n_frames - 1`` of ``x``, centred on ``t * hop``.

    Frame ``t`` begins ``lead`` samples before ``t * hop`` (default ``frame_length // 2``:
    centred).

    Args:
        x: ``(..., samples)``.
        frame_length: samples per frame.
        hop: samples between frame centres.
        n_frames: number of frames returned.
        start: index of the first frame (for chunked processing).

    Returns:
        ``(..., n_frames, frame_length)``.
    """
    half = frame_length // 2 if lead is None else int(lead)
    lo = start * hop - half  # first sample of the first frame (may be negative)
    hi = (start + n_frames - 1) * hop - half + frame_length  # one past the last sample
    n = x.shape[-1]
    seg = x[..., max(lo, 0) : min(hi, n)]
    pad_l, pad_r = max(0, -lo), max(0, hi - n)
    if pad_l or pad_r:
        seg = F.pad(seg, (pad_l, pad_r))
    return seg.unfold(-1, frame_length, hop)


def frame_at_centres(x: Tensor, centres: Tensor, frame_length: int) -> Tensor:
    """Frames of ``x`` centred on arbitrary integer sample indices (gathered, zero outside).

    Args:
        x: ``(batch, samples)``.
        centres: ``(n_frames,)`` integer sample indices.

    Returns:
        ``(batch, n_frames, frame_length)``.
    """
    half = frame_length // 2
    lo = int(centres.min()) - half
    hi = int(centres.max()) - half + frame_length
    n = x.shape[-1]
    pad_l, pad_r = max(0, -lo), max(0, hi - n)
    xp = F.pad(x, (pad_l, pad_r))
    idx = (centres - half + pad_l)[:, None] + torch.arange(frame_length, device=x.device)
    return xp[:, idx]
