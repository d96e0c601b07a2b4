"""Multiband (Linkwitz-Riley crossover container), checked against scipy's filters.

* identity band effects: the sum of the bands is allpass (FFT magnitude of the impulse
  response flat within 0.01 dB), for LR2/LR4/LR6/LR8, 2 to 4 bands, offline and streamed,
  also when the bands' effects have different latencies (bands aligned like ParallelMix);
* each band's complex response equals the LR tree built from ``scipy.signal.butter``
  (lowpass/highpass squared, phase-compensation allpass = LP^2 + HP^2 of the upper crossover),
  and is -6.02 dB at its crossovers;
* ``{type: Multiband, sample_rate: SR}`` alone: three bands, a compressor each, crossovers
  200 Hz and 2 kHz; a compressed band is turned down while the others are untouched;
* block rendering of the split equals ``split`` (Python and scripted); clear errors.

The registry contract tests (finite, gradcheck, round trip, blocks == whole, scripted step)
run over ``Multiband.examples()`` in tests/test_contract.py, one of them with band effects of
latencies 0, 1 and 1 frames and a mono-to-stereo band.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss
import torch

from ddsp_models.processors import processor_from_dict
from ddsp_models.processors.blocks import render_in_blocks
from ddsp_models.processors.multiband import Multiband

SR = 16000
HOP = 32
N_IR = 8192  # impulse-response length: the slowest pole (LR8 at 100 Hz) has decayed by then

IDENTITY = {"type": "Gain", "time_varying": False}  # at 0 dB: the identity
MOVING_IDENTITY = {"type": "Gain"}  # time-varying, 1 frame of latency


def impulse(n=N_IR, dtype=torch.float64):
    x = torch.zeros(1, 1, n, dtype=dtype)
    x[..., 0] = 1
    return x


def zero_gains(proc, frames):
    """0 dB for every band's gain (static or per frame)."""
    return {s.name: torch.zeros(s.shape(1, frames), dtype=torch.float64)
            for s in proc.param_specs()}


def magnitude_db(h: np.ndarray) -> np.ndarray:
    return 20 * np.log10(np.abs(np.fft.rfft(h)))


@pytest.mark.parametrize("crossovers,order", [
    ((200.0, 2000.0), 4),
    ((1000.0,), 2),
    ((150.0, 800.0, 4000.0), 6),
    ((100.0, 1000.0, 6000.0), 8),
])
def test_identity_bands_are_flat(crossovers, order):
    n = len(crossovers) + 1
    mb = Multiband(SR, crossovers, [IDENTITY] * n, order=order).double()
    y = mb(impulse(), **zero_gains(mb, 1))[0, 0].numpy()
    mag = magnitude_db(y)
    assert np.abs(mag).max() < 0.01, np.abs(mag).max()
    # not trivially flat: the phase turns (an allpass of order n_cross * order / 2)
    assert np.abs(y[0]) < 0.99
    # float32 too (the filters stay designed in float64; ~0.0015 dB for LR8)
    mb = mb.float()
    params = {k: v.float() for k, v in zero_gains(mb, 1).items()}
    y32 = mb(impulse(dtype=torch.float32), **params)[0, 0].double().numpy()
    assert np.abs(magnitude_db(y32)).max() < 0.01


def scipy_band_responses(crossovers, order, n_freqs=4096):
    """Complex responses of the LR tree's bands from scipy's Butterworth designs."""
    m = order // 2
    sign = -1.0 if m % 2 else 1.0

    def response(btype, f):
        _, h = ss.sosfreqz(ss.butter(m, f, btype, fs=SR, output="sos"), n_freqs)
        return h * h

    low = [response("lowpass", f) for f in crossovers]
    high = [sign * response("highpass", f) for f in crossovers]
    allpass = [lo + hi for lo, hi in zip(low, high)]
    bands, rest = [], np.ones(n_freqs, complex)
    for k in range(len(crossovers)):
        band = rest * low[k]
        for j in range(k + 1, len(crossovers)):
            band = band * allpass[j]
        bands.append(band)
        rest = rest * high[k]
    bands.append(rest)
    return bands


