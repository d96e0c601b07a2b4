"""recipes/fast.yaml trains (5 steps through `ddsp train`), and its schedules do what they say."""

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from ddsp_models.data.prepare import PrepareConfig, prepare_dataset
from ddsp_models.nn.losses import MultiResolutionSpectralLoss
from ddsp_models.training.schedule import TrainingSchedule, one_cycle_factor

REPO = Path(__file__).resolve().parents[1]
FAST = REPO / "recipes" / "fast.yaml"


@pytest.fixture(scope="module")
def fast_data(tmp_path_factory):
    """Three 2-second tones prepared as the fast recipe wants them: 16 kHz, 50 frames/s, 1 s
    examples (the recipe's 2 s examples, halved to keep the test short)."""
    cfg_model = yaml.safe_load(FAST.read_text())["model"]
    sr, fr = cfg_model["sample_rate"], cfg_model["frame_rate"]
    hop = sr // fr
    root = tmp_path_factory.mktemp("fast")
    src = root / "audio"
    src.mkdir()
    tones = {}
    for i, f0 in enumerate((196.0, 262.0, 330.0)):
        t = torch.arange(2 * sr) / sr
        ph = 2 * math.pi * torch.cumsum(f0 * (1 + 0.01 * torch.sin(2 * math.pi * 5 * t)), 0) / sr
        p = src / f"tone{i}.wav"
        p.write_bytes(b"")
        tones[str(p)] = (0.3 * sum(torch.sin(k * ph) / k for k in range(1, 6)), f0)

    def f0_fn(audio, sample_rate, frame_rate, method, viterbi):
        n = audio.shape[-1] // hop
        f0 = next(v[1] for v in tones.values() if v[0].shape[-1] == audio.shape[-1])
        return torch.full((1, n), f0), torch.ones(1, n)

    def loudness_fn(audio, sample_rate, frame_rate):
        n = audio.shape[-1] // hop
        x = audio[..., : n * hop].reshape(1, n, hop)
        return 20 * torch.log10(x.square().mean(-1).sqrt().clamp_min(1e-5))

    cfg = PrepareConfig(sample_rate=sr, frame_rate=fr, example_seconds=1.0, hop_seconds=0.5)
    prepare_dataset(src, root / "data", cfg, progress=False,
                    load_fn=lambda path, rate: (tones[path][0][None], sr),
                    f0_fn=f0_fn, loudness_fn=loudness_fn, log=lambda m: None)
    return root / "data"


def test_fast_recipe_runs_5_steps(fast_data, tmp_path):
    from ddsp_models.cli.train import _make_cli, main

    recipe = yaml.safe_load(FAST.read_text())
    overlay = {"model": {"loss": {**recipe["model"]["loss"], "warmup_steps": 3}}}
    (tmp_path / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    run = tmp_path / "run"
    args = ["--config", str(FAST), "--config", str(tmp_path / "overlay.yaml"),
            "--data.path", str(fast_data), "--data.batch_size", "2",
            "--trainer.max_steps", "5", "--trainer.default_root_dir", str(run),
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    cli = _make_cli(args)
    schedules = [c for c in cli.trainer.callbacks if isinstance(c, TrainingSchedule)]
    assert len(schedules) == 1 and schedules[0].lr_schedule == "one_cycle"
    assert cli.model.loss_fn.warmup_fft_sizes == (2048, 512, 128)
    assert cli.model.hop == 320  # 50 frames/s at 16 kHz
    assert main(args) == 0
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 5
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())


def test_one_cycle_factor_shape():
    f = [one_cycle_factor(s, 100, 10, start_fraction=0.1, final_fraction=0.01) for s in range(101)]
    assert f[0] == pytest.approx(0.1) and f[10] == pytest.approx(1.0)
    assert f[5] == pytest.approx(0.1 + 0.9 * 0.5)  # linear warm-up
    assert f[55] == pytest.approx(0.01 + 0.99 * 0.5)  # cosine half-way
    assert f[100] == pytest.approx(0.01)
    assert all(a <= b for a, b in zip(f[:10], f[1:11]))
    assert all(a >= b for a, b in zip(f[10:], f[11:]))


def test_schedule_callback_sets_lr_and_loss_step_from_the_global_step():
    """A pure function of the trainer's global_step: a resumed run follows the same schedule."""
    loss = MultiResolutionSpectralLoss((64, 32, 16), warmup_fft_sizes=(64,), warmup_steps=3)
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param], lr=123.0)
    module = SimpleNamespace(loss_fn=loss, hparams=SimpleNamespace(learning_rate=0.01))
    cb = TrainingSchedule(lr_schedule="one_cycle", warmup_steps=2)
    seen = []
    for step in (0, 1, 2, 3, 7, 10):
        trainer = SimpleNamespace(global_step=step, max_steps=10, optimizers=[opt])
        cb.on_train_batch_start(trainer, module, None, 0)
        seen.append((opt.param_groups[0]["lr"], loss.active_fft_sizes()))
    assert [s[1] for s in seen] == [(64,)] * 3 + [(64, 32, 16)] * 3
    assert [s[0] for s in seen] == pytest.approx(
        [0.01 * one_cycle_factor(s, 10, 2) for s in (0, 1, 2, 3, 7, 10)])
    # "model" leaves the learning rate to the model's own scheduler
    opt.param_groups[0]["lr"] = 5.0
    TrainingSchedule().on_train_batch_start(trainer, module, None, 0)
    assert opt.param_groups[0]["lr"] == 5.0


@pytest.mark.parametrize("name", ["fast_48k.yaml", "solo_instrument_48k.yaml"])
def test_48k_recipes_parse_through_ddsp_train(name, fast_data, tmp_path):
    """The LightningCLI reads them (callbacks included) and builds the 48 kHz model."""
    from ddsp_models.cli.train import _make_cli

    cli = _make_cli(["--config", str(REPO / "recipes" / name), "--data.path", str(fast_data),
                     "--trainer.default_root_dir", str(tmp_path)])
    m = cli.model
    assert m.sample_rate == 48000 and m.loss_fn.fft_sizes[-1] == 192
    assert m.graph.nodes["harmonic"].n_harmonics == 100
    has_schedule = any(isinstance(c, TrainingSchedule) for c in cli.trainer.callbacks)
    assert has_schedule == (name == "fast_48k.yaml")
