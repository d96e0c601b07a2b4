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
    names = sorted(p.name for p in out.iterdir())
    assert names == ["shard-00000.safetensors"]  # the complete one only: no temp, no manifest
    assert real_save is not None and st.load_file is not None
    assert st.load_file(str(out / "shard-00000.safetensors"))["audio"].shape == (3, SR)
    with pytest.raises(FileNotFoundError, match="ddsp prepare"):
        ShardDataset(out)
    # a re-run replaces everything and completes
    monkeypatch.setattr(st, "save_file", real_save)
    m = prepare_dataset(audio_dir, out, PrepareConfig(**CFG), progress=False,
                        f0_fn=stub_f0, loudness_fn=stub_loudness, log=lambda m: None)
    assert len(ShardDataset(out)) == m["n_examples"] == 7


def test_all_files_bad_is_a_clear_error(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    sf.write(d / "s.wav", np.zeros(8000), 16000)
    with pytest.raises(RuntimeError, match="s.wav: silent"):
        prepare_dataset(d, tmp_path / "o", PrepareConfig(**CFG), progress=False,
                        f0_fn=stub_f0, loudness_fn=stub_loudness, log=lambda m: None)
    with pytest.raises(FileNotFoundError, match="no audio files"):
        prepare_dataset(tmp_path / "o", tmp_path / "o2", progress=False)


def test_config_errors():
    with pytest.raises(ValueError, match="multiple of frame_rate"):
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
