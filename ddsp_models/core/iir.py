"""Recursive (IIR) filters with exact gradients.

* :func:`allpole` — the time-varying all-pole recursion
  ``y[n] = x[n] - sum_{i=1..N} a[n, i-1] y[n-i]``, a custom ``autograd.Function`` whose backward
  pass is the same recursion run backwards in time with shifted coefficients (seed 003). Forward
  and backward run in compiled numba kernels on CPU and in a log-depth torch scan elsewhere.
* :func:`linear_recurrence` — the time-varying state-space recursion ``s[n] = A[n] s[n-1] + u[n]``
  with the same kind of exact adjoint (``A[n+1]^T`` run backwards); it carries zero-delay
  feedback (TPT) filters such as the state-variable and ladder filters.
* :func:`lfilter` — ``b/a`` filters (time-invariant or time-varying): FIR part by convolution,
  recursive part by :func:`allpole`. ``mode="freq_sampling"`` is the explicit approximation
  for time-invariant filters (impulse response sampled from the frequency response); it is
  fast on GPU, while on CPU the compiled exact recursion is faster (fixed filters of order
  <= 2 run in a specialised kernel with the state in registers).
* :func:`sosfilt` — cascaded biquads, stable at high orders.
* :func:`freqz`, :func:`sosfreqz` — complex frequency responses.
* Block primitives (streaming): :func:`lfilter_block` (direct form I from a carried input and
  output history), :func:`state_space_block` (the recursion of :func:`linear_recurrence` plus
  its output equation, from a carried state) and :func:`fir_block` (a long FIR, e.g. the
  impulse response of ``mode="freq_sampling"``, from a carried input history). Each returns
  the final state with the output, so rendering block after block equals rendering whole.
  They compile with ``torch.jit.script`` (pure torch loops there; under ``torch.compile`` /
  ``torch.export``, e.g. for ONNX, the log-depth torch scans); in Python they run the
  compiled kernels above, with the same exact gradients.

Shapes: signals are ``(..., L)``. A coefficient tensor is *time-invariant* when it has as many
dimensions as the signal (``(..., K)``) and *time-varying* when it has one more
(``(..., L, K)``, one coefficient set per sample). Leading dimensions broadcast.
Coefficients follow scipy: ``a[0]`` normalises, ``b = [b0, b1, ...]`` multiplies
``x[n], x[n-1], ...``.
"""

from __future__ import annotations

import math
from typing import List, Tuple

import torch
from torch import Tensor

from ._allpole_backend import (
    allpole_scan,
    linear_scan,
    run_allpole,
    run_df1,
    run_df1_adjoint,
    run_linear_recurrence,
    run_linear_recurrence_adjoint,
    uses_numba,
)
from .filtering import causal_convolve, fft_size
from .shapes import broadcast_shapes

__all__ = [
    "allpole",
    "linear_recurrence",
    "lfilter",
    "sosfilt",
    "freqz",
    "sosfreqz",
    "fir_filter",
    "linkwitz_riley_crossover",
    "lfilter_block",
    "state_space_block",
    "fir_block",
    "freq_sampling_response",
]

_MODES = ("recursive", "freq_sampling")

#: default FIR length of ``mode="freq_sampling"``.
DEFAULT_N_FFT = 4096


# --------------------------------------------------------------------------------------
# All-pole recursion with exact gradients
# --------------------------------------------------------------------------------------


def _lagged_outputs(y: Tensor, zi: Tensor) -> Tensor:
    """``(B, L, N)`` with ``[n, i] = y[n - 1 - i]`` (past values from ``zi``)."""
    order = zi.shape[-1]
    y_ext = torch.cat([zi.flip(-1), y], dim=-1)  # (B, N + L): index N + n holds y[n]
    return y_ext[:, :-1].unfold(1, order, 1).flip(-1)


def _grad_zi(a: Tensor, lam: Tensor, time_varying: bool) -> Tensor:
    """Gradient w.r.t. the initial outputs: ``y[-k]`` (= ``zi[k-1]``) feeds ``y[j - k]`` for
    ``j = k..N`` through ``a[j - k, j - 1]``."""
    order, length = a.shape[-1], lam.shape[-1]
    terms = []
    for k in range(1, order + 1):
        acc = torch.zeros_like(lam[:, 0])
        for j in range(k, order + 1):
            n = j - k
            if n < length:
                coef = a[:, n, j - 1] if time_varying else a[:, j - 1]
                acc = acc - coef * lam[:, n]
        terms.append(acc)
    return torch.stack(terms, dim=-1)


