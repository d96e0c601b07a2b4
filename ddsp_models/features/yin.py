"""YIN fundamental-frequency estimation (de Cheveigné & Kawahara, 2002), vectorised in torch.

For a frame ``x`` of ``W + tau_max`` samples, with integration window ``W = tau_max``:

* difference function ``d(tau) = sum_{j<W} (x[j] - x[j + tau])**2``, computed for all lags at
  once as ``e(0) + e(tau) - 2 r(tau)`` with the cross-correlation ``r`` from one real FFT and
  the energies ``e`` from a cumulative sum;
* cumulative mean normalised difference ``d'(tau) = d(tau) * tau / sum_{k=1..tau} d(k)``,
  ``d'(0) = 1``;
* the period is the first lag in ``[tau_min, tau_max]`` where ``d'`` dips below ``threshold``,
  moved on to the bottom of that dip; if ``d'`` never dips below it, the global minimum;
* parabolic interpolation of ``d`` around that lag gives a fractional period.

Confidence is ``1 - d'(period)``, clipped to ``[0, 1]``. The integration window is centred on
``t * hop`` (the samples compared with it, up to ``tau_max`` later, follow it), so the
analysed span ``W + tau`` is centred within half a period of ``t * hop``.
All frames are processed in one batched call (chunked over frames to bound memory).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..core.filtering import fft_size
from ..errors import InvalidInputError
from .framing import frame_centred

__all__ = ["yin", "cmnd", "yin_lags", "parabolic_minimum"]


def yin_lags(sample_rate: float, fmin: float, fmax: float) -> tuple[int, int]:
    """``(tau_min, tau_max)`` in samples for the f0 search range ``[fmin, fmax]`` Hz."""
    if not 0 < fmin < fmax:
        raise InvalidInputError(f"need 0 < fmin < fmax, got fmin={fmin}, fmax={fmax}")
    if fmax > sample_rate / 4:
        raise InvalidInputError(f"fmax={fmax} Hz is above sample_rate/4={sample_rate / 4} Hz; lower fmax")
    return max(2, int(math.floor(sample_rate / fmax))), int(math.ceil(sample_rate / fmin))


def cmnd(frames: Tensor, tau_max: int, return_difference: bool = False):
    """Cumulative mean normalised difference of frames.

    Args:
        frames: ``(..., N)`` with ``N >= 2 * tau_max``; the integration window is the first
            ``W = N - tau_max`` samples.
        tau_max: largest lag.

    Returns:
        ``(..., tau_max + 1)``: ``d'(0..tau_max)``; frames with no energy give 1 everywhere.
        With ``return_difference``, also ``d(0..tau_max)``.
    """
    n = frames.shape[-1]
    w = n - tau_max
    if w < 1:
        raise ValueError(f"frames of {n} samples are too short for tau_max={tau_max}")
    n_fft = fft_size(n)
    fx = torch.fft.rfft(frames, n_fft)
    fa = torch.fft.rfft(frames[..., :w], n_fft)
    r = torch.fft.irfft(fx * fa.conj(), n_fft)[..., : tau_max + 1]  # sum_j a[j] x[j + tau]
    sq = frames.pow(2)
    c = torch.nn.functional.pad(sq.cumsum(-1), (1, 0))  # c[k] = sum_{j<k} x[j]^2
    e_tau = c[..., w : w + tau_max + 1] - c[..., : tau_max + 1]  # sum_{j<W} x[j+tau]^2
    d = (e_tau[..., :1] + e_tau - 2.0 * r).clamp_min(0.0)
    d[..., 0] = 0.0
    tau = torch.arange(tau_max + 1, device=frames.device, dtype=frames.dtype)
    csum = d.cumsum(-1)
    dn = torch.where(csum > 0, d * tau / csum.clamp_min(torch.finfo(d.dtype).tiny), torch.ones_like(d))
    dn[..., 0] = 1.0
    return (dn, d) if return_difference else dn


def parabolic_minimum(y: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
    """Fractional position and value of the minimum of the parabola through ``idx - 1, idx, idx + 1``.

    Args:
        y: ``(..., K)``; idx: ``(...)`` integer positions (clamped to ``[1, K-2]`` for the fit).
    """
    k = y.shape[-1]
    i = idx.clamp(1, k - 2)
    left = y.gather(-1, (i - 1)[..., None])[..., 0]
    mid = y.gather(-1, i[..., None])[..., 0]
    right = y.gather(-1, (i + 1)[..., None])[..., 0]
    den = left - 2.0 * mid + right
    shift = torch.where(den > 0, 0.5 * (left - right) / den.clamp_min(1e-30), torch.zeros_like(den))
    shift = shift.clamp(-1.0, 1.0)
    value = mid - 0.25 * (left - right) * shift
    pos = i.to(y.dtype) + shift
    # Keep the integer lag where the fit could not be made (edges).
    at_edge = (idx < 1) | (idx > k - 2)
    pos = torch.where(at_edge, idx.to(y.dtype), pos)
    value = torch.where(at_edge, y.gather(-1, idx[..., None])[..., 0], value)
    return pos, value


def _pick_lag(dn: Tensor, tau_min: int, threshold: float) -> Tensor:
    """YIN's absolute-threshold rule, vectorised. ``dn (..., tau_max+1)`` → lag ``(...)``."""
    k = dn.shape[-1]
    lags = torch.arange(k, device=dn.device)
    valid = lags >= tau_min
    below = (dn < threshold) & valid
    has = below.any(-1)
    first = torch.where(has, below.int().argmax(-1), torch.zeros_like(has, dtype=torch.long))
    # Walk down to the bottom of that dip: first lag >= first where the next value is not lower.
    rising = torch.ones_like(below)
    rising[..., :-1] = dn[..., 1:] >= dn[..., :-1]
    bottom = (rising & (lags >= first[..., None])).int().argmax(-1)
    masked = dn.masked_fill(~valid, torch.inf)
    return torch.where(has, bottom, masked.argmin(-1))


