"""Resynthesis metrics: closed-form f0/loudness metrics, evaluate() on prepared data, the CLI."""

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from ddsp_models.cli.evaluate import evaluate
from ddsp_models.data.prepare import PrepareConfig, prepare_dataset
from ddsp_models.metrics import f0_metrics, loudness_l1, spectral_distance
from ddsp_models.nn.losses import MultiResolutionSpectralLoss

SR, FR, HOP = 8000, 100, 80


def test_f0_metrics_closed_form():
    ref = torch.full((2, 5), 440.0, dtype=torch.float64)
    cents = torch.tensor([[10.0, -30.0, 60.0, 0.0, -200.0], [49.0, 51.0, 0.0, 5.0, 1000.0]],
                         dtype=torch.float64)
    out = ref * 2 ** (cents / 1200)
    conf = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.1], [0.9, 0.9, 0.9, 0.9, 0.2]])
    m = f0_metrics(out, ref, conf, confidence_threshold=0.85)
    voiced = cents[:, :4].abs()  # last frame of each row is unvoiced in the reference
    assert m["voiced_frames"] == 8
    assert m["f0_l1_cents"] == pytest.approx(float(voiced.mean()), rel=1e-9)
    assert m["f0_outlier_rate"] == pytest.approx(2 / 8)  # 60 and 51 cents
    out[0, 0] = 0.0  # an unvoiced output frame where the reference is voiced is an outlier
    assert f0_metrics(out, ref, conf)["f0_outlier_rate"] == pytest.approx(3 / 8)
    assert math.isnan(f0_metrics(out, ref, torch.zeros_like(conf))["f0_l1_cents"])


def test_loudness_and_spectral_distance():
    assert loudness_l1(torch.tensor([-10.0, -20.0]), torch.tensor([-12.0, -15.0])) == 3.5
    x = torch.randn(1, 1, 4000)
    assert spectral_distance(x, x) == 0.0
    assert spectral_distance(x, 0.5 * x) == pytest.approx(
        float(MultiResolutionSpectralLoss()(x, 0.5 * x)))


def test_metric_fft_sizes_keep_their_duration_across_rates():
    """At 48 kHz the windows are 3x longer in samples (DDSP-VST's 48 kHz setup), the same in
    seconds; the distance of a signal and its 48 kHz version then agree closely."""
    from ddsp_models.metrics import metric_fft_sizes

    assert metric_fft_sizes(16000) == [2048, 1024, 512, 256, 128, 64]
    assert metric_fft_sizes(48000) == [6144, 3072, 1536, 768, 384, 192]
    with pytest.raises(ValueError):
        metric_fft_sizes(0)
    t16, t48 = torch.arange(16000) / 16000, torch.arange(48000) / 48000
    tone = lambda t, f: torch.sin(2 * torch.pi * f * t)[None]  # noqa: E731
    d16 = spectral_distance(tone(t16, 440), tone(t16, 470), 16000)
    d48 = spectral_distance(tone(t48, 440), tone(t48, 470), 48000)
    d48_unscaled = spectral_distance(tone(t48, 440), tone(t48, 470))
    assert abs(d48 - d16) < abs(d48_unscaled - d16)


def _rms_db(audio, sample_rate, frame_rate):
    hop = sample_rate // frame_rate
    n = audio.shape[-1] // hop
    return 20 * torch.log10(audio[..., : n * hop].reshape(audio.shape[0], n, hop)
                            .square().mean(-1).sqrt().clamp_min(1e-5))


def _peak_f0(audio, sample_rate, frame_rate, method=None, viterbi=True):
    """Per-frame f0 from the FFT peak of a 1024-sample window (enough for pure tones)."""
    hop = sample_rate // frame_rate
    n = audio.shape[-1] // hop
    x = torch.nn.functional.pad(audio, (512, 512))
    frames = x.unfold(-1, 1024, hop)[:, :n] * torch.hann_window(1024)
    spec = torch.fft.rfft(frames, n=8192).abs()
    f0 = spec.argmax(-1).float() * sample_rate / 8192
    return f0, torch.ones_like(f0)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    (root / "a").mkdir()
    t = torch.arange(2 * SR) / SR
    tone = 0.5 * torch.sin(2 * math.pi * 300 * t)
    (root / "a" / "x.wav").write_bytes(b"")
    prepare_dataset(root / "a", root / "data",
                    PrepareConfig(sample_rate=SR, frame_rate=FR, example_seconds=1.0,
                                  hop_seconds=0.5, f0_method="yin"),
                    progress=False, load_fn=lambda p, sr: (tone[None], SR),
                    f0_fn=_peak_f0, loudness_fn=_rms_db, log=lambda m: None)
    return root / "data"