class _AllPole(torch.autograd.Function):
    """Rows ``(B, L)``; ``a`` is ``(B, L, N)`` (time-varying) or ``(B, N)``; ``zi`` ``(B, N)``."""

    @staticmethod
    def forward(ctx, x, a, zi, backend):
        y = run_allpole(x, a, zi, backend)
        ctx.save_for_backward(a, zi, y)
        ctx.backend = backend
        return y

    @staticmethod
    def backward(ctx, grad_y):
        a, zi, y = ctx.saved_tensors
        order = a.shape[-1]
        length = grad_y.shape[-1]
        time_varying = a.dim() == 3
        if not torch.is_grad_enabled() and uses_numba(grad_y, ctx.backend):
            # One compiled reverse pass for lam and grad_a (no double backward needed here).
            a3 = a if time_varying else a[:, None, :]
            ones = grad_y.new_ones(grad_y.shape[0], 1, 1)
            y_ext = torch.cat([zi.flip(-1).to(y.dtype), y], dim=-1)
            lam, _, _, ga = run_df1_adjoint(
                grad_y, grad_y, ones, a3, y_ext, False, ctx.needs_input_grad[1]
            )
            grad_a = (ga if time_varying else ga[:, 0]) if ctx.needs_input_grad[1] else None
            grad_zi = _grad_zi(a, lam, time_varying) if ctx.needs_input_grad[2] else None
            return (lam if ctx.needs_input_grad[0] else None), grad_a, grad_zi, None
        # Adjoint: lam[n] = g[n] - sum_k a[n + k, k - 1] lam[n + k], i.e. the same all-pole
        # filter run backwards in time with column k-1 of the coefficients advanced by k.
        if time_varying:
            cols = []
            for k in range(1, order + 1):
                col = a[:, k:, k - 1]
                cols.append(torch.cat([col, col.new_zeros(col.shape[0], min(k, length))], 1))
            a_adj = torch.stack(cols, dim=-1).flip(1)
        else:
            a_adj = a
        lam = _AllPole.apply(grad_y.flip(-1), a_adj, torch.zeros_like(zi), ctx.backend).flip(-1)

        grad_x = lam if ctx.needs_input_grad[0] else None
        grad_a = grad_zi = None
        if ctx.needs_input_grad[1]:
            lags = _lagged_outputs(y, zi)
            if time_varying:
                grad_a = -lam[..., None] * lags
            else:
                grad_a = -torch.einsum("bl,bln->bn", lam, lags)
        if ctx.needs_input_grad[2]:
            grad_zi = _grad_zi(a, lam, time_varying)
        return grad_x, grad_a, grad_zi, None


def _check_signal(x: Tensor, name: str = "x") -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 1 or x.shape[-1] < 1:
        raise ValueError(f"{name} must be (..., samples) with at least one sample, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a real floating-point tensor, got {x.dtype}; use x.float()")


def _is_time_varying(coef: Tensor, x: Tensor, name: str) -> bool:
    """Decide between ``(..., K)`` (time-invariant) and ``(..., L, K)`` (time-varying)."""
    if coef.dim() <= x.dim():
        return False
    if coef.dim() == x.dim() + 1:
        if coef.shape[-2] != x.shape[-1]:
            raise ValueError(
                f"time-varying {name} must be (..., L={x.shape[-1]}, K), got {tuple(coef.shape)}; "
                "upsample the coefficients to one set per sample"
            )
        return True
    raise ValueError(
        f"{name} has shape {tuple(coef.shape)}: it must be (..., K) for a time-invariant filter "
        f"or (..., L, K) for a time-varying one, with x of shape {tuple(x.shape)}"
    )


def allpole(x: Tensor, a: Tensor, zi: Tensor | None = None, *, backend: str = "auto") -> Tensor:
    """Time-varying (or fixed) all-pole filter with exact gradients.

    ``y[n] = x[n] - sum_{i=1..N} a[n, i-1] * y[n-i]``, with ``y[-i] = zi[i-1]``.

    Args:
        x: ``(..., L)`` input.
        a: ``(..., L, N)`` time-varying or ``(..., N)`` fixed denominator coefficients *without*
            the leading 1 (``a[..., 0]`` multiplies ``y[n-1]``). Leading dims broadcast with ``x``.
        zi: optional ``(..., N)`` initial outputs, ``zi[..., 0] = y[-1]``, ``zi[..., 1] = y[-2]``.
        backend: ``"auto"`` (numba on CPU, torch scan elsewhere), ``"numba"`` or ``"torch"``.

    Returns:
        ``(..., L)``. Differentiable w.r.t. ``x``, ``a`` and ``zi`` (also twice).
    """
    _check_signal(x)
    time_varying = _is_time_varying(a, x, "a")
    order = a.shape[-1]
    if order < 1:
        raise ValueError("a needs at least one coefficient (order N >= 1)")
    length = x.shape[-1]
    coef_batch = a.shape[:-2] if time_varying else a.shape[:-1]
    shapes = [x.shape[:-1], coef_batch]
    if zi is not None:
        if zi.shape[-1] != order:
            raise ValueError(f"zi must be (..., N={order}), got {tuple(zi.shape)}")
        shapes.append(zi.shape[:-1])
    batch = broadcast_shapes(*shapes)
    n_rows = math.prod(batch)
    dtype = torch.promote_types(x.dtype, a.dtype)
    x2 = x.to(dtype).expand(*batch, length).reshape(n_rows, length)
    if time_varying:
        a2 = a.to(dtype).expand(*batch, length, order).reshape(n_rows, length, order)
    else:
        a2 = a.to(dtype).expand(*batch, order).reshape(n_rows, order)
    if zi is None:
        zi2 = x2.new_zeros(n_rows, order)
    else:
        zi2 = zi.to(dtype).expand(*batch, order).reshape(n_rows, order)
    y = _AllPole.apply(x2, a2, zi2, backend)
    return y.reshape(*batch, length)


