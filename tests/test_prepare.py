"""ddsp prepare: reading mixed inputs, slicing, shards, manifest, stats, atomicity, skipping."""

import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from ddsp_models.data.prepare import PrepareConfig, prepare_dataset, slice_starts
from ddsp_models.data.dataset import ShardDataset, load_manifest
from ddsp_models.data.datamodule import ResumableSampler
from ddsp_models.errors import DatasetError

SR, FR = 16000, 250
HOP = SR // FR


def stub_f0(audio, sample_rate, frame_rate, method, viterbi):
    """Cheap stand-in for CREPE: 440 Hz where the frame has energy, confidence 1 there."""
    n = audio.shape[-1] // (sample_rate // frame_rate)
    frames = audio[..., : n * (sample_rate // frame_rate)].reshape(audio.shape[0], n, -1)
    voiced = (frames.abs().amax(-1) > 1e-3).float()
    return 440.0 * voiced, voiced


def stub_loudness(audio, sample_rate, frame_rate):
    """Frame RMS in dB (not A-weighted; enough to check alignment)."""
    hop = sample_rate // frame_rate
    n = audio.shape[-1] // hop
    frames = audio[..., : n * hop].reshape(audio.shape[0], n, hop)
    return 20 * torch.log10(frames.square().mean(-1).sqrt().clamp_min(1e-6))


@pytest.fixture
def audio_dir(tmp_path):
    d = tmp_path / "recordings"
    (d / "sub").mkdir(parents=True)
    t = np.arange(int(2.5 * 44100)) / 44100
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 440 * t)], 1)
    sf.write(d / "a_stereo44k.wav", stereo, 44100)
    t16 = np.arange(int(1.7 * 16000)) / 16000
    sf.write(d / "sub" / "b_mono16k.flac", 0.4 * np.sin(2 * np.pi * 440 * t16), 16000)
    (d / "c_corrupt.wav").write_bytes(b"RIFF\x00\x01garbage" + os.urandom(300))
    sf.write(d / "d_silent.wav", np.zeros(16000), 16000)
    (d / "notes.txt").write_text("not audio")
    return d


CFG = dict(sample_rate=SR, frame_rate=FR, example_seconds=1.0, hop_seconds=0.5, shard_size=3)


def test_slice_starts():
    assert slice_starts(100, 100, 10, 4) == [0]
    assert slice_starts(50, 100, 10, 4) == [0]
    assert slice_starts(125, 100, 10, 4) == [0, 10, 20, 24]
    assert slice_starts(130, 100, 10, 4) == [0, 10, 20, 30]
    assert slice_starts(120, 100, 10, 4) == [0, 10, 20]


