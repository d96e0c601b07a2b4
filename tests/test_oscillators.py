"""core.oscillators: phase accumulation, oscillator bank, fast harmonic kernel."""

import math

import numpy as np
import pytest
import torch

from ddsp_models.core import angular_cumsum, harmonic_synthesis, oscillator_bank, remove_above_nyquist
from ddsp_models.core.oscillators import harmonic_synthesis_reference


def test_angular_cumsum_matches_numpy_and_wraps():
    w = torch.rand(3, 5000, dtype=torch.float64) * 3.0
    ref = np.mod(np.cumsum(w.numpy(), axis=-1), 2 * np.pi)
    got = angular_cumsum(w)
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-9)
    assert got.min() >= 0 and got.max() < 2 * math.pi
    ex = angular_cumsum(w, exclusive=True)
    assert torch.all(ex[:, 0] == 0)
    np.testing.assert_allclose(ex[:, 1:].numpy(), ref[:, :-1], atol=1e-9)
    # the time axis can be any axis
    torch.testing.assert_close(angular_cumsum(w.t(), dim=0), got.t())


def _wrapped_diff(a, b):
    return torch.remainder(a - b + math.pi, 2 * math.pi) - math.pi


def test_chunked_angular_cumsum_stays_in_float32_and_keeps_phase():
    n = 200_000
    w = (torch.rand(2, n) * 0.5 + 0.1).double()  # exactly representable in float32
    ref = angular_cumsum(w)  # float64
    got = angular_cumsum(w.float(), method="chunked", chunk_size=256)
    assert got.dtype == torch.float32
    assert got.min() >= 0 and got.max() < 2 * math.pi
    # float32 rounding of each chunk total accumulates: ~eps x total phase (7e4 rad here)
    assert _wrapped_diff(got.double(), ref).abs().max() < 5e-3
    with pytest.raises(ValueError, match="method"):
        angular_cumsum(w, method="nope")


def test_oscillator_bank_matches_numpy_loop_and_silences_nyquist():
    sr = 1000.0
    b, n, k = 2, 300, 3
    f = torch.rand(b, n, k, dtype=torch.float64) * 450
    f[0, 100:150, 1] = 600.0  # above Nyquist for a while
    a = torch.rand(b, n, k, dtype=torch.float64)
    got = oscillator_bank(f, a, sr).numpy()
    fn, an = f.numpy(), a.numpy()
    ref = np.zeros((b, n))
    for bi in range(b):
        for ki in range(k):
            phase = 0.0
            for i in range(n):
                if fn[bi, i, ki] < sr / 2:
                    ref[bi, i] += an[bi, i, ki] * np.sin(phase)
                phase += 2 * np.pi * fn[bi, i, ki] / sr
    np.testing.assert_allclose(got, ref, atol=1e-9)
    with pytest.raises(ValueError, match="batch, samples, K"):
        oscillator_bank(f[0], a[0], sr)


def test_remove_above_nyquist():
    f = torch.tensor([100.0, 499.0, 500.0, 900.0])
    a = torch.ones(4)
    assert remove_above_nyquist(f, a, 1000).tolist() == [1, 1, 0, 0]


@pytest.mark.parametrize("n_extra,block", [(0, 1), (5, 3), (17, 100)])
def test_fast_harmonic_kernel_matches_obvious_implementation(n_extra, block):
    b, t, k, hop = 2, 9, 12, 16
    f0 = 50 + 300 * torch.rand(b, t, 1, dtype=torch.float64)
    amps = torch.rand(b, t, k, dtype=torch.float64)
    n = t * hop + n_extra
    got = harmonic_synthesis(f0, amps, n, 4000.0, block_frames=block)
    ref = harmonic_synthesis_reference(f0, amps, n, 4000.0)
    assert got.shape == (b, n)
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("k", [1, 100, 200])
def test_fast_harmonic_kernel_float32_close_to_float64(k):
    b, t, hop = 2, 20, 64
    f0 = 30 + 200 * torch.rand(b, t, 1, dtype=torch.float64)
    amps = torch.rand(b, t, k, dtype=torch.float64) / k
    ref = harmonic_synthesis(f0, amps, t * hop, 16000.0)
    got = harmonic_synthesis(f0.float(), amps.float(), t * hop, 16000.0)
    err = (got.double() - ref).abs().max() / ref.abs().max()
    assert err < 1e-4


def test_harmonic_kernel_gradcheck():
    b, t, k, hop = 1, 4, 5, 8
    f0 = (100 + 300 * torch.rand(b, t, 1, dtype=torch.float64)).requires_grad_()
    amps = torch.rand(b, t, k, dtype=torch.float64).requires_grad_()
    fn = lambda f, a: harmonic_synthesis(f, a, t * hop + 3, 2000.0, block_frames=2)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (f0, amps))


def test_harmonic_synthesis_shape_errors():
    with pytest.raises(ValueError, match="f0_hz must have 1 features"):
        harmonic_synthesis(torch.ones(1, 4, 2), torch.ones(1, 4, 3), 64, 16000)
    with pytest.raises(ValueError, match="share"):
        harmonic_synthesis(torch.ones(1, 5, 1), torch.ones(1, 4, 3), 64, 16000)
    with pytest.raises(ValueError, match="shorter than the number of frames"):
        harmonic_synthesis(torch.ones(1, 4, 1), torch.ones(1, 4, 3), 2, 16000)


def test_harmonic_synthesis_chunked_phase_matches_float64():
    b, t, k, hop = 1, 50, 3, 64
    f0 = 200 + 100 * torch.rand(b, t, 1)
    amps = torch.rand(b, t, k)
    ref = harmonic_synthesis(f0, amps, t * hop, 16000.0)
    got = harmonic_synthesis(f0, amps, t * hop, 16000.0, phase_method="chunked")
    assert (got - ref).abs().max() < 1e-3 * amps.sum(-1).max()