class _LinearRecurrence(torch.autograd.Function):
    """``s[n] = m[n] @ s[n-1] + u[n]``; m ``(B, L, N, N)``, u ``(B, L, N)``, s0 ``(B, N)``."""

    @staticmethod
    def forward(ctx, m, u, s0, backend):
        s = run_linear_recurrence(m, u, s0, backend)
        ctx.save_for_backward(m, s0, s)
        ctx.backend = backend
        return s

    @staticmethod
    def backward(ctx, grad_s):
        m, s0, s = ctx.saved_tensors
        if not torch.is_grad_enabled() and uses_numba(grad_s, ctx.backend):
            lam, grad_m = run_linear_recurrence_adjoint(grad_s, m, s0, s, ctx.needs_input_grad[0])
            grad_s0 = None
            if ctx.needs_input_grad[2]:
                grad_s0 = (m[:, 0].transpose(-1, -2).to(lam.dtype) @ lam[:, 0, :, None])[..., 0]
            return grad_m, (lam if ctx.needs_input_grad[1] else None), grad_s0, None
        # Adjoint: lam[n] = g[n] + m[n+1]^T lam[n+1] -- the same recursion backwards in time.
        m_adj = torch.cat([m[:, 1:].transpose(-1, -2), torch.zeros_like(m[:, :1])], dim=1)
        lam = _LinearRecurrence.apply(
            m_adj.flip(1), grad_s.flip(1), torch.zeros_like(s0), ctx.backend
        ).flip(1)
        grad_m = grad_s0 = None
        if ctx.needs_input_grad[0]:
            prev = torch.cat([s0[:, None], s[:, :-1]], dim=1)  # s[n-1]
            grad_m = lam[..., :, None] * prev[..., None, :]
        if ctx.needs_input_grad[2]:
            grad_s0 = (m[:, 0].transpose(-1, -2) @ lam[:, 0, :, None])[..., 0]
        return grad_m, lam if ctx.needs_input_grad[1] else None, grad_s0, None


def linear_recurrence(
    m: Tensor, u: Tensor, s0: Tensor | None = None, *, backend: str = "auto"
) -> Tensor:
    """Time-varying linear state recursion ``s[n] = m[n] @ s[n-1] + u[n]`` with exact gradients.

    Args:
        m: ``(..., L, N, N)`` transition matrices (one per sample).
        u: ``(..., L, N)`` inputs (already multiplied by any input matrix).
        s0: optional ``(..., N)`` state before the first sample (zeros by default).
        backend: as in :func:`allpole`.

    Returns:
        ``(..., L, N)``: the state after every sample. Leading dims broadcast.
    """
    if m.dim() < 3 or m.shape[-1] != m.shape[-2]:
        raise ValueError(f"m must be (..., L, N, N), got {tuple(m.shape)}")
    length, order = m.shape[-3], m.shape[-1]
    if u.dim() < 2 or u.shape[-2:] != (length, order):
        raise ValueError(f"u must be (..., L={length}, N={order}), got {tuple(u.shape)}")
    shapes = [m.shape[:-3], u.shape[:-2]]
    if s0 is not None:
        if s0.shape[-1] != order:
            raise ValueError(f"s0 must be (..., N={order}), got {tuple(s0.shape)}")
        shapes.append(s0.shape[:-1])
    batch = broadcast_shapes(*shapes)
    rows = math.prod(batch)
    dtype = torch.promote_types(m.dtype, u.dtype)
    m2 = m.to(dtype).expand(*batch, length, order, order).reshape(rows, length, order, order)
    u2 = u.to(dtype).expand(*batch, length, order).reshape(rows, length, order)
    if s0 is None:
        s02 = u2.new_zeros(rows, order)
    else:
        s02 = s0.to(dtype).expand(*batch, order).reshape(rows, order)
    s = _LinearRecurrence.apply(m2, u2, s02, backend)
    return s.reshape(*batch, length, order)


# --------------------------------------------------------------------------------------
# FIR part and b/a filters
# --------------------------------------------------------------------------------------