class ToneModel(nn.Module):
    """A stand-in model: the original scaled by ``gain``, or a 300 Hz * ``ratio`` sine."""

    sample_rate, frame_rate = SR, FR

    def __init__(self, ratio=None, gain=1.0):
        super().__init__()
        self.ratio, self.gain = ratio, gain

    def forward(self, f0, loudness, audio=None):
        if self.ratio is None:
            return self.gain * audio
        n = f0.shape[1] * HOP
        t = torch.arange(n) / SR
        return self.gain * 0.5 * torch.sin(2 * math.pi * 300 * self.ratio * t).expand(f0.shape[0], 1, n)


def test_evaluate_known_errors(data_dir):
    kw = dict(f0_fn=lambda a, sr, fr, m: _peak_f0(a, sr, fr), loudness_fn=_rms_db)
    exact = evaluate(ToneModel(), data_dir, **kw)
    assert exact["n_examples"] == 3 and exact["f0_method"] == "yin"
    assert exact["spectral_distance"] == 0.0 and exact["loudness_l1_db"] < 1e-4
    assert exact["f0_l1_cents"] < 5 and exact["f0_outlier_rate"] == 0.0
    quiet_sharp = evaluate(ToneModel(ratio=2 ** (100 / 1200), gain=0.5), data_dir, **kw)
    assert quiet_sharp["loudness_l1_db"] == pytest.approx(20 * math.log10(2), abs=0.05)
    assert quiet_sharp["f0_l1_cents"] == pytest.approx(100, abs=6)
    assert quiet_sharp["f0_outlier_rate"] == 1.0
    assert quiet_sharp["spectral_distance"] > 1.0


def test_evaluate_cli_on_exported_model(data_dir, tmp_path, capsys):
    from ddsp_models.cli import main
    from ddsp_models.nn.autoencoder import Autoencoder

    graph = {"nodes": {"h": {"type": "Harmonic", "sample_rate": SR, "n_harmonics": 4}},
             "edges": ["h -> out"]}
    m = Autoencoder(graph=graph, sample_rate=SR, frame_rate=FR,
                    decoder=dict(hidden_size=8, mlp_size=8, mlp_layers=1))
    m.save_pretrained(tmp_path / "model")
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--model", str(tmp_path / "model"), str(data_dir), "-o", str(out),
                 "--f0", "yin"]) == 0
    metrics = json.loads(out.read_text())
    assert set(metrics) >= {"spectral_distance", "loudness_l1_db", "f0_l1_cents", "f0_outlier_rate"}
    assert np.isfinite(metrics["spectral_distance"]) and np.isfinite(metrics["loudness_l1_db"])
    assert json.loads(capsys.readouterr().out)["n_examples"] == 3


def test_evaluate_rejects_mismatched_rates(data_dir):
    class Other(ToneModel):
        sample_rate = 16000

    with pytest.raises(ValueError, match="--sample-rate 16000"):
        evaluate(Other(), data_dir, f0_fn=_peak_f0, loudness_fn=_rms_db)


def test_evaluate_cli_user_errors_are_one_line_before_the_model_runs(data_dir, tmp_path, capsys):
    """Issue 18 item 10: batch size 0, --max-examples 0, a bad or unwritable -o: exit 2, one
    line, checked before the model is loaded."""
    import os

    from ddsp_models.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("")
    cases = [
        (["--batch-size", "0"], "--batch-size"),
        (["--batch-size", "-3"], "--batch-size"),
        (["--max-examples", "0"], "--max-examples"),
        (["-o", str(tmp_path / "m.txt")], ".json"),
        (["-o", str(tmp_path)], "folder"),
        (["-o", str(blocker / "m.json")], "file"),
        (["-o", str(data_dir / "manifest.json")], "dataset's own file"),
    ]
    if os.geteuid() != 0:  # root writes into read-only folders
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        cases.append((["-o", str(ro / "m.json")], "writable"))
    for extra, needle in cases:
        assert main(["evaluate", str(data_dir), "--model", "violin", *extra]) == 2, extra
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and "Traceback" not in err, err
        assert lines[0].startswith("ddsp evaluate: error:") and needle in lines[0], lines[0]
    assert json.loads((data_dir / "manifest.json").read_text())["n_examples"] == 3
