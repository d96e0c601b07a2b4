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

import os

import torch
from torch import Tensor

__all__ = ["run_allpole", "allpole_scan", "numba_available"]

_KERNELS = None  # (time_varying, time_invariant) once compiled, False if numba is missing


def _compile():
    global _KERNELS
    if _KERNELS is not None:
        return _KERNELS
    if os.environ.get("DDSP_MODELS_NO_NUMBA"):
        _KERNELS = False
        return _KERNELS
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency, but stay usable without
        _KERNELS = False
        return _KERNELS

    @numba.njit(parallel=True, cache=True, fastmath=False)
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

    @numba.njit(parallel=True, cache=True, fastmath=False)
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

    _KERNELS = (tv_kernel, ti_kernel)
    return _KERNELS


def numba_available() -> bool:
    """True when the compiled CPU kernels can be used."""
    return bool(_compile())


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
    u[:, 0] = u[:, 0] + (m[:, 0] @ zi[..., None])[..., 0]
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
    return u[..., 0]


def run_allpole(x: Tensor, a: Tensor, zi: Tensor, backend: str = "auto") -> Tensor:
    """Forward all-pole recursion without autograd. Shapes as in :func:`allpole_scan`.

    ``backend``: ``"auto"`` (numba on CPU when available, else the scan), ``"numba"`` or
    ``"torch"`` (the scan; the GPU path, forced here for tests on CPU).
    """
    if backend not in ("auto", "numba", "torch"):
        raise ValueError(f"backend must be 'auto', 'numba' or 'torch', got {backend!r}")
    use_numba = backend == "numba" or (
        backend == "auto" and x.device.type == "cpu" and numba_available()
    )
    if backend == "numba" and not numba_available():
        raise RuntimeError("backend='numba' needs numba: pip install numba (or use 'torch')")
    if not use_numba or x.dtype not in (torch.float32, torch.float64):
        return allpole_scan(x, a, zi)
    if x.device.type != "cpu":
        raise ValueError("backend='numba' runs on CPU tensors only; use backend='auto' on GPU")
    tv_kernel, ti_kernel = _compile()
    x_c = x.detach().contiguous()
    a_c = a.detach().to(x.dtype).contiguous()
    zi_c = zi.detach().to(x.dtype).contiguous()
    order = a.shape[-1]
    out = torch.empty(x.shape[0], x.shape[1] + order, dtype=x.dtype)
    kernel = tv_kernel if a.dim() == 3 else ti_kernel
    kernel(x_c.numpy(), a_c.numpy(), zi_c.numpy(), out.numpy())
    return out[:, order:]
