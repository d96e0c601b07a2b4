"""Waveshaper: the shapes against numpy closed forms, Chebyshev harmonics, the aliasing that
oversampling removes, and the resampling FIRs (contract tests cover streaming and gradients).
"""

import numpy as np
import pytest
import torch

from ddsp_models.core.waveshaping import lowpass_fir
from ddsp_models.processors.blocks import render_in_blocks
from ddsp_models.processors.waveshaper import Waveshaper

SR = 16000
D = torch.float64


def t(*v):
    return torch.tensor([list(v)], dtype=D)


def shaper(**kw):
    return Waveshaper(SR, **kw).double()


def run(ws, x, drive_db=0.0, output_db=0.0, **shape):
    x = torch.as_tensor(x, dtype=D)[None, None]
    return ws(x, drive_db=t(drive_db), output_db=t(output_db), **shape)[0, 0].numpy()


@pytest.mark.parametrize("oversample", [1, 2, 4])
def test_chebyshev_t_k_on_a_full_scale_sine_is_the_kth_harmonic_only(oversample):
    f0, n = 250, 16000
    x = np.cos(2 * np.pi * f0 * np.arange(n) / SR)
    ws = shaper(shape="chebyshev", order=8, weighting="linear", oversample=oversample)
    for k in range(1, 9):
        w = np.zeros(8)
        w[k - 1] = 1.0
        y = run(ws, x, weights=t(*w))
        if oversample == 1:  # the closed form, numpy's own Chebyshev series
            np.testing.assert_allclose(y, np.polynomial.chebyshev.chebval(x, np.r_[0.0, w]),
                                       atol=1e-12)
        else:  # away from the edges' filter transients: 125 whole cycles
            y = y[4000:12000]
        spec = np.abs(np.fft.rfft(y)) / (len(y) / 2)
        spec[0] /= 2
        bin_k = k * f0 * len(y) // SR
        others = np.delete(spec, bin_k)
        assert spec[bin_k] == pytest.approx(1.0, abs=1e-3)
        assert 20 * np.log10(others.max() / spec[bin_k]) < -80, (k, oversample)


def test_power_and_piecewise_tanh_closed_forms():
    x = np.linspace(-1.5, 1.5, 301)
    ws = shaper(shape="power", oversample=1)
    y = run(ws, x, drive_db=6.0, output_db=-6.0, exponent=t(0.7))
    u = np.clip(x * 10 ** (6 / 20), -1, 1)
    np.testing.assert_allclose(y, 10 ** (-6 / 20) * np.sign(u) * np.abs(u) ** 0.7, atol=1e-12)

    ws = shaper(shape="tanh_piecewise", oversample=1)
    kp, kn = 0.5, 0.2
    y = run(ws, x, knee=t(kp, kn))
    ref = []
    for v in x:
        k = kp if v >= 0 else kn
        a = abs(v)
        ref.append(np.sign(v) * (a if a <= k else k + (1 - k) * np.tanh((a - k) / (1 - k))))
    np.testing.assert_allclose(y, ref, atol=1e-12)
    # asymmetric knees give even harmonics, symmetric ones none
    s = np.sin(2 * np.pi * 500 * np.arange(8000) / SR)
    for knees, has_even in (((0.3, 0.3), False), ((0.6, 0.1), True)):
        spec = np.abs(np.fft.rfft(run(ws, s, drive_db=6.0, knee=t(*knees))))
        even = spec[500 * 2 * 8000 // SR] / spec[500 * 8000 // SR]
        assert (even > 1e-3) == has_even


def aliased_db(y, f0):
    """Energy outside the true harmonics (the bins k f0 below Nyquist, DC included) relative
    to the fundamental's, in dB: 1-second signal, integer f0, so every tone is one bin."""
    p = np.abs(np.fft.rfft(y)) ** 2
    true = np.zeros(len(p), bool)
    true[np.arange(0, SR // 2 // f0 + 1) * f0] = True
    return 10 * np.log10(p[~true].sum() / p[f0])


def test_oversampling_lowers_aliased_energy():
    # tanh (knees 0) driven 12 dB by a 2637 Hz sine: harmonics 3, 5, 7, ... fold back
    f0 = 2637
    x = np.sin(2 * np.pi * f0 * np.arange(SR) / SR)
    got = {f: aliased_db(run(shaper(shape="tanh_piecewise", oversample=f), x, drive_db=12.0,
                             knee=t(0.0, 0.0)), f0) for f in (1, 2, 4)}
    # measured: -17.9, -36.8, -49.0 dB (m = 16, 100 dB Kaiser FIRs)
    assert got[1] > -20
    assert got[1] - got[2] > 15, got
    assert got[1] - got[4] > 25, got
    assert got[4] < got[2]


def test_lowpass_fir_design():
    for f, m in ((2, 16), (4, 16), (4, 8)):
        h = lowpass_fir(f, m)
        assert len(h) == 2 * f * m + 1
        np.testing.assert_allclose(h, h[::-1])
        assert h.sum() == pytest.approx(1.0)
        freqs = np.linspace(0, 0.5, 4001)  # cycles per high-rate sample
        resp = np.abs(np.exp(-2j * np.pi * np.outer(freqs, np.arange(len(h)))) @ h)
        low = freqs * f  # in units of the low rate
        # transition (A - 8) / (14.36 m) wide, centred on the low Nyquist
        half = (100 - 8) / (14.36 * m) / 2 + 0.01
        assert np.abs(20 * np.log10(resp[low <= 0.5 - half])).max() < 1e-3  # passband dB
        assert 20 * np.log10(resp[low >= 0.5 + half].max()) < -95  # stopband


def test_oversampled_stream_with_time_varying_controls_equals_whole():
    torch.manual_seed(0)
    ws = shaper(shape="chebyshev", order=4, oversample=4, half_length=10, time_varying=True)
    g = torch.Generator().manual_seed(2)
    params = ws.random_params(2, 40, generator=g, dtype=D)
    x = 0.5 * torch.randn(2, 2, 40 * 24, generator=g, dtype=D)
    ref = ws(x, **params)
    assert ws.latency_frames(24) == 2  # one for the controls, ceil(2 * 10 / 24) for the FIRs
    for sizes in ((1,), (5, 2, 9)):
        got = render_in_blocks(ws, params, 24, [x], n_frames=40, block_frames=sizes)
        assert (got - ref).abs().max() < 1e-12 * ref.abs().max()


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="shape"):
        Waveshaper(shape="cubic")
    with pytest.raises(ValueError, match="oversample"):
        Waveshaper(oversample=3)
    with pytest.raises(ValueError, match="weighting"):
        Waveshaper(weighting="sigmoid")
