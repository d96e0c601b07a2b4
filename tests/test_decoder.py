"""RnnFcDecoder: shapes, DDSP input scalings, causality, parameter count, errors."""

import math

import pytest
import torch

from ddsp_models.nn.decoder import RnnFcDecoder, scale_f0, scale_loudness


def test_input_scalings_closed_form():
    f0 = torch.tensor([440.0, 880.0, 0.0])
    assert torch.allclose(scale_f0(f0), torch.tensor([69 / 127, 81 / 127, 0.0]))
    assert torch.allclose(scale_f0(f0, "log")[:2], torch.log(f0[:2]) / math.log(8000))
    assert torch.allclose(scale_loudness(torch.tensor([-80.0, 0.0, -40.0])),
                          torch.tensor([0.0, 1.0, 0.5]))


@pytest.mark.parametrize("z_dims", [0, 4])
def test_shapes_and_gradients(z_dims):
    dec = RnnFcDecoder(n_out=37, hidden_size=16, mlp_size=8, mlp_layers=2, z_dims=z_dims)
    f0 = 100 + 300 * torch.rand(3, 20, 1)
    ld = -60 * torch.rand(3, 20, 1)
    z = torch.randn(3, 20, z_dims) if z_dims else None
    out = dec(f0, ld, z)
    assert out.shape == (3, 20, 37)
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in dec.parameters())


def test_parameter_count_closed_form():
    w, h, layers, n_out = 8, 16, 2, 5
    dec = RnnFcDecoder(n_out, hidden_size=h, mlp_size=w, mlp_layers=layers)

    def stack(n_in):  # Linear + LayerNorm per layer
        return (n_in * w + w + 2 * w) + (layers - 1) * (w * w + w + 2 * w)

    gru = 3 * (2 * w * h + h * h + 2 * h)
    expected = 2 * stack(1) + gru + stack(2 * w + h) + (w * n_out + n_out)
    assert sum(p.numel() for p in dec.parameters()) == expected


def test_causal_in_time():
    dec = RnnFcDecoder(6, hidden_size=8, mlp_size=8, mlp_layers=1).eval()
    f0, ld = torch.full((1, 12, 1), 220.0), torch.full((1, 12, 1), -30.0)
    a = dec(f0, ld)
    f0b = f0.clone()
    f0b[:, 7:] = 330.0
    b = dec(f0b, ld)
    assert torch.equal(a[:, :7], b[:, :7]) and not torch.allclose(a[:, 7:], b[:, 7:])


def test_errors_name_the_problem():
    dec = RnnFcDecoder(4, hidden_size=8, mlp_size=8, mlp_layers=1)
    with pytest.raises(ValueError, match="f0_hz must be"):
        dec(torch.ones(2, 10), torch.ones(2, 10, 1))
    with pytest.raises(ValueError, match="z_dims=0"):
        dec(torch.ones(2, 10, 1), torch.ones(2, 10, 1), torch.ones(2, 10, 3))
    with pytest.raises(ValueError, match="pass z"):
        RnnFcDecoder(4, 8, 8, 1, z_dims=3)(torch.ones(2, 10, 1), torch.ones(2, 10, 1))
    with pytest.raises(ValueError, match="f0_scaling"):
        RnnFcDecoder(4, f0_scaling="hz")
    with pytest.raises(ValueError, match="n_out"):
        RnnFcDecoder(0)
