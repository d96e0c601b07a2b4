"""A sine oscillator that feeds its own output back into its phase (FM operator feedback).

``s[n] = sin(p[n] + beta * s[n-1])`` with ``s[-1] = s0``, per row. ``|ds[n] / ds[n-1]| <=
beta``, so for ``0 <= beta < 1`` the recursion is a contraction: rounding does not grow and a
stream agrees with the whole render.

* :func:`feedback_sine` — whole signal with exact gradients: a custom ``autograd.Function``
  whose backward pass is the adjoint recursion run backwards in time,
  ``mu[n] = cos(a[n]) (g[n] + beta mu[n+1])``; ``dp = mu``, ``dbeta = sum mu[n] s[n-1]``,
  ``ds0 = beta mu[0]``. numba kernels on CPU (Python), a torch loop elsewhere.
* :func:`feedback_sine_loop` — the TorchScript per-sample loop (the block path; autograd
  differentiates it directly).
"""

from __future__ import annotations

import math
from typing import Tuple

import torch
from torch import Tensor

from ._numba import import_numba, numba_available

__all__ = ["feedback_sine", "feedback_sine_loop"]


def feedback_sine_loop(p: Tensor, beta: Tensor, s0: Tensor) -> Tuple[Tensor, Tensor]:
    """``p`` ``(B, M)`` radians, ``beta`` ``(B,)``, ``s0`` ``(B,)`` → ``(s (B, M), s[M-1])``."""
    outs = []
    s = s0
    for n in range(p.shape[1]):
        s = torch.sin(p[:, n] + beta * s)
        outs.append(s)
    return torch.stack(outs, dim=1), s


_KERNELS = {}


def _kernels():
    if not _KERNELS:
        numba = import_numba()

        @numba.njit(cache=True)
        def forward(p, beta, s0, out):  # pragma: no cover - compiled
            for b in range(p.shape[0]):
                s = s0[b]
                for n in range(p.shape[1]):
                    s = math.sin(p[b, n] + beta[b] * s)
                    out[b, n] = s

        @numba.njit(cache=True)
        def backward(p, beta, s0, s, g, dp, dbeta, ds0):  # pragma: no cover - compiled
            for b in range(p.shape[0]):
                mu_next = 0.0
                acc = 0.0
                for n in range(p.shape[1] - 1, -1, -1):
                    prev = s[b, n - 1] if n > 0 else s0[b]
                    mu = math.cos(p[b, n] + beta[b] * prev) * (g[b, n] + beta[b] * mu_next)
                    dp[b, n] = mu
                    acc += mu * prev
                    mu_next = mu
                dbeta[b] = acc
                ds0[b] = beta[b] * mu_next

        _KERNELS["forward"], _KERNELS["backward"] = forward, backward
    return _KERNELS


def _backward_torch(p: Tensor, beta: Tensor, s0: Tensor, s: Tensor, g: Tensor
                    ) -> Tuple[Tensor, Tensor, Tensor]:
    m = p.shape[1]
    prev = torch.cat([s0[:, None], s[:, :-1]], dim=1)
    c = torch.cos(p + beta[:, None] * prev)
    mus = [torch.zeros_like(s0)] * m
    mu = torch.zeros_like(s0)
    for n in range(m - 1, -1, -1):
        mu = c[:, n] * (g[:, n] + beta * mu)
        mus[n] = mu
    dp = torch.stack(mus, dim=1)
    return dp, (dp * prev).sum(1), beta * mu


class _FeedbackSine(torch.autograd.Function):
    @staticmethod
    def forward(ctx, p: Tensor, beta: Tensor, s0: Tensor) -> Tensor:
        if p.device.type == "cpu" and numba_available():
            pn, bn, sn = (t.detach().contiguous().numpy() for t in (p, beta, s0))
            out = torch.empty(p.shape, dtype=p.dtype)
            _kernels()["forward"](pn, bn, sn, out.numpy())
        else:
            with torch.no_grad():
                out, _ = feedback_sine_loop(p, beta, s0)
        ctx.save_for_backward(p, beta, s0, out)
        return out

    @staticmethod
    def backward(ctx, g: Tensor):
        p, beta, s0, s = ctx.saved_tensors
        if p.device.type == "cpu" and numba_available():
            dp = torch.empty(p.shape, dtype=p.dtype)
            dbeta = torch.empty(beta.shape, dtype=p.dtype)
            ds0 = torch.empty(s0.shape, dtype=p.dtype)
            _kernels()["backward"](*(t.detach().contiguous().numpy() for t in (p, beta, s0, s)),
                                   g.detach().contiguous().numpy(), dp.numpy(), dbeta.numpy(),
                                   ds0.numpy())
        else:
            dp, dbeta, ds0 = _backward_torch(p, beta, s0, s, g)
        return dp, dbeta, ds0


def feedback_sine(p: Tensor, beta: Tensor, s0: Tensor | None = None) -> Tensor:
    """``s[n] = sin(p[n] + beta s[n-1])``, ``s[-1] = s0`` (default 0), exact gradients.

    Args:
        p: ``(B, M)`` phase (radians) without the feedback term.
        beta: ``(B,)`` feedback amount (``[0, 1)`` keeps the recursion a contraction).
        s0: ``(B,)`` the sine before the first sample.

    Returns:
        ``(B, M)``. Double backward is not supported.
    """
    if s0 is None:
        s0 = torch.zeros_like(beta)
    if torch.compiler.is_compiling():  # torch.export (ONNX) cannot trace numba: the loop
        return feedback_sine_loop(p, beta.to(p.dtype), s0.to(p.dtype))[0]
    return _FeedbackSine.apply(p, beta.to(p.dtype), s0.to(p.dtype))
