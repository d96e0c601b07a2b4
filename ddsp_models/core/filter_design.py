"""Differentiable filter design: RBJ biquads, Butterworth, Linkwitz-Riley, allpass cells.

Every function takes tensors of physical values (Hz, Q, dB) with any leading shape ``(...)``
and returns coefficients that keep those leading dims, differentiable w.r.t. every input:

* :func:`biquad_coefficients` — the RBJ "Audio EQ Cookbook" family; ``(b, a)`` each ``(..., 3)``
  with ``a[..., 0] = 1`` (:func:`rbj_biquad`: its scriptable core, without checks);
* :func:`tpt_svf_system` — the same responses as the per-sample state-space system of the TPT
  state-variable filter (bounded under modulation; scriptable);
* :func:`butterworth_sos`, :func:`linkwitz_riley_sos` — ``(..., S, 6)`` second-order sections;
* :func:`first_order_allpass`, :func:`second_order_allpass` — allpass cells, optionally
  *warped* (each unit delay replaced by a first-order allpass with coefficient ``warp``) and
  *stretched* (each unit delay replaced by ``stretch`` delays), as in Bargum et al.,
  "Differentiable allpass filters for phase response estimation" (seed 001).

All designs use the bilinear transform with the cutoff pre-warped, so a digital filter's
response at ``w`` equals its analog prototype's at ``s = j tan(w / 2) / tan(w0 / 2)``.
Stability: for ``0 < cutoff_hz < sample_rate / 2`` and ``q > 0`` the poles lie inside the unit
circle; for allpass cells ``|coefficient| < 1``, ``|warp| < 1``, ``0 <= radius < 1``.
"""

from __future__ import annotations

import math
from typing import List, Tuple

import torch
from torch import Tensor

from .shapes import broadcast_shapes

__all__ = [
    "BIQUAD_KINDS",
    "biquad_coefficients",
    "rbj_biquad",
    "tpt_svf_system",
    "butterworth_sos",
    "linkwitz_riley_sos",
    "first_order_allpass",
    "second_order_allpass",
    "allpass_coefficient",
]

BIQUAD_KINDS = (
    "lowpass",
    "highpass",
    "bandpass",
    "notch",
    "allpass",
    "peaking",
    "lowshelf",
    "highshelf",
)


def _as_tensor(v, like: Tensor | None = None) -> Tensor:
    if isinstance(v, Tensor):
        return v if v.is_floating_point() else v.double()
    dtype = like.dtype if like is not None else torch.get_default_dtype()
    device = like.device if like is not None else None
    return torch.tensor(float(v), dtype=dtype, device=device)


def _check_cutoff(cutoff_hz: Tensor, sample_rate: float) -> None:
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    bad = (cutoff_hz <= 0) | (cutoff_hz >= sample_rate / 2)
    if bool(bad.any()):
        raise ValueError(
                f"cutoff_hz must lie in (0, {sample_rate / 2}) (below Nyquist), got values from "
                f"{float(cutoff_hz.min())} to {float(cutoff_hz.max())}"
            )


def biquad_coefficients(
    kind: str,
    cutoff_hz: Tensor | float,
    q: Tensor | float = 1 / math.sqrt(2),
    gain_db: Tensor | float = 0.0,
    sample_rate: float = 16000,
) -> tuple[Tensor, Tensor]:
    """RBJ cookbook biquad ``(b, a)``, each ``(..., 3)``, normalised so ``a[..., 0] = 1``.

    Args:
        kind: one of :data:`BIQUAD_KINDS`.
        cutoff_hz: cutoff / centre / shelf mid-point frequency in Hz, ``(...)``.
        q: quality factor (> 0), ``(...)``; for shelves it sets the slope (0.7071: no overshoot).
        gain_db: gain for ``peaking`` / ``lowshelf`` / ``highshelf`` (ignored otherwise).
        sample_rate: Hz.

    Returns:
        ``(b, a)`` broadcast over the shapes of ``cutoff_hz``, ``q`` and ``gain_db``.
    """
    if kind not in BIQUAD_KINDS:
        raise ValueError(f"unknown biquad kind {kind!r}; choose one of {BIQUAD_KINDS}")
    cutoff_hz = _as_tensor(cutoff_hz)
    q = _as_tensor(q, cutoff_hz)
    gain_db = _as_tensor(gain_db, cutoff_hz)
    _check_cutoff(cutoff_hz, sample_rate)
    return rbj_biquad(kind, cutoff_hz, q, gain_db, sample_rate)


