"""ddsp prepare streams each file (issue 18): memory flat in the file's length, and the dataset
of a whole-file read, byte for byte.

The references are independent of the streaming code: ``load_audio`` of the whole file,
zero-padded, with the feature functions run once over it; and the in-memory path (a custom
``load_fn`` returning ``load_audio``'s whole file, what ``prepare`` did before it streamed),
whose output files must equal the streamed run's bytes.
"""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

import ddsp_models.data.prepare as P
from ddsp_models.audio_io import AudioFileError, load_audio, read_blocks
from ddsp_models.data.prepare import PrepareConfig, prepare_dataset
from ddsp_models.errors import DatasetError

SR, FR = 16000, 250
HOP = SR // FR
CFG = dict(sample_rate=SR, frame_rate=FR, example_seconds=1.0, hop_seconds=0.5, shard_size=4)


def frame_f0(audio, sample_rate, frame_rate, method, viterbi):
    """A frame-local stand-in for a pitch tracker that depends on every sample of the frame:
    "f0" = 1000 * frame peak, "confidence" = frame mean |x|."""
    hop = sample_rate // frame_rate
    n = audio.shape[-1] // hop
    frames = audio[..., : n * hop].reshape(1, n, hop)
    return 1000 * frames.abs().amax(-1), frames.abs().mean(-1)


def frame_loudness(audio, sample_rate, frame_rate):
    """Frame RMS in dB."""
    hop = sample_rate // frame_rate
    n = audio.shape[-1] // hop
    frames = audio[..., : n * hop].reshape(1, n, hop)
    return 20 * torch.log10(frames.square().mean(-1).sqrt().clamp_min(1e-6))