def fir_filter(x: Tensor, b: Tensor) -> Tensor:
    """FIR filter ``y[n] = sum_k b[k] x[n-k]`` (zero initial state), exact gradients by autograd.

    Args:
        x: ``(..., L)``.
        b: ``(..., K)`` fixed taps, or ``(..., L, K)`` taps that change every sample.

    Returns:
        ``(..., L)``. Long fixed filters (K > 32) use FFT convolution.
    """
    _check_signal(x)
    time_varying = _is_time_varying(b, x, "b")
    taps = b.shape[-1]
    length = x.shape[-1]
    if not time_varying and taps > 32:
        return causal_convolve(x, b.to(x.dtype), x.shape[-1])
    if time_varying:
        b = b.movedim(-1, 0)  # (K, ..., L)
    else:
        b = b[..., None].movedim(-2, 0)  # (K, ..., 1)
    y = b[0] * x
    for k in range(1, min(taps, length)):
        shifted = torch.nn.functional.pad(x[..., :-k], (k, 0))
        y = y + b[k] * shifted
    return y


def _composed_lfilter(x: Tensor, b: Tensor, a: Tensor, backend: str) -> Tensor:
    """Rows ``x (R, L)``, ``b (R, 1|L, M)``, ``a (R, 1|L, N)``: FIR then all-pole, by autograd."""
    length = x.shape[-1]
    b2 = b if b.shape[1] == length else b[:, 0]
    a2 = a if a.shape[1] == length else a[:, 0]
    return allpole(fir_filter(x, b2), a2, backend=backend)


class _DirectFormI(torch.autograd.Function):
    """Compiled direct-form-I filter (CPU): one forward pass, one reverse pass for all grads."""

    @staticmethod
    def forward(ctx, x, b, a, backend):
        order = a.shape[-1]
        y_ext = run_df1(x, b, a, x.new_zeros(x.shape[0], order))
        ctx.save_for_backward(x, b, a, y_ext)
        ctx.backend = backend
        return y_ext[:, order:]

    @staticmethod
    def backward(ctx, grad_y):
        x, b, a, y_ext = ctx.saved_tensors
        need = ctx.needs_input_grad[:3]
        if torch.is_grad_enabled():  # create_graph=True: differentiate a differentiable replay
            inputs = [t for t, n in zip((x, b, a), need) if n]
            with torch.enable_grad():
                y = _composed_lfilter(x, b, a, ctx.backend)
            grads = iter(torch.autograd.grad(y, inputs, grad_y, create_graph=True))
            return (*(next(grads) if n else None for n in need), None)
        _, gx, gb, ga = run_df1_adjoint(grad_y, x, b, a, y_ext, need[1], need[2])
        return (gx if need[0] else None), (gb if need[1] else None), (ga if need[2] else None), None


def _lfilter_rows(x: Tensor, b: Tensor, a: Tensor, b_tv: bool, a_tv: bool, backend: str) -> Tensor:
    """Broadcast to rows and run :class:`_DirectFormI`."""
    length = x.shape[-1]
    shapes = [x.shape[:-1], b.shape[:-2] if b_tv else b.shape[:-1], a.shape[:-2] if a_tv else a.shape[:-1]]
    batch = broadcast_shapes(*shapes)
    rows = math.prod(batch)
    dtype = torch.promote_types(torch.promote_types(x.dtype, b.dtype), a.dtype)

    def rows_of(c: Tensor, tv: bool) -> Tensor:
        k = c.shape[-1]
        if tv:
            return c.to(dtype).expand(*batch, length, k).reshape(rows, length, k)
        return c.to(dtype).expand(*batch, k).reshape(rows, 1, k)

    x2 = x.to(dtype).expand(*batch, length).reshape(rows, length)
    y = _DirectFormI.apply(x2, rows_of(b, b_tv), rows_of(a, a_tv), backend)
    return y.reshape(*batch, length)


def _normalise(b: Tensor, a: Tensor) -> tuple[Tensor, Tensor]:
    if a.shape[-1] < 1 or b.shape[-1] < 1:
        raise ValueError("b and a need at least one coefficient each")
    a0 = a[..., :1]
    return b / a0, a[..., 1:] / a0