@torch.jit.unused
def _broadcast_fast(ts: List[Tensor]) -> List[Tensor]:
    shape = broadcast_shapes(*(t.shape for t in ts))
    return [t.expand(shape) for t in ts]


def _broadcast(ts: List[Tensor]) -> List[Tensor]:
    """``torch.broadcast_tensors`` (scripted) or the cheaper :func:`broadcast_shapes` (Python)."""
    if torch.jit.is_scripting():
        return torch.broadcast_tensors(ts)
    return _broadcast_fast(ts)


def rbj_biquad(
    kind: str, cutoff_hz: Tensor, q: Tensor, gain_db: Tensor, sample_rate: float
) -> Tuple[Tensor, Tensor]:
    """The formulas of :func:`biquad_coefficients` without its checks: tensors only, compiles
    with ``torch.jit.script`` (the block path of the biquad and EQ processors).

    Args:
        kind: one of :data:`BIQUAD_KINDS`; cutoff_hz, q, gain_db: tensors that broadcast
            (``0 < cutoff_hz < sample_rate / 2`` and ``q > 0`` are the caller's to keep).

    Returns:
        ``(b, a)`` each ``(..., 3)`` with ``a[..., 0] = 1``.
    """
    w0 = (2 * math.pi / sample_rate) * cutoff_hz
    cos, sin = torch.cos(w0), torch.sin(w0)
    alpha = sin / (2 * q)
    one = torch.ones_like(cos)
    if kind == "lowpass":
        b = [(1 - cos) / 2, 1 - cos, (1 - cos) / 2]
        a = [1 + alpha, -2 * cos, 1 - alpha]
    elif kind == "highpass":
        b = [(1 + cos) / 2, -(1 + cos), (1 + cos) / 2]
        a = [1 + alpha, -2 * cos, 1 - alpha]
    elif kind == "bandpass":  # constant 0 dB peak gain
        b = [alpha, 0 * alpha, -alpha]
        a = [1 + alpha, -2 * cos, 1 - alpha]
    elif kind == "notch":
        b = [one, -2 * cos, one]
        a = [1 + alpha, -2 * cos, 1 - alpha]
    elif kind == "allpass":
        b = [1 - alpha, -2 * cos, 1 + alpha]
        a = [1 + alpha, -2 * cos, 1 - alpha]
    elif kind == "peaking":
        amp = torch.pow(10.0, gain_db / 40)
        b = [1 + alpha * amp, -2 * cos, 1 - alpha * amp]
        a = [1 + alpha / amp, -2 * cos, 1 - alpha / amp]
    elif kind == "lowshelf" or kind == "highshelf":
        amp = torch.pow(10.0, gain_db / 40)
        two_sqrt_a_alpha = 2 * torch.sqrt(amp) * alpha
        ap1, am1 = amp + 1, amp - 1
        if kind == "lowshelf":
            b = [
                amp * (ap1 - am1 * cos + two_sqrt_a_alpha),
                2 * amp * (am1 - ap1 * cos),
                amp * (ap1 - am1 * cos - two_sqrt_a_alpha),
            ]
            a = [ap1 + am1 * cos + two_sqrt_a_alpha, -2 * (am1 + ap1 * cos), ap1 + am1 * cos - two_sqrt_a_alpha]
        else:  # highshelf
            b = [
                amp * (ap1 + am1 * cos + two_sqrt_a_alpha),
                -2 * amp * (am1 + ap1 * cos),
                amp * (ap1 + am1 * cos - two_sqrt_a_alpha),
            ]
            a = [ap1 - am1 * cos + two_sqrt_a_alpha, 2 * (am1 - ap1 * cos), ap1 - am1 * cos - two_sqrt_a_alpha]
    else:
        raise ValueError("unknown biquad kind " + kind)
    ts = _broadcast(b + a)
    b_ = torch.stack(ts[:3], dim=-1)
    a_ = torch.stack(ts[3:], dim=-1)
    a0 = a_[..., :1]
    return b_ / a0, a_ / a0