def _signal(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A gliding tone with noise, ``(samples,)`` or ``(samples, channels)``, channels differing."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * rate))) / rate
    x = 0.3 * np.sin(2 * np.pi * 300 * t * (1 + 0.05 * t)) + 0.01 * rng.standard_normal(t.size)
    if channels == 1:
        return x
    return np.stack([x * (0.4 + 0.3 * c) + 0.02 * c for c in range(channels)], 1)


@pytest.fixture
def recordings(tmp_path):
    d = tmp_path / "rec"
    d.mkdir()
    sf.write(d / "a_stereo_44k.wav", _signal(4.3, 44100, 2), 44100)   # resampled, 9 segments
    sf.write(d / "b_3ch_22k.flac", _signal(2.2, 22050, 3, 1), 22050)  # resampled, 3 channels
    sf.write(d / "c_short.wav", _signal(0.6, SR, 1, 2), SR)           # < one example: padded
    sf.write(d / "d_odd.wav", _signal(3.0 + 37 / SR, SR, 1, 3), SR)  # not a whole number of hops
    sf.write(d / "e_silent.wav", np.zeros(SR), SR)
    (d / "f_garbage.wav").write_bytes(b"RIFF" + bytes(range(256)) * 2)
    return d


def _run(audio_dir, out, **kw):
    return prepare_dataset(audio_dir, out, PrepareConfig(**CFG), progress=False,
                           f0_fn=frame_f0, loudness_fn=frame_loudness, log=lambda m: None, **kw)


def test_streaming_gives_the_bytes_of_a_whole_file_reference(recordings, tmp_path, monkeypatch):
    monkeypatch.setattr(P, "SEGMENT_SECONDS", 0.5)  # several segments per file
    monkeypatch.setattr(P, "CONTEXT_SECONDS", 0.1)
    monkeypatch.setattr("ddsp_models.audio_io.load_audio",  # the default path never loads whole
                        lambda *a, **k: pytest.fail("load_audio called: not streamed"))
    streamed = _run(recordings, tmp_path / "streamed")
    monkeypatch.undo()
    monkeypatch.setattr(P, "SEGMENT_SECONDS", 0.5)
    monkeypatch.setattr(P, "CONTEXT_SECONDS", 0.1)
    whole = _run(recordings, tmp_path / "whole",
                 load_fn=lambda path, sr: load_audio(path, sample_rate=sr, mono=True))
    assert streamed == whole
    names = sorted(os.listdir(tmp_path / "streamed"))
    assert names == sorted(os.listdir(tmp_path / "whole")) and "stats.json" in names
    for name in names:
        assert (tmp_path / "streamed" / name).read_bytes() == \
            (tmp_path / "whole" / name).read_bytes(), name
    assert [f["path"] for f in streamed["files"]] == ["a_stereo_44k.wav", "b_3ch_22k.flac",
                                                      "c_short.wav", "d_odd.wav"]
    reasons = {s["path"]: s["reason"] for s in streamed["skipped"]}
    assert reasons["e_silent.wav"].startswith("silent: peak -inf dB")
    assert reasons["f_garbage.wav"].startswith("unreadable: AudioFileError: cannot decode")

    # the independent reference: every example against the whole file read at once, padded,
    # and the feature functions run once over all of it
    shards = [load_file(str(tmp_path / "streamed" / s["file"])) for s in streamed["shards"]]
    got = {k: torch.cat([s[k] for s in shards]) for k in shards[0]}
    n_ex, n_frames = CFG["example_seconds"] * SR, int(CFG["example_seconds"] * FR)
    row = 0
    for i, f in enumerate(streamed["files"]):
        x, _ = load_audio(recordings / f["path"], sample_rate=SR, mono=True)
        n_padded = max(int(n_ex), -(-x.numel() // HOP) * HOP)
        padded = torch.cat([x, torch.zeros(n_padded - x.numel())])[None]
        f0, conf = frame_f0(padded, SR, FR, "", True)
        ld = frame_loudness(padded, SR, FR)
        starts = P.slice_starts(x.numel(), int(n_ex), int(CFG["hop_seconds"] * SR), HOP)
        assert f["n_examples"] == len(starts) and f["duration_s"] == x.numel() / SR
        for s in starts:
            assert got["source"][row] == i and got["start"][row] == s
            torch.testing.assert_close(got["audio"][row], padded[0, s: s + int(n_ex)],
                                       rtol=0, atol=0)
            fr = slice(s // HOP, s // HOP + n_frames)
            for key, ref in (("f0_hz", f0), ("f0_confidence", conf), ("loudness_db", ld)):
                torch.testing.assert_close(got[key][row], ref[0, fr], rtol=0, atol=0)
            row += 1
    assert row == len(got["audio"]) == streamed["n_examples"]


def test_a_long_file_is_never_held_whole(tmp_path, monkeypatch):
    """The audio held while reading a file is one segment (features) or one example (the
    shards) plus a read block, however long the file; what an analysis returns (a worker's
    answer to its parent) holds the features, not the audio."""
    d = tmp_path / "rec"
    d.mkdir()
    seconds = 24.0
    sf.write(d / "long.wav", _signal(seconds, 44100, 2), 44100)
    monkeypatch.setattr(P, "SEGMENT_SECONDS", 1.0)
    monkeypatch.setattr(P, "CONTEXT_SECONDS", 0.2)
    readers = []

    class Recording(P.BlockReader):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            readers.append(self)

    monkeypatch.setattr(P, "BlockReader", Recording)
    cfg = PrepareConfig(**CFG)
    res = P._analyse_file(str(d / "long.wav"), cfg, P._default_load, frame_f0, frame_loudness)
    n_file = int(seconds * SR)
    assert res["n_file"] == n_file and "skip" not in res
    assert len(pickle.dumps(res)) < 3 * 4 * (n_file // HOP) + 10_000  # the 3 tracks, no audio
    block = 65536 * SR // 44100 + 1  # one read block, resampled
    assert len(readers) == 1 and readers[0].max_held <= int(1.4 * SR) + block
    m = _run(d, tmp_path / "out")
    assert m["n_examples"] == 47
    assert len(readers) == 3  # the analysis above, then the run's features and examples
    assert readers[2].max_held <= SR + block
    assert n_file > 3 * (int(1.4 * SR) + block)  # the bounds are well below the file


def test_errors_found_mid_file_skip_it_before_any_of_it_is_used(tmp_path):
    d = tmp_path / "rec"
    d.mkdir()
    sf.write(d / "good.wav", _signal(1.5, SR), SR)
    x = _signal(12.0, SR).astype(np.float32)
    x[150_000] = np.nan  # in the third read block
    x[190_001] = np.inf
    sf.write(d / "nan.wav", x, SR, subtype="FLOAT")
    sf.write(tmp_path / "whole.flac", _signal(12.0, SR), SR)
    data = (tmp_path / "whole.flac").read_bytes()
    (d / "truncated.flac").write_bytes(data[: int(0.7 * len(data))])
    assert len(next(read_blocks(d / "truncated.flac"))[1][0]) == 65536  # it starts well
    with pytest.raises(AudioFileError) as whole_error:
        load_audio(d / "nan.wav", SR)
    calls = []

    def counting_f0(audio, *a):
        calls.append(audio.shape[-1])
        return frame_f0(audio, *a)

    m = prepare_dataset(d, tmp_path / "out", PrepareConfig(**CFG), progress=False,
                        f0_fn=counting_f0, loudness_fn=frame_loudness, log=lambda m: None)
    reasons = {s["path"]: s["reason"] for s in m["skipped"]}
    assert set(reasons) == {"nan.wav", "truncated.flac"}
    # the reason a whole-file read gives: the count of bad samples of the whole file
    assert reasons["nan.wav"] == f"unreadable: AudioFileError: {whole_error.value}"
    assert "has 2 NaN or infinite samples" in reasons["nan.wav"]
    assert reasons["truncated.flac"].startswith("unreadable: AudioFileError: cannot decode")
    assert [f["path"] for f in m["files"]] == ["good.wav"] and m["n_examples"] == 2
    assert calls == [int(1.5 * SR)]  # only the good file was analysed
    shards = [load_file(str(tmp_path / "out" / s["file"])) for s in m["shards"]]
    assert all((s["source"] == 0).all() for s in shards)


def test_a_file_changed_during_the_run_stops_it_and_leaves_nothing(tmp_path):
    d = tmp_path / "rec"
    d.mkdir()
    sf.write(d / "a.wav", _signal(2.0, SR), SR)

    def f0_then_replace(audio, *a):  # after the check and the features: a new file, same length
        sf.write(tmp_path / "new.wav", _signal(2.0, SR, seed=9), SR)
        os.replace(tmp_path / "new.wav", d / "a.wav")
        return frame_f0(audio, *a)

    with pytest.raises(DatasetError, match="a.wav read differently from when it was checked"):
        prepare_dataset(d, tmp_path / "out", PrepareConfig(**CFG), progress=False,
                        f0_fn=f0_then_replace, loudness_fn=frame_loudness, log=lambda m: None)
    assert sorted(os.listdir(tmp_path)) == ["rec"]


@pytest.mark.parametrize("channels", [1, 2, 3, 5])
def test_read_blocks_mono_is_load_audio_mono_bit_for_bit(tmp_path, channels):
    path = tmp_path / "x.wav"
    sf.write(path, _signal(1.0, 22050, channels, channels).astype(np.float32), 22050,
             subtype="FLOAT")
    whole, sr = load_audio(path, mono=True)
    for block in (1000, 4096, 65536):
        parts = [b for _, b in read_blocks(path, block, mono=True)]
        assert all(b.dim() == 1 for b in parts) and sr == 22050
        assert torch.cat(parts).numpy().tobytes() == whole.numpy().tobytes()


def test_stats_and_manifest_of_a_streamed_run_are_complete(recordings, tmp_path):
    m = _run(recordings, tmp_path / "out")
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    n_real = sum(-(-int(round(f["duration_s"] * SR)) // HOP) for f in m["files"])
    assert stats["n_frames"] == n_real  # statistics over the files' own frames only
    assert sum(s["n_examples"] for s in m["shards"]) == m["n_examples"] == \
        sum(f["n_examples"] for f in m["files"])
