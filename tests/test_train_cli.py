"""ddsp train (LightningCLI): a run from a recipe, exact resumption after an interruption, DDP."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _stub_features import constant_f0, rms_loudness_db
import torch
import yaml

from ddsp_models.cli.train import main as train_main
from ddsp_models.data.prepare import PrepareConfig, prepare_dataset
from ddsp_models.nn.autoencoder import Autoencoder
from ddsp_models.training.module import AutoencoderModule
from ddsp_models.registry import load_model

SR, FR, HOP = 8000, 100, 80
REPO = Path(__file__).resolve().parents[1]


def _tone(f0, seconds=2.0):
    t = torch.arange(int(seconds * SR)) / SR
    f = f0 * (1 + 0.01 * torch.sin(2 * math.pi * 5 * t))
    ph = 2 * math.pi * torch.cumsum(f, 0) / SR
    return 0.3 * sum(torch.sin(k * ph) / k for k in range(1, 4))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    src = root / "audio"
    src.mkdir()
    tones = {}
    for i, f0 in enumerate((196.0, 220.0, 247.0)):
        p = src / f"tone{i}.wav"
        p.write_bytes(b"")  # content supplied by the loader below
        tones[str(p)] = _tone(f0)
    cfg = PrepareConfig(sample_rate=SR, frame_rate=FR, example_seconds=0.5, hop_seconds=0.25)
    prepare_dataset(src, root / "data", cfg, progress=False,
                    load_fn=lambda path, sr: (tones[path][None], SR),
                    f0_fn=constant_f0, loudness_fn=rms_loudness_db, log=lambda m: None)
    return root / "data"


def _recipe(tmp_path, noise=True):
    nodes = {"harmonic": {"type": "Harmonic", "sample_rate": SR, "n_harmonics": 6}}
    edges = ["harmonic -> out"]
    if noise:
        nodes["noise"] = {"type": "FilteredNoise", "sample_rate": SR, "n_bands": 5}
        edges.append("noise -> out")
    recipe = {
        "seed_everything": 0,
        "trainer": {"accelerator": "cpu", "devices": 1, "max_steps": 6, "log_every_n_steps": 1,
                    "val_check_interval": 3, "check_val_every_n_epoch": None,
                    "limit_val_batches": 1, "num_sanity_val_steps": 0,
                    "enable_progress_bar": False, "enable_model_summary": False},
        "checkpoint": {"every_n_train_steps": 2, "save_last": True, "save_top_k": -1},
        "model": {"sample_rate": SR, "frame_rate": FR, "graph": {"nodes": nodes, "edges": edges},
                  "decoder": {"hidden_size": 16, "mlp_size": 16, "mlp_layers": 1},
                  "loss": {"fft_sizes": [512, 128, 32]}, "learning_rate": 3e-3},
        "data": {"batch_size": 2, "val_fraction": 0.1},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


pytestmark = pytest.mark.usefixtures("one_thread")


def test_train_from_recipe_logs_checkpoints_and_exports(data_dir, tmp_path):
    run = tmp_path / "run"
    train_main(["--config", str(_recipe(tmp_path)), "--data.path", str(data_dir),
                "--trainer.default_root_dir", str(run), "--export", str(tmp_path / "export")])
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert "last.ckpt" in ckpts and not [c for c in ckpts if c.endswith(".tmp")]
    ck = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ck["global_step"] == 6
    assert "dataset_stats_json" in ck  # stats.json travels with the model
    events = list(run.rglob("events.out.tfevents*"))
    assert events
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events[0].parent), size_guidance={"audio": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    assert "train/loss" in tags["scalars"] and "val/loss" in tags["scalars"]
    assert any(t.startswith("audio/") for t in tags["audio"])
    assert any(t.startswith("spectrogram/") for t in tags["images"])
    m = load_model(tmp_path / "export")
    assert m.dataset_stats["pitch_midi"]["mean"] == pytest.approx(57.0)  # 220 Hz


def test_resume_continues_without_losing_or_repeating_steps(data_dir, tmp_path, monkeypatch):
    recipe = _recipe(tmp_path, noise=False)  # deterministic synth: weights must match exactly
    seen: list[tuple[int, tuple]] = []
    real_step = AutoencoderModule.training_step
    fail_at = {"step": None}

    def recording_step(self, batch, batch_idx):
        if self.global_step == fail_at["step"]:
            raise RuntimeError("simulated crash")
        seen.append((self.global_step, tuple(zip(batch["source"].tolist(), batch["start"].tolist()))))
        return real_step(self, batch, batch_idx)

    monkeypatch.setattr(AutoencoderModule, "training_step", recording_step)
    args = ["--config", str(recipe), "--data.path", str(data_dir), "--trainer.max_steps", "14",
            "--trainer.val_check_interval", "100"]

    train_main(args + ["--trainer.default_root_dir", str(tmp_path / "straight")])
    straight = list(seen)
    assert [s for s, _ in straight] == list(range(14))  # 14 steps span two epochs (9 batches each)

    seen.clear()
    fail_at["step"] = 11  # crash after the checkpoint at step 10 and one more step
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_main(args + ["--trainer.default_root_dir", str(tmp_path / "resumed")])
    assert torch.load(tmp_path / "resumed/checkpoints/last.ckpt", weights_only=True)["global_step"] == 10
    first = list(seen)
    seen.clear()
    fail_at["step"] = None
    train_main(args + ["--trainer.default_root_dir", str(tmp_path / "resumed"), "--ckpt_path", "last"])
    resumed = list(seen)
    assert [s for s, _ in resumed] == [10, 11, 12, 13]
    assert first[:10] + resumed == straight  # same batches at the same steps
    a = torch.load(tmp_path / "straight/checkpoints/last.ckpt", weights_only=True)
    b = torch.load(tmp_path / "resumed/checkpoints/last.ckpt", weights_only=True)
    assert b["global_step"] == 14
    for k in a["state_dict"]:
        torch.testing.assert_close(a["state_dict"][k], b["state_dict"][k], rtol=0, atol=0)


def test_ckpt_path_last_starts_fresh_when_no_checkpoint(data_dir, tmp_path):
    run = tmp_path / "run"
    train_main(["--config", str(_recipe(tmp_path)), "--data.path", str(data_dir),
                "--trainer.default_root_dir", str(run), "--trainer.max_steps", "2",
                "--ckpt_path", "last"])
    assert torch.load(run / "checkpoints/last.ckpt", weights_only=True)["global_step"] == 2


def test_bf16_mixed_precision_trains_and_saves_float32_weights(data_dir, tmp_path):
    run = tmp_path / "run"
    train_main(["--config", str(_recipe(tmp_path)), "--data.path", str(data_dir),
                "--trainer.default_root_dir", str(run), "--trainer.max_steps", "4",
                "--trainer.precision", "bf16-mixed", "--export", str(tmp_path / "model")])
    ckpt = torch.load(run / "checkpoints/last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 4
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all()
               for v in ckpt["state_dict"].values() if v.is_floating_point())
    model = load_model(tmp_path / "model")
    f0, ld = torch.full((1, 20, 1), 220.0), torch.full((1, 20, 1), -30.0)
    assert torch.isfinite(model(f0, ld)).all()


def test_atomic_checkpoint_io_leaves_old_checkpoint_on_crash(tmp_path, monkeypatch):
    from ddsp_models.cli.train import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"global_step": 1}, path)

    def broken_save(obj, f):
        Path(f).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        io.save_checkpoint({"global_step": 2}, path)
    assert io.load_checkpoint(path)["global_step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_ddp_two_cpu_processes(data_dir, tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "ddsp_models.cli", "train", "--config", str(_recipe(tmp_path)),
         "--data.path", str(data_dir), "--trainer.default_root_dir", str(run),
         "--trainer.strategy", "ddp", "--trainer.accelerator", "cpu", "--trainer.devices", "2",
         "--trainer.max_steps", "2", "--trainer.val_check_interval", "100"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ck = torch.load(run / "checkpoints/last.ckpt", weights_only=True)
    assert ck["global_step"] == 2


def _parse(args):
    from ddsp_models.cli.train import _make_cli

    return _make_cli(args)


@pytest.mark.parametrize("recipe", ["solo_instrument.yaml", "tiny.yaml", "autoencoder_z.yaml"])
def test_shipped_recipes_build(recipe, data_dir, tmp_path):
    cli = _parse(["--config", str(REPO / "recipes" / recipe), "--data.path", str(data_dir),
                  "--trainer.default_root_dir", str(tmp_path)])
    m = cli.model
    layout = m.graph.parameter_layout()
    assert m.decoder.n_out == layout.n_params
    assert m.sample_rate == 16000 and m.frame_rate == 250
    assert sum(p.numel() for p in m.graph.parameters()) > 0  # the reverb IR is trainable
    if recipe == "solo_instrument.yaml":  # DDSP's defaults
        assert m.decoder.gru.hidden_size == 512
        assert layout.n_params == 1 + 60 + 65
        assert m.loss_fn.fft_sizes == (2048, 1024, 512, 256, 128, 64)
        assert cli.datamodule.batch_size == 16
    if recipe == "autoencoder_z.yaml":
        assert m.encoder is not None and m.decoder.z_dims == 16


def test_finetune_recipe_starts_from_weights_and_freezes(data_dir, tmp_path):
    solo = REPO / "recipes" / "solo_instrument.yaml"
    base = Autoencoder(**yaml.safe_load(solo.read_text())["model"])
    base.save_pretrained(tmp_path / "base")
    cli = _parse(["--config", str(solo), "--config", str(REPO / "recipes" / "finetune.yaml"),
                  "--model.init_from", str(tmp_path / "base"), "--data.path", str(data_dir),
                  "--trainer.default_root_dir", str(tmp_path / "run")])
    m = cli.model
    assert m.hparams.learning_rate == 1e-4
    for k, v in base.state_dict().items():
        assert torch.equal(v, m.state_dict()[k])
    frozen = [n for n, p in m.named_parameters() if not p.requires_grad]
    assert frozen == ["graph.nodes.reverb.ir"]


def test_train_user_errors_are_one_line_before_any_step(data_dir, tmp_path, capsys):
    """Issue 18 item 10: batch size 0, a bad --ckpt_path, a rate mismatch, a malformed
    stats.json: exit 2, one line naming the problem and the fix, no step taken."""
    import json

    from ddsp_models.cli import main

    run = tmp_path / "run"
    base = ["train", "--config", str(_recipe(tmp_path)), "--data.path", str(data_dir),
            "--trainer.default_root_dir", str(run), "--trainer.max_steps", "1",
            "--trainer.logger", "false"]
    foreign = tmp_path / "weights.ckpt"
    torch.save({"state_dict": {}}, foreign)  # weights only: not a training checkpoint
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"PK\x03\x04 not a zip" * 10)
    cases = [
        (["--data.batch_size", "0"], ["data.batch_size", ">= 1"]),
        (["--data.batch_size", "500"], ["fewer than one", "data.batch_size"]),
        (["--ckpt_path", str(tmp_path)], ["no such checkpoint file", "'last'"]),
        (["--ckpt_path", str(foreign)], ["weights.ckpt", "not a training checkpoint",
                                          "--model.init_from"]),
        (["--ckpt_path", str(garbage)], ["garbage.ckpt"]),
        (["--model.sample_rate", "16000", "--model.frame_rate", "250"],
         ["sample_rate 8000 Hz but the model 16000 Hz", "ddsp prepare", "--sample-rate 16000"]),
    ]
    for extra, needles in cases:
        assert main(base + extra) == 2, extra
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.startswith("ddsp train")]
        assert len(lines) == 1 and "Traceback" not in err, err
        for n in needles:
            assert n in lines[0], (n, lines[0])
    assert not (run / "checkpoints").exists()

    bad_data = tmp_path / "bad_data"
    bad_data.mkdir()
    for p in data_dir.iterdir():
        (bad_data / p.name).write_bytes(p.read_bytes())
    (bad_data / "stats.json").write_text(json.dumps({"quantile_levels": [0, 1]}))
    assert main(base + ["--data.path", str(bad_data)]) == 2
    err = capsys.readouterr().err
    assert "stats.json is not valid dataset statistics" in err and "Traceback" not in err
