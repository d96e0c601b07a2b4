"""Synth processors: Harmonic, FilteredNoise, Wavetable, Sinusoidal."""

import numpy as np
import pytest
import scipy.signal
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ddsp_models.processors import processor_from_dict
from ddsp_models.synths import FilteredNoise, Harmonic, Sinusoidal, Wavetable

SR = 16000


def _const(value, b, t, k=1, dtype=torch.float32):
    return torch.full((b, t, k), float(value), dtype=dtype)


def _spectrum_db(x, sr, pad=8):
    """Blackman-Harris windowed magnitude spectrum in dB re its peak, and frequencies."""
    w = scipy.signal.get_window("blackmanharris", len(x))
    spec = np.abs(np.fft.rfft(x * w, pad * len(x)))
    freqs = np.fft.rfftfreq(pad * len(x), 1 / sr)
    return 20 * np.log10(spec / spec.max() + 1e-300), freqs


def test_harmonic_single_harmonic_peak_at_440():
    synth = Harmonic(SR, n_harmonics=1)
    t = 250
    y = synth(_const(440, 1, t), _const(0.5, 1, t), _const(1, 1, t), n_samples=SR)[0, 0].numpy()
    db, freqs = _spectrum_db(y, SR)
    assert abs(freqs[np.argmax(db)] - 440.0) < 1.0
    assert np.isclose(np.abs(y).max(), 0.5, atol=1e-3)


def test_harmonic_200_harmonics_no_alias_above_minus_60_db():
    synth = Harmonic(SR, n_harmonics=200)
    t = 250
    y = synth(_const(300, 1, t), _const(1, 1, t), _const(1, 1, t, 200), n_samples=SR)[0, 0]
    y = y.double().numpy()
    db, freqs = _spectrum_db(y, SR)
    # energy away from multiples of 300 Hz (aliases of k*300 >= 8 kHz land at 16000 - k*300)
    dist = np.abs(freqs - 300 * np.round(freqs / 300))
    off_grid = db[(dist > 20) & (freqs > 20)]
    assert off_grid.max() < -60, off_grid.max()
    # the harmonics below Nyquist (1..26) are all there at equal level (normalised)
    peaks = [db[np.argmin(np.abs(freqs - 300 * k))] for k in range(1, 27)]
    assert max(peaks) - min(peaks) < 0.5


def test_harmonic_ten_minutes_keeps_phase():
    sr, f0, minutes = 4000, 441.375, 10  # f0 exact in float32
    n = minutes * 60 * sr
    t = n // 64
    synth = Harmonic(sr, n_harmonics=1)
    y = synth(_const(f0, 1, t), _const(1, 1, t), _const(1, 1, t), n_samples=n)[0, 0].double().numpy()

    def phase_offset(start):
        idx = np.arange(start, start + sr, dtype=np.float64)
        ref = 2 * np.pi * f0 * idx / sr  # closed form, float64
        seg = y[start : start + sr]
        # y = sin(ref + e): project on sin and cos of the reference phase
        return np.arctan2(np.dot(seg, np.cos(ref)), np.dot(seg, np.sin(ref)))

    drift_cycles = abs(phase_offset(n - sr) - phase_offset(0)) / (2 * np.pi)
    assert drift_cycles < 0.1
    assert drift_cycles < 1e-3  # float64 accumulation: essentially none


def test_harmonic_normalises_distribution_below_nyquist():
    synth = Harmonic(SR, n_harmonics=40).double()
    b, t, n = 2, 10, 640
    f0 = _const(300, b, t, dtype=torch.float64)
    amp = torch.rand(b, t, 1, dtype=torch.float64)
    dist = torch.rand(b, t, 40, dtype=torch.float64)
    y1 = synth(f0, amp, dist, n_samples=n)
    y2 = synth(f0, amp, 3.7 * dist, n_samples=n)  # scale-free
    torch.testing.assert_close(y1, y2)
    dist_hi = dist.clone()
    dist_hi[..., 26:] = 100.0  # harmonics 27.. are >= 8 kHz: ignored
    torch.testing.assert_close(synth(f0, amp, dist_hi, n_samples=n), y1)