@pytest.mark.parametrize("crossovers,order", [
    ((1000.0,), 2), ((1000.0,), 4), ((200.0, 2000.0), 4), ((300.0, 1000.0, 5000.0), 6)])
def test_band_responses_match_scipy_linkwitz_riley(crossovers, order):
    n = len(crossovers) + 1
    mb = Multiband(SR, crossovers, [IDENTITY] * n, order=order).double()
    bands = mb.split(impulse()[0, 0])
    ref = scipy_band_responses(crossovers, order)
    freqs = np.arange(4096) * SR / (2 * 4096)
    for i, (band, want) in enumerate(zip(bands, ref)):
        got = np.fft.rfft(band.numpy(), 2 * 4096)[:4096]
        assert np.abs(got - want).max() < 1e-8, i
        # around its crossovers (half an octave either side): the LR magnitude in dB
        edges = [f for f in (crossovers[i - 1] if i else None,
                             crossovers[i] if i < len(crossovers) else None) if f]
        near = np.zeros_like(freqs, bool)
        for f in edges:
            near |= (freqs > f / 2 ** 0.5) & (freqs < f * 2 ** 0.5)
        assert np.abs(20 * np.log10(np.abs(got[near]) / np.abs(want[near]))).max() < 1e-6
    # both neighbours are -6.02 dB at their crossover (exactly for one crossover; the other
    # crossovers' skirts move it by less than 0.01 dB here)
    tol = 1e-6 if len(crossovers) == 1 else 0.01
    for k, f in enumerate(crossovers):
        for band in bands[k:k + 2]:
            w = 2 * np.pi * f / SR
            h = np.sum(band.numpy() * np.exp(-1j * w * np.arange(N_IR)))
            assert abs(20 * np.log10(abs(h)) - 20 * np.log10(0.5)) < tol


