"""core.filtering: FFT convolution (time-invariant and frame-wise) and frequency_filter."""

import numpy as np
import pytest
import scipy.signal
import torch

from ddsp_models.core import fft_convolve, frequency_filter, frequency_impulse_response


def test_fft_convolve_matches_scipy_full_and_same():
    x = torch.randn(2, 3, 500, dtype=torch.float64)
    h = torch.randn(37, dtype=torch.float64)
    full = fft_convolve(x, h, padding="full")
    ref = scipy.signal.fftconvolve(x.numpy(), h.numpy()[None, None], mode="full", axes=-1)
    np.testing.assert_allclose(full.numpy(), ref, atol=1e-10)
    same = fft_convolve(x, h, padding="same", delay_compensation=5)
    np.testing.assert_allclose(same.numpy(), ref[..., 5:505], atol=1e-10)
    # per-example IRs broadcast over channels, checked against np.convolve
    hb = torch.randn(2, 1, 20, dtype=torch.float64)
    y = fft_convolve(x, hb, padding="full")
    for b in range(2):
        for c in range(3):
            np.testing.assert_allclose(
                y[b, c].numpy(), np.convolve(x[b, c].numpy(), hb[b, 0].numpy()), atol=1e-10
            )


def test_framewise_with_equal_irs_is_plain_convolution():
    x = torch.randn(2, 1003, dtype=torch.float64)
    h = torch.randn(2, 45, dtype=torch.float64)
    hv = h[:, None, :].expand(2, 10, 45)  # 10 frames, hop 100, 3 leftover samples
    torch.testing.assert_close(
        fft_convolve(x, hv, padding="full"), fft_convolve(x, h, padding="full")
    )


def _blockwise_reference(x, irs, hop):
    """Slow loop: block t = samples [t*hop - hop//2, t*hop - hop//2 + hop) with IR t."""
    n, (t, m) = len(x), irs.shape
    out = np.zeros(n + m - 1)
    for start in range(-(hop // 2), n, hop):
        idx = min(max((start + hop // 2) // hop, 0), t - 1)
        seg = np.zeros(hop)
        lo, hi = max(start, 0), min(start + hop, n)
        seg[lo - start : hi - start] = x[lo:hi]
        y = np.convolve(seg, irs[idx])
        for j, v in enumerate(y):
            if 0 <= start + j < n + m - 1:
                out[start + j] += v
    return out


def test_framewise_matches_slow_block_loop():
    x = torch.randn(1, 257, dtype=torch.float64)
    irs = torch.randn(1, 8, 13, dtype=torch.float64)  # hop 32, one leftover sample
    got = fft_convolve(x, irs, padding="full")[0].numpy()
    ref = _blockwise_reference(x[0].numpy(), irs[0].numpy(), 32)
    np.testing.assert_allclose(got, ref, atol=1e-10)


def _reference_ir(mags):
    """numpy: zero-phase irfft, rolled to causal, periodic Hann."""
    n = 2 * (len(mags) - 1)
    ir = np.roll(np.fft.irfft(mags, n), n // 2)
    return ir * scipy.signal.get_window("hann", n, fftbins=True)


def test_frequency_impulse_response_is_linear_phase_and_matches_numpy():
    mags = torch.rand(3, 65, dtype=torch.float64)
    ir = frequency_impulse_response(mags)
    assert ir.shape == (3, 128)
    for i in range(3):
        np.testing.assert_allclose(ir[i].numpy(), _reference_ir(mags[i].numpy()), atol=1e-12)
    # symmetric about tap 64 (tap 0 is zero): linear phase, delay 64
    np.testing.assert_allclose(ir[:, 1:64].numpy(), ir[:, 65:].flip(-1).numpy(), atol=1e-12)
    short = frequency_impulse_response(mags, window_size=31)
    assert short.shape == (3, 31)
    np.testing.assert_allclose(short.numpy(), short.flip(-1).numpy(), atol=1e-12)


def test_frequency_response_follows_smooth_magnitudes():
    f = torch.linspace(0, 1, 129, dtype=torch.float64)
    mags = 0.2 + 0.8 * torch.cos(np.pi * f) ** 2  # smooth response
    ir = frequency_impulse_response(mags)
    response = np.abs(np.fft.rfft(ir.numpy(), 256))
    np.testing.assert_allclose(response, mags.numpy(), atol=2e-2)


def test_frequency_filter_constant_response_is_a_gain():
    x = torch.randn(2, 1000, dtype=torch.float64)
    mags = torch.full((2, 10, 33), 0.5, dtype=torch.float64)
    torch.testing.assert_close(frequency_filter(x, mags), 0.5 * x)


def test_frequency_filter_time_invariant_matches_scipy_reference():
    x = torch.randn(1, 800, dtype=torch.float64)
    mags = torch.rand(1, 33, dtype=torch.float64)
    got = frequency_filter(x, mags)[0].numpy()
    ir = _reference_ir(mags[0].numpy())
    ref = scipy.signal.fftconvolve(x[0].numpy(), ir)[32 : 32 + 800]
    np.testing.assert_allclose(got, ref, atol=1e-10)
    # the same filter given as identical frames
    framewise = frequency_filter(x, mags[:, None, :].expand(1, 8, 33))[0].numpy()
    np.testing.assert_allclose(framewise, ref, atol=1e-10)


def test_frequency_filter_gradcheck():
    x = torch.randn(1, 30, dtype=torch.float64, requires_grad=True)
    mags = torch.rand(1, 3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(frequency_filter, (x, mags), fast_mode=True)


def test_fft_convolve_errors():
    x = torch.randn(2, 100)
    with pytest.raises(ValueError, match="padding"):
        fft_convolve(x, torch.randn(5), padding="valid")
    with pytest.raises(ValueError, match="one more"):
        fft_convolve(x, torch.randn(1, 1, 2, 5))
    with pytest.raises(ValueError, match="delay_compensation"):
        fft_convolve(x, torch.randn(5), delay_compensation=5)
    with pytest.raises(ValueError, match="at least one sample per frame"):
        fft_convolve(x, torch.randn(2, 200, 5))
    with pytest.raises(ValueError, match="at least 2 frequency bins"):
        frequency_impulse_response(torch.ones(1, 1))
