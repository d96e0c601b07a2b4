"""f0 without the CREPE weights: YIN accuracy at several rates, Viterbi vs a slow reference,
unvoiced filling, alignment, frame counts and input checks (CREPE itself: test_crepe.py)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ddsp_models.features import compute_f0
from ddsp_models.features.checks import check_audio, hop_from_rates
from ddsp_models.features.f0 import fill_unvoiced
from ddsp_models.features.viterbi import band_from_matrix, triangular_transition, viterbi_banded
from ddsp_models.features.yin import cmnd

RATES = [(16000, 100), (22050, 50), (44100, 100), (48000, 100)]
TONES = [50.0, 80.0, 131.0, 220.0, 440.0, 700.0, 1000.0, 1500.0, 2000.0]


def tone(f0, sr, seconds=0.5, harmonic=False, amp=0.5):
    t = torch.arange(int(sr * seconds), dtype=torch.float64) / sr
    n_harm = int(min(8, (sr / 2) // f0)) if harmonic else 1
    x = sum(torch.sin(2 * math.pi * f0 * k * t + 0.3 * k) / k for k in range(1, n_harm + 1))
    return (amp * x / x.abs().max()).float()


def cents(a, b):
    return 1200 * torch.log2(torch.as_tensor(a, dtype=torch.float64) / torch.as_tensor(b, dtype=torch.float64))


@pytest.mark.parametrize("sr,fr", RATES)
@pytest.mark.parametrize("harmonic", [False, True])
def test_yin_within_20_cents(sr, fr, harmonic):
    x = torch.stack([tone(f, sr, harmonic=harmonic) for f in TONES])
    f0, conf = compute_f0(x, sr, fr, method="yin", refine=False)
    assert f0.shape == conf.shape == (len(TONES), x.shape[-1] // (sr // fr))
    # The first and last frame see the zero padding beyond the tone (half a frame of silence).
    err = cents(f0[:, 1:-1], torch.tensor(TONES)[:, None]).abs()
    frac = (err < 20).double().mean(dim=1)
    assert (frac > 0.95).all(), dict(zip(TONES, frac.tolist()))
    # YIN frames span 2 / fmin = 50 ms: away from the padded ends the tone is clearly periodic.
    assert (conf[:, 3:-3] > 0.8).all()


def test_cmnd_matches_direct_definition():
    """d'(tau) from the FFT route equals the textbook double loop."""
    g = torch.Generator().manual_seed(1)
    frames = torch.randn(3, 64, generator=g, dtype=torch.float64)
    tau_max = 24
    got = cmnd(frames, tau_max)
    x = frames.numpy()
    w = 64 - tau_max
    for i in range(3):
        d = np.array([sum((x[i, j] - x[i, j + tau]) ** 2 for j in range(w)) for tau in range(tau_max + 1)])
        ref = np.ones(tau_max + 1)
        for tau in range(1, tau_max + 1):
            ref[tau] = d[tau] * tau / d[1 : tau + 1].sum()
        np.testing.assert_allclose(got[i].numpy(), ref, rtol=1e-9, atol=1e-12)


def test_yin_silence_gives_zero_confidence_and_finite_f0():
    f0, conf = compute_f0(torch.zeros(16000), 16000, 100, method="yin")
    assert torch.isfinite(f0).all() and (f0 > 0).all()
    assert (conf == 0).all()


def _viterbi_numpy(log_e, log_a):
    """Slow, obvious Viterbi: dense transition, loops over time and states."""
    t, s = log_e.shape
    score = np.full((t, s), -np.inf)
    back = np.zeros((t, s), dtype=int)
    score[0] = log_e[0] - np.log(s)
    for k in range(1, t):
        for j in range(s):
            cand = [score[k - 1, i] + log_a[i, j] for i in range(s)]
            back[k, j] = int(np.argmax(cand))
            score[k, j] = cand[back[k, j]] + log_e[k, j]
    path = [int(np.argmax(score[-1]))]
    for k in range(t - 1, 0, -1):
        path.append(back[k, path[-1]])
    return path[::-1]


@given(seed=st.integers(0, 2**31 - 1), width=st.integers(1, 4), jump=st.sampled_from([0.0, 1e-3, 0.1]))
def test_viterbi_matches_slow_numpy(seed, width, jump):
    rng = np.random.default_rng(seed)
    s, t = 17, 12
    post = rng.random((2, t, s)) ** 4 + 1e-3  # peaky, so jumps sometimes win
    post /= post.sum(-1, keepdims=True)
    a = triangular_transition(s, width, jump_prob=jump)
    with np.errstate(divide="ignore"):
        log_a = np.log(a.numpy())
    floor = jump / s
    band = band_from_matrix(a, width, floor=floor)
    got = viterbi_banded(torch.from_numpy(np.log(post)), band, log_jump=math.log(floor) if jump else None)
    for b in range(2):
        assert got[b].tolist() == _viterbi_numpy(np.log(post[b]), log_a)


def test_viterbi_smooths_an_outlier():
    """A one-frame jump far outside the band is overruled; argmax would follow it."""
    s, t = 60, 9
    post = torch.full((1, t, s), 0.01)
    post[0, :, 20] = 0.9
    post[0, 4, 20], post[0, 4, 50] = 0.3, 0.95
    path = viterbi_banded(post.log(), band_from_matrix(triangular_transition(s, 5), 5))
    assert path.tolist() == [[20] * t]
    assert post.argmax(-1)[0, 4] == 50


