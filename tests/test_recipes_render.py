"""recipes/data/render_fluidsynth.py: rich performances, augmentations, mono and exact length."""

import importlib.util
import os
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

PATH = Path(__file__).resolve().parents[1] / "recipes" / "data" / "render_fluidsynth.py"


@pytest.fixture(scope="module")
def rec():
    spec = importlib.util.spec_from_file_location("render_fluidsynth_h8", PATH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def _notes_from_events(events):
    """[(on_time, off_time, pitch, velocity)] from timed channel messages."""
    on, out = {}, []
    for t, msg in sorted(events, key=lambda e: (e[0], e[1][0] != 0x80)):
        if msg[0] == 0x90:
            on[msg[1]] = (t, msg[2])
        elif msg[0] == 0x80:
            t0, vel = on.pop(msg[1])
            out.append((t0, t, msg[1], vel))
    return sorted(out)


def test_rich_performance_is_monophonic_and_articulated(rec):
    rng = random.Random(0)
    melody = [rec.Note(60 + (k % 8), float(k), 1.0) for k in range(64)]
    by_art = {}
    for art in rec.ARTICULATIONS:
        notes = _notes_from_events(rec.perform_rich(melody, 120.0, random.Random(1), (art,)))
        assert len(notes) == len(melody)
        assert all(a[1] <= b[0] for a, b in zip(notes, notes[1:]))  # never two notes at once
        by_art[art] = notes
    gate = {a: np.mean([(n[1] - n[0]) / 0.5 for n in v]) for a, v in by_art.items()}
    assert gate["legato"] > 0.96 and 0.8 < gate["detache"] < 0.93 and gate["staccato"] < 0.56
    vel_acc = [n[3] for n in by_art["accents"]]
    assert max(vel_acc) - np.median(vel_acc) > 15  # some notes accented
    # a crescendo phrase: velocities rise from its first note to its last
    cres = [n[3] for n in by_art["crescendo"]][:4]
    assert cres[-1] > cres[0] + 20
    with pytest.raises(ValueError, match="articulations"):
        rec.perform_rich(melody, 100.0, rng, ("pizzicato",))


def test_crescendo_expression_ramps_over_the_phrase(rec):
    melody = [rec.Note(62, float(k), 1.0) for k in range(16)]
    ev = rec.perform_rich(melody, 90.0, random.Random(4), ("crescendo",))
    expr = [(t, m[2]) for t, m in ev if m[0] == 0xB0 and m[1] == 11]
    values = np.array([v for _, v in expr])
    drops = np.flatnonzero(np.diff(values) < 0)  # a new phrase starts again from piano
    first = values[: drops[0] + 1] if drops.size else values
    assert first[0] <= 40 and first[-1] >= 115 and np.all(np.diff(first) >= 0)


def test_transpositions_and_exercises_cover_the_whole_range(rec):
    low, high = rec.FULL_RANGES[42]  # cello
    rng = random.Random(2)
    melody = [rec.Note(p, float(k), 1.0) for k, p in enumerate([60, 62, 64, 65, 67])]
    lows = set()
    for _ in range(200):
        t = rec.transpose_randomly(melody, low, high, rng)
        assert low <= min(n.pitch for n in t) and max(n.pitch for n in t) <= high
        assert [n.pitch - t[0].pitch for n in t] == [0, 2, 4, 5, 7]
        lows.add(t[0].pitch)
    assert min(lows) == low and max(lows) == high - 7  # every position in the range is used
    ex = rec.exercises(low, high, random.Random(0), n=3)
    pitches = [n.pitch for m in ex for n in m]
    assert min(pitches) <= low + 2 and max(pitches) >= high - 5
    assert all(low <= p <= high for p in pitches)


def test_peaking_eq_gain_at_its_centre_frequency(rec):
    b, a = rec.peaking_eq(1000.0, 6.0, 1.0, 16000)
    z = np.exp(-2j * np.pi * np.array([1000.0, 50.0, 7000.0]) / 16000)  # z^-1
    h = (b[0] + b[1] * z + b[2] * z ** 2) / (a[0] + a[1] * z + a[2] * z ** 2)
    assert 20 * np.log10(abs(h[0])) == pytest.approx(6.0, abs=1e-9)
    assert abs(20 * np.log10(abs(h[1]))) < 0.2 and abs(20 * np.log10(abs(h[2]))) < 0.5


def test_room_ir_decays_by_60_db_in_rt60(rec):
    sr, rt60 = 16000, 0.8
    ir = rec.room_ir(rt60, sr, random.Random(0), predelay=0.01)
    assert ir[0] == 1.0 and np.all(ir[1:160] == 0)
    tail = ir[160:]
    win = sr // 20
    e = [np.mean(tail[k: k + win] ** 2) for k in range(0, len(tail) - win, win)]
    slope = np.polyfit(np.arange(len(e)) * win / sr, 10 * np.log10(e), 1)[0]  # dB per second
    assert slope == pytest.approx(-60 / rt60, rel=0.15)


def test_augment_keeps_length_and_level_sets_the_peak(rec):
    sr = 16000
    t = np.arange(sr) / sr
    x = 0.5 * np.sin(2 * np.pi * 440 * t)
    for kinds in [("eq",), ("reverb",), ("level",), ("eq", "reverb", "level")]:
        y = rec.augment(x, sr, random.Random(3), kinds)
        assert y.shape == x.shape and np.isfinite(y).all() and np.abs(y).max() <= 1.0
    y = rec.augment(x, sr, random.Random(3), ("level",))
    peak_db = 20 * np.log10(np.abs(y).max())
    assert -20 <= peak_db <= -1
    np.testing.assert_allclose(y / np.abs(y).max(), x / 0.5, atol=1e-12)  # only a gain
    for kinds in [("eq",), ("reverb",), ("eq", "reverb")]:  # colour and room, not level
        for seed in range(5):
            y = rec.augment(0.3 * x, sr, random.Random(seed), kinds)
            assert np.sqrt(np.mean(y ** 2)) == pytest.approx(0.3 * np.sqrt(0.5 * 0.5 / 2))
            assert np.abs(y - 0.3 * x).max() > 1e-3  # and changed


def test_to_mono_averages_channels(rec):
    st = np.stack([np.ones(5), -np.ones(5) * 0.5], 1)
    np.testing.assert_allclose(rec.to_mono(st), 0.25 * np.ones(5))


SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
needs_fluidsynth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not os.path.exists(SOUNDFONT),
    reason="needs fluidsynth and fluid-soundfont-gm")


