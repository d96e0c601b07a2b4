"""Autotune, scales and key detection (``ddsp_models.transfer.autotune``) and the transfer
options that drive them (``autotune``, ``scale``, ``note_threshold``, ``quiet_db``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ddsp_models.errors import InvalidInputError
from ddsp_models.transfer.autotune import (
    Scale,
    autotune,
    detect_key,
    hz_to_midi,
    midi_to_hz,
    parse_scale,
    resolve_scale,
)

MAJOR = (0, 2, 4, 5, 7, 9, 11)


def cents_off_scale(f0_hz, pitch_classes) -> np.ndarray:
    """Each frame's distance in cents to the nearest note of the pitch classes (any octave)."""
    m = hz_to_midi(f0_hz)
    pcs = np.asarray(pitch_classes, float)
    d = (m[:, None] - pcs[None, :]) % 12.0
    return 100.0 * np.minimum(d, 12.0 - d).min(1)


def detuned_melody(tonic=2, frames=2000, seed=0):
    """A melody of notes of D major (tonic 2), each detuned by up to ±45 cents, with ±20 cent
    vibrato; some frames unvoiced (f0 filled with a glide)."""
    rng = np.random.default_rng(seed)
    degrees = np.array(MAJOR)
    notes = 62 + rng.choice(degrees, size=frames // 50) + 12 * rng.integers(-1, 2, frames // 50)
    midi = np.repeat(notes + tonic - 2, 50).astype(float)
    midi += np.repeat(rng.uniform(-0.45, 0.45, frames // 50), 50)
    midi += 0.2 * np.sin(np.arange(frames) * 2 * np.pi * 5 / 250)
    voiced = np.ones(frames, bool)
    voiced[::50] = False
    return midi_to_hz(midi), voiced


@pytest.mark.parametrize("text,tonic,mode", [
    ("C#minor", 1, "minor"), ("Bbmajor", 10, "major"), ("A minor", 9, "minor"),
    ("f#-min", 6, "minor"), ("Eb", 3, "major"), ("Bm", 11, "minor"), ("B major", 11, "major"),
    ("Gbmaj", 6, "major"), ("chromatic", None, "chromatic"), ("MAJOR", None, "major"),
    ("minor", None, "minor"),
])
def test_parse_scale(text, tonic, mode):
    assert parse_scale(text) == Scale(tonic, mode)


@pytest.mark.parametrize("bad", ["H major", "C lydian", "", "#", "Cbb"])
def test_parse_scale_refuses_with_the_choices(bad):
    with pytest.raises(InvalidInputError, match="chromatic, major, minor"):
        parse_scale(bad)


def test_autotune_one_snaps_every_voiced_frame_within_5_cents():
    f0, voiced = detuned_melody()
    sc = resolve_scale("D major", f0, voiced)
    out = autotune(f0, voiced, 1.0, sc)
    assert cents_off_scale(f0[voiced], (2, 4, 6, 7, 9, 11, 1)).max() > 40  # detuned before
    assert cents_off_scale(out[voiced], sc.pitch_classes).max() < 5
    assert np.array_equal(out[~voiced], f0[~voiced])  # unvoiced frames untouched
    # nearest degree: no frame moves by more than half the largest scale step (100 cents)
    assert np.abs(1200 * np.log2(out / f0)).max() <= 100 + 1e-6


def test_autotune_zero_leaves_f0_unchanged_and_half_halves_the_distance():
    f0, voiced = detuned_melody(seed=1)
    sc = Scale(2, "major")
    assert np.array_equal(autotune(f0, voiced, 0.0, sc), f0)
    half = autotune(f0, voiced, 0.5, sc)
    full = autotune(f0, voiced, 1.0, sc)
    c_half = 1200 * np.log2(half / f0)
    c_full = 1200 * np.log2(full / f0)
    assert np.allclose(c_half, 0.5 * c_full, atol=1e-6)


def test_chromatic_snaps_to_semitones():
    f0 = midi_to_hz(np.array([60.3, 61.49, 69.51, 40.0]))
    out = hz_to_midi(autotune(f0, np.ones(4, bool), 1.0, parse_scale("chromatic")))
    assert np.allclose(out, [60, 61, 70, 40])


@pytest.mark.parametrize("tonic,mode", [(0, "major"), (7, "major"), (10, "major"),
                                        (9, "minor"), (4, "minor")])
def test_key_detection_on_generated_melodies(tonic, mode):
    """A random walk over the scale degrees that often returns to the tonic triad (as tunes
    do), in a few octaves: the detected key is the one it was generated in."""
    rng = np.random.default_rng(tonic)
    steps = np.array(MAJOR if mode == "major" else (0, 2, 3, 5, 7, 8, 10))
    triad = [0, 2, 4]
    idx = []
    for _ in range(60):
        idx.append(rng.choice(triad) if rng.random() < 0.5 else rng.integers(0, 7))
    notes = 48 + tonic + steps[np.array(idx)] + 12 * rng.integers(-1, 1, len(idx))
    durations = rng.integers(20, 80, len(notes))
    f0 = midi_to_hz(np.repeat(notes, durations) + rng.normal(0, 0.1, durations.sum()))
    sc, r = detect_key(f0)
    assert (sc.tonic, sc.mode) == (tonic, mode) and r > 0.6


def test_major_given_detects_only_the_tonic():
    f0, voiced = detuned_melody(tonic=7)  # G major
    sc = resolve_scale("major", f0, voiced)
    assert sc == Scale(7, "major")
    assert detect_key(np.zeros(10))[1] == 0.0  # nothing voiced: no key, no error


def test_amount_out_of_range_is_refused():
    with pytest.raises(InvalidInputError, match="between 0"):
        autotune(np.ones(3) * 440, np.ones(3, bool), 1.5, Scale(0, "major"))


# ----------------------------------------------------------------- through the transfer API
def _model(stats=True):
    from ddsp_models.nn import Autoencoder

    g = {"nodes": {"harmonic": {"type": "Harmonic", "sample_rate": 8000, "n_harmonics": 4}},
         "edges": ["harmonic -> out"]}
    m = Autoencoder(graph=g, sample_rate=8000, frame_rate=100,
                    decoder={"hidden_size": 8, "mlp_size": 8, "mlp_layers": 1})
    if stats:
        q = np.linspace(-40, -10, 101).tolist()
        m.dataset_stats = {"pitch_midi": {"mean": 60.0}, "loudness_db_voiced": {"quantiles": q}}
    return m.eval()


def _tone(midi_notes, sr=8000, note_s=0.3):
    f0 = np.repeat(midi_to_hz(np.asarray(midi_notes, float)), int(note_s * sr))
    ph = 2 * np.pi * np.cumsum(f0) / sr
    x = 0.3 * np.sin(ph) + 0.1 * np.sin(2 * ph)
    return torch.from_numpy(x).float()


def test_transfer_autotune_puts_the_model_on_the_scale():
    from ddsp_models.features.f0 import F0_METHODS
    from ddsp_models.transfer import transfer_with_features

    x = _tone([60.35, 62.4, 64.3, 65.6, 67.3, 69.4], note_s=0.15)  # C major, 30-40 c sharp
    m = _model(stats=False)
    kw = dict(f0_method="yin", auto_adjust=False)
    off = transfer_with_features(m, x, 8000, **kw)
    on = transfer_with_features(m, x, 8000, autotune=1.0, scale="Cmajor", **kw)
    assert off.scale is None and on.scale == "C major"
    voiced = (on.features.confidence >= F0_METHODS["yin"]).numpy()
    assert cents_off_scale(off.f0_hz.numpy()[voiced], MAJOR).max() > 20
    assert cents_off_scale(on.f0_hz.numpy()[voiced], MAJOR).max() < 5
    z = transfer_with_features(m, x, 8000, autotune=0.0, scale="C#minor", **kw)
    assert torch.equal(z.f0_hz, off.f0_hz) and torch.equal(z.audio, off.audio)
    det = transfer_with_features(m, x, 8000, autotune=1.0, **kw)  # key detected
    assert any("detected" in n for n in det.notes)


def test_note_threshold_and_quiet_db_reach_auto_adjust():
    from ddsp_models.transfer import transfer_with_features

    x = _tone([60, 62, 64, 65])
    x[4000:6000] *= 0.05  # a quiet passage
    m = _model()
    base = transfer_with_features(m, x, 8000, f0_method="yin")
    # the quiet passage's note ratio is ~1.6, the loud notes' ~2.1: at 1.8 it is no note
    strict = transfer_with_features(m, x, 8000, f0_method="yin", note_threshold=1.8)
    q = slice(45, 55)  # frames inside the quiet passage
    assert strict.loudness_db[q].mean() < base.loudness_db[q].mean() - 1
    none = transfer_with_features(m, x, 8000, f0_method="yin", quiet_db=0.0)
    deep = transfer_with_features(m, x, 8000, f0_method="yin", quiet_db=60.0)
    assert (deep.loudness_db <= none.loudness_db + 1e-4).all()
    assert (deep.loudness_db < none.loudness_db - 0.5).any()  # off frames lowered


def test_loudness_map_reaches_auto_adjust():
    from ddsp_models.transfer import transfer_with_features

    x = _tone([60, 62, 64, 65])
    x[4000:6000] *= 0.3  # a softer passage: dynamics that "level" keeps
    m = _model()
    kw = dict(f0_method="yin", quiet_db=0.0)
    level = transfer_with_features(m, x, 8000, **kw)
    quant = transfer_with_features(m, x, 8000, loudness_map="quantiles", **kw)
    top = max(m.dataset_stats["loudness_db_voiced"]["quantiles"])
    diff = (level.loudness_db - level.features.loudness_db)[level.loudness_db < top - 1e-3]
    assert float(diff.max() - diff.min()) < 1e-3  # one shift for every uncapped frame
    qd = quant.loudness_db - quant.features.loudness_db
    assert float(qd.max() - qd.min()) > 1.0  # DDSP's map is no shift
    with pytest.raises(InvalidInputError, match="loudness_map must be one of"):
        transfer_with_features(m, x, 8000, loudness_map="peak", **kw)


def test_scale_names_keep_the_users_spelling():
    assert parse_scale("Bbmajor").name == "Bb major"
    assert parse_scale("c#-minor").name == "C# minor"
    assert Scale(10, "major").name == "A# major" and parse_scale("chromatic").name == "chromatic"
