"""Compiled CPU kernels for the all-pole recursion (numba), with a pure-torch fallback.

The recursion, for every row ``b`` of a batch::

    y[b, n] = x[b, n] - sum_{i=0}^{N-1} a[b, n, i] * y[b, n - 1 - i]

with ``y[b, -1 - i] = zi[b, i]`` (``zi[..., 0]`` is the most recent past output).

``run_allpole`` picks the backend: numba on CPU tensors when numba is importable, otherwise
:func:`allpole_scan`, a log-depth parallel scan over companion matrices written in torch (any
device, so it is the GPU path). Both are forward-only: the gradients live in
:mod:`ddsp_models.core.iir`, which calls this module again for the adjoint recursion.
"""

from __future__ import annotations

import types

import numpy as np

import torch
from torch import Tensor

from ._numba import import_numba, numba_available, use_numba

uses_numba = use_numba  # the one backend rule (core._numba)

__all__ = [
    "run_allpole",
    "allpole_scan",
    "run_linear_recurrence",
    "linear_scan",
    "numba_available",
    "uses_numba",
    "run_df1",
    "run_df1_adjoint",
    "run_linear_recurrence_adjoint",
]

_KERNELS = None  # {name: (serial, parallel)} once compiled, False if numba is missing


def _compile():
    global _KERNELS
    if _KERNELS is not None:
        return _KERNELS
    if not numba_available():
        _KERNELS = False
        return _KERNELS
    numba = import_numba()

    def tv_kernel(x, a, zi, out):  # x (B, L), a (B, L, N), zi (B, N), out (B, L + N)
        n_rows, length = x.shape
        order = a.shape[2]
        for b in numba.prange(n_rows):
            for i in range(order):
                out[b, order - 1 - i] = zi[b, i]
            for n in range(length):
                acc = x[b, n]
                for i in range(order):
                    acc -= a[b, n, i] * out[b, n + order - 1 - i]
                out[b, n + order] = acc

    def ti_kernel(x, a, zi, out):  # x (B, L), a (B, N), zi (B, N), out (B, L + N)
        n_rows, length = x.shape
        order = a.shape[1]
        for b in numba.prange(n_rows):
            for i in range(order):
                out[b, order - 1 - i] = zi[b, i]
            for n in range(length):
                acc = x[b, n]
                for i in range(order):
                    acc -= a[b, i] * out[b, n + order - 1 - i]
                out[b, n + order] = acc

    def ss_kernel(a, u, s0, out):  # a (B, L, N, N), u (B, L, N), s0 (B, N), out (B, L, N)
        n_rows, length, order = u.shape
        for b in numba.prange(n_rows):
            prev = s0[b].copy()
            for n in range(length):
                for i in range(order):
                    acc = u[b, n, i]
                    for j in range(order):
                        acc += a[b, n, i, j] * prev[j]
                    out[b, n, i] = acc
                for i in range(order):
                    prev[i] = out[b, n, i]

    def df1_kernel(x, b, a, zi, out):
        # Direct form I, zero FIR history: y[n] = sum_k b[n', k] x[n-k] - sum_i a[n'', i] y[n-1-i]
        # x (R, L), b (R, Lb, M), a (R, La, N) with Lb, La in {1, L}; zi (R, N); out (R, L + N)
        n_rows, length = x.shape
        taps, order = b.shape[2], a.shape[2]
        tvb, tva = b.shape[1] > 1, a.shape[1] > 1
        for r in numba.prange(n_rows):
            for i in range(order):
                out[r, order - 1 - i] = zi[r, i]
            for n in range(length):
                nb = n if tvb else 0
                na = n if tva else 0
                acc = 0.0
                for k in range(min(taps, n + 1)):
                    acc += b[r, nb, k] * x[r, n - k]
                for i in range(order):
                    acc -= a[r, na, i] * out[r, n + order - 1 - i]
                out[r, n + order] = acc

    def df1_adjoint_kernel(g, x, b, a, y_ext, lam, gx, gb, ga, need_b, need_a):
        # Reverse pass: lam[n] = g[n] - sum_k a[n+k, k-1] lam[n+k]; then
        # gx[n] = sum_k b[n+k, k] lam[n+k], gb = lam[n] x[n-k], ga = -lam[n] y[n-1-i]
        # (summed over n for time-invariant coefficients). gb, ga arrive zeroed.
        n_rows, length = g.shape
        taps, order = b.shape[2], a.shape[2]
        tvb, tva = b.shape[1] > 1, a.shape[1] > 1
        for r in numba.prange(n_rows):
            acc_b = np.zeros(taps)
            acc_a = np.zeros(order)
            for n in range(length - 1, -1, -1):
                acc = g[r, n]
                for k in range(1, order + 1):
                    m = n + k
                    if m < length:
                        acc -= a[r, m if tva else 0, k - 1] * lam[r, m]
                lam[r, n] = acc
                s = 0.0
                for k in range(taps):
                    m = n + k
                    if m < length:
                        s += b[r, m if tvb else 0, k] * lam[r, m]
                gx[r, n] = s
                if need_b:
                    for k in range(min(taps, n + 1)):
                        if tvb:
                            gb[r, n, k] = acc * x[r, n - k]
                        else:
                            acc_b[k] += acc * x[r, n - k]
                if need_a:
                    for i in range(order):
                        if tva:
                            ga[r, n, i] = -acc * y_ext[r, n + order - 1 - i]
                        else:
                            acc_a[i] -= acc * y_ext[r, n + order - 1 - i]
            if need_b and not tvb:
                for k in range(taps):
                    gb[r, 0, k] = acc_b[k]
            if need_a and not tva:
                for i in range(order):
                    ga[r, 0, i] = acc_a[i]

    def biquad_kernel(x, b, a, zi, out):
        # df1_kernel for the common case of one fixed section: b (R, 3), a (R, 2), zi (R, 2);
        # float64 state in registers. y[n] = t[n] - a1 y[n-1] with t[n] built from x and
        # y[n-2], so the loop-carried dependency is one multiply-add per sample.
        n_rows, length = x.shape
        for r in numba.prange(n_rows):
            b0, b1, b2 = np.float64(b[r, 0]), np.float64(b[r, 1]), np.float64(b[r, 2])
            a1, a2 = np.float64(a[r, 0]), np.float64(a[r, 1])
            y1, y2 = np.float64(zi[r, 0]), np.float64(zi[r, 1])
            out[r, 0], out[r, 1] = zi[r, 1], zi[r, 0]
            x1 = x2 = 0.0
            for n in range(length):
                x0 = np.float64(x[r, n])
                t = b0 * x0 + b1 * x1 + b2 * x2 - a2 * y2
                y0 = t - a1 * y1
                out[r, n + 2] = y0
                x2, x1 = x1, x0
                y2, y1 = y1, y0

    def biquad_adjoint_kernel(g, x, b, a, y_ext, lam, gx, gb, ga):
        # df1_adjoint_kernel for one fixed section (shapes as biquad_kernel; y_ext (R, L + 2)):
        # lam[n] = g[n] - a1 lam[n+1] - a2 lam[n+2], gx[n] = sum_k b_k lam[n+k],
        # gb[k] = sum_n lam[n] x[n-k], ga[i] = -sum_n lam[n] y[n-1-i].
        n_rows, length = g.shape
        for r in numba.prange(n_rows):
            b0, b1, b2 = np.float64(b[r, 0]), np.float64(b[r, 1]), np.float64(b[r, 2])
            a1, a2 = np.float64(a[r, 0]), np.float64(a[r, 1])
            l1 = l2 = 0.0
            sb0 = sb1 = sb2 = sa1 = sa2 = 0.0
            for n in range(length - 1, -1, -1):
                t = np.float64(g[r, n]) - a2 * l2
                l0 = t - a1 * l1
                lam[r, n] = l0
                gx[r, n] = b0 * l0 + b1 * l1 + b2 * l2
                sb0 += l0 * np.float64(x[r, n])
                if n >= 1:
                    sb1 += l0 * np.float64(x[r, n - 1])
                if n >= 2:
                    sb2 += l0 * np.float64(x[r, n - 2])
                sa1 -= l0 * np.float64(y_ext[r, n + 1])
                sa2 -= l0 * np.float64(y_ext[r, n])
                l2, l1 = l1, l0
            gb[r, 0], gb[r, 1], gb[r, 2] = sb0, sb1, sb2
            ga[r, 0], ga[r, 1] = sa1, sa2

    def ss_adjoint_kernel(g, m, s0, s, lam, gm, need_m):
        # Reverse pass of s[n] = m[n] s[n-1] + u[n]: lam[n] = g[n] + m[n+1]^T lam[n+1];
        # grad_m[n] = lam[n] s[n-1]^T (s[-1] = s0). g, s, lam (R, L, N); m, gm (R, L, N, N).
        n_rows, length, order = g.shape
        for r in numba.prange(n_rows):
            for n in range(length - 1, -1, -1):
                for i in range(order):
                    acc = g[r, n, i]
                    if n + 1 < length:
                        for j in range(order):
                            acc += m[r, n + 1, j, i] * lam[r, n + 1, j]
                    lam[r, n, i] = acc
                if need_m:
                    for i in range(order):
                        for j in range(order):
                            prev = s[r, n - 1, j] if n > 0 else s0[r, j]
                            gm[r, n, i, j] = lam[r, n, i] * prev

    def both(fn):
        # Threads pay off only for big batches: a parallel launch costs ~0.1-20 ms. The
        # parallel twin gets its own name so that both live in numba's on-disk cache.
        code = fn.__code__
        name = code.co_name + "_parallel"
        kwargs = {"co_name": name}
        if hasattr(code, "co_qualname"):
            kwargs["co_qualname"] = code.co_qualname + "_parallel"
        twin = types.FunctionType(code.replace(**kwargs), fn.__globals__, name, None, fn.__closure__)
        return numba.njit(cache=True)(fn), numba.njit(parallel=True, cache=True)(twin)

    _KERNELS = {
        "tv": both(tv_kernel),
        "ti": both(ti_kernel),
        "ss": both(ss_kernel),
        "df1": both(df1_kernel),
        "df1_adjoint": both(df1_adjoint_kernel),
        "ss_adjoint": both(ss_adjoint_kernel),
        "biquad": both(biquad_kernel),
        "biquad_adjoint": both(biquad_adjoint_kernel),
    }
    return _KERNELS


