"""core.iir against scipy.signal and a slow Python loop; gradients by finite differences."""

import numpy as np
import pytest
import scipy.signal as ss
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ddsp_models.core.iir import (
    allpole,
    fir_filter,
    linear_recurrence,
    freqz,
    lfilter,
    linkwitz_riley_crossover,
    sosfilt,
    sosfreqz,
)
from ddsp_models.core._allpole_backend import numba_available

BACKENDS = ["torch"] + (["numba"] if numba_available() else [])


def naive_allpole(x, a, zi):
    """The recursion written out sample by sample (float64 numpy)."""
    x, a, zi = (np.asarray(t, dtype=np.float64) for t in (x, a, zi))
    rows, length = x.shape
    order = a.shape[-1]
    y = np.zeros((rows, length))
    for r in range(rows):
        past = list(zi[r])  # past[0] = y[n-1]
        for n in range(length):
            coef = a[r, n] if a.ndim == 3 else a[r]
            y[r, n] = x[r, n] - sum(coef[i] * past[i] for i in range(order))
            past = [y[r, n]] + past[:-1]
    return y


def random_stable(rng, n_poles, n_zeros, radius=0.97):
    """Real (b, a) with poles of modulus <= radius (conjugate pairs + maybe one real pole)."""
    poles = []
    while len(poles) < n_poles:
        if n_poles - len(poles) >= 2:
            p = rng.uniform(0.2, radius) * np.exp(1j * rng.uniform(0.05, np.pi - 0.05))
            poles += [p, np.conj(p)]
        else:
            poles.append(rng.uniform(-radius, radius))
    zeros = rng.uniform(-1.5, 1.5, n_zeros)
    b, a = ss.zpk2tf(zeros, poles, rng.uniform(0.5, 2.0))
    return np.real(b), np.real(a)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("time_varying", [True, False])
def test_allpole_matches_naive_loop(backend, time_varying):
    rng = np.random.default_rng(1)
    rows, length, order = 3, 257, 3
    x = rng.standard_normal((rows, length))
    a = 0.25 * rng.standard_normal((rows, length, order) if time_varying else (rows, order))
    zi = rng.standard_normal((rows, order))
    want = naive_allpole(x, a, zi)
    got = allpole(torch.tensor(x), torch.tensor(a), torch.tensor(zi), backend=backend)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)
    got32 = allpole(torch.tensor(x).float(), torch.tensor(a).float(), torch.tensor(zi).float(), backend=backend)
    assert got32.dtype == torch.float32
    np.testing.assert_allclose(got32.numpy(), want, rtol=1e-3, atol=1e-4)


def test_allpole_broadcasts_leading_dims():
    x = torch.randn(2, 3, 50, dtype=torch.float64)
    a = torch.tensor([-0.5, 0.2], dtype=torch.float64)  # one filter for every row
    y = allpole(x, a)
    assert y.shape == (2, 3, 50)
    want = ss.lfilter([1.0], [1.0, -0.5, 0.2], x.numpy(), axis=-1)
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_allpole_gradcheck_time_varying(backend):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 12, dtype=torch.float64, generator=g).requires_grad_()
    a = (0.3 * torch.randn(2, 12, 3, dtype=torch.float64, generator=g)).requires_grad_()
    zi = torch.randn(2, 3, dtype=torch.float64, generator=g).requires_grad_()
    f = lambda x, a, zi: allpole(x, a, zi, backend=backend)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x, a, zi))
    assert torch.autograd.gradgradcheck(f, (x, a, zi))


def test_allpole_gradcheck_fixed_coefficients_and_short_signal():
    g = torch.Generator().manual_seed(3)
    a = (0.3 * torch.randn(2, 4, dtype=torch.float64, generator=g)).requires_grad_()
    zi = torch.randn(2, 4, dtype=torch.float64, generator=g).requires_grad_()
    for length in (2, 15):  # shorter and longer than the order
        x = torch.randn(2, length, dtype=torch.float64, generator=g).requires_grad_()
        assert torch.autograd.gradcheck(lambda x, a, zi: allpole(x, a, zi), (x, a, zi))


