"""Attack/release ballistics: a one-pole smoother with exact gradients.

The recursion, for a signal ``x[n]`` and a state ``y[n]`` (``y[-1]`` is ``initial``)::

    a[n] = attack[n]  if x[n] > y[n-1]   (the input rises above the state)
           release[n] otherwise
    y[n] = a[n] * y[n-1] + (1 - a[n]) * x[n]

Which coefficient is used at a sample depends on the state, so the recursion cannot be
unrolled into one linear filter. Given the branch taken at each sample, however, it *is* a
linear time-varying one-pole filter, and its gradient is that filter run backwards in time
(seed 003, "Differentiable All-pole Filters for Time-varying Audio Systems"):

    lam[n] = dL/dy[n] + a[n+1] * lam[n+1]           (adjoint, from the end to the start)
    dL/dx[n]  = (1 - a[n]) * lam[n]
    dL/da[n]  = lam[n] * (y[n-1] - x[n])             (summed into attack or release)
    dL/dy[-1] = a[0] * lam[0]

:class:`_BallisticsFunction` records the branches in the forward pass and runs exactly this
in the backward pass, so the gradient is exact wherever ``x[n] != y[n-1]`` (the branch
choice itself is piecewise constant and has no gradient).

Time constants. We use ``alpha = exp(-1 / (tau * sample_rate))``: after a step of the
input, the state covers ``1 - 1/e`` (63.2 %) of the step in ``tau`` seconds
(:func:`time_constant_to_alpha`, :func:`alpha_to_time_constant`).

Backends: on CPU numba kernels (parallel over rows) run forward and backward. Two pure-torch
paths serve other devices: a loop over samples (vectorised over rows; one small step per
sample) and a blocked solver (blocks of samples solved as linear systems once the branches
are known, the branches found by refinement) that launches far fewer kernels.
"""

from __future__ import annotations

import math
from typing import Callable, Tuple

import numpy as np
import torch

from torch import Tensor
from torch.autograd.function import once_differentiable

from ._numba import import_numba, use_numba

__all__ = ["attack_release", "attack_release_block", "time_constant_to_alpha",
           "alpha_to_time_constant"]


def time_constant_to_alpha(tau_s: Tensor | float, sample_rate: float) -> Tensor:
    """Pole of a one-pole smoother whose step response reaches ``1 - 1/e`` after ``tau_s``.

    ``alpha = exp(-1 / (tau_s * sample_rate))``; ``tau_s = 0`` gives ``alpha = 0`` (no
    smoothing). Works elementwise on tensors (seconds) and keeps their dtype and device.
    """
    tau = torch.as_tensor(tau_s)
    if not tau.is_floating_point():
        tau = tau.to(torch.get_default_dtype())
    if bool((tau < 0).any()):
        raise ValueError("time constants must be >= 0 seconds")
    # exp(-1/0) = exp(-inf) = 0 in the forward pass; clamp keeps the gradient finite.
    return torch.exp(-1.0 / (tau.clamp_min(1e-12) * sample_rate))


def alpha_to_time_constant(alpha: Tensor | float, sample_rate: float) -> Tensor:
    """Inverse of :func:`time_constant_to_alpha`: ``tau_s = -1 / (sample_rate * log(alpha))``."""
    a = torch.as_tensor(alpha)
    if not a.is_floating_point():
        a = a.to(torch.get_default_dtype())
    return -1.0 / (sample_rate * torch.log(a))


# --------------------------------------------------------------------------------------
# numba kernels (built on first use; numba is imported lazily)
# --------------------------------------------------------------------------------------

_KERNELS: dict[str, Callable] = {}

#: Below this many samples in all (rows x length) the serial kernels run: waking the thread
#: pool costs milliseconds on a loaded machine, more than the work itself.
PARALLEL_MIN_SAMPLES = 1 << 16


