"""Static nonlinearities and the polyphase FIR resampling used to oversample them.

Shapes (elementwise, any shape, TorchScript-compatible):

* :func:`chebyshev_sum` ``sum_k w_k T_k(clamp(u, -1, 1))`` — ``T_k(cos θ) = cos(kθ)``, so on a
  full-scale sine ``T_k`` gives the k-th harmonic alone;
* :func:`power_shape` ``sign(u) min(|u|, 1) ** p``;
* :func:`piecewise_tanh` linear up to a knee, then a tanh that saturates at ±1 (separate
  knees for the positive and negative half-waves, so asymmetric settings give even harmonics).

Oversampling: :func:`lowpass_fir` designs a Kaiser-windowed sinc (linear phase, ``2 F m + 1``
taps at the high rate, cut-off at the low rate's Nyquist); :func:`upsample_block` and
:func:`downsample_block` apply it causally to one block from a carried history, so a stream
and a whole-signal render (the same functions with zero histories) agree to rounding. Each
filter delays by ``m`` low-rate samples.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["chebyshev_sum", "power_shape", "piecewise_tanh", "lowpass_fir", "upsample_block",
           "downsample_block"]


def chebyshev_sum(u: Tensor, weights: Tensor) -> Tensor:
    """``sum_{k=1..K} weights[..., k-1, :] T_k(clamp(u, -1, 1))``.

    Args:
        u: ``(B, C, M)`` input (clamped to ``[-1, 1]``: the polynomials grow without bound
            outside, and the clamp passes no gradient there).
        weights: ``(B, K, M | 1)`` weight of ``T_1 .. T_K``.

    Returns:
        ``(B, C, M)``. The recursion ``T_{k+1} = 2 u T_k - T_{k-1}``.
    """
    x = u.clamp(-1.0, 1.0)
    t_prev = torch.ones_like(x)
    t = x
    y = weights[:, 0:1] * t
    for k in range(1, weights.shape[1]):
        t_prev, t = t, 2.0 * x * t - t_prev
        y = y + weights[:, k:k + 1] * t
    return y


def power_shape(u: Tensor, exponent: Tensor) -> Tensor:
    """``sign(u) min(|u|, 1) ** exponent`` (``exponent`` broadcasts against ``u``).

    Zero maps to zero with a zero gradient (``|u| ** p`` has an infinite slope at 0 for
    ``p < 1``); the gradient with respect to ``exponent`` is ``y log|u|``."""
    a = u.abs().clamp_max(1.0)
    nz = a > 0
    safe = torch.where(nz, a, torch.ones_like(a))
    y = torch.pow(safe, exponent)
    return torch.where(nz, torch.sign(u) * y, torch.zeros_like(y))


def piecewise_tanh(u: Tensor, knee_pos: Tensor, knee_neg: Tensor) -> Tensor:
    """Linear for ``-knee_neg <= u <= knee_pos``; beyond, ``k + (1 - k) tanh((|u| - k) / (1 - k))``
    with the sign of ``u`` (value and slope continuous at the knee, saturating at ±1).

    ``knee_*`` in ``[0, 1)`` broadcast against ``u``."""
    k = torch.where(u >= 0, knee_pos, knee_neg)
    a = u.abs()
    soft = 1.0 - k
    sat = k + soft * torch.tanh((a - k) / soft)
    return torch.sign(u) * torch.where(a > k, sat, a)


def lowpass_fir(factor: int, half_length: int, attenuation_db: float = 100.0) -> np.ndarray:
    """Linear-phase lowpass for ``factor``-times oversampling, float64 numpy ``(2 F m + 1,)``.

    A Kaiser-windowed sinc at the high rate with its cut-off at the low rate's Nyquist
    (``0.5 / factor`` cycles per high-rate sample), DC gain one. The transition band, in
    low-rate units, is about ``(A - 8) / (14.36 m)`` of the low sample rate wide, centred on
    the low Nyquist (``m = 16``, ``A = 100``: 0.40 .. 0.60 fs).
    """
    n = 2 * factor * half_length + 1
    beta = 0.1102 * (attenuation_db - 8.7) if attenuation_db > 50 else (
        0.5842 * (attenuation_db - 21) ** 0.4 + 0.07886 * (attenuation_db - 21))
    t = np.arange(n) - (n - 1) / 2
    h = np.sinc(t / factor) / factor * np.kaiser(n, beta)
    return h / h.sum()


def upsample_block(history: Tensor, x: Tensor, fir: Tensor, factor: int) -> Tuple[Tensor, Tensor]:
    """Zero-stuff by ``factor`` and filter with ``fir * factor``, causally, one block.

    Args:
        history: ``(B, C, 2m)`` the last ``2m`` low-rate input samples.
        x: ``(B, C, M)`` this block (low rate).
        fir: ``(2 F m + 1,)`` from :func:`lowpass_fir` (symmetric).

    Returns:
        ``(u (B, C, F M), new history)``: ``u`` is the centred interpolation at the high-rate
        samples of low-rate indices ``i0 - m .. i0 + M - m - 1`` (``i0`` the block's first).
    """
    b, c, m = x.shape
    both = torch.cat([history, x], dim=-1)
    n = both.shape[-1]
    stuffed = F.pad(both[..., None], (0, factor - 1)).reshape(b * c, 1, n * factor)
    kernel = (fir * factor).flip(0).reshape(1, 1, -1)
    u = F.conv1d(stuffed, kernel).reshape(b, c, m * factor)
    return u, both[..., n - history.shape[-1]:]


def downsample_block(history: Tensor, v: Tensor, fir: Tensor, factor: int
                     ) -> Tuple[Tensor, Tensor]:
    """Filter with ``fir`` and keep every ``factor``-th sample, causally, one block.

    Args:
        history: ``(B, C, 2 F m)`` the last high-rate samples.
        v: ``(B, C, F M)`` this block (high rate).

    Returns:
        ``(y (B, C, M), new history)``: ``y`` is the centred decimation at low-rate indices
        ``a - m .. a + M - m - 1`` where ``a`` is ``v``'s first low-rate index.
    """
    b, c, n = v.shape
    both = torch.cat([history, v], dim=-1)
    kernel = fir.flip(0).reshape(1, 1, -1)
    y = F.conv1d(both.reshape(b * c, 1, both.shape[-1]), kernel, stride=factor)
    return y.reshape(b, c, n // factor), both[..., both.shape[-1] - history.shape[-1]:]
