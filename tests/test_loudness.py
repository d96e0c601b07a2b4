"""Loudness and RMS level: DDSP's definition (numpy reference), A-weighting, alignment, floor,
gradients."""

import math

import numpy as np
import pytest
import scipy.signal
import torch
from hypothesis import given
from hypothesis import strategies as st

from ddsp_models.features import compute_loudness, compute_mfcc, compute_rms_db
from ddsp_models.features.loudness import a_weighting_db, default_n_fft


def sine(f, sr, seconds=0.5, amp=1.0):
    t = torch.arange(int(sr * seconds), dtype=torch.float64) / sr
    return (amp * torch.sin(2 * math.pi * f * t)).float()


def _a_weight_db_numpy(f):
    """IEC 61672 A-weighting, written independently (scalar formula, numpy)."""
    f = np.asarray(f, dtype=np.float64)
    with np.errstate(divide="ignore"):
        ra = 12194.0**2 * f**4 / (
            (f**2 + 20.6**2) * np.sqrt((f**2 + 107.7**2) * (f**2 + 737.9**2)) * (f**2 + 12194.0**2)
        )
        return np.maximum(20 * np.log10(ra) + 2.0, -80.0)


def _ddsp_loudness_numpy(x, sr, fr, n_fft, range_db=80.0):
    """magenta/ddsp compute_loudness (v2, padding='center', ref_db=0), re-derived in numpy:
    centre-pad n_fft//2 zeros, Hann frames every hop, |rfft|^2 * 10^(A/10), mean over bins,
    10 log10 with power floored at 10^(-range/10), floored at -range. DDSP returns
    samples // hop + 1 frames; ours drops the last one (frames = samples // hop)."""
    hop = sr // fr
    xp = np.pad(x.astype(np.float64), (n_fft // 2, n_fft // 2))
    n = len(x) // hop
    win = scipy.signal.get_window("hann", n_fft)  # periodic, like tf.signal.stft
    frames = np.stack([xp[t * hop : t * hop + n_fft] * win for t in range(n)])
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2
    w = 10 ** (_a_weight_db_numpy(np.fft.rfftfreq(n_fft, 1 / sr)) / 10)
    db = 10 * np.log10(np.maximum((power * w).mean(-1), 10 ** (-range_db / 10)))
    return np.maximum(db, -range_db)


def test_a_weighting_known_values():
    f = torch.tensor([0.0, 100.0, 1000.0, 10000.0])
    got = a_weighting_db(f)
    np.testing.assert_allclose(got.numpy(), _a_weight_db_numpy(f.numpy()), atol=1e-4)
    # Standard table values: 100 Hz -19.1 dB, 1 kHz 0.0 dB, 10 kHz -2.5 dB.
    np.testing.assert_allclose(got[1:].numpy(), [-19.1, 0.0, -2.5], atol=0.06)
    assert got[0] == -80.0


def test_matches_ddsp_definition_at_16k():
    g = torch.Generator().manual_seed(0)
    x = 0.3 * torch.randn(4000, generator=g, dtype=torch.float64)
    x[2000:] *= 0.01
    got = compute_loudness(x, 16000, 250, n_fft=512)
    ref = _ddsp_loudness_numpy(x.numpy(), 16000, 250, 512)
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-6)


def test_other_n_fft_is_referred_to_512_points():
    x = sine(440.0, 16000, 0.25, 0.5)
    ref = _ddsp_loudness_numpy(x.double().numpy(), 16000, 100, 2048)
    got = compute_loudness(x.double(), 16000, 100, n_fft=2048)
    np.testing.assert_allclose(got.numpy(), ref + 10 * np.log10(512 / 2048), atol=1e-6)


@pytest.mark.parametrize("sr,fr", [(16000, 250), (22050, 50), (44100, 100), (48000, 250)])
def test_doubling_amplitude_adds_6_02_db(sr, fr):
    a = compute_loudness(sine(440.0, sr, 0.25, 0.25), sr, fr)
    b = compute_loudness(sine(440.0, sr, 0.25, 0.5), sr, fr)
    np.testing.assert_allclose((b - a)[2:-2].numpy(), 20 * math.log10(2), atol=1e-3)


@pytest.mark.parametrize("sr,fr", [(16000, 250), (22050, 50), (44100, 100), (48000, 250)])
def test_a_weighting_1k_about_19_db_above_100hz(sr, fr):
    hi = compute_loudness(sine(1000.0, sr, 0.5, 0.5), sr, fr)
    lo = compute_loudness(sine(100.0, sr, 0.5, 0.5), sr, fr)
    diff = (hi - lo)[5:-5]
    # A(1 kHz) - A(100 Hz) = 19.1 dB; the 100 Hz tone's window leakage into lower bins that
    # weigh even less and the 32 ms window's resolution leave 18.4-19 dB.
    assert ((diff > 18.0) & (diff < 19.6)).all(), diff
    # a full-scale 1 kHz sine reads ~ +19.8 dB at every rate (power referred to 512 points)
    full = compute_loudness(sine(1000.0, sr, 0.5, 1.0), sr, fr)[5:-5]
    assert ((full - 19.8).abs() < 0.2).all()


def test_silence_gives_the_floor_never_inf_or_nan():
    for range_db in (80.0, 120.0):
        db = compute_loudness(torch.zeros(2, 8000), 16000, 250, range_db=range_db)
        assert torch.isfinite(db).all() and (db == -range_db).all()
    rms = compute_rms_db(torch.zeros(8000), 16000, 250)
    assert (rms == -80.0).all()


@given(amp=st.floats(1e-6, 4.0), f=st.floats(60.0, 6000.0))
def test_loudness_is_finite_and_above_floor(amp, f):
    db = compute_loudness(sine(f, 16000, 0.05, amp), 16000, 250)
    assert torch.isfinite(db).all() and (db >= -80.0).all()


def test_gradcheck_small_case():
    g = torch.Generator().manual_seed(0)
    x = (0.5 * torch.randn(1, 96, generator=g, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda a: compute_loudness(a, 1600, 100, n_fft=32), (x,))
    assert torch.autograd.gradcheck(lambda a: compute_rms_db(a, 1600, 100, frame_size=32), (x,))


def test_rms_db_of_a_sine():
    db = compute_rms_db(sine(500.0, 16000, 0.25, 0.5), 16000, 250, frame_size=512)
    np.testing.assert_allclose(db[5:-5].numpy(), 20 * math.log10(0.5 / math.sqrt(2)), atol=0.05)


@pytest.mark.parametrize("sr,fr", [(16000, 250), (22050, 50), (44100, 100), (48000, 250)])
def test_onset_shows_at_frame_round_s_over_hop(sr, fr):
    """Silence, then a steady tone from sample s: frame t (centred on t*hop) reaches the
    steady level minus 3 dB (half its Hann-squared window filled) at t = round(s / hop) ± 1."""
    hop = sr // fr
    n = int(0.4 * sr)
    s = int(0.17 * sr) + 3
    x = torch.zeros(n)
    x[s:] = sine(1000.0, sr, (n - s) / sr + 1e-9, 0.5)[: n - s]
    db = compute_loudness(x, sr, fr)
    steady = db[-5]
    first = int(torch.nonzero(db >= steady - 3.02)[0])
    assert abs(first - round(s / hop)) <= 1


@pytest.mark.parametrize("sr,fr", [(16000, 100), (22050, 50), (44100, 100), (48000, 250)])
@pytest.mark.parametrize("extra", [0, 1, -1])
def test_frame_counts_agree(sr, fr, extra):
    hop = sr // fr
    n = 20 * hop + extra
    x = 0.1 * torch.randn(2, n)
    want = n // hop
    assert compute_loudness(x, sr, fr).shape == (2, want)
    assert compute_rms_db(x, sr, fr).shape == (2, want)
    assert compute_mfcc(x, sr, fr).shape == (2, want, 30)
    assert compute_loudness(x[0], sr, fr).shape == (want,)


@pytest.mark.parametrize(
    "audio,fr,match",
    [
        (torch.tensor([0.0, float("nan")] * 400), 250, "NaN"),
        (torch.zeros(0), 250, "empty"),
        (torch.zeros(10), 250, "shorter than one frame"),
        (torch.zeros(16000), 300, "does not divide"),
        (torch.zeros(1, 2, 16000), 250, "mix down"),
    ],
)
def test_bad_input(audio, fr, match):
    for fn in (compute_loudness, compute_rms_db, compute_mfcc):
        with pytest.raises(ValueError, match=match):
            fn(audio, 16000, fr)


def test_default_n_fft_follows_the_rate():
    assert default_n_fft(16000) == 512
    assert default_n_fft(22050) == 1024
    assert default_n_fft(44100) == 2048 and default_n_fft(48000) == 2048


def test_dtype_follows_input():
    x = sine(440.0, 16000, 0.1)
    assert compute_loudness(x.double(), 16000, 250).dtype == torch.float64
    assert compute_loudness(x, 16000, 250).dtype == torch.float32
