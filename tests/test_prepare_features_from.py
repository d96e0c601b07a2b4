"""ddsp prepare --features-from: features from one copy of each recording, audio targets from
another (input-side augmentation), checked against preparing each copy on its own."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from ddsp_models.cli import main
from ddsp_models.data.prepare import PrepareConfig, prepare_dataset

SR, FR = 16000, 100
CFG = dict(sample_rate=SR, frame_rate=FR, example_seconds=0.5, hop_seconds=0.25, shard_size=4)


def rms_loudness(audio, sample_rate, frame_rate):
    """Frame RMS in dB: a cheap, exact stand-in (the features' source is what is tested)."""
    hop = sample_rate // frame_rate
    n = audio.shape[-1] // hop
    frames = audio[..., : n * hop].reshape(audio.shape[0], n, hop)
    return 20 * torch.log10(frames.square().mean(-1).sqrt().clamp_min(1e-6))


def zero_crossing_f0(audio, sample_rate, frame_rate, method, viterbi):
    """f0 from the count of rising zero crossings per frame (exact for the test's sines)."""
    hop = sample_rate // frame_rate
    n = audio.shape[-1] // hop
    x = audio[..., : n * hop]
    rising = ((x[..., :-1] < 0) & (x[..., 1:] >= 0)).float()
    rising = torch.cat([rising, torch.zeros_like(x[..., :1])], -1).reshape(x.shape[0], n, hop)
    f0 = rising.sum(-1) * frame_rate
    return f0, (f0 > 0).float()


def _pair(tmp_path, names=("a.wav", "sub/b.wav")):
    """Dry targets (sines at 0.3) and 'augmented' copies (another pitch, 12 dB quieter)."""
    dry, wet = tmp_path / "dry", tmp_path / "wet"
    t = np.arange(int(1.3 * SR)) / SR
    for k, name in enumerate(names):
        for folder, f, amp in ((dry, 300 + 100 * k, 0.3), (wet, 500 + 100 * k, 0.075)):
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            sf.write(folder / name, amp * np.sin(2 * np.pi * f * t), SR, subtype="FLOAT")
    return dry, wet


def _tensors(folder):
    shards = sorted(folder.glob("shard-*.safetensors"))
    parts = [load_file(str(s)) for s in shards]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def _prepare(audio_dir, out, **kw):
    return prepare_dataset(audio_dir, out, PrepareConfig(**CFG), progress=False,
                           f0_fn=zero_crossing_f0, loudness_fn=rms_loudness, log=lambda m: None,
                           **kw)


def test_features_come_from_the_copy_and_audio_from_the_recordings(tmp_path):
    dry, wet = _pair(tmp_path)
    paired = _prepare(dry, tmp_path / "paired", features_dir=wet)
    _prepare(dry, tmp_path / "dry-only")
    _prepare(wet, tmp_path / "wet-only")
    p, d, w = (_tensors(tmp_path / n) for n in ("paired", "dry-only", "wet-only"))
    assert torch.equal(p["audio"], d["audio"])  # targets: the dry recordings
    for key in ("f0_hz", "f0_confidence", "loudness_db"):  # features: the copies
        assert torch.equal(p[key], w[key]), key
        assert not torch.equal(p[key], d[key]) or key == "f0_confidence", key
    # the copies' known values: 12 dB quieter, their own pitch
    assert torch.allclose(p["loudness_db"] - d["loudness_db"],
                          torch.full_like(p["loudness_db"], 20 * np.log10(0.25)), atol=0.05)
    first = p["source"] == 0
    assert torch.allclose(p["f0_hz"][first][:, 1:-1].median(), torch.tensor(500.0), atol=100.0)
    assert paired["features_from"] == str(wet.resolve())
    stats = json.loads((tmp_path / "paired" / "stats.json").read_text())
    wet_stats = json.loads((tmp_path / "wet-only" / "stats.json").read_text())
    assert stats["loudness_db"] == pytest.approx(wet_stats["loudness_db"])


def test_a_copy_of_another_length_is_skipped_with_the_reason(tmp_path):
    dry, wet = _pair(tmp_path)
    sf.write(wet / "a.wav", 0.1 * np.ones(SR), SR)  # 1.0 s instead of 1.3 s
    notes = []
    manifest = prepare_dataset(dry, tmp_path / "ds", PrepareConfig(**CFG), progress=False,
                               f0_fn=zero_crossing_f0, loudness_fn=rms_loudness,
                               log=notes.append, features_dir=wet)
    assert [f["path"] for f in manifest["files"]] == ["sub/b.wav"]
    (skip,) = manifest["skipped"]
    assert skip["path"] == "a.wav" and "aligned sample for sample" in skip["reason"]
    assert "16000 samples" in skip["reason"] and "20800" in skip["reason"]


def test_features_from_user_errors_are_one_line(tmp_path, capsys):
    dry, wet = _pair(tmp_path)
    (wet / "sub" / "b.wav").unlink()
    out = tmp_path / "ds"
    cases = [
        ([str(dry), "-o", str(out), "--features-from", str(wet)], ["sub/b.wav", "same relative names"]),
        ([str(dry), "-o", str(out), "--features-from", str(tmp_path / "nope")], ["nope", "no such folder"]),
        ([str(dry), "-o", str(out), "--features-from", str(dry)], ["recordings folder itself"]),
    ]
    for argv, needles in cases:
        assert main(["prepare", *argv, "--f0", "yin", "--quiet"]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("ddsp prepare: error: "), err
        for n in needles:
            assert n in err[0], (n, err[0])
    assert not out.exists()


def test_features_from_through_the_cli_with_workers(tmp_path):
    """The real analysis (YIN, A-weighted loudness) in worker processes, through the CLI."""
    dry, wet = _pair(tmp_path)
    assert main(["prepare", str(dry), "-o", str(tmp_path / "ds"), "--features-from", str(wet),
                 "--frame-rate", "100", "--example-seconds", "0.5", "--hop-seconds", "0.25",
                 "--f0", "yin", "--workers", "2", "--quiet"]) == 0
    assert main(["prepare", str(wet), "-o", str(tmp_path / "wet-ds"), "--frame-rate", "100",
                 "--example-seconds", "0.5", "--hop-seconds", "0.25", "--f0", "yin",
                 "--quiet"]) == 0
    p, w = _tensors(tmp_path / "ds"), _tensors(tmp_path / "wet-ds")
    assert torch.equal(p["f0_hz"], w["f0_hz"]) and torch.equal(p["loudness_db"], w["loudness_db"])
    voiced = p["f0_confidence"] > 0.5
    # the copies' pitches (500 and 600 Hz), not the recordings' (300, 400)
    assert p["f0_hz"][voiced].min() > 450