def _build_kernels(numba, parallel: bool) -> tuple[Callable, Callable]:
    rows = numba.prange if parallel else range

    def forward_kernel(x, att, rel, y0, tv_att, tv_rel):
        n_rows, n = x.shape
        y = np.empty_like(x)
        up = np.empty((n_rows, n), dtype=np.bool_)
        for b in rows(n_rows):
            s = y0[b]
            for t in range(n):
                xt = x[b, t]
                u = xt > s
                a = att[b, t * tv_att] if u else rel[b, t * tv_rel]
                s = a * s + (1 - a) * xt
                y[b, t] = s
                up[b, t] = u
        return y, up

    def backward_kernel(g, x, y, up, att, rel, y0, tv_att, tv_rel):
        n_rows, n = x.shape
        gx = np.empty_like(x)
        gatt = np.zeros(att.shape, dtype=x.dtype)
        grel = np.zeros(rel.shape, dtype=x.dtype)
        gy0 = np.empty(n_rows, dtype=x.dtype)
        for b in rows(n_rows):
            lam = 0.0  # the adjoint runs in float64 whatever the input dtype
            a_next = 0.0
            for t in range(n - 1, -1, -1):
                lam = g[b, t] + a_next * lam
                prev = y[b, t - 1] if t > 0 else y0[b]
                d = lam * (prev - x[b, t])
                if up[b, t]:
                    a = att[b, t * tv_att]
                    gatt[b, t * tv_att] += d
                else:
                    a = rel[b, t * tv_rel]
                    grel[b, t * tv_rel] += d
                gx[b, t] = (1 - a) * lam
                a_next = a
            gy0[b] = a_next * lam
        return gx, gatt, grel, gy0

    jit = numba.njit(parallel=parallel, cache=True)
    return jit(forward_kernel), jit(backward_kernel)


def _numba_kernels() -> dict[str, Callable] | None:
    """The CPU kernels, compiled (or loaded from numba's cache) on first use; None without numba."""
    if _KERNELS:
        return _KERNELS
    try:
        numba = import_numba()
    except ImportError:  # pragma: no cover - numba is a declared dependency
        return None
    _KERNELS["forward"], _KERNELS["backward"] = _build_kernels(numba, parallel=False)
    _KERNELS["forward_parallel"], _KERNELS["backward_parallel"] = _build_kernels(
        numba, parallel=True
    )
    return _KERNELS


def _kernel(kind: str, x: Tensor) -> Callable:
    k = _numba_kernels()
    big = x.shape[0] > 1 and x.numel() >= PARALLEL_MIN_SAMPLES
    return k[kind + "_parallel"] if big else k[kind]


# --------------------------------------------------------------------------------------
# pure-torch reference (any device)
# --------------------------------------------------------------------------------------


def _coef_at(c: Tensor, t: int) -> Tensor:
    return c[:, t] if c.shape[1] > 1 else c[:, 0]


def _forward_torch(x: Tensor, att: Tensor, rel: Tensor, y0: Tensor) -> tuple[Tensor, Tensor]:
    n = x.shape[1]
    y = torch.empty_like(x)
    up = torch.empty(x.shape, dtype=torch.bool, device=x.device)
    s = y0
    for t in range(n):
        xt = x[:, t]
        u = xt > s
        a = torch.where(u, _coef_at(att, t), _coef_at(rel, t))
        s = a * s + (1 - a) * xt
        y[:, t] = s
        up[:, t] = u
    return y, up


def _backward_torch(g, x, y, up, att, rel, y0):
    n = x.shape[1]
    gx = torch.empty_like(x)
    gatt = torch.zeros_like(att)
    grel = torch.zeros_like(rel)
    lam = torch.zeros_like(y0)
    a_next = torch.zeros_like(y0)
    for t in range(n - 1, -1, -1):
        lam = g[:, t] + a_next * lam
        prev = y[:, t - 1] if t > 0 else y0
        d = lam * (prev - x[:, t])
        u = up[:, t]
        a = torch.where(u, _coef_at(att, t), _coef_at(rel, t))
        ta = t if att.shape[1] > 1 else 0
        tr = t if rel.shape[1] > 1 else 0
        gatt[:, ta] += torch.where(u, d, 0.0)
        grel[:, tr] += torch.where(u, 0.0, d)
        gx[:, t] = (1 - a) * lam
        a_next = a
    return gx, gatt, grel, a_next * lam