def test_prepare_mixed_folder(audio_dir, tmp_path):
    out = tmp_path / "data"
    messages = []
    m = prepare_dataset(audio_dir, out, PrepareConfig(**CFG), progress=False,
                        f0_fn=stub_f0, loudness_fn=stub_loudness, log=messages.append)
    assert [f["path"] for f in m["files"]] == ["a_stereo44k.wav", os.path.join("sub", "b_mono16k.flac")]
    skipped = {s["path"]: s["reason"] for s in m["skipped"]}
    assert set(skipped) == {"c_corrupt.wav", "d_silent.wav"}
    assert skipped["c_corrupt.wav"].startswith("unreadable")
    assert skipped["d_silent.wav"].startswith("silent")
    assert any("c_corrupt.wav" in msg for msg in messages)
    assert any("d_silent.wav" in msg for msg in messages)
    # 2.5 s → starts 0, .5, 1, 1.5 s; 1.7 s → 0, .5 and the end-aligned 0.7 s
    assert [f["n_examples"] for f in m["files"]] == [4, 3]
    assert m["n_examples"] == 7 and [s["n_examples"] for s in m["shards"]] == [3, 3, 1]
    assert load_manifest(out)["n_examples"] == 7
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))

    ds = ShardDataset(out)
    assert len(ds) == 7
    item = ds[5]
    assert item["audio"].shape == (1, SR) and item["f0_hz"].shape == (FR, 1)
    # the flac example at 0.5 s equals the source (16 kHz, no resampling) sample for sample
    src, _ = sf.read(audio_dir / "sub" / "b_mono16k.flac", dtype="float32")
    assert item["start"] == 8000
    np.testing.assert_allclose(item["audio"][0].numpy(), src[8000:24000], atol=1e-6)
    # the stereo 44.1 kHz file was mixed to mono and resampled: amplitude (0.5 + 0.3) / 2
    a = ds[1]["audio"][0].numpy()
    assert abs(np.abs(a[1000:-1000]).max() - 0.4) < 0.01
    spectrum = np.abs(np.fft.rfft(a))
    assert abs(np.argmax(spectrum) * SR / len(a) - 440) <= 1
    # features are sliced from whole-file tracks in step with the audio
    ld = stub_loudness(item["audio"], SR, FR)[0]
    np.testing.assert_allclose(item["loudness_db"][:, 0].numpy(), ld.numpy(), atol=1e-4)

    stats = json.loads((out / "stats.json").read_text())
    assert stats["pitch_midi"]["mean"] == pytest.approx(69.0)
    assert len(stats["loudness_db"]["quantiles"]) == 101
    assert stats["n_frames"] == int(np.ceil(2.5 * FR)) + int(np.ceil(1.7 * FR))
    assert "notes" in stats and stats["notes"]  # note statistics for ddsp synth


def test_interrupted_prepare_leaves_no_half_written_shard(audio_dir, tmp_path, monkeypatch):
    import safetensors.torch as st

    real_save = st.save_file
    calls = {"n": 0}

    def crashing_save(tensors, filename, metadata=None):
        calls["n"] += 1
        if calls["n"] == 2:  # crash in the middle of writing the second shard
            with open(filename, "wb") as f:
                f.write(b"\x00" * 1000)
            raise KeyboardInterrupt("simulated interruption")
        return real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(st, "save_file", crashing_save)
    out = tmp_path / "data"
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(audio_dir, out, PrepareConfig(**CFG), progress=False,
                        f0_fn=stub_f0, loudness_fn=stub_loudness, log=lambda m: None)
    # built beside DATA_DIR and swapped in only when complete: nothing at all is left
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recordings"]
    with pytest.raises(FileNotFoundError, match="ddsp prepare"):
        ShardDataset(out)
    # a re-run completes
    monkeypatch.setattr(st, "save_file", real_save)
    m = prepare_dataset(audio_dir, out, PrepareConfig(**CFG), progress=False,
                        f0_fn=stub_f0, loudness_fn=stub_loudness, log=lambda m: None)
    assert len(ShardDataset(out)) == m["n_examples"] == 7


