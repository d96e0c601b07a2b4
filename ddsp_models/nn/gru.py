"""A GRU layer with a hand-written backward pass, for training on CPU.

``torch.nn.GRU`` on CPU runs the recurrence as a chain of small autograd ops: every time step
records its own matrix products, and the backward pass computes the recurrent weight gradient
one ``(B, 3H) x (B, H)`` product per step. :func:`gru_sequence` computes the same function
(PyTorch's gate equations and parameter layout, so an ``nn.GRU``'s weights are used as they are)
but its backward pass only carries the hidden-state gradient through time — one
``(B, 3H) @ (3H, H)`` product per step — and forms the weight gradients afterwards as one large
product over all steps. The input projection ``x W_ihᵀ`` of all steps is one matrix product, as in
PyTorch.

Equations (PyTorch's, gates ordered r, z, n)::

    r = σ(W_ir x + b_ir + W_hr h + b_hr)
    z = σ(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
    h' = (1 − z) ⊙ n + z ⊙ h
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["gru_sequence"]


class _GruRecurrence(torch.autograd.Function):
    """Recurrent part of a GRU layer given the input projections of every step.

    forward(gi (B, T, 3H), h0 (B, H), w_hh (3H, H), b_hh (3H,)) -> h (B, T, H)
    """

    @staticmethod
    def forward(ctx, gi: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
        batch, steps, three_h = gi.shape
        hidden = three_h // 3
        w_t = w_hh.t().contiguous()  # (H, 3H)
        out = gi.new_empty(batch, steps, hidden)
        gates = gi.new_empty(batch, steps, 3, hidden)  # r, z, n after their nonlinearities
        hn_all = gi.new_empty(batch, steps, hidden)  # W_hn h + b_hn
        h = h0
        for t in range(steps):
            gh = torch.addmm(b_hh, h, w_t)  # (B, 3H)
            g = gi[:, t]
            rz = torch.sigmoid(g[:, : 2 * hidden] + gh[:, : 2 * hidden])
            r, z = rz[:, :hidden], rz[:, hidden:]
            hn = gh[:, 2 * hidden :]
            n = torch.tanh(torch.addcmul(g[:, 2 * hidden :], r, hn))
            h = torch.addcmul(n, z, h - n)
            out[:, t] = h
            gates[:, t, :2] = rz.view(batch, 2, hidden)
            gates[:, t, 2] = n
            hn_all[:, t] = hn
        ctx.save_for_backward(h0, w_hh, out, gates, hn_all)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        h0, w_hh, out, gates, hn_all = ctx.saved_tensors
        batch, steps, hidden = out.shape
        h_prev_all = torch.cat([h0[:, None], out[:, :-1]], dim=1)  # (B, T, H)
        d_gi = grad_out.new_empty(batch, steps, 3, hidden)
        d_gh_n = grad_out.new_empty(batch, steps, hidden)  # the n part of d(gh) is r ⊙ d(n_pre)
        grad_out = grad_out.contiguous()
        dh = torch.zeros_like(h0)
        for t in range(steps - 1, -1, -1):
            dh = dh + grad_out[:, t]
            r, z, n = gates[:, t, 0], gates[:, t, 1], gates[:, t, 2]
            h_prev = h_prev_all[:, t]
            dn_pre = dh * (1 - z) * (1 - n * n)
            dz_pre = dh * (h_prev - n) * z * (1 - z)
            dr_pre = dn_pre * hn_all[:, t] * r * (1 - r)
            d_gi[:, t, 0] = dr_pre
            d_gi[:, t, 1] = dz_pre
            d_gi[:, t, 2] = dn_pre
            dhn = dn_pre * r
            d_gh_n[:, t] = dhn
            # d h_prev = z ⊙ dh + [dr, dz, dhn] @ W_hh
            dh = torch.addmm(
                dh * z,
                torch.cat([dr_pre, dz_pre, dhn], dim=1),
                w_hh,
            )
        d_gi = d_gi.reshape(batch, steps, 3 * hidden)
        d_gh = torch.cat([d_gi[..., : 2 * hidden], d_gh_n], dim=-1).reshape(-1, 3 * hidden)
        grad_w_hh = d_gh.t() @ h_prev_all.reshape(-1, hidden) if ctx.needs_input_grad[2] else None
        grad_b_hh = d_gh.sum(0) if ctx.needs_input_grad[3] else None
        return d_gi, dh, grad_w_hh, grad_b_hh


def gru_sequence(gru: nn.GRU, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Run a one-layer, unidirectional, ``batch_first`` ``nn.GRU`` with the fast backward pass.

    Args:
        gru: the layer whose weights are used (``num_layers=1``, ``batch_first=True``, with bias).
        x: ``(B, T, input_size)`` input sequence.
        h0: ``(1, B, hidden_size)`` initial state, zeros if None.

    Returns ``(output (B, T, hidden_size), h_last (1, B, hidden_size))`` like ``gru(x, h0)``.
    Without gradients, off the CPU, or for layers it does not cover, it simply calls ``gru``.
    """
    supported = (
        gru.num_layers == 1 and not gru.bidirectional and gru.batch_first and gru.bias
        and getattr(gru, "proj_size", 0) == 0 and x.dim() == 3 and x.shape[1] > 0
        and x.device.type == "cpu"  # on CUDA, cuDNN's fused GRU is faster
    )
    needs_grad = torch.is_grad_enabled() and (
        x.requires_grad or any(p.requires_grad for p in gru.parameters())
    )
    if not (supported and needs_grad) or torch.jit.is_scripting():
        return gru(x, h0)
    w_ih, w_hh = gru.weight_ih_l0, gru.weight_hh_l0
    b_ih, b_hh = gru.bias_ih_l0, gru.bias_hh_l0
    gi = F.linear(x, w_ih, b_ih)
    # The recurrence runs in the precision of the weights (float32 under bf16 autocast).
    dtype = w_hh.dtype
    if h0 is None:
        h0_flat = x.new_zeros(x.shape[0], gru.hidden_size, dtype=dtype)
    else:
        h0_flat = h0[0].to(dtype)
    with torch.autocast(x.device.type, enabled=False):
        out = _GruRecurrence.apply(gi.to(dtype), h0_flat, w_hh, b_hh)
    return out, out[:, -1][None]
