import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ddsp_models.core.ballistics as ballistics_module
from ddsp_models.core.ballistics import (
    alpha_to_time_constant,
    attack_release,
    time_constant_to_alpha,
)

# numba kernels; the torch loop; the blocked torch solver (GPU path), run here on CPU.
BACKENDS = ["numba", "loop", "blocked"]


@pytest.fixture(autouse=True)
def _small_blocks(monkeypatch):
    """Blocks of 16 samples so that short test signals cross many block boundaries."""
    monkeypatch.setattr(ballistics_module, "GPU_BLOCK", 16)


def naive(x, attack, release, initial=0.0):
    """Obvious per-sample loop: 1-D x, attack/release scalars or 1-D arrays like x."""
    attack = np.broadcast_to(attack, x.shape)
    release = np.broadcast_to(release, x.shape)
    y = np.empty_like(x)
    s = initial
    for n in range(len(x)):
        a = attack[n] if x[n] > s else release[n]
        s = a * s + (1 - a) * x[n]
        y[n] = s
    return y


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_naive_loop_static(backend, dtype):
    x = torch.randn(3, 2, 200, dtype=dtype).abs()
    att = torch.tensor([0.1, 0.5, 0.9], dtype=dtype)[:, None, None]
    rel = torch.tensor([[0.99], [0.7]], dtype=dtype)  # broadcasts over the channel axis
    y0 = torch.tensor([[0.3, 0.0]], dtype=dtype)
    y = attack_release(x, att, rel, initial=y0, backend=backend)
    assert y.dtype == dtype and y.shape == x.shape
    for b in range(3):
        for c in range(2):
            ref = naive(
                x[b, c].double().numpy(), att[b, 0, 0].item(), rel[c, 0].item(), y0[0, c].item()
            )
            tol = 1e-12 if dtype == torch.float64 else 1e-5
            np.testing.assert_allclose(y[b, c].double().numpy(), ref, atol=tol, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_matches_naive_loop_time_varying(backend):
    x = torch.randn(2, 150, dtype=torch.float64)
    att = torch.rand(2, 150, dtype=torch.float64)
    rel = torch.rand(1, 150, dtype=torch.float64) * 0.5 + 0.5
    y = attack_release(x, att, rel, backend=backend)
    for b in range(2):
        ref = naive(x[b].numpy(), att[b].numpy(), rel[0].numpy())
        np.testing.assert_allclose(y[b].numpy(), ref, atol=1e-12, rtol=0)


def test_attack_and_release_branches_are_both_used():
    # A rising then falling input: attack pole while rising, release pole while falling.
    x = torch.cat([torch.ones(50), torch.zeros(50)]).double()
    y = attack_release(x, 0.5, 0.9)
    np.testing.assert_allclose(y[:50].numpy(), 1 - 0.5 ** np.arange(1, 51), atol=1e-12)
    np.testing.assert_allclose(y[50:].numpy(), y[49].item() * 0.9 ** np.arange(1, 51), atol=1e-12)


@pytest.mark.parametrize("backend", ["numba", "loop"])  # "blocked": agreement test below
@pytest.mark.parametrize("time_varying", [False, True])
def test_gradcheck(backend, time_varying):
    g = torch.Generator().manual_seed(1)
    n = 40
    x = torch.randn(2, 2, n, dtype=torch.float64, generator=g).requires_grad_()
    shape = (2, 2, n) if time_varying else (2, 1, 1)
    att = (0.1 + 0.5 * torch.rand(shape, dtype=torch.float64, generator=g)).requires_grad_()
    rel = (0.5 + 0.45 * torch.rand(shape, dtype=torch.float64, generator=g)).requires_grad_()
    y0 = torch.randn(2, 2, dtype=torch.float64, generator=g).requires_grad_()
    f = lambda x, a, r, i: attack_release(x, a, r, initial=i, backend=backend)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x, att, rel, y0), eps=1e-7, atol=1e-6)


