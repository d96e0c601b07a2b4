"""gru_sequence: the same function as torch.nn.GRU, with a hand-written backward pass."""

import pytest
import torch
from hypothesis import given, settings, strategies as st

from ddsp_models.nn.gru import _GruRecurrence, gru_sequence

F64 = torch.float64


def _pair(batch, steps, n_in, hidden, seed):
    torch.manual_seed(seed)
    gru = torch.nn.GRU(n_in, hidden, batch_first=True).to(F64)
    x = torch.randn(batch, steps, n_in, dtype=F64, requires_grad=True)
    h0 = torch.randn(1, batch, hidden, dtype=F64, requires_grad=True)
    return gru, x, h0


@settings(max_examples=15, deadline=None)
@given(batch=st.integers(1, 4), steps=st.integers(1, 12), n_in=st.integers(1, 6),
       hidden=st.integers(1, 7), seed=st.integers(0, 10_000), with_h0=st.booleans())
def test_values_and_gradients_equal_nn_gru(batch, steps, n_in, hidden, seed, with_h0):
    gru, x, h0 = _pair(batch, steps, n_in, hidden, seed)
    h0 = h0 if with_h0 else None
    ref, ref_last = gru(x, h0)
    out, last = gru_sequence(gru, x, h0)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(last, ref_last, rtol=1e-12, atol=1e-12)
    weights = torch.randn_like(ref)  # a loss that weights every step differently
    leaves = [x, *gru.parameters()] + ([h0] if with_h0 else [])
    g_ref = torch.autograd.grad((ref * weights).sum() + ref_last.square().sum(), leaves)
    g_out = torch.autograd.grad((out * weights).sum() + last.square().sum(), leaves)
    for a, b in zip(g_out, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_recurrence_gradcheck():
    g = torch.Generator().manual_seed(1)
    args = [torch.randn(*s, dtype=F64, generator=g, requires_grad=True)
            for s in [(5, 2, 9), (2, 3), (9, 3), (9,)]]  # time-major gi, h0, w_hh, b_hh
    assert torch.autograd.gradcheck(_GruRecurrence.apply, (*args, F64))


def test_falls_back_to_nn_gru_where_it_does_not_apply():
    gru, x, _ = _pair(2, 5, 3, 4, 0)
    with torch.no_grad():  # inference: nn.GRU's own kernel
        torch.testing.assert_close(gru_sequence(gru, x)[0], gru(x)[0], rtol=0, atol=0)
    two_layers = torch.nn.GRU(3, 4, num_layers=2, batch_first=True).to(F64)
    torch.testing.assert_close(gru_sequence(two_layers, x)[0], two_layers(x)[0], rtol=0, atol=0)


def test_float32_under_bfloat16_autocast_stays_close_to_float32():
    torch.manual_seed(0)
    gru = torch.nn.GRU(16, 8, batch_first=True)
    x = torch.randn(2, 50, 16, requires_grad=True)
    ref, _ = gru(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = gru_sequence(gru, x)
    assert out.dtype == torch.float32  # the state stays in the weights' precision
    assert (out - ref).abs().max() < 0.05  # only the matrix products are bfloat16
    weights = torch.randn_like(ref)
    (out * weights).sum().backward()
    grads = [x.grad.clone()] + [p.grad.clone() for p in gru.parameters()]
    x.grad = None
    gru.zero_grad()
    (ref * weights).sum().backward()
    refs = [x.grad] + [p.grad for p in gru.parameters()]
    for a, b in zip(grads, refs):  # bfloat16 products: gradients within a few percent
        assert (a - b).norm() < 0.05 * b.norm()


@pytest.mark.parametrize("steps", [1, 3])
def test_short_sequences(steps):
    gru, x, h0 = _pair(1, steps, 2, 3, 5)
    torch.testing.assert_close(gru_sequence(gru, x, h0)[0], gru(x, h0)[0])
