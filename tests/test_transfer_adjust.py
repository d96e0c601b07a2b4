"""Auto-adjust against hand-computed expectations on constructed features and statistics."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ddsp_models.data.stats import QUANTILE_LEVELS, compute_stats
from ddsp_models.transfer.adjust import (auto_adjust, detect_notes, level_map, octave_shift,
                                        quantile_map)


def midi(f):
    return 12 * np.log2(np.asarray(f) / 440.0) + 69


@pytest.mark.parametrize("target, expected", [(69.0, 1), (57.0 + 17.0, 1), (57.0 - 25.0, -2),
                                               (57.0 + 5.0, 0), (57.0 + 31.0, 3)])
def test_octave_shift_hand_computed(target, expected):
    pitch = np.full(100, 57.0)  # A3 on every note-on frame
    pitch[::2] = 20.0           # off frames do not count
    mask = np.ones(100, bool)
    mask[::2] = False
    assert octave_shift(pitch, mask, target) == expected
    assert octave_shift(pitch, np.zeros(100, bool), target) == 0  # no note: no shift


def test_quantile_map_linear_distributions():
    # input note-on loudness uniform on [-40, 0]; training loudness uniform on [-60, -20]:
    # the quantile map is the shift x -> x - 20
    x = np.linspace(-40.0, 0.0, 1001)
    target = np.linspace(-60.0, -20.0, 101)
    y = quantile_map(x, np.ones_like(x, bool), target)
    np.testing.assert_allclose(y, x - 20.0, atol=1e-9)
    # a scaled target: uniform on [-70, -30] over [-40, 0]... and a narrower one (slope 1/2)
    y2 = quantile_map(x, np.ones_like(x, bool), np.linspace(-50.0, -30.0, 101))
    np.testing.assert_allclose(y2, -50.0 + (x + 40.0) / 2.0, atol=1e-9)
    # fitted on the on-frames only; values beyond their range clip to the target's ends
    z = np.concatenate([x, [-80.0, 10.0]])
    mask = np.concatenate([np.ones_like(x, bool), [False, False]])
    yz = quantile_map(z, mask, target)
    assert yz[-2] == pytest.approx(-60.0) and yz[-1] == pytest.approx(-20.0)


@given(st.lists(st.floats(-80, 0), min_size=5, max_size=200), st.floats(-70, -10),
       st.floats(1, 30))
def test_quantile_map_is_monotone_and_in_range(values, low, width):
    x = np.asarray(values)
    target = np.sort(np.random.default_rng(0).uniform(low, low + width, 101))
    y = quantile_map(x, np.ones_like(x, bool), target)
    order = np.argsort(x, kind="stable")
    assert np.all(np.diff(y[order]) >= -1e-9)
    assert np.all((y >= target[0] - 1e-9) & (y <= target[-1] + 1e-9))


def test_detect_notes_hand_computed():
    # 400 frames: 0..199 a clear note (confidence 1, -20 dB), 200..399 noise (confidence 0.2,
    # -50 dB). Away from the transition the smoothed confidence^2 is the plain value.
    conf = np.r_[np.ones(200), np.full(200, 0.2)]
    ld = np.r_[np.full(200, -20.0), np.full(200, -50.0)]
    mask, ratio = detect_notes(ld, conf, frame_rate=250)  # 40-frame smoothing
    reference = (ld.mean() + 120.0) * 0.7 ** 2  # mean -35 dB
    assert ratio[100] == pytest.approx(1.0 * 100.0 / reference)
    assert ratio[300] == pytest.approx(0.04 * 70.0 / reference)
    assert mask[30:170].all() and not mask[230:370].any()


def test_auto_adjust_end_to_end_hand_computed():
    fr = 250
    n = 500
    conf = np.r_[np.ones(400), np.zeros(100)]        # 400 note frames, then unvoiced
    f0 = np.full(n, 220.0)                            # A3 = MIDI 57
    ld = np.r_[np.linspace(-40.0, 0.0, 400), np.full(100, -70.0)]
    # training data: pitch around A4 (MIDI 69), voiced loudness uniform on [-60, -20]
    stats = {"pitch_midi": {"mean": 69.4}, "quantile_levels": list(QUANTILE_LEVELS),
             "loudness_db_voiced": {"quantiles": list(np.linspace(-60.0, -20.0, 101))}}
    adj = auto_adjust(f0, conf, ld, stats, fr, quiet_db=20.0, loudness_map="quantiles")
    mask, ratio = detect_notes(ld, conf, fr)
    np.testing.assert_array_equal(adj.mask_on, mask)
    assert adj.octaves == 1
    np.testing.assert_allclose(adj.f0_hz, 440.0)
    # expected: the on-frames' CDF (np.quantile of their values) then the training quantiles
    on = ld[mask]
    levels = np.linspace(0, 1, 101)
    expected = np.interp(np.interp(ld, np.quantile(on, levels), levels), levels,
                         np.linspace(-60.0, -20.0, 101))
    expected[~mask] -= 20.0 * (1.0 - np.clip(ratio[~mask], 0, 1))
    np.testing.assert_allclose(adj.loudness_db, expected, atol=1e-9)
    assert np.all(adj.loudness_db[450:] == pytest.approx(-60.0 - 20.0))  # quieted to the floor


def test_auto_adjust_with_real_stats_format():
    # stats written by the data pipeline (compute_stats) are understood as they are
    g = np.random.default_rng(1)
    f0_train = [440.0 * 2 ** (g.normal(0, 0.1, 1000))]
    stats = compute_stats(f0_train, [np.ones(1000)], [g.uniform(-50, -10, 1000)])
    f0 = np.full(300, 110.0)  # two octaves below the training data
    adj = auto_adjust(f0, np.ones(300), np.full(300, -30.0), stats, 250)
    assert adj.octaves == 2 and not adj.notes


def test_transfer_applies_auto_adjust_and_shifts():
    from ddsp_models.nn.autoencoder import Autoencoder
    from ddsp_models.transfer.core import transfer_with_features

    g = {"nodes": {"harmonic": {"type": "Harmonic", "n_harmonics": 4}},
         "edges": ["harmonic -> out"]}
    m = Autoencoder(graph=g, decoder=dict(hidden_size=8, mlp_size=8, mlp_layers=1)).eval()
    m.dataset_stats = {"pitch_midi": {"mean": 69.0}, "quantile_levels": list(QUANTILE_LEVELS),
                       "loudness_db_voiced": {"quantiles": list(np.linspace(-60, -20, 101))}}
    sr = 16000
    t = torch.arange(sr) / sr
    x = 0.5 * torch.sin(2 * np.pi * 220.0 * t)
    on = transfer_with_features(m, x, sr, f0_method="yin", auto_adjust=True)
    off = transfer_with_features(m, x, sr, f0_method="yin", auto_adjust=False, pitch_shift=-12,
                                 loudness_shift=-6)
    mid = slice(50, 200)
    assert on.octaves == 1
    np.testing.assert_allclose(on.f0_hz[mid].numpy(), 440.0, rtol=0.01)
    assert float(on.loudness_db[mid].max()) <= -20.0 + 1e-4  # inside the training range
    np.testing.assert_allclose(off.f0_hz[mid].numpy(), 110.0, rtol=0.01)
    np.testing.assert_allclose(off.loudness_db.numpy(), off.features.loudness_db.numpy() - 6,
                               atol=1e-4)


def _wide_stats():
    """Training pitches spread evenly over MIDI 55..91 (mean 73): its 5-95 % range is
    56.8..89.2."""
    midi_train = np.linspace(55.0, 91.0, 3601)
    return compute_stats([440.0 * 2 ** ((midi_train - 69) / 12)], [np.ones(midi_train.size)],
                         [np.full(midi_train.size, -30.0)])


def test_pitch_range_is_the_middle_90_percent_of_training_pitches():
    from ddsp_models.data.stats import pitch_range

    stats = _wide_stats()
    low, high = pitch_range(stats)
    np.testing.assert_allclose([low, high], np.quantile(np.linspace(55.0, 91.0, 3601),
                                                        [0.05, 0.95]), atol=1e-9)
    assert pitch_range({"pitch_midi": {"mean": 60.0}}) is None  # no quantiles: no range
    # levels between the stored ones are interpolated
    lo2, hi2 = pitch_range(stats, (0.055, 0.5))
    assert lo2 == pytest.approx(55.0 + 0.055 * 36.0, abs=1e-6) and hi2 == pytest.approx(73.0)


@pytest.mark.parametrize("input_midi, expected, ddsp", [(62.0, 0, 1), (84.0, 0, -1),
                                                         (40.0, 2, 3), (100.0, -1, -2)])
def test_auto_adjust_moves_only_melodies_outside_the_training_range(input_midi, expected,
                                                                      ddsp):
    # DDSP's rule (nearest the mean, 73) would move the in-range melodies too: `ddsp`
    stats = _wide_stats()
    f0 = np.full(400, 440.0 * 2 ** ((input_midi - 69) / 12))
    adj = auto_adjust(f0, np.ones(400), np.full(400, -30.0), stats, 250)
    assert adj.octaves == expected
    np.testing.assert_allclose(adj.f0_hz, f0 * 2.0 ** expected)
    mean_only = dict(stats, pitch_midi={"mean": stats["pitch_midi"]["mean"]})
    assert auto_adjust(f0, np.ones(400), np.full(400, -30.0), mean_only, 250).octaves == ddsp


def test_level_map_shifts_the_median_and_caps_at_the_training_maximum():
    # on frames: -40..0 dB (median -20); training voiced loudness uniform on [-60, -20]
    # (median -40): a shift of -20 dB, and nothing can exceed -20
    x = np.r_[np.linspace(-40.0, 0.0, 401), [-90.0, 15.0]]
    mask = np.r_[np.ones(401, bool), [False, False]]
    target = np.linspace(-60.0, -20.0, 101)
    y = level_map(x, mask, target)
    np.testing.assert_allclose(y[:401], x[:401] - 20.0, atol=1e-9)  # dynamics kept
    assert y[-2] == pytest.approx(-110.0) and y[-1] == pytest.approx(-20.0)  # capped above only
    # the median is read at level 0.5 of the stored levels: with levels (i / 100) ** 2, 0.5
    # lies between i = 70 (0.49) and 71 (0.5041), 0.01 / 0.0141 of the way: -60 + 0.4 i dB
    levels = np.linspace(0, 1, 101) ** 2
    median = -60.0 + 0.4 * (70 + 0.01 / 0.0141)
    np.testing.assert_allclose(level_map(x, mask, target, levels)[:401],
                               np.minimum(x[:401] + 20.0 + median, -20.0), atol=1e-9)
    assert np.array_equal(level_map(x, np.zeros_like(mask), target), x)  # no note: unchanged


def test_auto_adjust_level_map_is_the_default_and_quantiles_is_ddsps():
    fr = 250
    conf = np.ones(400)
    f0 = np.full(400, 440.0)
    ld = np.linspace(-50.0, -10.0, 400)  # a crescendo, median -30
    stats = {"pitch_midi": {"mean": 69.0}, "quantile_levels": list(QUANTILE_LEVELS),
             "loudness_db_voiced": {"quantiles": list(np.linspace(-40.0, -30.0, 101))}}
    mask, ratio = detect_notes(ld, conf, fr)
    default = auto_adjust(f0, conf, ld, stats, fr, quiet_db=0.0)
    expected = np.minimum(ld + (-35.0 - np.median(ld[mask])), -30.0)
    np.testing.assert_allclose(default.loudness_db, expected, atol=1e-9)
    ddsp = auto_adjust(f0, conf, ld, stats, fr, quiet_db=0.0, loudness_map="quantiles")
    np.testing.assert_allclose(ddsp.loudness_db, quantile_map(ld, mask, stats[
        "loudness_db_voiced"]["quantiles"], QUANTILE_LEVELS), atol=1e-9)
    with pytest.raises(ValueError, match="loudness_map must be one of"):
        auto_adjust(f0, conf, ld, stats, fr, loudness_map="peak")


def test_quieting_scales_with_the_note_threshold():
    # a raised threshold turns frames with 1 <= ratio < threshold off: they are quieted in
    # proportion to how far below the threshold they fall (at threshold 1, DDSP's 1 - ratio)
    fr = 250
    conf = np.r_[np.ones(200), np.full(200, 0.8)]
    ld = np.r_[np.full(200, -20.0), np.full(200, -30.0)]
    stats = {"pitch_midi": {"mean": 69.0}}  # no loudness quantiles: only the quieting acts
    for threshold in (1.0, 1.5):
        adj = auto_adjust(np.full(400, 440.0), conf, ld, stats, fr, quiet_db=20.0,
                          note_threshold=threshold)
        mask, ratio = detect_notes(ld, conf, fr, note_threshold=threshold)
        expected = ld.copy()
        expected[~mask] -= 20.0 * (1.0 - np.clip(ratio[~mask] / threshold, 0.0, 1.0))
        np.testing.assert_allclose(adj.loudness_db, expected, atol=1e-9)
        if threshold > 1:
            turned_off = ~mask & (ratio >= 1.0)
            assert turned_off.any() and (adj.loudness_db[turned_off] < ld[turned_off] - 1e-6).all()