@pytest.mark.parametrize("time_varying", [False, True])
def test_all_backends_agree_on_values_and_gradients(time_varying):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(4, 300, dtype=torch.float64, generator=g)
    shape = (4, 300) if time_varying else ()
    att0 = 0.3 + 0.2 * torch.rand(shape, dtype=torch.float64, generator=g)
    rel0 = 0.9 + 0.09 * torch.rand(shape, dtype=torch.float64, generator=g)
    results = []
    for backend in BACKENDS:
        xi, a, r = (t.clone().requires_grad_() for t in (x, att0, rel0))
        init = torch.full((4,), 0.5, dtype=torch.float64, requires_grad=True)
        y = attack_release(xi, a, r, initial=init, backend=backend)
        (y**2).sum().backward()
        results.append((y.detach(), xi.grad, a.grad, r.grad, init.grad))
    for other in results[1:]:
        for numba_result, other_result in zip(results[0], other):
            torch.testing.assert_close(numba_result, other_result, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("tau_s", [0.001, 0.01, 0.05])
def test_step_reaches_one_minus_inv_e_after_tau(tau_s):
    sr = 16000
    alpha = time_constant_to_alpha(torch.tensor(tau_s, dtype=torch.float64), sr)
    y = attack_release(torch.ones(4 * int(tau_s * sr) + 10, dtype=torch.float64), alpha, alpha)
    n_reach = int(torch.nonzero(y >= 1 - math.exp(-1))[0]) + 1  # samples since the step
    assert abs(n_reach - tau_s * sr) <= 1


def test_time_constant_round_trip_and_zero():
    tau = torch.tensor([1e-4, 0.01, 1.0], dtype=torch.float64)
    torch.testing.assert_close(alpha_to_time_constant(time_constant_to_alpha(tau, 8000), 8000), tau)
    assert time_constant_to_alpha(0.0, 16000).item() == 0.0
    with pytest.raises(ValueError, match=">= 0 seconds"):
        time_constant_to_alpha(-1.0, 16000)


def test_bad_inputs_name_the_problem():
    x = torch.randn(2, 10)
    with pytest.raises(ValueError, match=r"attack must lie in \[0, 1\]"):
        attack_release(x, 1.5, 0.5)
    with pytest.raises(ValueError, match="release of shape .* does not broadcast"):
        attack_release(x, 0.5, torch.rand(3, 10))
    with pytest.raises(ValueError, match="backend must be"):
        attack_release(x, 0.5, 0.5, backend="cuda")
    with pytest.raises(TypeError, match="floating point"):
        attack_release(torch.ones(2, 10, dtype=torch.long), 0.5, 0.5)


@settings(max_examples=200)
@given(
    seed=st.integers(0, 2**31 - 1),
    scale=st.sampled_from([0.0, 1e-6, 1.0, 1e4]),
    att=st.one_of(st.just(0.0), st.just(1.0), st.floats(0, 1)),
    rel=st.one_of(st.just(0.0), st.just(1.0), st.floats(0, 1)),
    backend=st.sampled_from(BACKENDS),
)
def test_output_stays_within_the_running_range_of_its_inputs(seed, scale, att, rel, backend):
    # Each y[n] is a convex combination of y[n-1] and x[n]: bounded by the running min / max.
    g = torch.Generator().manual_seed(seed)
    x = (scale * torch.randn(2, 40, dtype=torch.float64, generator=g)).requires_grad_()
    init = scale * torch.randn(2, dtype=torch.float64, generator=g)
    y = attack_release(x, att, rel, initial=init, backend=backend)
    with_init = torch.cat([init[:, None], x.detach()], 1)
    lo = torch.cummin(with_init, 1).values[:, 1:]
    hi = torch.cummax(with_init, 1).values[:, 1:]
    tol = 1e-12 * (1 + scale)
    assert bool(((y >= lo - tol) & (y <= hi + tol)).all())
    y.sum().backward()
    assert torch.isfinite(x.grad).all() and bool((x.grad >= -1e-12).all())  # monotone in x
