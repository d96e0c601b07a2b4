"""StackedSVF and SchroederAllpass (issue 16 item 3) against independent references:
scipy's Butterworth designs, per-sample numpy loops, closed-form allpass magnitude."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import signal

from ddsp_models.core.filter_design import butterworth_sos
from ddsp_models.processors import processor_from_dict
from ddsp_models.processors.stacked import (
    SchroederAllpass,
    StackedSVF,
    butterworth_qs,
    fd_schroeder_block,
    fd_schroeder_coefficients,
    linkwitz_riley_qs,
)

SR = 16000
N_FFT = 1 << 15


def impulse(n=N_FFT, channels=1):
    x = torch.zeros(1, channels, n, dtype=torch.float64)
    x[..., 0] = 1
    return x


def magnitude_db(h):
    return 20 * np.log10(np.maximum(np.abs(np.fft.rfft(h, axis=-1)), 1e-300))


def scipy_db(sos, n=N_FFT):
    _, resp = signal.sosfreqz(sos, worN=np.fft.rfftfreq(n, 1 / SR), fs=SR)
    return 20 * np.log10(np.maximum(np.abs(resp), 1e-300))


def stacked_ir(order, response, output, cutoff):
    f = StackedSVF(SR, order=order, response=response, output=output, time_varying=False)
    with torch.no_grad():
        y = f(impulse(), cutoff_hz=torch.tensor([[cutoff]], dtype=torch.float64))
    return y[0, 0].numpy()


@pytest.mark.parametrize("output", ["lowpass", "highpass"])
@pytest.mark.parametrize("order,cutoff", [(2, 1000.0), (4, 440.0), (6, 3000.0), (8, 6000.0),
                                          (12, 200.0)])
def test_butterworth_matches_scipy(order, cutoff, output):
    got = magnitude_db(stacked_ir(order, "butterworth", output, cutoff))
    ref = scipy_db(signal.butter(order, cutoff, btype=output, fs=SR, output="sos"))
    freqs = np.fft.rfftfreq(N_FFT, 1 / SR)
    passband = freqs <= cutoff if output == "lowpass" else freqs >= cutoff
    err = np.abs(got - ref)[passband]
    assert err.max() < 0.1  # the bound; in fact it is rounding level:
    assert err.max() < 1e-6
    # and in the stop band down to -120 dB
    stop = (~passband) & (ref > -120)
    assert np.abs(got - ref)[stop].max() < 1e-3


@pytest.mark.parametrize("output", ["lowpass", "highpass"])
@pytest.mark.parametrize("order", [2, 4, 6, 8])
def test_linkwitz_riley_is_squared_butterworth(order, output):
    cutoff = 1500.0
    got = magnitude_db(stacked_ir(order, "linkwitz_riley", output, cutoff))
    bw = scipy_db(signal.butter(order // 2, cutoff, btype=output, fs=SR, output="sos"))
    ref = 2 * bw
    keep = ref > -120
    assert np.abs(got - ref)[keep].max() < 1e-3
    k = int(round(cutoff * N_FFT / SR))
    assert abs(got[k] - (-6.0206)) < 0.01  # -6 dB at the cutoff


def test_linkwitz_riley_bands_sum_to_flat_magnitude():
    low = stacked_ir(4, "linkwitz_riley", "lowpass", 800.0)
    high = stacked_ir(4, "linkwitz_riley", "highpass", 800.0)
    assert np.abs(magnitude_db(low + high)).max() < 1e-6


def test_q_values_agree_with_core_butterworth_sos():
    # the section Qs give the same biquads as the package's own Butterworth design
    for order in (2, 4, 6, 10):
        sos = butterworth_sos(order, torch.tensor(1234.0, dtype=torch.float64), SR).numpy()
        ref = scipy_db(sos)
        got = magnitude_db(stacked_ir(order, "butterworth", "lowpass", 1234.0))
        keep = ref > -120
        assert np.abs(got - ref)[keep].max() < 1e-3
    assert linkwitz_riley_qs(6) == pytest.approx([1.0, 1.0, 0.5])
    assert butterworth_qs(2) == pytest.approx([2 ** -0.5])


def tpt_loop(x, g, qs, output):
    """Per-sample numpy loop of N cascaded TPT SVFs (Zavalishin) with per-sample g."""
    y = x.copy()
    for q in qs:
        k = 1 / q
        s1 = s2 = 0.0
        out = np.zeros_like(y)
        for n in range(len(y)):
            hp = (y[n] - (k + g[n]) * s1 - s2) / (1 + k * g[n] + g[n] ** 2)
            bp = g[n] * hp + s1
            lp = g[n] * bp + s2
            s1, s2 = 2 * bp - s1, 2 * lp - s2
            out[n] = lp if output == "lowpass" else hp
        y = out
    return y


@pytest.mark.parametrize("output", ["lowpass", "highpass"])
def test_time_varying_cutoff_equals_a_per_sample_loop(output):
    hop, frames = 32, 40
    rng = np.random.default_rng(0)
    x = rng.standard_normal(hop * frames)
    fc = 200 * 30 ** rng.random(frames)  # 200 .. 6000 Hz, jumping frame to frame
    f = StackedSVF(SR, order=6, output=output)
    with torch.no_grad():
        y = f(torch.tensor(x)[None, None], cutoff_hz=torch.tensor(fc)[None, :, None])[0, 0].numpy()
    fc_n = np.interp(np.arange(hop * frames) / hop, np.arange(frames), fc)
    ref = tpt_loop(x, np.tan(np.pi * fc_n / SR), butterworth_qs(6), output)
    np.testing.assert_allclose(y, ref, atol=1e-10, rtol=0)


def test_time_varying_constant_cutoff_equals_static():
    x = torch.randn(2, 2, 800, dtype=torch.float64)
    tv = StackedSVF(SR, order=4, response="linkwitz_riley")
    st = StackedSVF(SR, order=4, response="linkwitz_riley", time_varying=False)
    fc = torch.tensor([[300.0], [2000.0]], dtype=torch.float64)
    torch.testing.assert_close(tv(x, cutoff_hz=fc[:, None].expand(2, 25, 1)), st(x, cutoff_hz=fc))


# --------------------------------------------------------------------------------------
# Schroeder allpass
# --------------------------------------------------------------------------------------


def schroeder_loop(x, gains, delays, dampings=None):
    """Per-sample reference: ``v[n] = x[n] + p v[n-1] + b0 v[n-M]``,
    ``y[n] = -b0 v[n] - p v[n-M+1] + v[n-M]``, ``b0 = g (1 - p)`` (p = 0: plain Schroeder,
    ``w[n] = x[n] + g w[n-M]``, ``y[n] = -g w[n] + w[n-M]``); gains may be per sample."""
    y = np.asarray(x, dtype=np.float64).copy()
    for i, m in enumerate(delays):
        g = np.broadcast_to(np.asarray(gains[i], dtype=np.float64), y.shape)
        p = np.broadcast_to(np.asarray(0.0 if dampings is None else dampings[i],
                                       dtype=np.float64), y.shape)
        v = np.zeros_like(y)

        def past(j):
            return v[j] if j >= 0 else 0.0

        out = np.zeros_like(y)
        for n in range(len(y)):
            b0 = g[n] * (1 - p[n])
            v[n] = y[n] + p[n] * past(n - 1) + b0 * past(n - m)
            out[n] = -b0 * v[n] - p[n] * past(n - m + 1) + past(n - m)
        y = out
    return y


def allpass(delays, gains, dampings=None, time_varying=False):
    fd = dampings is not None
    return SchroederAllpass(SR, delays=delays, time_varying=time_varying,
                            frequency_dependent=fd)


def run(proc, x, gains, dampings=None):
    kw = {"gain": torch.as_tensor(gains, dtype=torch.float64)[None]}
    if dampings is not None:
        kw["damping"] = torch.as_tensor(dampings, dtype=torch.float64)[None]
    with torch.no_grad():
        return proc(torch.as_tensor(x, dtype=torch.float64)[None, None], **kw)[0, 0].numpy()


@pytest.mark.parametrize("dampings", [None, [0.3, 0.8, 0.5, 0.0]])
def test_schroeder_magnitude_is_one(dampings):
    delays, gains = [37, 23, 11, 1], [0.7, -0.6, 0.5, 0.8]
    h = run(allpass(delays, gains, dampings), impulse()[0, 0], gains, dampings)
    mag = np.abs(np.fft.rfft(h))
    assert np.abs(mag - 1).max() < 1e-9
    assert abs(h[0] - np.prod([-g * (1 - (0 if dampings is None else p))
                               for g, p in zip(gains, dampings or [0] * 4)])) < 1e-12


@pytest.mark.parametrize("dampings", [None, [0.3, 0.9, 0.5]])
def test_schroeder_impulse_response_equals_loop(dampings):
    delays, gains = [45, 7, 2], [0.75, -0.5, 0.6]
    n = 3000
    x = np.zeros(n)
    x[0] = 1
    got = run(allpass(delays, gains, dampings), x, gains, dampings)
    ref = schroeder_loop(x, gains, delays, dampings)
    np.testing.assert_allclose(got, ref, atol=1e-12, rtol=0)
    # and on noise
    x = np.random.default_rng(1).standard_normal(n)
    np.testing.assert_allclose(run(allpass(delays, gains, dampings), x, gains, dampings),
                               schroeder_loop(x, gains, delays, dampings), atol=1e-11, rtol=0)


def test_fd_coefficients_are_an_allpass_pair():
    b, a = fd_schroeder_coefficients(torch.tensor(0.7, dtype=torch.float64),
                                     torch.tensor(0.4, dtype=torch.float64), 9)
    np.testing.assert_allclose(b.numpy(), a.numpy()[::-1])
    x = np.random.default_rng(2).standard_normal(500)
    np.testing.assert_allclose(signal.lfilter(b.numpy(), a.numpy(), x),
                               schroeder_loop(x, [0.7], [9], [0.4]), atol=1e-12)
    # the loop gain is a one-pole lowpass: g at DC, g (1 - p) / (1 + p) at Nyquist
    _, resp = signal.freqz([0.7 * 0.6], [1, -0.4], worN=[0, np.pi])
    np.testing.assert_allclose(np.abs(resp), [0.7, 0.7 * 0.6 / 1.4])


@pytest.mark.parametrize("damped", [False, True])
def test_schroeder_time_varying_parameters_equal_loop(damped):
    delays, hop, frames = [45, 7, 1], 32, 30
    rng = np.random.default_rng(3)
    x = rng.standard_normal(hop * frames)
    gains = rng.uniform(-0.9, 0.9, size=(frames, len(delays)))
    damp = rng.uniform(0, 0.9, size=(frames, len(delays))) if damped else None
    proc = allpass(delays, None, damp, time_varying=True)
    got = run(proc, x, gains, damp)

    def per_sample(v):
        return [np.interp(np.arange(hop * frames) / hop, np.arange(frames), v[:, i])
                for i in range(len(delays))]

    ref = schroeder_loop(x, per_sample(gains), delays, per_sample(damp) if damped else None)
    np.testing.assert_allclose(got, ref, atol=1e-11, rtol=0)


@pytest.mark.parametrize("tv", [False, True])
def test_fd_dense_and_chunked_paths_agree(tv):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 3, 200, generator=g, dtype=torch.float64)
    n = 200 if tv else 1
    gain = 1.8 * torch.rand(2, 1, n, generator=g, dtype=torch.float64) - 0.9
    damp = 0.9 * torch.rand(2, 1, n, generator=g, dtype=torch.float64)
    hist = torch.randn(2, 3, 9, generator=g, dtype=torch.float64)
    dense = fd_schroeder_block(x, gain, damp, hist, 9, dense_max_delay=100)
    chunked = fd_schroeder_block(x, gain, damp, hist, 9, dense_max_delay=0)
    torch.testing.assert_close(dense, chunked, atol=1e-12, rtol=0)


def test_defaults_from_type_and_sample_rate_alone():
    for name in ("StackedSVF", "SchroederAllpass"):
        p = processor_from_dict({"type": name, "sample_rate": SR})
        params = p.random_params(1, 10, dtype=torch.float64)
        with torch.no_grad():
            y = p(torch.randn(1, 1, 320, dtype=torch.float64), **params)
        assert y.shape == (1, 1, 320) and torch.isfinite(y).all()


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="even"):
        StackedSVF(SR, order=3)
    with pytest.raises(ValueError, match="response"):
        StackedSVF(SR, response="chebyshev")
    with pytest.raises(ValueError, match="delays"):
        SchroederAllpass(SR, delays=[0])
    with pytest.raises(ValueError, match="max_gain"):
        SchroederAllpass(SR, max_gain=1.0)


def test_fd_chunked_path_gradients():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 1, 30, generator=g, dtype=torch.float64, requires_grad=True)
    gain = (0.5 * torch.rand(1, 1, 30, generator=g, dtype=torch.float64)).requires_grad_()
    damp = (0.5 * torch.rand(1, 1, 30, generator=g, dtype=torch.float64)).requires_grad_()
    hist = torch.randn(1, 1, 7, generator=g, dtype=torch.float64, requires_grad=True)
    for dense_max in (0, 100):
        assert torch.autograd.gradcheck(
            lambda *a: fd_schroeder_block(*a, 7, dense_max_delay=dense_max)[0],
            (x, gain, damp, hist))