def tpt_svf_system(
    kind: str, cutoff_hz: Tensor, q: Tensor, gain_db: Tensor, sample_rate: float
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """An RBJ response as the per-sample state-space system of the TPT state-variable filter.

    The same response as :func:`rbj_biquad` for fixed parameters (same bilinear transform),
    realised by Zavalishin's zero-delay-feedback SVF, which stays bounded under modulation:
    with ``g = tan(pi fc / fs)``, damping ``k = 1 / Q`` (``k / A`` for ``peaking``, ``g``
    divided / multiplied by ``sqrt(A)`` for the low / high shelf, ``A = 10^(gain_db / 40)``),
    ``h = 1 / (1 + g (g + k))``, ``u = g h``, the states ``s = (s1, s2)`` follow
    ``bp = u x + h s1 - u s2``, ``lp = g u x + g h s1 + (1 - g u) s2``, ``s1' = 2 bp - s1``,
    ``s2' = 2 lp - s2``, and the output mixes ``m0 x + m1 bp + m2 lp`` per kind. Run it with
    :func:`~ddsp_models.core.iir.state_space_block`. Compiles with ``torch.jit.script``.

    Args:
        kind: one of :data:`BIQUAD_KINDS`.
        cutoff_hz, q, gain_db: tensors that broadcast (Hz, > 0, dB), e.g. ``(B, 1, L)``.

    Returns:
        ``(a (..., 2, 2), b (..., 2), c (..., 2), d (...))`` for
        ``s[n] = a s[n-1] + b x[n]``, ``y[n] = c . s[n-1] + d x[n]``.
    """
    amp = torch.pow(10.0, gain_db / 40)
    g = torch.tan(math.pi * cutoff_hz / sample_rate)
    k = 1.0 / q
    if kind == "peaking":
        k = k / amp
    elif kind == "lowshelf":
        g = g / torch.sqrt(amp)
    elif kind == "highshelf":
        g = g * torch.sqrt(amp)
    g, k, amp = _broadcast([g, k, amp])
    one, zero = torch.ones_like(k), torch.zeros_like(k)
    if kind == "lowpass":
        m0, m1, m2 = zero, zero, one
    elif kind == "highpass":
        m0, m1, m2 = one, -k, -one
    elif kind == "bandpass":
        m0, m1, m2 = zero, k, zero
    elif kind == "notch":
        m0, m1, m2 = one, -k, zero
    elif kind == "allpass":
        m0, m1, m2 = one, -2 * k, zero
    elif kind == "peaking":
        m0, m1, m2 = one, k * (amp * amp - 1), zero
    elif kind == "lowshelf":
        m0, m1, m2 = one, k * (amp - 1), amp * amp - 1
    elif kind == "highshelf":
        m0, m1, m2 = amp * amp, k * (1 - amp) * amp, 1 - amp * amp
    else:
        raise ValueError("unknown biquad kind " + kind)
    h = 1 / (1 + g * (g + k))
    u = g * h
    gu, gh = g * u, g * h
    a = torch.stack([torch.stack([2 * h - 1, -2 * u], -1), torch.stack([2 * gh, 1 - 2 * gu], -1)], -2)
    b = torch.stack([2 * u, 2 * gu], -1)
    c = torch.stack([m1 * h + m2 * gh, m2 * (1 - gu) - m1 * u], -1)
    d = m0 + m1 * u + m2 * gu
    return a, b, c, d


def _first_order_section(kind: str, k: Tensor) -> Tensor:
    """Bilinear transform of ``1/(s+1)`` (lowpass) or ``s/(s+1)`` (highpass), ``k = tan(w0/2)``,
    as a biquad row ``[b0, b1, 0, 1, a1, 0]``."""
    a0 = k + 1
    zero = torch.zeros_like(k)
    if kind == "lowpass":
        b = [k / a0, k / a0]
    else:
        b = [1 / a0, -1 / a0]
    return torch.stack([b[0], b[1], zero, torch.ones_like(k), (k - 1) / a0, zero], dim=-1)


def butterworth_sos(
    order: int, cutoff_hz: Tensor | float, sample_rate: float, btype: str = "lowpass"
) -> Tensor:
    """Digital Butterworth low/high-pass as second-order sections (like ``scipy.signal.butter``).

    The analog poles ``s_k`` pair into sections with ``Q_k = 1 / (2 sin(pi (2k-1) / (2N)))``;
    an odd order adds one first-order section. Gain is spread over the sections (scipy puts it
    in the first), so the overall response equals scipy's.

    Args:
        order: N >= 1.
        cutoff_hz: -3 dB frequency in Hz, ``(...)``.
        btype: ``"lowpass"`` or ``"highpass"``.

    Returns:
        ``(..., ceil(N / 2), 6)`` rows ``[b0, b1, b2, 1, a1, a2]``.
    """
    if btype not in ("lowpass", "highpass"):
        raise ValueError(f"btype must be 'lowpass' or 'highpass', got {btype!r}")
    if int(order) != order or order < 1:
        raise ValueError(f"order must be a positive integer, got {order}")
    cutoff_hz = _as_tensor(cutoff_hz)
    sections = []
    for k in range(1, order // 2 + 1):
        q = 1.0 / (2.0 * math.sin(math.pi * (2 * k - 1) / (2 * order)))
        b, a = biquad_coefficients(btype, cutoff_hz, q, sample_rate=sample_rate)
        sections.append(torch.cat([b, a], dim=-1))
    if order % 2:
        _check_cutoff(cutoff_hz, sample_rate)
        k = torch.tan(math.pi * cutoff_hz / sample_rate)
        sections.append(_first_order_section(btype, k))
    return torch.stack(sections, dim=-2)


def linkwitz_riley_sos(
    order: int, cutoff_hz: Tensor | float, sample_rate: float, btype: str = "lowpass"
) -> Tensor:
    """Linkwitz-Riley filter of even ``order`` 2N: a Butterworth of order N applied twice.

    Low and high bands are -6 dB at the cutoff; ``low + high`` is allpass when N is even
    (LR4, LR8), and ``low - high`` is when N is odd (LR2, LR6).

    Returns:
        ``(..., 2 * ceil(N / 2), 6)`` second-order sections.
    """
    if int(order) != order or order < 2 or order % 2:
        raise ValueError(f"Linkwitz-Riley order must be even and >= 2 (LR2, LR4, ...), got {order}")
    sos = butterworth_sos(order // 2, cutoff_hz, sample_rate, btype)
    return torch.cat([sos, sos], dim=-2)


# --------------------------------------------------------------------------------------
# Allpass cells (first and second order, warped and stretched)
# --------------------------------------------------------------------------------------


def allpass_coefficient(break_hz: Tensor | float, sample_rate: float) -> Tensor:
    """Coefficient ``c`` of ``(c + z^-1) / (1 + c z^-1)`` whose phase is -90 deg at ``break_hz``.

    ``c = (tan(pi f / fs) - 1) / (tan(pi f / fs) + 1)``, in ``(-1, 1)`` for ``0 < f < fs / 2``.
    """
    break_hz = _as_tensor(break_hz)
    _check_cutoff(break_hz, sample_rate)
    t = torch.tan(math.pi * break_hz / sample_rate)
    return (t - 1) / (t + 1)


def _poly_mul(p: Tensor, q: Tensor) -> Tensor:
    """Product of polynomials in ``z^-1`` along the last axis (broadcast leading dims)."""
    n, m = p.shape[-1], q.shape[-1]
    shape = broadcast_shapes(p.shape[:-1], q.shape[:-1])
    out = p.new_zeros(*shape, n + m - 1)
    for i in range(n):
        out = out + torch.nn.functional.pad(p[..., i : i + 1] * q, (i, n - 1 - i))
    return out


def _warp(poly: Tensor, warp: Tensor) -> Tensor:
    """Substitute ``z^-1 -> (warp + z^-1) / (1 + warp z^-1)`` in a polynomial of degree n
    and clear denominators: ``sum_k p_k (warp + z^-1)^k (1 + warp z^-1)^(n-k)``."""
    degree = poly.shape[-1] - 1
    w = warp[..., None]
    num = torch.cat([w, torch.ones_like(w)], dim=-1)  # warp + z^-1
    den = torch.cat([torch.ones_like(w), w], dim=-1)  # 1 + warp z^-1
    one = torch.ones_like(w)
    out = 0
    for k in range(degree + 1):
        term = one
        for _ in range(k):
            term = _poly_mul(term, num)
        for _ in range(degree - k):
            term = _poly_mul(term, den)
        out = out + poly[..., k : k + 1] * term
    return out


def _stretch(poly: Tensor, stretch: int) -> Tensor:
    """Replace ``z^-1`` by ``z^-stretch``: insert ``stretch - 1`` zeros between coefficients."""
    if stretch == 1:
        return poly
    degree = poly.shape[-1] - 1
    out = poly.new_zeros(*poly.shape[:-1], degree * stretch + 1)
    out[..., ::stretch] = poly
    return out


def _finish_allpass(a: Tensor, warp, stretch: int) -> tuple[Tensor, Tensor]:
    if int(stretch) != stretch or stretch < 1:
        raise ValueError(f"stretch must be a positive integer number of samples, got {stretch}")
    if warp is not None:
        a = _warp(a, _as_tensor(warp, a))
    a = a / a[..., :1]
    a = _stretch(a, int(stretch))
    return a.flip(-1), a  # an allpass numerator is its denominator reversed


def first_order_allpass(
    coefficient: Tensor | float, *, warp: Tensor | float | None = None, stretch: int = 1
) -> tuple[Tensor, Tensor]:
    """First-order allpass ``(c + z^-1) / (1 + c z^-1)``, optionally warped and stretched.

    Warping by ``g`` gives again a first-order allpass with ``c' = (c + g) / (1 + c g)``;
    stretching by ``K`` gives ``(c' + z^-K) / (1 + c' z^-K)`` (a Schroeder-like allpass).

    Args:
        coefficient: ``c`` in (-1, 1), ``(...)``.
        warp: ``g`` in (-1, 1), ``(...)``, or None.
        stretch: K >= 1 samples per delay.

    Returns:
        ``(b, a)`` each ``(..., K + 1)`` with ``a[..., 0] = 1``.
    """
    c = _as_tensor(coefficient)
    a = torch.stack([torch.ones_like(c), c], dim=-1)
    return _finish_allpass(a, warp, stretch)


def second_order_allpass(
    radius: Tensor | float,
    theta: Tensor | float,
    *,
    warp: Tensor | float | None = None,
    stretch: int = 1,
) -> tuple[Tensor, Tensor]:
    """Second-order allpass with poles at ``radius * exp(+-j theta)``, optionally warped/stretched.

    ``A(z) = (R^2 - 2R cos(theta) z^-1 + z^-2) / (1 - 2R cos(theta) z^-1 + R^2 z^-2)``; ``theta`` is
    in radians per sample (``2 pi f / fs``); the phase passes -180 deg where
    ``cos(w) = 2 R cos(theta) / (1 + R^2)`` (close to ``theta``), more steeply as R -> 1.

    Returns:
        ``(b, a)`` each ``(..., 2K + 1)`` with ``a[..., 0] = 1``.
    """
    r = _as_tensor(radius)
    theta = _as_tensor(theta, r)
    d = -2 * r * torch.cos(theta)
    shape = broadcast_shapes(r.shape, d.shape)
    a = torch.stack([torch.ones(shape, dtype=d.dtype, device=d.device), d.expand(shape), (r * r).expand(shape)], -1)
    return _finish_allpass(a, warp, stretch)