#: rows * samples above which the kernels run the batch rows on several threads.
PARALLEL_MIN_WORK = 1 << 17


def _pick(name: str, rows: int, length: int):
    serial, parallel = _compile()[name]
    return parallel if rows > 1 and rows * length >= PARALLEL_MIN_WORK else serial


def allpole_scan(x: Tensor, a: Tensor, zi: Tensor) -> Tensor:
    """Pure-torch all-pole recursion by a parallel (Hillis-Steele) scan; any device.

    The state ``s[n] = (y[n], ..., y[n-N+1])`` obeys ``s[n] = M[n] s[n-1] + e0 x[n]`` with the
    companion matrix ``M[n]`` (first row ``-a[n]``, ones below the diagonal). Composing these
    affine maps pairwise ``ceil(log2 L)`` times gives every ``s[n]``: ``O(L N^3 log L)`` work but
    only ``log L`` sequential steps, which suits GPUs.

    Args:
        x: ``(B, L)``; a: ``(B, L, N)`` (time-varying) or ``(B, N)``; zi: ``(B, N)``.

    Returns:
        y: ``(B, L)``.
    """
    n_rows, length = x.shape
    order = a.shape[-1]
    if a.dim() == 2:
        a = a[:, None, :].expand(n_rows, length, order)
    m = x.new_zeros(n_rows, length, order, order)
    m[..., 0, :] = -a
    if order > 1:
        idx = torch.arange(order - 1, device=x.device)
        m[..., idx + 1, idx] = 1.0
    u = x.new_zeros(n_rows, length, order)
    u[..., 0] = x
    return linear_scan(m, u, zi)[..., 0]