def test_all_files_bad_is_a_clear_error(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    sf.write(d / "s.wav", np.zeros(8000), 16000)
    with pytest.raises(DatasetError, match="s.wav: silent"):
        prepare_dataset(d, tmp_path / "o", PrepareConfig(**CFG), progress=False,
                        f0_fn=stub_f0, loudness_fn=stub_loudness, log=lambda m: None)
    assert not (tmp_path / "o").exists()  # a failed run leaves nothing behind
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no audio files"):
        prepare_dataset(tmp_path / "empty", tmp_path / "o2", progress=False)


def test_config_errors():
    with pytest.raises(ValueError, match="does not divide sample_rate"):
        PrepareConfig(sample_rate=16000, frame_rate=300)
    with pytest.raises(ValueError, match="hop_seconds"):
        PrepareConfig(hop_seconds=0.001)


@pytest.mark.parametrize("world", [1, 2])
def test_resumable_sampler_neither_loses_nor_repeats(world):
    n, bs, total = 23, 2, 17  # 23 // (2*world) batches per epoch; run over several epochs
    state = {"done": 0}

    def run(rank, start, stop):
        state["done"] = start
        s = ResumableSampler(n, bs, seed=5, position=lambda: (state["done"], rank, world))
        got = []
        while state["done"] < stop:
            it = iter(s)
            for _ in range(len(s) // bs):
                try:
                    batch = [next(it) for _ in range(bs)]
                except StopIteration:
                    break
                got.append(batch)
                state["done"] += 1
                if state["done"] == stop:
                    break
        return got

    for rank in range(world):
        straight = run(rank, 0, total)
        resumed = run(rank, 0, 7) + run(rank, 7, total)
        assert straight == resumed and len(straight) == total
    # within one global step the ranks see disjoint examples; each epoch is a permutation
    per_rank = [run(r, 0, total) for r in range(world)]
    for step in range(total):
        flat = sum((per_rank[r][step] for r in range(world)), [])
        assert len(set(flat)) == len(flat)
    nb = n // (bs * world)
    epoch0 = sum((per_rank[r][k] for r in range(world) for k in range(nb)), [])
    assert len(set(epoch0)) == nb * bs * world


# --------------------------------------------------------------------------------------
# recipes/data/render_fluidsynth.py: the MIDI it writes, parsed by an independent reader
# --------------------------------------------------------------------------------------
def _load_recipe():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "recipes" / "data" / "render_fluidsynth.py"
    spec = importlib.util.spec_from_file_location("render_fluidsynth", path)
    mod = importlib.util.module_from_spec(spec)
    import sys

    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def _parse_smf(data: bytes):
    """Minimal Standard MIDI File reader: (ticks_per_beat, [(abs_tick, status, d1, d2|None)])."""
    assert data[:4] == b"MThd"
    fmt, ntracks, tpb = int.from_bytes(data[8:10], "big"), int.from_bytes(data[10:12], "big"), \
        int.from_bytes(data[12:14], "big")
    assert fmt == 0 and ntracks == 1
    assert data[14:18] == b"MTrk"
    length = int.from_bytes(data[18:22], "big")
    trk, i, tick, events = data[22:22 + length], 0, 0, []
    assert len(trk) == length
    while i < len(trk):
        delta = 0
        while True:
            b = trk[i]
            i += 1
            delta = (delta << 7) | (b & 0x7F)
            if not b & 0x80:
                break
        tick += delta
        status = trk[i]
        if status == 0xFF:
            kind, ln = trk[i + 1], trk[i + 2]
            events.append((tick, 0xFF, kind, trk[i + 3:i + 3 + ln]))
            i += 3 + ln
            continue
        nbytes = 1 if status & 0xF0 in (0xC0, 0xD0) else 2
        events.append((tick, status, trk[i + 1], trk[i + 2] if nbytes == 2 else None))
        i += 1 + nbytes
    return tpb, events


def test_render_recipe_midi_has_notes_vibrato_and_dynamics():
    import random

    rec = _load_recipe()
    melody = [rec.Note(p, float(k), 1.0) for k, p in enumerate([40, 43, 45, 47, 48, 50, 52, 40])]
    notes = rec.transpose_into_range(melody, *rec.RANGES[40])
    assert all(55 <= n.pitch <= 93 for n in notes)
    assert [n.pitch - notes[0].pitch for n in notes] == [p - 40 for p in (40, 43, 45, 47, 48, 50, 52, 40)]
    data = rec.midi_file_bytes(rec.perform(notes, 90.0, random.Random(3)), program=40, tempo_bpm=90.0)
    tpb, ev = _parse_smf(data)
    tempo = [e for e in ev if e[1] == 0xFF and e[2] == 0x51][0]
    assert int.from_bytes(tempo[3], "big") == round(60e6 / 90)
    assert [e[2] for e in ev if e[1] == 0xC0] == [40]
    ons = [e for e in ev if e[1] == 0x90]
    offs = [e for e in ev if e[1] == 0x80]
    assert [e[2] for e in ons] == [n.pitch for n in notes] and len(offs) == len(notes)
    # each note on sits at its beat, and its note off comes before the next note on
    for k, e in enumerate(ons):
        assert abs(e[0] - k * tpb) <= 1
    assert all(off[0] <= on[0] for off, on in zip(offs[:-1], ons[1:]))
    vel = [e[3] for e in ons]
    assert len(set(vel)) > 3 and all(1 <= v <= 127 for v in vel)
    bends = [(e[3] << 7 | e[2]) - 8192 for e in ev if e[1] == 0xE0]
    cents = [b / 8191 * 200 for b in bends]
    assert max(cents) > 10 and min(cents) < -10 and max(map(abs, cents)) <= 35.1  # vibrato
    expr = [e[3] for e in ev if e[1] == 0xB0 and e[2] == 11]
    assert len(set(expr)) > 10  # expression moves
    rpn = [(e[2], e[3]) for e in ev if e[1] == 0xB0 and e[2] in (101, 100, 6)]
    assert rpn[:3] == [(101, 0), (100, 0), (6, 2)]  # bend range ±2 semitones
    again = rec.midi_file_bytes(rec.perform(notes, 90.0, random.Random(3)), 40, 90.0)
    assert again == data
    with pytest.raises(ValueError, match="program"):
        rec.midi_file_bytes([], program=128, tempo_bpm=90)


@pytest.mark.slow
def test_render_recipe_end_to_end(tmp_path):
    import shutil

    rec = _load_recipe()
    if shutil.which("fluidsynth") is None or not os.path.exists(rec.SOUNDFONT):
        pytest.skip("needs fluidsynth and fluid-soundfont-gm")
    pytest.importorskip("music21")
    assert rec.main(["--program", "73", "--minutes", "0.2", "-o", str(tmp_path / "w"), "--seed", "1"]) == 0
    wavs = sorted((tmp_path / "w").glob("*.wav"))
    total = sum(sf.info(str(w)).duration for w in wavs)
    assert total >= 12 and all(sf.info(str(w)).samplerate == 16000 for w in wavs)
    x, _ = sf.read(str(wavs[0]))
    assert np.abs(x).max() > 0.01


def test_prepare_cli_with_real_features(tmp_path):
    """`ddsp prepare` end to end with the real loader, YIN and A-weighted loudness."""
    from ddsp_models.cli import main

    d = tmp_path / "in"
    d.mkdir()
    t = np.arange(int(1.5 * 22050)) / 22050
    sf.write(d / "tone.ogg", 0.5 * np.sin(2 * np.pi * 330 * t), 22050)
    out = tmp_path / "out"
    assert main(["prepare", str(d), "-o", str(out), "--f0", "yin", "--example-seconds", "1",
                 "--hop-seconds", "0.5", "--quiet"]) == 0
    ds = ShardDataset(out)
    assert len(ds) == 2 and ds.manifest["f0_method"] == "yin"
    item = ds[0]
    conf = item["f0_confidence"][:, 0]
    f0 = item["f0_hz"][:, 0][conf > 0.5]
    assert len(f0) > 200 and torch.allclose(f0.median(), torch.tensor(330.0), rtol=0.01)
    louder = ds[0]["loudness_db"][50:200].mean()
    assert louder > -40  # a -6 dBFS tone is loud
    stats = json.loads((out / "stats.json").read_text())
    assert stats["pitch_midi"]["quantiles"][50] == pytest.approx(12 * np.log2(330 / 440) + 69, abs=0.2)


@pytest.mark.slow  # spawns two processes that import torch: ~15 s idle, much more on a busy machine
def test_workers_give_the_same_shards(audio_dir, tmp_path):
    from safetensors.torch import load_file

    kw = dict(progress=False, f0_fn=stub_f0, loudness_fn=stub_loudness, log=lambda m: None)
    a = prepare_dataset(audio_dir, tmp_path / "serial", PrepareConfig(**CFG), workers=0, **kw)
    b = prepare_dataset(audio_dir, tmp_path / "parallel", PrepareConfig(**CFG), workers=2, **kw)
    assert a["shards"] == b["shards"] and a["skipped"] == b["skipped"]
    for s in a["shards"]:
        ta = load_file(str(tmp_path / "serial" / s["file"]))
        tb = load_file(str(tmp_path / "parallel" / s["file"]))
        assert all(torch.equal(ta[k], tb[k]) for k in ta)