def test_the_allpass_is_the_crossovers_sum():
    mb = Multiband(SR, (200.0, 2000.0), [IDENTITY] * 3).double()
    x = torch.randn(2, 1, 4000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = mb(x, **zero_gains(mb, 1))
    # the reference: each crossover's LP + HP (scipy, LR4), cascaded
    ref = x.numpy()
    for f in (200.0, 2000.0):
        sos = ss.butter(2, f, fs=SR, output="sos")
        lp = ss.sosfilt(np.concatenate([sos, sos]), ref, axis=-1)
        sos = ss.butter(2, f, "highpass", fs=SR, output="sos")
        ref = lp + ss.sosfilt(np.concatenate([sos, sos]), ref, axis=-1)
    np.testing.assert_allclose(y.numpy(), ref, atol=1e-10)


@pytest.mark.parametrize("dtype,limit_db", [(torch.float64, -0.01), (torch.float32, -0.01)])
def test_bands_of_different_latency_stay_aligned(dtype, limit_db):
    # band effects of latency 0, 1, 0 frames: streamed, the sum is still the flat allpass
    mb = Multiband(SR, (200.0, 2000.0), [IDENTITY, MOVING_IDENTITY, IDENTITY]).to(dtype)
    assert mb.latency_frames(HOP) == 1
    frames = N_IR // HOP
    params = {k: v.to(dtype) for k, v in zero_gains(mb, frames).items()}
    x = impulse(dtype=dtype)
    whole = mb(x, **params)
    with torch.no_grad():
        streamed = render_in_blocks(mb, params, HOP, [x], n_frames=frames,
                                    block_frames=(1, 4, 7, 16))
    assert (streamed - whole).abs().max() < (1e-12 if dtype == torch.float64 else 1e-6)
    mag = magnitude_db(streamed[0, 0].double().numpy())
    assert np.abs(mag).max() < (0.01 if dtype == torch.float64 else 0.02)


def test_defaults_three_compressed_bands():
    mb = processor_from_dict({"type": "Multiband", "sample_rate": SR})
    assert type(mb).__name__ == "Multiband"
    assert mb.crossovers_hz == [200.0, 2000.0] and mb.order == 4
    assert [type(p).__name__ for p in mb.processors] == ["Compressor"] * 3
    assert all(p.sample_rate == SR for p in mb.processors)
    assert {s.name.split(".")[0] for s in mb.param_specs()} == {"0", "1", "2"}
    assert "1.threshold_db" in mb.specs_by_name()
    # another rate reaches the compressors of the default
    assert processor_from_dict({"type": "Multiband", "sample_rate": 44100}).processors[2].sample_rate == 44100
    # a loud 80 Hz tone and a quiet 5 kHz tone; compress only the low band, hard
    t = torch.arange(SR) / SR
    low, high = torch.sin(2 * np.pi * 80 * t), 0.05 * torch.sin(2 * np.pi * 5000 * t)
    x = (low + high)[None, None]
    params = {}
    for i in range(3):
        params.update({f"{i}.threshold_db": torch.full((1, 1), -30.0 if i == 0 else 0.0),
                       f"{i}.ratio": torch.full((1, 1), 10.0 if i == 0 else 1.0),
                       f"{i}.knee_db": torch.zeros(1, 1),
                       f"{i}.attack_s": torch.full((1, 1), 1e-3),
                       f"{i}.release_s": torch.full((1, 1), 0.05),
                       f"{i}.makeup_db": torch.zeros(1, 1)})
    y = mb(x, **params)[0, 0, SR // 2:]  # steady state
    spec = np.abs(np.fft.rfft(y.numpy()))  # 2 Hz bins over half a second
    ref = np.abs(np.fft.rfft(x[0, 0, SR // 2:].numpy()))
    low_db = 20 * np.log10(spec[40] / ref[40])
    high_db = 20 * np.log10(spec[2500] / ref[2500])
    # 0 dBFS peak (about -3 dB RMS-ish level) over -30 dB at ratio 10: ~25 dB of reduction
    assert low_db < -15, low_db
    assert abs(high_db) < 0.1, high_db


def test_split_streams_like_offline_and_scripted():
    mb = Multiband(SR, (150.0, 800.0, 4000.0), IDENTITY, order=6).double()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 2, 700, dtype=torch.float64, generator=g)
    ref = mb.split(x)
    scripted = torch.jit.script(mb)
    for fn in (mb._split_block, scripted._split_block):
        hist = torch.zeros(2, 2, mb.n_sections, 4, dtype=torch.float64)
        got = [[] for _ in ref]
        for a, b in ((0, 1), (1, 64), (64, 65), (65, 700)):
            bands, hist = fn(x[..., a:b], hist)
            for acc, band in zip(got, bands):
                acc.append(band)
        for acc, want in zip(got, ref):
            assert (torch.cat(acc, -1) - want).abs().max() < 1e-10 * want.abs().max()


def test_children_given_as_instances_and_round_trip():
    from ddsp_models.processors.gain import Gain

    mb = Multiband(SR, [500.0], [Gain(time_varying=False), {"type": "Compressor"}],
                   names=["lo", "hi"])
    cfg = mb.config()
    assert cfg["processors"][1]["sample_rate"] == SR
    again = processor_from_dict({"type": "Multiband", **cfg})
    assert again.config() == cfg
    assert [s.name for s in again.param_specs()][0] == "lo.gain_db"


@pytest.mark.parametrize("kwargs,match", [
    ({"crossovers_hz": (2000.0, 200.0)}, "increase"),
    ({"crossovers_hz": (200.0, 9000.0)}, "lie in"),
    ({"crossovers_hz": ()}, "at least one"),
    ({"processors": [IDENTITY, IDENTITY]}, "3 bands"),
    ({"order": 3}, "even"),
    ({"processors": [{"type": "Harmonic"}] * 3}, "effects"),
])
def test_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Multiband(SR, **kwargs)