def lfilter(
    x: Tensor,
    b: Tensor,
    a: Tensor,
    *,
    mode: str = "recursive",
    n_fft: int | None = None,
    backend: str = "auto",
) -> Tensor:
    """Filter ``x`` with ``B(z)/A(z)`` like ``scipy.signal.lfilter`` (zero initial state).

    Args:
        x: ``(..., L)``.
        b: numerator ``(..., M+1)`` or time-varying ``(..., L, M+1)``.
        a: denominator ``(..., N+1)`` or time-varying ``(..., L, N+1)``; ``a[..., 0]`` normalises.
            Time-varying filters are direct form I with the coefficients of sample ``n``
            applied at sample ``n`` (FIR first, then the all-pole part).
        mode: ``"recursive"`` (exact) or ``"freq_sampling"`` (time-invariant only: the impulse
            response is ``irfft(B/A)`` on ``n_fft`` points, applied by FFT convolution;
            fast on GPU, but the tail beyond ``n_fft`` samples wraps around).
        n_fft: frequency-sampling length = taps of the FIR approximation (default 4096;
            raise it for slowly decaying, e.g. low and sharp, resonances).
        backend: all-pole backend, see :func:`allpole`.

    Returns:
        ``(..., L)``, differentiable w.r.t. ``x``, ``b`` and ``a``.
    """
    _check_signal(x)
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    b_tv = _is_time_varying(b, x, "b")
    a_tv = _is_time_varying(a, x, "a")
    if mode == "freq_sampling":
        if b_tv or a_tv:
            raise ValueError("mode='freq_sampling' needs time-invariant b and a; use 'recursive'")
        n = n_fft or DEFAULT_N_FFT
        return causal_convolve(x, freq_sampling_response(b.to(x.dtype), a.to(x.dtype), n), x.shape[-1])
    b, a = _normalise(b, a)
    if a.shape[-1] == 0:
        return fir_filter(x, b)
    if uses_numba(x, backend):
        return _lfilter_rows(x, b, a, b_tv, a_tv, backend)
    return allpole(fir_filter(x, b), a, backend=backend)


def sosfilt(
    x: Tensor,
    sos: Tensor,
    *,
    mode: str = "recursive",
    n_fft: int | None = None,
    backend: str = "auto",
) -> Tensor:
    """Cascade of second-order sections like ``scipy.signal.sosfilt``.

    Args:
        x: ``(..., L)``.
        sos: ``(..., S, 6)`` rows ``[b0, b1, b2, a0, a1, a2]``, or time-varying ``(..., L, S, 6)``.
        mode: ``"recursive"`` (exact, section by section) or ``"freq_sampling"`` (the product
            of the sections' responses applied once by FFT convolution; time-invariant only).

    Returns:
        ``(..., L)``.
    """
    _check_signal(x)
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    if sos.shape[-1] != 6 or sos.dim() < 2:
        raise ValueError(f"sos must be (..., sections, 6), got {tuple(sos.shape)}")
    time_varying = sos.dim() > x.dim() + 1
    if time_varying and sos.shape[-3] != x.shape[-1]:
        raise ValueError(
            f"time-varying sos must be (..., L={x.shape[-1]}, S, 6), got {tuple(sos.shape)}"
        )
    if mode == "freq_sampling":
        if time_varying:
            raise ValueError("mode='freq_sampling' needs time-invariant sos; use 'recursive'")
        n = n_fft or DEFAULT_N_FFT
        sos = sos.to(x.dtype)
        return causal_convolve(x, freq_sampling_response(sos[..., :3], sos[..., 3:], n, True),
                               x.shape[-1])
    y = x
    for s in range(sos.shape[-2]):
        sec = sos[..., s, :]
        y = lfilter(y, sec[..., :3], sec[..., 3:], backend=backend)
    return y


# --------------------------------------------------------------------------------------
# Frequency responses
# --------------------------------------------------------------------------------------


def _poly_response(p: Tensor, n: int, whole: bool) -> Tensor:
    """``sum_k p[k] exp(-j w k)`` at ``w = pi k / n`` (``2 pi k / n`` if ``whole``)."""
    n_fft = n if whole else 2 * n
    if p.shape[-1] <= n_fft:
        return torch.fft.rfft(p, n_fft)[..., :n] if not whole else torch.fft.fft(p, n_fft)
    w = (2 * math.pi / n_fft) * torch.arange(n, device=p.device, dtype=p.dtype)
    k = torch.arange(p.shape[-1], device=p.device, dtype=p.dtype)
    phase = torch.polar(torch.ones_like(w[:, None] * k), -w[:, None] * k)  # (n, K)
    return p.to(phase.dtype) @ phase.T