@needs_fluidsynth
def test_render_is_mono_exactly_as_long_as_asked_at_48k(rec, tmp_path):
    """Generated exercises only (no corpus parse), 48 kHz, every augmentation: mono files
    whose durations add up to exactly --minutes."""
    out = tmp_path / "w"
    assert rec.main(["--program", "73", "--minutes", "0.05", "-o", str(out), "--seed", "2",
                     "--sample-rate", "48000", "--style", "rich", "--melodies", "exercises",
                     "--augment", "eq,reverb,level"]) == 0
    wavs = sorted(out.glob("*.wav"))
    infos = [sf.info(str(w)) for w in wavs]
    assert all(i.channels == 1 and i.samplerate == 48000 for i in infos)
    assert sum(i.frames for i in infos) == round(0.05 * 60 * 48000)
    x, _ = sf.read(str(wavs[0]))
    assert np.abs(x).max() > 0.05
    assert not list(out.glob(".*"))  # no temporary files left


@needs_fluidsynth
def test_render_cli_errors(rec, tmp_path):
    with pytest.raises(SystemExit):
        rec.main(["--minutes", "0", "-o", str(tmp_path)])
    with pytest.raises(SystemExit):
        rec.main(["--minutes", "1", "-o", str(tmp_path), "--augment", "wobble"])
    with pytest.raises(SystemExit):
        rec.main(["--minutes", "1", "-o", str(tmp_path), "--melodies", "exercises"])
    for bad in ("60", "60-66", "70-60", "100-140", "a-b"):
        with pytest.raises(SystemExit):
            rec.main(["--minutes", "1", "-o", str(tmp_path), "--range", bad])
    assert not list(tmp_path.iterdir())  # nothing written


