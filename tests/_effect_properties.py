"""Shared property check for audio-in/audio-out processors (used by several test files)."""

import torch


def check_random_raw_params_finite(proc, seed: int, scale: float, amp: float) -> None:
    """Random raw network outputs (scaled by ``scale``) and input level ``amp`` give finite
    outputs of the declared channel count, and finite gradients for input and parameters."""
    g = torch.Generator().manual_seed(seed)
    raw = {s.name: (scale * torch.randn(s.shape(2, 4), generator=g)).requires_grad_()
           for s in proc.param_specs()}
    x = (amp * torch.randn(2, 2, 64, generator=g)).requires_grad_()
    y = proc(x, **proc.scale_params(raw))
    assert y.shape == (2, proc.n_output_channels((2,)), 64) and torch.isfinite(y).all()
    y.square().sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(r.grad).all() for r in raw.values())