def freqz(b: Tensor, a: Tensor | None = None, n: int = 512, *, whole: bool = False) -> Tensor:
    """Complex frequency response of ``B(z)/A(z)`` like ``scipy.signal.freqz(b, a, worN=n)``.

    Args:
        b: ``(..., M+1)``; a: ``(..., N+1)`` or None (FIR).
        n: number of frequencies ``w_k = pi k / n`` (``2 pi k / n`` if ``whole``), k < n.
            In Hz: ``f_k = k * sample_rate / (2 n)``.

    Returns:
        complex ``(..., n)``, differentiable.
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of frequencies, got {n}")
    h = _poly_response(b, n, whole)
    if a is not None:
        h = h / _poly_response(a.to(b.dtype), n, whole)
    return h


def sosfreqz(sos: Tensor, n: int = 512, *, whole: bool = False) -> Tensor:
    """Complex response of second-order sections ``(..., S, 6)``: the product over sections."""
    if sos.shape[-1] != 6:
        raise ValueError(f"sos must be (..., sections, 6), got {tuple(sos.shape)}")
    return freqz(sos[..., :3], sos[..., 3:], n, whole=whole).prod(dim=-2)


def linkwitz_riley_crossover(
    x: Tensor, cutoff_hz: Tensor | float, sample_rate: float, order: int = 4, **kwargs
) -> tuple[Tensor, Tensor]:
    """Split ``x`` ``(..., L)`` into ``(low, high)`` bands with a Linkwitz-Riley crossover.

    ``order`` is the LR order (2, 4, 6, 8, ...). The high band's polarity is flipped for
    LR2/LR6 so that ``low + high`` is always an allpass copy of ``x`` (flat magnitude).
    ``cutoff_hz`` is a scalar or ``(...)`` matching ``x``'s leading dims. ``kwargs`` go to
    :func:`sosfilt`.
    """
    from .filter_design import linkwitz_riley_sos

    low = sosfilt(x, linkwitz_riley_sos(order, cutoff_hz, sample_rate, "lowpass").to(x), **kwargs)
    high = sosfilt(x, linkwitz_riley_sos(order, cutoff_hz, sample_rate, "highpass").to(x), **kwargs)
    if (order // 2) % 2:
        high = -high
    return low, high



# --------------------------------------------------------------------------------------
# Block primitives: one block from a carried state, returning the new state
# --------------------------------------------------------------------------------------


def _allpole_loop(v: Tensor, a: Tensor, y_hist: Tensor) -> Tensor:
    """``y[n] = v[n] - sum_i a[.., i] y[n-1-i]`` as a torch loop (the scripted path).

    ``v (..., L)``, ``a (..., N)`` or ``(..., L, N)``, ``y_hist (..., N)`` (``[0] = y[-1]``)."""
    order, length = a.shape[-1], v.shape[-1]
    tv = a.dim() == v.dim() + 1
    past: List[Tensor] = [y_hist[..., i] for i in range(order)]
    outs: List[Tensor] = []
    for n in range(length):
        acc = v[..., n]
        for i in range(order):
            coef = a[..., n, i] if tv else a[..., i]
            acc = acc - coef * past[i]
        past = [acc] + past[: order - 1]
        outs.append(acc)
    return torch.stack(outs, dim=-1)


def _allpole_scripted(v: Tensor, a: Tensor, y_hist: Tensor) -> Tensor:
    """The scripted path of :func:`lfilter_block`'s recursion: the companion-matrix form run by
    the log-depth :func:`linear_scan` (``log2 L`` batched steps instead of ``L`` sequential
    ones; about 10x faster than :func:`_allpole_loop` for a 256-sample block)."""
    order, length = a.shape[-1], v.shape[-1]
    tv = a.dim() == v.dim() + 1
    a_first = a[..., 0, :1] if tv else a[..., :1]
    lead = list((v[..., :1] + a_first * 0.0 + y_hist[..., :1] * 0.0).shape[:-1])
    rows = 1
    for d in lead:
        rows *= d
    v2 = v.expand(lead + [length]).reshape(rows, length)
    if tv:
        a2 = a.expand(lead + [length, order]).reshape(rows, length, order)
    else:
        a2 = a[..., None, :].expand(lead + [length, order]).reshape(rows, length, order)
    s0 = y_hist.expand(lead + [order]).reshape(rows, order)
    # float64 throughout: a scan composes L transition matrices, and with poles near the unit
    # circle (a 30 Hz band at 16 kHz) float32 products lose everything
    f64 = torch.float64
    shift = torch.eye(order, dtype=f64, device=v.device)[: order - 1]
    m = torch.cat([-a2.to(f64)[..., None, :], shift.expand(rows, length, order - 1, order)],
                  dim=-2)
    u = torch.cat([v2.to(f64)[..., None], torch.zeros(rows, length, order - 1, dtype=f64,
                                                      device=v.device)], dim=-1)
    y = linear_scan(m, u, s0.to(f64))[..., 0]
    return y.to(v.dtype).reshape(lead + [length])


@torch.jit.unused
def _allpole_fast(v: Tensor, a: Tensor, y_hist: Tensor) -> Tensor:
    """Python path of :func:`_allpole_loop`: the compiled :func:`allpole` with ``zi`` (the
    torch loop while ``torch.compile`` / ``torch.export`` trace: numba cannot be traced)."""
    if torch.compiler.is_compiling():
        return _allpole_traced(v, a, y_hist)
    return allpole(v, a, y_hist)


@torch.jit.unused
def _allpole_traced(v: Tensor, a: Tensor, y_hist: Tensor) -> Tensor:
    """:func:`_allpole_loop` by the log-depth torch scan, for tracers (a few dozen graph nodes
    instead of a few per sample)."""
    order, length = a.shape[-1], v.shape[-1]
    tv = a.dim() == v.dim() + 1
    batch = torch.broadcast_shapes(v.shape[:-1], a.shape[:-2] if tv else a.shape[:-1],
                                   y_hist.shape[:-1])
    a2 = (a.expand(*batch, length, order).reshape(-1, length, order) if tv
          else a.expand(*batch, order).reshape(-1, order))
    f64 = torch.float64  # see _allpole_scripted: scans of near-unit poles need float64
    y = allpole_scan(v.expand(*batch, length).reshape(-1, length).to(f64), a2.to(f64),
                     y_hist.expand(*batch, order).reshape(-1, order).to(f64))
    return y.to(v.dtype).reshape(*batch, length)


def lfilter_block(
    x: Tensor, b: Tensor, a: Tensor, x_hist: Tensor, y_hist: Tensor
) -> Tuple[Tensor, Tensor, Tensor]:
    """One block of the direct-form-I filter ``B(z)/A(z)`` from a carried history.

    ``y[n] = (sum_k b[k] x[n-k] - sum_{i>=1} a[i] y[n-i]) / a[0]``, the recursion
    :func:`lfilter` runs (``mode="recursive"``), with the samples before the block taken from
    the histories instead of zeros. Running blocks one after another, each with the
    histories the previous one returned (zeros at the start), equals :func:`lfilter` over
    the whole signal; with the equivalent ``zi`` (``scipy.signal.lfiltic``) it equals
    ``scipy.signal.lfilter(b, a, x, zi=zi)``.

    Args:
        x: ``(..., L)`` this block.
        b: ``(..., M+1)`` numerator, or ``(..., L, M+1)`` one set per sample of the block.
        a: ``(..., N+1)`` denominator, or ``(..., L, N+1)``; ``a[..., 0]`` normalises.
            Leading dims of ``b`` and ``a`` broadcast against ``x``'s.
        x_hist: ``(..., M)`` the last inputs before the block, most recent first
            (``x_hist[..., 0] = x[-1]``); leading dims equal ``x``'s.
        y_hist: ``(..., N)`` the last outputs, most recent first (``y_hist[..., 0] = y[-1]``).

    Returns:
        ``(y (..., L), new x_hist (..., M), new y_hist (..., N))``.
        Differentiable w.r.t. every input (exact gradients: the compiled all-pole adjoint in
        Python, autograd through the loop when scripted).
    """
    a0 = a[..., :1]
    b = b / a0
    a = a[..., 1:] / a0
    taps, order, length = b.shape[-1] - 1, a.shape[-1], x.shape[-1]
    b_tv = b.dim() == x.dim() + 1
    xe = torch.cat([x_hist.flip(-1), x], dim=-1)  # index taps + n holds x[n]
    v = torch.zeros_like(x)
    for k in range(taps + 1):
        coef = b[..., k] if b_tv else b[..., k : k + 1]
        v = v + coef * xe[..., taps - k : taps - k + length]
    new_x_hist = xe[..., xe.shape[-1] - taps :].flip(-1)
    if order == 0:
        return v, new_x_hist, y_hist
    if torch.jit.is_scripting():
        y = _allpole_scripted(v, a, y_hist)
    else:
        y = _allpole_fast(v, a, y_hist)
    ye = torch.cat([y_hist.flip(-1), y], dim=-1)
    return y, new_x_hist, ye[..., ye.shape[-1] - order :].flip(-1)


def _state_space_loop(a: Tensor, u: Tensor, s0: Tensor) -> Tensor:
    """``s[n] = a[n] @ s[n-1] + u[n]`` as a torch loop; ``a (..., L|1, N, N)``, ``u (..., L, N)``;
    returns the states ``(..., L, N)``."""
    length = u.shape[-2]
    tv = a.shape[-3] > 1
    s = s0
    outs: List[Tensor] = []
    for n in range(length):
        m = a[..., n if tv else 0, :, :]
        s = (m @ s[..., None])[..., 0] + u[..., n, :]
        outs.append(s)
    return torch.stack(outs, dim=-2)


def _state_space_scripted(a: Tensor, u: Tensor, s0: Tensor) -> Tensor:
    """The scripted path of :func:`state_space_block`: :func:`linear_scan` (log-depth)."""
    length, order = u.shape[-2], u.shape[-1]
    lead = list(s0.shape[:-1])
    rows = 1
    for d in lead:
        rows *= d
    m = a.expand(lead + [length, order, order]).reshape(rows, length, order, order)
    f64 = torch.float64  # see _allpole_scripted: scans of near-unit poles need float64
    states = linear_scan(m.to(f64), u.reshape(rows, length, order).to(f64),
                         s0.reshape(rows, order).to(f64))
    return states.to(u.dtype).reshape(lead + [length, order])


@torch.jit.unused
def _state_space_fast(a: Tensor, u: Tensor, s0: Tensor) -> Tensor:
    """Python path of :func:`_state_space_loop`: the compiled :func:`linear_recurrence` (the
    torch loop while ``torch.compile`` / ``torch.export`` trace)."""
    length, order = u.shape[-2], u.shape[-1]
    if torch.compiler.is_compiling():  # log-depth torch scan: a small graph for tracers
        batch = s0.shape[:-1]
        f64 = torch.float64  # see _allpole_scripted: scans of near-unit poles need float64
        states = linear_scan(
            a.expand(*batch, length, order, order).reshape(-1, length, order, order).to(f64),
            u.reshape(-1, length, order).to(f64), s0.reshape(-1, order).to(f64))
        return states.to(u.dtype).reshape(*batch, length, order)
    return linear_recurrence(a.expand(*a.shape[:-3], length, order, order), u, s0)


def state_space_block(
    a: Tensor, b: Tensor, c: Tensor, d: Tensor, x: Tensor, s0: Tensor
) -> Tuple[Tensor, Tensor]:
    """One block of ``s[n] = a[n] s[n-1] + b[n] x[n]``, ``y[n] = c[n] . s[n-1] + d[n] x[n]``.

    The state-space form the TPT filters (state-variable, ladder) run through
    :func:`linear_recurrence`, started from ``s0`` instead of zeros. Blocks run one after
    another, each from the state the previous one returned (zeros at the start), equal the
    whole signal run at once.

    Args:
        a: ``(..., L|1, N, N)`` transition matrices (one per sample, or one for the block).
        b, c: ``(..., L|1, N)`` input and output vectors.
        d: ``(..., L|1)`` feed-through.
        x: ``(..., L)`` input block. Leading dims of all the above broadcast.
        s0: ``(..., N)`` state before the block; leading dims: the broadcast of the others.

    Returns:
        ``(y (..., L), s (..., N))``: the output and the state after the block's last sample.
    """
    u = b * x[..., None]  # (..., L, N)
    u = u.expand(list(s0.shape[:-1]) + [u.shape[-2], u.shape[-1]])
    if torch.jit.is_scripting():
        states = _state_space_scripted(a, u, s0)
    else:
        states = _state_space_fast(a, u, s0)
    prev = torch.cat([s0[..., None, :], states[..., :-1, :]], dim=-2)  # s[n-1]
    y = (c * prev).sum(-1) + d * x
    return y, states[..., -1, :]


def freq_sampling_response(b: Tensor, a: Tensor, n_fft: int, cascade: bool = False) -> Tensor:
    """The FIR that ``mode="freq_sampling"`` applies: ``irfft(B / A)`` on ``n_fft`` points.

    Args:
        b, a: ``(..., K)`` time-invariant coefficients (as :func:`lfilter` takes them), or with
            ``cascade=True`` sections ``(..., S, 3)`` each (the numerator and denominator
            halves of :func:`sosfilt`'s ``sos``), whose responses multiply.
        n_fft: points of the frequency sampling = taps of the FIR.

    Returns:
        ``(..., n_fft)`` taps: the impulse response, time-aliased beyond ``n_fft`` samples.
    """
    if not cascade:
        return torch.fft.irfft(torch.fft.rfft(b, n_fft) / torch.fft.rfft(a, n_fft), n_fft)
    # sections selected before the FFT and multiplied one by one: the ONNX exporter has no
    # complex-valued select or prod
    resp = torch.fft.rfft(b[..., 0, :], n_fft) / torch.fft.rfft(a[..., 0, :], n_fft)
    for k in range(1, b.shape[-2]):
        resp = resp * (torch.fft.rfft(b[..., k, :], n_fft) / torch.fft.rfft(a[..., k, :], n_fft))
    return torch.fft.irfft(resp, n_fft)


def fir_block(x: Tensor, h: Tensor, x_hist: Tensor) -> Tuple[Tensor, Tensor]:
    """One block of the FIR ``y[n] = sum_k h[k] x[n-k]`` from the carried input history.

    Blocks run one after another, each with the history the previous one returned (zeros at
    the start), equal the whole-signal convolution (:func:`fir_filter`, and the
    ``mode="freq_sampling"`` path of :func:`lfilter` / :func:`sosfilt` given their FIR
    :func:`freq_sampling_response`) up to FFT rounding.

    Args:
        x: ``(..., L)`` this block.
        h: ``(..., K)`` taps; leading dims broadcast against ``x``'s.
        x_hist: ``(..., K-1)`` the last ``K - 1`` inputs before the block, oldest first.

    Returns:
        ``(y (..., L), new x_hist (..., K-1))``. By FFT convolution, differentiable.
    """
    taps, length = h.shape[-1], x.shape[-1]
    xe = torch.cat([x_hist, x], dim=-1)
    n = fft_size(xe.shape[-1])  # outputs taps-1 .. len(xe)-1 are free of circular wrap-around
    full = torch.fft.irfft(torch.fft.rfft(xe, n) * torch.fft.rfft(h, n), n)
    y = full[..., taps - 1 : taps - 1 + length]
    return y, xe[..., xe.shape[-1] - (taps - 1) :]