def test_viterbi_jump_follows_a_sustained_leap_but_not_a_blip():
    s, t, w = 60, 12, 3
    a = triangular_transition(s, w, jump_prob=1e-3)
    band = band_from_matrix(a, w, floor=1e-3 / s)
    post = torch.full((1, t, s), 0.001)
    post[0, :6, 10] = 0.9
    post[0, 6:, 40] = 0.9  # a leap of 30 states, held
    path = viterbi_banded(post.log(), band, log_jump=math.log(1e-3 / s))
    assert path.tolist() == [[10] * 6 + [40] * 6]
    no_jump = viterbi_banded(post.log(), band_from_matrix(triangular_transition(s, w), w))
    assert no_jump.tolist() != path.tolist()  # without jumps the path can only glide
    blip = torch.full((1, t, s), 0.001)
    blip[0, :, 10] = 0.9
    blip[0, 5, 10], blip[0, 5, 40] = 0.2, 0.9
    assert viterbi_banded(blip.log(), band, log_jump=math.log(1e-3 / s)).tolist() == [[10] * t]


def test_band_from_matrix_rejects_wide_matrix():
    with pytest.raises(ValueError, match="width"):
        band_from_matrix(torch.full((5, 5), 0.2), 1)


def test_fill_unvoiced_interpolates_in_log_frequency_and_holds_ends():
    f0 = torch.tensor([[999.0, 100.0, 5.0, 5.0, 400.0, 7.0]])
    voiced = torch.tensor([[False, True, False, False, True, False]])
    out = fill_unvoiced(f0, voiced)[0]
    expected = [100.0, 100.0, 100 * 4 ** (1 / 3), 100 * 4 ** (2 / 3), 400.0, 400.0]
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5)
    # nothing voiced: unchanged
    assert torch.equal(fill_unvoiced(f0, torch.zeros_like(voiced)), f0)


@pytest.mark.parametrize("sr,fr", RATES)
def test_pitch_step_shows_at_the_right_frame(sr, fr):
    """A pitch change at sample s shows in frame round(s / hop) ± 1 (frame t centred on t*hop)."""
    hop = sr // fr
    n = sr // 2
    s = int(0.23 * sr) + 7  # not on a frame boundary
    f = torch.where(torch.arange(n) < s, 220.0, 330.0).double()
    phase = torch.cumsum(2 * math.pi * f / sr, 0)
    x = (0.5 * torch.sin(phase)).float()
    f0, _ = compute_f0(x, sr, fr, method="yin")
    first_high = int(torch.nonzero(f0 > math.sqrt(220 * 330))[0])
    assert abs(first_high - round(s / hop)) <= 1


@pytest.mark.parametrize("n", [16000, 16159, 16160, 16161])
def test_frame_count_is_samples_floor_hop(n):
    f0, conf = compute_f0(torch.randn(2, n) * 0.1, 16000, 100, method="yin")
    assert f0.shape == conf.shape == (2, n // 160)
    f1, _ = compute_f0(torch.randn(n) * 0.1, 16000, 100, method="yin")
    assert f1.shape == (n // 160,)
    f3, _ = compute_f0(torch.randn(2, 1, n) * 0.1, 16000, 100, method="yin")
    assert f3.shape == (2, n // 160)


def test_batch_items_are_independent():
    x = torch.stack([tone(220, 16000), tone(440, 16000)])
    both, _ = compute_f0(x, 16000, 100, method="yin")
    one, _ = compute_f0(x[1], 16000, 100, method="yin")
    torch.testing.assert_close(both[1], one)


# --- input checks (shared by every feature function) ----------------------------------
@pytest.mark.parametrize(
    "audio,sr,fr,match",
    [
        (torch.tensor([0.1, float("nan"), 0.2] * 200), 16000, 100, "NaN"),
        (torch.tensor([0.1, float("inf")] * 200), 16000, 100, "NaN or infinite"),
        (torch.zeros(0), 16000, 100, "empty"),
        (torch.zeros(2, 0), 16000, 100, "empty"),
        (torch.zeros(100), 16000, 100, "shorter than one frame"),
        (torch.zeros(44100), 44100, 250, "does not divide"),
        (torch.zeros(2, 2, 16000), 16000, 100, "mix down"),
        (torch.zeros(1, 1, 1, 16000), 16000, 100, "must be"),
        (torch.zeros(16000), 16000, 0, "positive"),
    ],
)
def test_bad_input_raises_clear_error(audio, sr, fr, match):
    with pytest.raises(ValueError, match=match):
        compute_f0(audio, sr, fr, method="yin")
    with pytest.raises(ValueError, match=match):
        check_audio(audio, sr, fr)


def test_integer_audio_and_unknown_method_are_rejected():
    with pytest.raises(TypeError, match="floating point"):
        compute_f0(torch.zeros(16000, dtype=torch.int16), 16000, 100, method="yin")
    with pytest.raises(ValueError, match="method must be one of"):
        compute_f0(torch.zeros(16000), 16000, 100, method="pyin")


def test_frame_rate_error_suggests_divisors():
    with pytest.raises(ValueError, match=r"\[.*245.*\]|\[.*252.*\]"):
        hop_from_rates(44100, 250)
    assert hop_from_rates(48000, 250) == 192


def test_yin_default_search_range_follows_the_sample_rate():
    # fmax defaults to min(2100, sr/4): an 8 kHz signal works without passing fmax.
    sr = 8000
    t = torch.arange(sr // 2, dtype=torch.float64) / sr
    x = torch.sin(2 * math.pi * 330.0 * t)
    f0, _ = compute_f0(x, sr, 100, method="yin")
    mid = f0[5:-5]
    assert torch.all((1200 * torch.log2(mid / 330.0)).abs() < 20)