# --------------------------------------------------------------------------------------
# Blocked torch path (GPU): few large kernels instead of one tiny kernel per sample.
#
# Within a block of K samples and for a *given* branch mask, the recursion is linear:
#     y[n] = P[n] y0 + sum_{k<=n} W[n, k] (1 - a[k]) x[k],   W[n, k] = prod_{j=k+1..n} a[j]
# computed in float64 from cumulative sums of log a. The mask is found by refinement: guess,
# solve, recompute the mask from the solution, repeat until it no longer changes. Each pass
# fixes at least the first wrong sample, so a block needs at most K + 1 passes (a handful in
# practice). The backward pass knows the mask and solves the adjoint the same way, backwards.
# --------------------------------------------------------------------------------------

#: Samples per block of the blocked path: a K x K block costs little on a GPU next to a
#: kernel launch; the mask refinement takes a few passes per block.
GPU_BLOCK = 256


def _block_coef(c: Tensor, start: int, k: int) -> Tensor:
    return c[:, start : start + k] if c.shape[1] > 1 else c.expand(c.shape[0], k)


def _transfer(a: Tensor) -> Tensor:
    """``W (N, K, K)`` with ``W[n, k] = prod_{j=k+1..n} a[j]`` for ``k <= n``, else 0."""
    s = torch.log(a.clamp_min(1e-300)).cumsum(-1)  # float64: a = 0 gives ~exp(-690) = 0
    k = a.shape[-1]
    tri = torch.ones(k, k, dtype=torch.bool, device=a.device).tril()
    return torch.exp((s[:, :, None] - s[:, None, :]).masked_fill(~tri, -math.inf))


def _forward_blocked(x, att, rel, y0, block=GPU_BLOCK):
    n_rows, n = x.shape
    y = torch.empty_like(x)
    up = torch.empty(x.shape, dtype=torch.bool, device=x.device)
    s = y0.double()
    for start in range(0, n, block):
        xb = x[:, start : start + block].double()
        k = xb.shape[1]
        ab, rb = _block_coef(att, start, k).double(), _block_coef(rel, start, k).double()
        u = xb > torch.cat([s[:, None], xb[:, :-1]], 1)  # first guess: x rising
        for _ in range(k + 1):
            a = torch.where(u, ab, rb)
            w = _transfer(a)
            yb = w[:, :, 0] * a[:, :1] * s[:, None] + (w @ ((1 - a) * xb)[:, :, None])[:, :, 0]
            u_new = xb > torch.cat([s[:, None], yb[:, :-1]], 1)
            if torch.equal(u_new, u):
                break
            u = u_new
        y[:, start : start + k] = yb.to(x.dtype)
        up[:, start : start + k] = u
        s = yb[:, -1]
    return y, up


def _backward_blocked(g, x, y, up, att, rel, y0, block=GPU_BLOCK):
    n_rows, n = x.shape
    gx = torch.empty_like(x)
    gatt = torch.zeros(att.shape, dtype=torch.float64, device=x.device)
    grel = torch.zeros(rel.shape, dtype=torch.float64, device=x.device)
    carry = torch.zeros(n_rows, dtype=torch.float64, device=x.device)  # a[end+1] * lam[end+1]
    starts = list(range(0, n, block))
    lam = a = None
    for start in reversed(starts):
        k = min(block, n - start)
        u = up[:, start : start + k]
        a = torch.where(u, _block_coef(att, start, k), _block_coef(rel, start, k)).double()
        w = _transfer(a)  # lam[m] = sum_{n>=m} W[n, m] g[n] + W[end, m] * carry
        gb = g[:, start : start + k].double()
        lam = (w.transpose(1, 2) @ gb[:, :, None])[:, :, 0] + w[:, -1, :] * carry[:, None]
        xb = x[:, start : start + k].double()
        prev = torch.cat([(y[:, start - 1] if start > 0 else y0)[:, None].double(),
                          y[:, start : start + k - 1].double()], 1)
        d = lam * (prev - xb)
        gx[:, start : start + k] = ((1 - a) * lam).to(x.dtype)
        for c, grad, mask in ((att, gatt, u), (rel, grel, ~u)):
            part = torch.where(mask, d, 0.0)
            if c.shape[1] > 1:
                grad[:, start : start + k] = part
            else:
                grad[:, 0] += part.sum(1)
        carry = a[:, 0] * lam[:, 0]
    return gx, gatt.to(x.dtype), grel.to(x.dtype), carry.to(x.dtype)