def linear_scan(m: Tensor, u: Tensor, s0: Tensor) -> Tensor:
    """``s[n] = m[n] @ s[n-1] + u[n]`` with ``s[-1] = s0`` by a Hillis-Steele scan (any device).

    Args:
        m: ``(B, L, N, N)``; u: ``(B, L, N)``; s0: ``(B, N)``.

    Returns:
        s: ``(B, L, N)``.
    """
    n_rows, length, order = u.shape
    u = u.clone()
    u[:, 0] = u[:, 0] + (m[:, 0] @ s0[..., None])[..., 0]
    d = 1
    while d < length:
        new_u = torch.baddbmm(
            u[:, d:].reshape(-1, order, 1),
            m[:, d:].reshape(-1, order, order),
            u[:, :-d].reshape(-1, order, 1),
        ).reshape(n_rows, length - d, order)
        new_m = (m[:, d:] @ m[:, :-d]) if 2 * d < length else None
        u = torch.cat([u[:, :d], new_u], dim=1)
        if new_m is not None:
            m = torch.cat([m[:, :d], new_m], dim=1)
        d *= 2
    return u


def run_allpole(x: Tensor, a: Tensor, zi: Tensor, backend: str = "auto") -> Tensor:
    """Forward all-pole recursion without autograd. Shapes as in :func:`allpole_scan`.

    ``backend``: ``"auto"`` (numba on CPU when available, else the scan), ``"numba"`` or
    ``"torch"`` (the scan; the GPU path, forced here for tests on CPU).
    """
    if not use_numba(x, backend):
        return allpole_scan(x, a, zi)
    x_c = x.detach().contiguous()
    a_c = a.detach().to(x.dtype).contiguous()
    zi_c = zi.detach().to(x.dtype).contiguous()
    order = a.shape[-1]
    out = torch.empty(x.shape[0], x.shape[1] + order, dtype=x.dtype)
    kernel = _pick("tv" if a.dim() == 3 else "ti", x.shape[0], x.shape[1])
    kernel(x_c.numpy(), a_c.numpy(), zi_c.numpy(), out.numpy())
    return out[:, order:]