@pytest.mark.parametrize("order", [1, 2, 4, 6])
def test_lfilter_matches_scipy(order):
    rng = np.random.default_rng(order)
    b, a = random_stable(rng, order, order)
    a = a * rng.uniform(0.5, 3.0)  # a[0] != 1 must normalise like scipy
    x = rng.standard_normal((2, 3, 400))
    got = lfilter(torch.tensor(x), torch.tensor(b), torch.tensor(a)).numpy()
    want = ss.lfilter(b, a, x, axis=-1)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * np.abs(want).max())


def test_lfilter_fir_only_and_long_fir_match_scipy():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 300))
    for taps in (5, 100):  # direct and FFT paths
        b = rng.standard_normal(taps)
        got = lfilter(torch.tensor(x), torch.tensor(b), torch.tensor([2.0], dtype=torch.float64))
        np.testing.assert_allclose(got.numpy(), ss.lfilter(b, [2.0], x), rtol=1e-9, atol=1e-10)


def test_time_varying_lfilter_equals_piecewise_fixed_filters():
    """With coefficients held for the first half and switched after, the output before the
    switch equals the first filter's output, and matches a slow direct-form-I loop after."""
    rng = np.random.default_rng(6)
    length = 200
    b1, a1 = random_stable(rng, 2, 2)
    b2, a2 = random_stable(rng, 2, 2)
    bt = np.where(np.arange(length)[:, None] < 100, b1, b2)
    at = np.where(np.arange(length)[:, None] < 100, a1, a2)
    x = rng.standard_normal(length)
    got = lfilter(torch.tensor(x)[None], torch.tensor(bt)[None], torch.tensor(at)[None])[0].numpy()
    y = np.zeros(length)
    for n in range(length):
        acc = sum(bt[n, k] * x[n - k] for k in range(3) if n - k >= 0)
        acc -= sum(at[n, k] * y[n - k] for k in range(1, 3) if n - k >= 0)
        y[n] = acc / at[n, 0]
    np.testing.assert_allclose(got, y, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(got[:100], ss.lfilter(b1, a1, x)[:100], rtol=1e-9, atol=1e-10)


def test_lfilter_gradcheck():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 16, dtype=torch.float64, generator=g).requires_grad_()
    b = torch.randn(3, dtype=torch.float64, generator=g).requires_grad_()
    a = torch.tensor([1.3, -0.6, 0.3], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, b, a: lfilter(x, b, a), (x, b, a))
    bt = torch.randn(2, 16, 3, dtype=torch.float64, generator=g).requires_grad_()
    at = torch.cat([torch.ones(2, 16, 1, dtype=torch.float64), 0.3 * torch.randn(2, 16, 2, dtype=torch.float64, generator=g)], -1)
    at.requires_grad_()
    assert torch.autograd.gradcheck(lambda x, b, a: lfilter(x, b, a), (x, bt, at))


@pytest.mark.parametrize("order", [2, 8, 16])
def test_sosfilt_matches_scipy_high_order(order):
    rng = np.random.default_rng(order)
    sos = np.concatenate(  # a band-pass of order 2 * order plus a high-pass of order `order`
        [ss.butter(order, [0.05, 0.3], btype="band", output="sos"), ss.cheby1(order, 1, 0.02, btype="high", output="sos")]
    )
    x = rng.standard_normal((3, 1000))
    got = sosfilt(torch.tensor(x), torch.tensor(sos)).numpy()
    want = ss.sosfilt(sos, x, axis=-1)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * np.abs(want).max())


def test_freqz_and_sosfreqz_match_scipy():
    rng = np.random.default_rng(8)
    b, a = random_stable(rng, 4, 3)
    _, want = ss.freqz(b, a, worN=300)
    got = freqz(torch.tensor(b), torch.tensor(a), 300).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    _, want_whole = ss.freqz(b, a, worN=64, whole=True)
    np.testing.assert_allclose(freqz(torch.tensor(b), torch.tensor(a), 64, whole=True).numpy(), want_whole, rtol=1e-10)
    long_fir = rng.standard_normal(100)  # more taps than 2n: direct evaluation path
    np.testing.assert_allclose(freqz(torch.tensor(long_fir), None, 16).numpy(), ss.freqz(long_fir, 1, worN=16)[1], rtol=1e-9)
    sos = ss.butter(9, 0.3, output="sos")
    np.testing.assert_allclose(sosfreqz(torch.tensor(sos), 200).numpy(), ss.sosfreqz(sos, 200)[1], rtol=1e-9, atol=1e-12)