def yin(
    audio: Tensor,
    sample_rate: float,
    hop: int,
    n_frames: int,
    fmin: float = 40.0,
    fmax: float = 2100.0,
    threshold: float = 0.15,
    chunk_frames: int = 2048,
) -> tuple[Tensor, Tensor, Tensor]:
    """YIN over frames centred on ``t * hop``.

    Args:
        audio: ``(batch, samples)``.
        sample_rate: Hz.
        hop: samples between frame centres; ``n_frames``: frames returned.
        fmin, fmax: f0 search range in Hz (the frame is ``2 * sample_rate / fmin`` long).
        threshold: YIN's absolute threshold on ``d'``.
        chunk_frames: frames per batched FFT call.

    Returns:
        ``f0_hz, confidence, period`` each ``(batch, n_frames)`` in the audio's dtype;
        computed internally in float64.
    """
    tau_min, tau_max = yin_lags(sample_rate, fmin, fmax)
    frame_length = 2 * tau_max
    x = audio.to(torch.float64)
    f0 = torch.empty(x.shape[0], n_frames, dtype=torch.float64, device=x.device)
    conf = torch.empty_like(f0)
    period = torch.empty_like(f0)
    for t0 in range(0, n_frames, chunk_frames):
        n = min(chunk_frames, n_frames - t0)
        frames = frame_centred(x, frame_length, hop, n, t0, lead=tau_max // 2)  # (B, n, N)
        dn, d = cmnd(frames, tau_max, return_difference=True)
        lag = _pick_lag(dn, tau_min, threshold)
        # The period comes from the parabola through the raw difference d (unbiased for a
        # steady tone); d' would pull it towards shorter lags by its 1 / mean factor.
        pos, _ = parabolic_minimum(d, lag)
        _, val = parabolic_minimum(dn, lag)
        period[:, t0 : t0 + n] = pos
        f0[:, t0 : t0 + n] = sample_rate / pos.clamp_min(1.0)
        conf[:, t0 : t0 + n] = (1.0 - val).clamp(0.0, 1.0)
    dt = audio.dtype
    return f0.to(dt), conf.to(dt), period.to(dt)
