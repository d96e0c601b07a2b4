"""Subtractive synth: band-limited oscillators (aliasing measured), filtering, stability."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ddsp_models.processors.subtractive import polyblep_oscillator
from ddsp_models.synths import Subtractive

FS = 16000


def alias_to_harmonic_db(signal: np.ndarray, f0: float) -> float:
    """Energy away from the harmonics of f0 (below Nyquist) relative to energy on them."""
    n = len(signal)
    power = np.abs(np.fft.rfft(signal * np.blackman(n))) ** 2
    freqs = np.arange(len(power)) * FS / n
    on = np.zeros(len(power), bool)
    for k in range(1, int(FS / 2 / f0) + 1):
        on |= np.abs(freqs - k * f0) <= 4  # Blackman main lobe: +-3 bins at 1 Hz per bin
    on[:4] = True  # DC
    return 10 * np.log10(power[~on].sum() / power[on].sum())


@pytest.mark.parametrize("f0", [440.7, 1234.5, 3001.1])
def test_polyblep_saw_aliases_far_less_than_a_naive_saw(f0):
    f = torch.full((1, FS), f0, dtype=torch.float64)
    blep = polyblep_oscillator(f, FS)[0].numpy()
    naive = 2 * np.remainder(np.arange(FS) * f0 / FS, 1.0) - 1
    a_blep, a_naive = alias_to_harmonic_db(blep, f0), alias_to_harmonic_db(naive, f0)
    assert a_blep < a_naive - 12, (a_blep, a_naive)
    if f0 < 500:
        assert a_blep < -30
    pulse = polyblep_oscillator(f, FS, "pulse", 0.3)[0].numpy()
    assert alias_to_harmonic_db(pulse, f0) < a_naive - 12
    assert abs(pulse.mean()) < 1e-2  # zero-mean pulse


def test_oscillator_waveforms_and_phase_accuracy():
    f0 = 100.0  # exactly 160 samples per period: the naive and band-limited saws agree
    f = torch.full((1, 1600), f0, dtype=torch.float64)
    saw = polyblep_oscillator(f, FS)[0].numpy()
    ramp = 2 * np.remainder(np.arange(1600) / 160, 1.0) - 1
    away = np.abs(np.remainder(np.arange(1600) / 160 + 0.5, 1.0) - 0.5) > 2 / 160
    np.testing.assert_allclose(saw[away], ramp[away], atol=1e-12)
    # float64 phase: after 60 s of an odd frequency, the ramp is still where it should be
    f0 = 261.63
    long = torch.full((1, 60 * FS), f0, dtype=torch.float32)
    tail = polyblep_oscillator(long, FS)[0, -100:].double().numpy()
    n = np.arange(60 * FS - 100, 60 * FS)
    want = 2 * np.remainder(n * f0 / FS, 1.0) - 1
    ok = np.abs(np.remainder(n * f0 / FS + 0.5, 1.0) - 0.5) > 2 * f0 / FS
    np.testing.assert_allclose(tail[ok], want[ok], atol=1e-3)


def test_subtractive_pitch_and_filter_cutoff():
    synth = Subtractive(FS, filter="svf")
    t, n = 50, FS
    f0 = torch.full((1, t, 1), 220.0)
    amp = torch.full((1, t, 1), 0.5)
    res = torch.full((1, t, 1), 0.2)
    bright = synth(f0, amp, torch.full((1, t, 1), 7000.0), res, n_samples=n)
    dark = synth(f0, amp, torch.full((1, t, 1), 400.0), res, n_samples=n)
    assert bright.shape == (1, 1, n)
    spec_b = np.abs(np.fft.rfft(bright[0, 0].numpy() * np.hanning(n)))
    spec_d = np.abs(np.fft.rfft(dark[0, 0].numpy() * np.hanning(n)))
    assert abs(np.argmax(spec_b) - 220) <= 1  # 1 Hz per bin: the fundamental dominates
    high = slice(3000, 6000)
    assert spec_d[high].sum() < 1e-2 * spec_b[high].sum()  # the low cutoff removes the top
    # the fundamental is scaled by the SVF lowpass response: Q = 0.5 / (1 - 0.2)
    def gain(cutoff):
        s = 1j * math.tan(math.pi * 220 / FS) / math.tan(math.pi * cutoff / FS)
        return abs(1 / (s**2 + s / 0.625 + 1))

    ratio = spec_d[210:231].max() / spec_b[210:231].max()
    assert ratio == pytest.approx(gain(400.0) / gain(7000.0), rel=0.01)


@pytest.mark.parametrize("waveform, filt", [("saw", "svf"), ("pulse", "ladder")])
def test_subtractive_gradcheck(waveform, filt):
    synth = Subtractive(FS, waveform=waveform, filter=filt)
    g = torch.Generator().manual_seed(1)
    p = synth.random_params(1, 3, generator=g, dtype=torch.float64)
    p["f0_hz"] = torch.full((1, 3, 1), 300.0, dtype=torch.float64)
    names = [k for k in p if k != "f0_hz"]

    def f(*vals):
        return synth(f0_hz=p["f0_hz"], n_samples=48, **dict(zip(names, vals)))

    assert torch.autograd.gradcheck(f, tuple(p[k].requires_grad_() for k in names))


def test_subtractive_errors():
    synth = Subtractive(FS)
    p = synth.random_params(1, 4)
    with pytest.raises(ValueError, match="n_samples"):
        synth(**p)
    with pytest.raises(ValueError, match="pulse_width"):
        synth(**p, pulse_width=torch.ones(1, 4, 1), n_samples=64)
    with pytest.raises(ValueError, match="waveform"):
        Subtractive(FS, waveform="square")


@pytest.mark.parametrize("waveform, filt", [("saw", "svf"), ("pulse", "ladder")])
def test_any_raw_parameters_give_finite_audio_and_gradients(waveform, filt):
    synth = Subtractive(FS, waveform=waveform, filter=filt)

    @settings(max_examples=200, deadline=None)
    @given(seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([0.1, 1.0, 5.0, 30.0]),
           f0=st.floats(0.0, 12000.0))
    def check(seed, scale, f0):
        g = torch.Generator().manual_seed(seed)
        raw = {s.name: (scale * torch.randn(s.shape(1, 4), generator=g)).requires_grad_()
               for s in synth.param_specs() if not s.external}
        f0_hz = torch.full((1, 4, 1), f0, requires_grad=True)
        y = synth(f0_hz=f0_hz, n_samples=64, **synth.scale_params(raw))
        assert y.shape == (1, 1, 64) and torch.isfinite(y).all()
        y.pow(2).sum().backward()
        for v in [f0_hz, *raw.values()]:
            assert v.grad is not None and torch.isfinite(v.grad).all()

    check()