def test_frequency_sampling_mode_approximates_recursive():
    rng = np.random.default_rng(9)
    b, a = random_stable(rng, 2, 2, radius=0.9)  # impulse response decays well within n_fft
    x = torch.tensor(rng.standard_normal((2, 2000)))
    exact = lfilter(x, torch.tensor(b), torch.tensor(a))
    fast = lfilter(x, torch.tensor(b), torch.tensor(a), mode="freq_sampling", n_fft=1024)
    assert torch.allclose(fast, exact, atol=1e-8 * exact.abs().max())
    sos = torch.tensor(ss.butter(6, 0.2, output="sos"))
    fast = sosfilt(x, sos, mode="freq_sampling", n_fft=2048)
    assert torch.allclose(fast, sosfilt(x, sos), atol=1e-6 * exact.abs().max())
    with pytest.raises(ValueError, match="time-invariant"):
        lfilter(x, torch.ones(2, 2000, 2), torch.ones(2), mode="freq_sampling")


def test_linkwitz_riley_bands_sum_to_allpass():
    x = torch.zeros(1, 4096, dtype=torch.float64)
    x[0, 0] = 1.0
    for order in (2, 4, 8):
        low, high = linkwitz_riley_crossover(x, 1000.0, 16000, order=order)
        mag = torch.fft.rfft(low + high).abs()
        assert torch.allclose(mag, torch.ones_like(mag), atol=1e-6), order
        # each band is -6 dB at the crossover frequency
        k = 1000 * 4096 // 16000
        np.testing.assert_allclose(torch.fft.rfft(low).abs()[0, k].item(), 0.5, rtol=1e-3)


