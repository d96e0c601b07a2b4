"""CREPE's first layer computed once per signal instead of once per frame.

At 100 frames/s consecutive 1024-sample frames overlap by 864 samples, and the first layer
(512-tap kernels, stride 4) sees the same samples again and again. Each frame is normalised
on its own, ``n_t = (x - mu_t) / sigma_t``, but the convolution is linear, so for output
position ``j`` of frame ``t``

    conv(n_t)[j] = (G_t[j] - mu_t * S[j]) / sigma_t + bias,

where ``G_t[j]`` is the kernel applied to the raw samples the position covers inside the frame
and ``S[j]`` the sum of the kernel taps that fall inside the frame. For the 128 interior
positions (the kernel lies inside the frame) ``G_t[j]`` is one value of a single strided
convolution of the whole signal (hop 160 = 40 strides of 4: frames share it). For the 64
positions at each end the kernel hangs over the frame's zero padding; there the taps that
reach outside the frame are subtracted again with one small matrix product per frame (254
samples × 64 positions). Per frame this costs ~53 k multiply-adds per channel instead of
131 k; the remaining layers run per frame as before (their input depends on ``mu_t`` and
``sigma_t`` non-linearly). Requires a whole hop that is a multiple of 4 samples at 16 kHz.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .crepe_net import CrepeNet

__all__ = ["first_block_shared", "segment_for_frames", "SHARED_PAD"]

#: samples before the first frame's start (and after the last frame's end) the segment holds
SHARED_PAD = 254
_EDGE = 64  # output positions at each end whose kernel overhangs the frame
_K = 512


def _edge_matrices(net: CrepeNet) -> tuple[Tensor, Tensor, Tensor]:
    """``(ML, MR, S)``: ``(254, C*64)`` left/right overhang matrices and ``(C, 256)`` in-frame
    tap sums, cached on the network."""
    cache = getattr(net, "_shared_cache", None)
    w = net.convs[0].weight  # (C, 1, 512)
    if cache is not None and cache[0] == (w.device, w.dtype, w.data_ptr()):
        return cache[1]
    wc = w[:, 0, :].detach()  # (C, 512)
    c = wc.shape[0]
    p = torch.arange(SHARED_PAD, device=w.device)[:, None]  # sample index in the overhang
    j = torch.arange(_EDGE, device=w.device)[None, :]  # output position
    # Left: overhang samples are frame samples m = p - 254 (< 0); position j uses tap
    # k = m - 4j + 254 = p - 4j, valid when 0 <= k (k < 512 always holds).
    k_left = p - 4 * j
    # Right: overhang samples are frame samples m = 1024 + p; position 192 + j uses tap
    # k = m - 4(192 + j) + 254 = p + 510 - 4j, valid when k <= 511.
    k_right = p + 510 - 4 * j
    ml = torch.where((k_left >= 0)[None], wc[:, k_left.clamp(0, _K - 1)], torch.zeros((), dtype=wc.dtype, device=wc.device))
    mr = torch.where((k_right <= _K - 1)[None], wc[:, k_right.clamp(0, _K - 1)], torch.zeros((), dtype=wc.dtype, device=wc.device))
    # (C, 254, 64) -> (254, C*64)
    ml = ml.permute(1, 0, 2).reshape(SHARED_PAD, c * _EDGE).contiguous()
    mr = mr.permute(1, 0, 2).reshape(SHARED_PAD, c * _EDGE).contiguous()
    s = wc.sum(1, keepdim=True).expand(c, 256).clone()
    s[:, :_EDGE] -= ml.sum(0).reshape(c, _EDGE)
    s[:, -_EDGE:] -= mr.sum(0).reshape(c, _EDGE)
    out = (ml, mr, s)
    net._shared_cache = ((w.device, w.dtype, w.data_ptr()), out)
    return out


def segment_for_frames(x: Tensor, hop: int, t0: int, n: int) -> Tensor:
    """Samples ``[t0*hop - 512 - 254, (t0+n-1)*hop + 512 + 254)`` of ``x (rows, samples)``,
    zero outside the signal: what :func:`first_block_shared` needs for frames ``t0..t0+n-1``."""
    lo = t0 * hop - 512 - SHARED_PAD
    hi = (t0 + n - 1) * hop + 512 + SHARED_PAD
    seg = x[:, max(lo, 0) : max(min(hi, x.shape[-1]), 0)]
    return F.pad(seg, (max(0, -lo), max(0, hi - max(lo, 0) - seg.shape[-1])))


def first_block_shared(net: CrepeNet, seg: Tensor, n: int, hop: int) -> tuple[Tensor, Tensor]:
    """Block 1 of CREPE for ``n`` frames per row from a segment (see :func:`segment_for_frames`).

    Args:
        seg: ``(rows, (n - 1) * hop + 1532)``.
        hop: frame hop in samples, a multiple of 4.

    Returns:
        ``(rows * n, C1, 128)`` block-1 output (what ``net.block(0, normalised_frames)``
        gives) and the frames' standard deviations ``(rows, n)``.
    """
    if hop % 4:
        raise ValueError(f"the shared first layer needs a hop that is a multiple of 4, got {hop}")
    rows = seg.shape[0]
    conv = net.convs[0]
    ml, mr, s = _edge_matrices(net)
    c = s.shape[0]
    # Frame statistics (population std, as in the per-frame route).
    frames = seg[:, SHARED_PAD:].unfold(-1, 1024, hop)[:, :n]  # (rows, n, 1024) view
    mu = frames.mean(-1)
    std = (frames - mu[..., None]).pow(2).mean(-1).sqrt()
    # One strided convolution of the whole segment, then each frame's 256 positions.
    g = F.conv1d(seg[:, None], conv.weight, stride=4)  # (rows, C, (n-1)*hop/4 + 256)
    g = g.unfold(-1, 256, hop // 4)[:, :, :n]  # (rows, C, n, 256) view
    # A real copy: the windows overlap in memory and are modified in place below (reshape
    # alone may return a view, e.g. for one row).
    g = g.permute(0, 2, 1, 3).reshape(rows * n, c, 256).clone(memory_format=torch.contiguous_format)
    left = seg.unfold(-1, SHARED_PAD, hop)[:, :n].reshape(rows * n, SHARED_PAD)
    right = seg[:, SHARED_PAD + 1024 :].unfold(-1, SHARED_PAD, hop)[:, :n].reshape(rows * n, SHARED_PAD)
    g[:, :, :_EDGE] -= (left @ ml).reshape(rows * n, c, _EDGE)
    g[:, :, -_EDGE:] -= (right @ mr).reshape(rows * n, c, _EDGE)
    inv = 1.0 / std.clamp_min(1e-8).reshape(-1, 1, 1)
    # z = (g - mu * S) / sigma + bias, in place: g * inv + (-mu * inv) * S + bias
    g.mul_(inv).addcmul_(-mu.reshape(-1, 1, 1) * inv, s).add_(conv.bias[None, :, None]).relu_()
    return F.max_pool1d(net.norms[0](g), 2), std
