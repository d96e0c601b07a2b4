"""A GRU layer with a hand-written backward pass, for training on CPU.

``torch.nn.GRU`` on CPU runs the recurrence as a chain of small autograd ops: every step
records its own matrix products, and the backward pass forms the recurrent weight gradient as
one small ``(3H, B) x (B, H)`` product per step and accumulates it. Under bfloat16 autocast it
also keeps the hidden state in bfloat16. :func:`gru_sequence` computes the same function
(PyTorch's gate equations and parameter layout, so an ``nn.GRU``'s weights are used as they
are) with:

* time-major buffers, so every step reads and writes contiguous memory;
* a backward pass that carries only the hidden-state gradient through time — one
  ``(B, 3H) @ (3H, H)`` product per step — and forms the weight gradient afterwards as one large
  product over all steps;
* under autocast, matrix products in the autocast dtype (bfloat16) while the hidden state and
  the gate arithmetic stay float32.

Equations (PyTorch's, gates ordered r, z, n)::

    r = σ(W_ir x + b_ir + W_hr h + b_hr)
    z = σ(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
    h' = (1 − z) ⊙ n + z ⊙ h
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

__all__ = ["gru_sequence"]


class _GruRecurrence(torch.autograd.Function):
    """Recurrent part of a GRU layer, given the input projections of every step.

    forward(gi (T, B, 3H), h0 (B, H), w_hh (3H, H), b_hh (3H,), mm_dtype) -> h (T, B, H);
    time-major, float32 or float64; matrix products in ``mm_dtype``.
    """

    @staticmethod
    def forward(ctx, gi, h0, w_hh, b_hh, mm_dtype):
        steps, batch, three_h = gi.shape
        hidden = three_h // 3
        w_t = w_hh.t().to(mm_dtype).contiguous()  # (H, 3H)
        same = mm_dtype == gi.dtype
        out = gi.new_empty(steps, batch, hidden)
        rz_all = gi.new_empty(steps, batch, 2 * hidden)  # r, z after the sigmoid
        n_all = gi.new_empty(steps, batch, hidden)
        hn_all = gi.new_empty(steps, batch, hidden)  # W_hn h + b_hn
        h = h0
        for t in range(steps):
            if same:
                gh = torch.addmm(b_hh, h, w_t)
            else:
                gh = torch.mm(h.to(mm_dtype), w_t).to(gi.dtype).add_(b_hh)
            g = gi[t]
            rz = torch.sigmoid(g[:, : 2 * hidden] + gh[:, : 2 * hidden], out=rz_all[t])
            r, z = rz[:, :hidden], rz[:, hidden:]
            hn = hn_all[t].copy_(gh[:, 2 * hidden :])
            n = torch.tanh(torch.addcmul(g[:, 2 * hidden :], r, hn), out=n_all[t])
            h = torch.addcmul(n, z, h - n, out=out[t])
        ctx.save_for_backward(h0, w_hh, out, rz_all, n_all, hn_all)
        ctx.mm_dtype = mm_dtype
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        h0, w_hh, out, rz_all, n_all, hn_all = ctx.saved_tensors
        mm_dtype = ctx.mm_dtype
        steps, batch, hidden = out.shape
        w = w_hh.to(mm_dtype)  # (3H, H)
        same = mm_dtype == out.dtype
        grad_out = grad_out.contiguous()
        d_gh = out.new_empty(steps, batch, 3 * hidden)  # d(W_hh h + b_hh): [dr, dz, r ⊙ dn]
        d_gi_n = out.new_empty(steps, batch, hidden)  # d(W_in x + b_in) = dn
        dh = torch.zeros_like(h0)
        for t in range(steps - 1, -1, -1):
            dh = dh + grad_out[t]
            r, z = rz_all[t, :, :hidden], rz_all[t, :, hidden:]
            n = n_all[t]
            h_prev = out[t - 1] if t > 0 else h0
            dn = torch.mul(dh * (1 - z), 1 - n * n, out=d_gi_n[t])
            g = d_gh[t]
            torch.mul(dh * (h_prev - n), z * (1 - z), out=g[:, hidden : 2 * hidden])
            torch.mul(dn * hn_all[t], r * (1 - r), out=g[:, :hidden])
            torch.mul(dn, r, out=g[:, 2 * hidden :])
            if same:
                dh = torch.addmm(dh * z, g, w)
            else:
                dh = torch.mm(g.to(mm_dtype), w).to(dh.dtype).addcmul_(dh, z)
        d_gi = torch.cat([d_gh[..., : 2 * hidden], d_gi_n], dim=-1)
        grad_w = grad_b = None
        if ctx.needs_input_grad[2]:
            h_prev_all = torch.cat([h0[None], out[:-1]]).reshape(-1, hidden)
            flat = d_gh.reshape(-1, 3 * hidden)
            grad_w = (flat.to(mm_dtype).t() @ h_prev_all.to(mm_dtype)).to(out.dtype)
        if ctx.needs_input_grad[3]:
            grad_b = d_gh.sum((0, 1))
        return d_gi, dh, grad_w, grad_b, None


def _autocast_dtype(device_type: str) -> torch.dtype | None:
    """The autocast dtype on ``device_type`` if autocast is on there, else None."""
    try:
        if not torch.is_autocast_enabled(device_type):
            return None
        return torch.get_autocast_dtype(device_type)
    except (TypeError, AttributeError):  # torch < 2.4: per-device functions
        if device_type == "cpu":
            return torch.get_autocast_cpu_dtype() if torch.is_autocast_cpu_enabled() else None
        return torch.get_autocast_gpu_dtype() if torch.is_autocast_enabled() else None


def gru_sequence(gru: nn.GRU, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Run a one-layer, unidirectional, ``batch_first`` ``nn.GRU`` with the faster backward.

    Args:
        gru: the layer whose weights are used (``num_layers=1``, ``batch_first=True``, bias).
        x: ``(B, T, input_size)`` input sequence.
        h0: ``(1, B, hidden_size)`` initial state, zeros if None.

    Returns ``(output (B, T, hidden_size), h_last (1, B, hidden_size))``, like ``gru(x, h0)``;
    float32 (the weights' dtype) even under autocast. Without gradients, off the CPU, or for
    layers it does not cover, it simply calls ``gru``.
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
    dtype = gru.weight_hh_l0.dtype
    mm_dtype = _autocast_dtype(x.device.type) or dtype
    gi = F.linear(x, gru.weight_ih_l0, gru.bias_ih_l0)  # (B, T, 3H), autocast applies
    gi = gi.to(dtype).transpose(0, 1).contiguous()  # time-major
    h0_flat = x.new_zeros(x.shape[0], gru.hidden_size, dtype=dtype) if h0 is None else h0[0].to(dtype)
    with torch.autocast(x.device.type, enabled=False):
        out = _GruRecurrence.apply(gi, h0_flat, gru.weight_hh_l0, gru.bias_hh_l0, mm_dtype)
    return out.transpose(0, 1), out[-1][None]