def test_fir_filter_time_varying_matches_loop():
    rng = np.random.default_rng(10)
    x = rng.standard_normal(50)
    b = rng.standard_normal((50, 4))
    got = fir_filter(torch.tensor(x), torch.tensor(b)).numpy()
    want = [sum(b[n, k] * x[n - k] for k in range(4) if n >= k) for n in range(50)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_bad_inputs_raise_clear_errors():
    x = torch.randn(2, 100)
    with pytest.raises(ValueError, match=r"\(\.\.\., L=100, K\)"):
        allpole(x, torch.randn(2, 99, 2))
    with pytest.raises(ValueError, match="zi must be"):
        allpole(x, torch.randn(2, 2), torch.randn(2, 3))
    with pytest.raises(TypeError, match="floating-point"):
        lfilter(torch.ones(2, 10, dtype=torch.long), torch.ones(2), torch.ones(2))
    with pytest.raises(ValueError, match="mode must be"):
        lfilter(x, torch.ones(2), torch.ones(2), mode="fast")
    with pytest.raises(ValueError, match="sections, 6"):
        sosfilt(x, torch.ones(2, 5))
    with pytest.raises(ValueError, match="backend"):
        allpole(x, torch.randn(2, 2), backend="cuda")


@settings(max_examples=30)
@given(st.integers(1, 4), st.integers(1, 40), st.floats(0.0, 0.95))
def test_allpole_backends_agree(order, length, radius):
    """The torch scan (GPU path) and the compiled kernel compute the same recursion."""
    g = torch.Generator().manual_seed(order * 100 + length)
    x = torch.randn(2, length, dtype=torch.float64, generator=g)
    a = radius / order * torch.randn(2, length, order, dtype=torch.float64, generator=g).tanh()
    ys = [allpole(x, a, backend=b) for b in BACKENDS]
    for y in ys[1:]:
        assert torch.allclose(y, ys[0], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_linear_recurrence_matches_loop_and_gradcheck(backend):
    g = torch.Generator().manual_seed(11)
    m = (0.4 * torch.randn(2, 9, 3, 3, dtype=torch.float64, generator=g)).requires_grad_()
    u = torch.randn(2, 9, 3, dtype=torch.float64, generator=g).requires_grad_()
    s0 = torch.randn(2, 3, dtype=torch.float64, generator=g).requires_grad_()
    state, want = s0.detach(), []
    for n in range(9):
        state = (m[:, n].detach() @ state[..., None])[..., 0] + u[:, n].detach()
        want.append(state)
    got = linear_recurrence(m, u, s0, backend=backend)
    torch.testing.assert_close(got.detach(), torch.stack(want, 1), rtol=1e-12, atol=1e-12)
    f = lambda m, u, s0: linear_recurrence(m, u, s0, backend=backend)  # noqa: E731
    assert torch.autograd.gradcheck(f, (m, u, s0))
    assert torch.autograd.gradgradcheck(f, (m, u, s0))


@pytest.mark.parametrize("time_varying", [False, True])
def test_lfilter_compiled_and_torch_paths_agree_with_exact_second_derivatives(time_varying):
    """lfilter on CPU runs one compiled direct-form-I pass (and one reverse pass for all
    gradients); the torch path composes fir_filter and allpole. Both must agree, to second order."""
    g = torch.Generator().manual_seed(12)
    length = 12 if time_varying else 25
    x = torch.randn(2, 1, length, dtype=torch.float64, generator=g).requires_grad_()
    shape = (2, 1, length) if time_varying else (2, 1)
    b = torch.randn(*shape, 3, dtype=torch.float64, generator=g).requires_grad_()
    a = torch.cat([1 + 0.1 * torch.rand(*shape, 1, dtype=torch.float64, generator=g),
                   0.3 * torch.randn(*shape, 2, dtype=torch.float64, generator=g)], -1).requires_grad_()
    ys = [lfilter(x, b, a, backend=be) for be in BACKENDS]
    for y in ys[1:]:
        torch.testing.assert_close(y, ys[0], rtol=1e-12, atol=1e-12)
    for be in BACKENDS:
        f = lambda x, b, a: lfilter(x, b, a, backend=be)  # noqa: E731
        assert torch.autograd.gradcheck(f, (x, b, a))
        assert torch.autograd.gradgradcheck(f, (x, b, a))


@pytest.mark.skipif(not numba_available(), reason="compiled kernels need numba")
@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 2), st.integers(1, 40), st.sampled_from(["float32", "float64"]))
def test_fixed_section_kernels_equal_general_direct_form(taps, order, length, dtype):
    """run_df1 / run_df1_adjoint send fixed filters of order <= 2 to specialised kernels (state in
    registers); they must compute what the general direct-form-I kernels compute."""
    from ddsp_models.core._allpole_backend import _compile, run_df1, run_df1_adjoint

    dt = getattr(torch, dtype)
    g = torch.Generator().manual_seed(taps * 1000 + order * 100 + length)
    rows = 3
    x = torch.randn(rows, length, generator=g).to(dt)
    b = torch.randn(rows, 1, taps, generator=g).to(dt)
    a = (0.45 * torch.randn(rows, 1, order, generator=g).tanh()).to(dt)
    zi = torch.randn(rows, order, generator=g).to(dt)
    kernels = _compile()
    want = torch.empty(rows, length + order, dtype=dt)
    kernels["df1"][0](x.numpy(), b.numpy(), a.numpy(), zi.numpy(), want.numpy())
    got = run_df1(x, b, a, zi)
    tol = dict(rtol=1e-5, atol=1e-5) if dt == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got, want, **tol)

    grad = torch.randn(rows, length, generator=g).to(dt)
    ref = [torch.empty(rows, length, dtype=dt), torch.empty(rows, length, dtype=dt),
           torch.zeros(b.shape, dtype=dt), torch.zeros(a.shape, dtype=dt)]
    kernels["df1_adjoint"][0](grad.numpy(), x.numpy(), b.numpy(), a.numpy(), want.numpy(),
                              *(t.numpy() for t in ref), True, True)
    for got_t, want_t in zip(run_df1_adjoint(grad, x, b, a, want, True, True), ref):
        assert got_t.shape == want_t.shape
        torch.testing.assert_close(got_t, want_t, **tol)