def test_filtered_noise_half_bands_attenuate_30_db():
    m = 65
    mags = torch.zeros(1, 100, m)
    mags[..., : m // 2] = 1.0
    y = FilteredNoise(SR, n_bands=m)(mags, n_samples=SR * 2)[0, 0].numpy()
    f, p = scipy.signal.welch(y, SR, nperseg=1024)
    low = p[(f > 500) & (f < 3000)].mean()
    high = p[(f > 5000) & (f < 7500)].mean()
    assert 10 * np.log10(low / high) > 30


def test_filtered_noise_is_filtered_noise():
    synth = FilteredNoise(SR, n_bands=9).double()
    mags = torch.rand(2, 5, 9, dtype=torch.float64)
    noise = torch.rand(2, 500, dtype=torch.float64) * 2 - 1
    from ddsp_models.core import frequency_filter

    torch.testing.assert_close(
        synth(mags, n_samples=500, noise=noise)[:, 0], frequency_filter(noise, mags)
    )
    y = synth(mags.float(), n_samples=500)
    assert y.shape == (2, 1, 500) and y.dtype == torch.float32
    assert y.abs().max() > 0
    with pytest.raises(ValueError, match="noise must be"):
        synth(mags, n_samples=500, noise=noise[:, :10])


def test_wavetable_sine_is_clean():
    synth = Wavetable(SR, n_tables=1, table_size=2048, initial="sine")
    t, n = 250, SR
    y = synth(_const(440, 1, t), _const(0.8, 1, t), _const(1, 1, t), n_samples=n)[0, 0]
    y = y.detach().double().numpy()
    db, freqs = _spectrum_db(y, SR)
    assert abs(freqs[np.argmax(db)] - 440) < 1.0
    # total distortion: everything except the fundamental's main lobe, as power vs the tone
    w = scipy.signal.get_window("blackmanharris", n)
    spec = np.abs(np.fft.rfft(y * w)) ** 2
    f = np.fft.rfftfreq(n, 1 / SR)
    tone = spec[np.abs(f - 440) <= 5].sum()
    rest = spec[np.abs(f - 440) > 5].sum()
    assert 10 * np.log10(rest / tone) < -40


def test_wavetable_crossfades_tables_and_learns_them():
    synth = Wavetable(SR, n_tables=4, table_size=256).double()
    b, t, n = 1, 8, 256
    f0, amp = _const(200, b, t, dtype=torch.float64), _const(1, b, t, dtype=torch.float64)
    w = torch.zeros(b, t, 4, dtype=torch.float64)
    w[..., 2] = 1.0
    y_saw = synth(f0, amp, w, n_samples=n)
    only = Wavetable(SR, n_tables=1, table_size=256).double()
    only.tables.data = synth.tables.data[2:3].clone()
    torch.testing.assert_close(y_saw, only(f0, amp, _const(1, b, t, dtype=torch.float64), n_samples=n))
    y_saw.square().sum().backward()
    assert synth.tables.grad[2].abs().sum() > 0 and synth.tables.grad[0].abs().sum() == 0


def test_sinusoidal_matches_numpy_and_silences_nyquist():
    synth = Sinusoidal(1000, n_sinusoids=2).double()
    b, t, n = 1, 4, 400
    freqs = torch.tensor([[[100.0, 300.0]]], dtype=torch.float64).expand(b, t, 2).clone()
    amps = torch.tensor([[[0.5, 0.25]]], dtype=torch.float64).expand(b, t, 2).clone()
    y = synth(freqs, amps, n_samples=n)[0, 0].numpy()
    i = np.arange(n)
    ref = 0.5 * np.sin(2 * np.pi * 100 * i / 1000) + 0.25 * np.sin(2 * np.pi * 300 * i / 1000)
    np.testing.assert_allclose(y, ref, atol=1e-10)
    freqs[..., 1] = 700.0  # above Nyquist: gone
    y = synth(freqs, amps, n_samples=n)[0, 0].numpy()
    np.testing.assert_allclose(y, 0.5 * np.sin(2 * np.pi * 100 * i / 1000), atol=1e-10)


# --- contract: gradients, shapes, configs, random parameters --------------------------------
SYNTHS = [
    lambda: Harmonic(2000, n_harmonics=6),
    lambda: FilteredNoise(2000, n_bands=5),
    lambda: Wavetable(2000, n_tables=2, table_size=16),
    lambda: Sinusoidal(2000, n_sinusoids=3),
]


def _inputs(synth, b, t, n, gen=None, dtype=torch.float64):
    params = synth.random_params(b, t, generator=gen, dtype=dtype)
    extra = {}
    if isinstance(synth, FilteredNoise):
        extra["noise"] = torch.rand(b, n, dtype=dtype, generator=gen) * 2 - 1
    return params, extra


@pytest.mark.parametrize("make", SYNTHS)
def test_gradcheck_reaches_every_parameter(make):
    synth = make().double()
    b, t, n = 1, 3, 24
    params, extra = _inputs(synth, b, t, n)
    names = list(params)
    leaves = [params[k].clone().requires_grad_() for k in names]

    def fn(*vals):
        return synth(**dict(zip(names, vals)), n_samples=n, **extra)

    assert torch.autograd.gradcheck(fn, tuple(leaves), fast_mode=True)
    for p in synth.parameters():  # learnable weights (wavetables) receive gradients too
        fn(*leaves).sum().backward()
        assert p.grad is not None and p.grad.abs().sum() > 0


@pytest.mark.parametrize("make", SYNTHS)
def test_wrong_shapes_name_the_parameter(make):
    synth = make()
    params, extra = _inputs(synth, 2, 4, 64, dtype=torch.float32)
    name = next(p.name for p in synth.param_specs() if not p.external)
    bad = dict(params)
    bad[name] = params[name][..., :1].repeat(1, 1, 7)
    with pytest.raises(ValueError, match=f"{type(synth).__name__}.{name} must be"):
        synth(**bad, n_samples=64, **extra)
    bad[name] = params[name][0]
    with pytest.raises(ValueError, match=name):
        synth(**bad, n_samples=64, **extra)
    with pytest.raises(TypeError, match=name):  # Python names the missing argument
        synth(**{k: v for k, v in params.items() if k != name}, n_samples=64, **extra)


@pytest.mark.parametrize("make", SYNTHS)
def test_config_rebuilds_processor(make):
    synth = make()
    clone = processor_from_dict({"type": type(synth).__name__, **synth.config()})
    assert type(clone) is type(synth) and clone.config() == synth.config()
    assert clone.param_specs() == synth.param_specs()


@settings(max_examples=15)
@given(
    which=st.integers(0, len(SYNTHS) - 1),
    scale=st.floats(0.1, 30.0),
    seed=st.integers(0, 2**31 - 1),
    frames=st.integers(1, 6),
)
def test_random_raw_params_give_finite_audio_and_grads(which, scale, seed, frames):
    synth = SYNTHS[which]()
    gen = torch.Generator().manual_seed(seed)
    n = frames * 16 + seed % 7
    raw = {}
    for p in synth.param_specs():
        shape = p.shape(2, frames)
        if p.external:  # f0 anywhere from sub-audio to far above Nyquist
            raw[p.name] = 10 ** (torch.rand(shape, generator=gen) * 4)
        else:
            raw[p.name] = (torch.randn(shape, generator=gen) * scale).requires_grad_()
    y = synth(**synth.scale_params(raw), n_samples=n)
    assert y.shape == (2, 1, n) and torch.isfinite(y).all()
    y.square().mean().backward()
    for name, v in raw.items():
        if v.requires_grad:
            assert torch.isfinite(v.grad).all(), name
    for p in synth.parameters():
        assert torch.isfinite(p.grad).all()