def _np(t: Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


BACKENDS = ("auto", "numba", "loop", "blocked", "torch")


def _resolve(x: Tensor, backend: str) -> str:
    """``"numba"``, ``"loop"`` or ``"blocked"`` for this input (see :func:`attack_release`).

    ``"auto"``, ``"numba"`` and ``"torch"`` follow the package's one backend rule
    (:func:`ddsp_models.core._numba.use_numba`); ``"torch"`` then means the per-sample loop on
    CPU and the blocked solver elsewhere, and ``"loop"``/``"blocked"`` pick one of those two."""
    if backend in ("loop", "blocked"):
        return backend
    if use_numba(x, backend):
        return "numba"
    return "loop" if x.device.type == "cpu" else "blocked"


_TORCH_PATHS = {
    "loop": (_forward_torch, _backward_torch),
    "blocked": (lambda *a: _forward_blocked(*a, block=GPU_BLOCK),  # read at call time
                lambda *a: _backward_blocked(*a, block=GPU_BLOCK)),
}


class _BallisticsFunction(torch.autograd.Function):
    """Rows ``x (N, L)``, coefficients ``(N, 1)`` (static) or ``(N, L)``, ``y0 (N,)``."""

    @staticmethod
    def forward(ctx, x, att, rel, y0, backend):
        backend = _resolve(x, backend)
        if backend == "numba":
            y, up = _kernel("forward", x)(
                _np(x), _np(att), _np(rel), _np(y0),
                int(att.shape[1] > 1), int(rel.shape[1] > 1),
            )
            y, up = torch.from_numpy(y), torch.from_numpy(up)
        else:
            y, up = _TORCH_PATHS[backend][0](x, att, rel, y0)
        ctx.backend = backend
        ctx.mark_non_differentiable(up)
        ctx.save_for_backward(x, y, up, att, rel, y0)
        return y, up

    @staticmethod
    @once_differentiable
    def backward(ctx, gy, _gup):
        x, y, up, att, rel, y0 = ctx.saved_tensors
        if ctx.backend == "numba":
            out = _kernel("backward", x)(
                _np(gy), _np(x), _np(y), _np(up), _np(att), _np(rel), _np(y0),
                int(att.shape[1] > 1), int(rel.shape[1] > 1),
            )
            gx, gatt, grel, gy0 = (torch.from_numpy(o) for o in out)
        else:
            backward = _TORCH_PATHS[ctx.backend][1]
            gx, gatt, grel, gy0 = backward(gy.contiguous(), x, y, up, att, rel, y0)
        return gx, gatt, grel, gy0, None


def _coefficient_rows(c: Tensor | float, x: Tensor, name: str) -> Tensor:
    """Broadcast a coefficient against ``x (..., L)`` and flatten to ``(N, 1)`` or ``(N, L)``."""
    c = torch.as_tensor(c, dtype=x.dtype, device=x.device)
    if c.dim() > x.dim():
        raise ValueError(
            f"{name} has more dimensions ({c.dim()}) than the signal ({x.dim()}); "
            f"it must broadcast against x of shape {tuple(x.shape)}"
        )
    if bool(((c < 0) | (c > 1)).any()):
        raise ValueError(f"{name} must lie in [0, 1] (a pole, see time_constant_to_alpha)")
    time_varying = c.dim() > 0 and c.shape[-1] != 1
    n = x.shape[-1]
    try:
        if time_varying:
            c = c.broadcast_to(x.shape)
        else:
            c = c.reshape(c.shape[:-1] if c.dim() else ()).broadcast_to(x.shape[:-1])[..., None]
    except RuntimeError as err:
        raise ValueError(
            f"{name} of shape {tuple(c.shape)} does not broadcast against the signal "
            f"{tuple(x.shape)}; give (..., 1) for one coefficient per signal or (..., {n}) "
            "for one per sample"
        ) from err
    return c.reshape(-1, c.shape[-1]).contiguous()


def attack_release(
    x: Tensor,
    attack: Tensor | float,
    release: Tensor | float,
    initial: Tensor | float = 0.0,
    backend: str = "auto",
) -> Tensor:
    """Smooth ``x`` with separate attack and release poles; exact gradients.

    Args:
        x: signal ``(..., samples)`` (an envelope: a level in dB, a gain reduction, ...).
        attack: pole in ``[0, 1]`` used where the input rises above the state. Broadcasts
            against ``x``: a trailing axis of size 1 (or a scalar) means one pole per signal,
            a trailing axis of ``samples`` means a time-varying pole.
            Use :func:`time_constant_to_alpha` to get it from seconds.
        release: pole used elsewhere, same rules as ``attack``.
        initial: state before the first sample, ``y[-1]``; broadcasts against ``x[..., 0]``.
        backend: ``"numba"`` (CPU kernels), ``"loop"`` (torch, one step per sample),
            ``"blocked"`` (torch, blocks of samples solved as linear systems with branch-mask
            refinement: few large kernels, meant for GPUs), ``"torch"`` (``"loop"`` on CPU,
            ``"blocked"`` elsewhere) or ``"auto"`` (``"numba"`` on CPU, else ``"torch"``).
            All give the same values and gradients.

    Returns:
        ``(..., samples)``, same dtype and device as ``x``. Differentiable with respect to
        ``x``, ``attack``, ``release`` and ``initial``.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 1 or x.shape[-1] < 1:
        raise ValueError(f"x must be (..., samples) with at least one sample, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"x must be floating point, got {x.dtype}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    shape = x.shape
    rows = x.reshape(-1, shape[-1]).contiguous()
    att = _coefficient_rows(attack, x, "attack")
    rel = _coefficient_rows(release, x, "release")
    y0 = torch.as_tensor(initial, dtype=x.dtype, device=x.device)
    try:
        y0 = y0.broadcast_to(shape[:-1]).reshape(-1).contiguous()
    except RuntimeError as err:
        raise ValueError(
            f"initial of shape {tuple(y0.shape)} must broadcast against {tuple(shape[:-1])}"
        ) from err
    y, _ = _BallisticsFunction.apply(rows, att, rel, y0, backend)
    return y.reshape(shape)


# --------------------------------------------------------------------------------------
# Block path (streaming): the same recursion from a carried state, TorchScript-compatible.
# --------------------------------------------------------------------------------------


@torch.jit.unused
def _attack_release_rows(x: Tensor, attack: Tensor, release: Tensor, initial: Tensor) -> Tensor:
    """Python path of :func:`attack_release_block`: the offline autograd function (numba on
    CPU), so values and gradients are those of :func:`attack_release`."""
    y, _ = _BallisticsFunction.apply(x.contiguous(), attack.contiguous(), release.contiguous(),
                                     initial.contiguous(), "auto")
    return y


def attack_release_block(
    x: Tensor, attack: Tensor, release: Tensor, initial: Tensor
) -> Tuple[Tensor, Tensor]:
    """One block of :func:`attack_release` from a carried state: ``(y, final state)``.

    Running a signal through consecutive blocks, each starting from the previous block's final
    state, gives what :func:`attack_release` gives for the whole signal.

    Args:
        x: ``(N, L)`` rows of the signal for this block (``L >= 1`` samples).
        attack, release: poles in ``[0, 1]``, ``(N, 1)`` (one per row) or ``(N, L)``
            (per sample of this block).
        initial: ``(N,)`` the state before the block's first sample (``y[-1]``).

    Returns:
        ``y (N, L)`` and the final state ``y[:, -1]`` ``(N,)``. Compiles with
        ``torch.jit.script`` (a per-sample torch loop); in Python it runs the offline kernels
        (numba on CPU) with their exact gradients.
    """
    if torch.jit.is_scripting():
        y, _ = _forward_torch(x, attack, release, initial)
    elif torch.compiler.is_compiling():  # torch.export (ONNX) cannot trace numba: the loop
        y, _ = _forward_torch(x, attack, release, initial)
    else:
        y = _attack_release_rows(x, attack, release, initial)
    return y, y[:, -1]
