"""recipes/fast.yaml trains (5 steps through `ddsp train`), and its schedules do what they say."""

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from ddsp_models.data.prepare import PrepareConfig, prepare_dataset
from ddsp_models.nn.losses import MultiResolutionSpectralLoss
from ddsp_models.training import schedule as schedule_module
from ddsp_models.training.schedule import (TrainingSchedule, clock_cycle_factor,
                                          one_cycle_factor)

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


def test_clock_cycle_factor_is_the_one_cycle_over_the_time_budget():
    # the warm-up is in steps; the cosine runs from where it ended (progress 0.2) to 1
    assert clock_cycle_factor(0, 0.0, 4, 0.2) == pytest.approx(0.04)
    assert clock_cycle_factor(2, 0.1, 4, 0.2) == pytest.approx(0.04 + 0.96 * 0.5)
    assert clock_cycle_factor(4, 0.2, 4, 0.2) == pytest.approx(1.0)  # continuous at the end
    assert clock_cycle_factor(9, 0.6, 4, 0.2) == pytest.approx(0.01 + 0.99 * 0.5)  # half-way
    assert clock_cycle_factor(9, 1.0, 4, 0.2) == pytest.approx(0.01)
    assert clock_cycle_factor(9, 3.0, 4, 0.2) == pytest.approx(0.01)  # held past the budget
    # with no warm-up it is one_cycle_factor with progress = step / total
    for step in range(0, 101, 7):
        assert clock_cycle_factor(step, step / 100, 0) == pytest.approx(
            one_cycle_factor(step, 100, 0))
    with pytest.raises(ValueError):
        clock_cycle_factor(0, 0.0, 1, 1.0)


def test_schedule_follows_the_training_clock_and_stops_the_run(monkeypatch):
    """total_minutes: the learning rate follows the wall clock of training (a fake clock: each
    step takes 5 s and 1 s passes between steps; 100 s of evaluation are excluded), the run
    stops when the minutes are spent, and the clock travels in the callback's state."""
    now = [0.0]
    monkeypatch.setattr(schedule_module.time, "perf_counter", lambda: now[0])
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param], lr=1.0)
    module = SimpleNamespace(loss_fn=None, hparams=SimpleNamespace(learning_rate=0.01))
    cb = TrainingSchedule(lr_schedule="one_cycle", warmup_steps=2, total_minutes=1.0)
    trainer = SimpleNamespace(global_step=0, max_steps=-1, optimizers=[opt], world_size=1,
                              should_stop=False)
    lrs = []
    for step in range(12):
        trainer.global_step = step
        cb.on_train_batch_start(trainer, module, None, 0)
        lrs.append(opt.param_groups[0]["lr"])
        now[0] += 5.0  # the step
        cb.on_train_batch_end(trainer, module, None, None, 0)
        now[0] += 100.0  # an evaluation callback, which excludes its time
        cb.exclude(100.0)
        now[0] += 1.0  # data, checkpoints: training time
        if trainer.should_stop:
            break
    # the clock starts at the first batch: step k starts at 6k s, step 9 ends at 59 s (not
    # yet spent), step 10 ends at 65 s
    assert step == 10 and cb.trained_seconds == pytest.approx(65.0)
    assert cb.warmup_progress == pytest.approx(12 / 60)
    expected = [clock_cycle_factor(k, 6 * k / 60, 2, 12 / 60) * 0.01 for k in range(11)]
    assert lrs == pytest.approx(expected)
    resumed = TrainingSchedule(lr_schedule="one_cycle", warmup_steps=2, total_minutes=1.0)
    resumed.load_state_dict(cb.state_dict())
    assert resumed.trained_seconds == cb.trained_seconds
    assert resumed.warmup_progress == cb.warmup_progress
    with pytest.raises(ValueError):
        TrainingSchedule(total_minutes=0)


def test_ddsp_train_minutes_trains_by_the_clock(fast_data, tmp_path):
    """--minutes lifts max_steps, stops on the clock and saves the clock in the checkpoint;
    a non-positive budget is one line (exit 2 from the CLI)."""
    from ddsp_models.cli.train import _build_and_check, main
    from ddsp_models.errors import InvalidInputError

    run = tmp_path / "run"
    args = ["--config", str(FAST), "--data.path", str(fast_data), "--data.batch_size", "2",
            "--trainer.default_root_dir", str(run), "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--checkpoint.every_n_train_steps", "0"]
    assert main([*args, "--minutes", "0.01"]) == 0  # 0.6 s of training steps
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    state = ckpt["callbacks"]["TrainingSchedule"]
    assert 0.6 <= state["trained_seconds"] < 30
    assert 1 <= ckpt["global_step"] < 1700
    with pytest.raises(InvalidInputError, match="--minutes"):
        _build_and_check([*args, "--minutes", "-1"])


def test_dotted_overrides_of_the_model_dicts_keep_their_types(fast_data, tmp_path):
    """`--model.loss.cumsum_freq_weight 0.01` and `--model.decoder.hidden_size 128` change one
    key of the recipe's dict, as numbers (they were strings, and the model refused them)."""
    from ddsp_models.cli.train import _make_cli

    cli = _make_cli(["--config", str(FAST), "--data.path", str(fast_data),
                     "--trainer.default_root_dir", str(tmp_path),
                     "--model.loss.cumsum_freq_weight", "0.01", "--model.loss.warmup_steps", "0",
                     "--model.decoder.hidden_size", "128"])
    m = cli.model
    assert m.loss_fn.cumsum_freq_weight == 0.01 and m.loss_fn.warmup_steps == 0
    assert m.loss_fn.fft_sizes == (2048, 1024, 512, 256, 128, 64)  # the rest of the dict kept
    assert m.decoder.gru.hidden_size == 128
    assert m.hparams.decoder["hidden_size"] == 128 and m.hparams.decoder["mlp_size"] == 128