def run_linear_recurrence(m: Tensor, u: Tensor, s0: Tensor, backend: str = "auto") -> Tensor:
    """Forward ``s[n] = m[n] @ s[n-1] + u[n]`` without autograd; shapes as :func:`linear_scan`."""
    if backend not in ("auto", "numba", "torch"):
        raise ValueError(f"backend must be 'auto', 'numba' or 'torch', got {backend!r}")
    if backend == "numba" and not numba_available():
        raise RuntimeError("backend='numba' needs numba: pip install numba (or use 'torch')")
    use_numba = backend == "numba" or (
        backend == "auto" and u.device.type == "cpu" and numba_available()
    )
    if not use_numba or u.dtype not in (torch.float32, torch.float64):
        return linear_scan(m, u, s0)
    if u.device.type != "cpu":
        raise ValueError("backend='numba' runs on CPU tensors only; use backend='auto' on GPU")
    ss_kernel = _pick("ss", u.shape[0], u.shape[1])
    out = torch.empty_like(u, memory_format=torch.contiguous_format)
    ss_kernel(
        m.detach().to(u.dtype).contiguous().numpy(),
        u.detach().contiguous().numpy(),
        s0.detach().to(u.dtype).contiguous().numpy(),
        out.numpy(),
    )
    return out


def _np(t: Tensor, dtype) -> np.ndarray:
    return t.detach().to(dtype).contiguous().numpy()


def run_df1(x: Tensor, b: Tensor, a: Tensor, zi: Tensor) -> Tensor:
    """Direct-form-I filter on CPU (numba): x ``(R, L)``, b ``(R, 1|L, M)``, a ``(R, 1|L, N)``
    (without the leading 1), zi ``(R, N)`` past outputs. Returns ``(R, N + L)``: ``zi`` reversed,
    then the output."""
    rows, length = x.shape
    order = a.shape[-1]
    if _one_fixed_section(b, a):
        out = torch.empty(rows, length + 2, dtype=x.dtype)
        _pick("biquad", rows, length)(
            _np(x, x.dtype), _np(_pad_last(b[:, 0], 3), x.dtype), _np(_pad_last(a[:, 0], 2), x.dtype),
            _np(_pad_last(zi, 2), x.dtype), out.numpy(),
        )
        return out[:, 2 - order:]
    out = torch.empty(rows, length + order, dtype=x.dtype)
    kernel = _pick("df1", rows, length)
    kernel(_np(x, x.dtype), _np(b, x.dtype), _np(a, x.dtype), _np(zi, x.dtype), out.numpy())
    return out