@needs_fluidsynth
def test_range_places_the_melodies(rec, tmp_path):
    """The viola (41) in a range of its own choosing: every voiced frame's pitch (YIN) lies in
    it, against the viola's default range reaching down to C3."""
    from ddsp_models.features import compute_f0

    out = tmp_path / "w"
    assert rec.main(["--program", "41", "--minutes", "0.1", "-o", str(out), "--seed", "3",
                     "--style", "rich", "--melodies", "exercises", "--range", "72-84"]) == 0
    pitches = []
    for w in sorted(out.glob("*.wav")):
        x, sr = sf.read(str(w))
        f0, conf = compute_f0(torch.tensor(x, dtype=torch.float32), sr, 100, method="yin")
        f0, conf = f0.reshape(-1).numpy(), conf.reshape(-1).numpy()
        pitches.append(12 * np.log2(f0[conf > 0.9] / 440) + 69)
    p = np.concatenate(pitches)
    assert p.size > 100
    assert np.quantile(p, 0.02) > 72 - 1.5 and np.quantile(p, 0.98) < 84 + 1.5


@needs_fluidsynth
def test_dry_copy_is_the_augmented_output_before_its_augmentation(rec, tmp_path):
    """--dry-copy pairs: same names and lengths; augmenting the dry copy with the recipe's own
    generator gives the output (to 16-bit rounding); the same seed without --augment renders
    the same dry files."""
    aug, dry, plain = tmp_path / "aug", tmp_path / "dry", tmp_path / "plain"
    common = ["--program", "40", "--minutes", "0.08", "--seed", "2", "--style", "rich",
              "--melodies", "exercises"]
    assert rec.main([*common, "-o", str(aug), "--augment", "eq,reverb",
                     "--dry-copy", str(dry)]) == 0
    assert rec.main([*common, "-o", str(plain)]) == 0
    names = sorted(w.name for w in aug.glob("*.wav"))
    assert names and names == sorted(w.name for w in dry.glob("*.wav"))
    gen = random.Random("augment-2")
    for name in names:
        a, sr = sf.read(str(aug / name))
        d, _ = sf.read(str(dry / name))
        p, _ = sf.read(str(plain / name))
        assert a.shape == d.shape
        np.testing.assert_array_equal(d, p)
        again = rec.augment(d, sr, gen, ("eq", "reverb"))
        assert np.abs(again - a).max() < 2e-4 + 1e-3 * np.abs(a).max()
        assert np.sqrt(np.mean(a ** 2)) == pytest.approx(np.sqrt(np.mean(d ** 2)), rel=1e-3)
        assert np.abs(d / np.abs(d).max() - a / np.abs(a).max()).max() > 0.01  # augmented


def test_dry_copy_errors(rec, tmp_path):
    with pytest.raises(SystemExit):  # without --augment the output is the dry copy
        rec.main(["--minutes", "1", "-o", str(tmp_path / "a"), "--dry-copy", str(tmp_path / "d")])
    with pytest.raises(SystemExit):
        rec.main(["--minutes", "1", "-o", str(tmp_path / "a"), "--augment", "eq",
                  "--dry-copy", str(tmp_path / "a")])
    assert not list(tmp_path.iterdir())


def test_exact_total_without_slivers(rec):
    """The kept lengths add up to the target exactly and no file but an unavoidable one is
    shorter than the minimum (2 s in the recipe)."""
    rng = random.Random(0)
    for target in (1000, 12345, 60000):
        total, files = 0, []
        while total < target:
            take = rec._take(rng.randint(200, 3000), target - total, 200)
            files.append(take)
            total += take
        assert total == target
        assert all(f >= 200 for f in files[:-1]) and (files[-1] >= 200 or len(files) == 1
                                                        or files[-2] < 400)


@pytest.mark.slow
@needs_fluidsynth
def test_rich_corpus_render(rec, tmp_path):
    """The rich style on music21's corpus (parsing it takes a while): mono, exact length."""
    pytest.importorskip("music21")
    out = tmp_path / "w"
    assert rec.main(["--program", "42", "--minutes", "0.3", "-o", str(out), "--seed", "0",
                     "--style", "rich", "--melodies", "corpus", "--augment", "eq"]) == 0
    infos = [sf.info(str(w)) for w in sorted(out.glob("*.wav"))]
    assert all(i.channels == 1 and i.samplerate == 16000 for i in infos)
    assert sum(i.frames for i in infos) == round(0.3 * 60 * 16000)