def _one_fixed_section(b: Tensor, a: Tensor) -> bool:
    """Fixed coefficients of at most second order: the specialised biquad kernels apply."""
    return b.shape[1] == 1 and a.shape[1] == 1 and b.shape[-1] <= 3 and a.shape[-1] <= 2


def _pad_last(t: Tensor, size: int) -> Tensor:
    """Zero-pad the last axis to ``size`` (a zero tap or pole coefficient changes nothing)."""
    return torch.nn.functional.pad(t, (0, size - t.shape[-1])) if t.shape[-1] < size else t


def run_df1_adjoint(
    g: Tensor, x: Tensor, b: Tensor, a: Tensor, y_ext: Tensor, need_b: bool, need_a: bool
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Exact adjoint of :func:`run_df1` for the output gradient ``g`` ``(R, L)``.

    Returns ``(lam, grad_x, grad_b, grad_a)``: ``lam`` is the all-pole adjoint (the gradient
    w.r.t. the FIR output), ``grad_b``/``grad_a`` have the shapes of ``b``/``a`` (zeros when
    not needed)."""
    rows, length = g.shape
    dtype = g.dtype
    lam = torch.empty(rows, length, dtype=dtype)
    gx = torch.empty(rows, length, dtype=dtype)
    if _one_fixed_section(b, a):
        taps, order = b.shape[-1], a.shape[-1]
        gb = torch.empty(rows, 3, dtype=dtype)
        ga = torch.empty(rows, 2, dtype=dtype)
        y2 = torch.nn.functional.pad(y_ext, (2 - order, 0))  # y[-2] = 0 when first order
        _pick("biquad_adjoint", rows, length)(
            _np(g, dtype), _np(x, dtype), _np(_pad_last(b[:, 0], 3), dtype),
            _np(_pad_last(a[:, 0], 2), dtype), _np(y2, dtype),
            lam.numpy(), gx.numpy(), gb.numpy(), ga.numpy(),
        )
        return lam, gx, gb[:, None, :taps], ga[:, None, :order]
    gb = torch.zeros(b.shape, dtype=dtype)
    ga = torch.zeros(a.shape, dtype=dtype)
    kernel = _pick("df1_adjoint", rows, length)
    kernel(
        _np(g, dtype), _np(x, dtype), _np(b, dtype), _np(a, dtype), _np(y_ext, dtype),
        lam.numpy(), gx.numpy(), gb.numpy(), ga.numpy(), bool(need_b), bool(need_a),
    )
    return lam, gx, gb, ga


def run_linear_recurrence_adjoint(
    g: Tensor, m: Tensor, s0: Tensor, s: Tensor, need_m: bool
) -> tuple[Tensor, Tensor | None]:
    """Exact adjoint of :func:`run_linear_recurrence` on CPU (numba), in one reverse pass.

    Returns ``(lam, grad_m)``: ``lam`` ``(R, L, N)`` is the gradient w.r.t. ``u``; ``grad_m``
    ``(R, L, N, N)`` (None unless ``need_m``)."""
    rows, length, order = g.shape
    dtype = g.dtype
    lam = torch.empty(rows, length, order, dtype=dtype)
    gm = torch.empty(rows, length, order, order, dtype=dtype) if need_m else torch.empty(1, 1, 1, 1, dtype=dtype)
    kernel = _pick("ss_adjoint", rows, length)
    kernel(_np(g, dtype), _np(m, dtype), _np(s0, dtype), _np(s, dtype), lam.numpy(), gm.numpy(), bool(need_m))
    return lam, (gm if need_m else None)
