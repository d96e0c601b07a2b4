"""One CLI error policy and one model loader (issue #12 item 5, issue #18 items 10-11).

Every subcommand given a missing file, a corrupt file or an unknown model exits with status 2
and prints exactly one line on stderr naming the problem, never a traceback. Most cases run
``ddsp_models.cli.main`` in-process (a subprocess costs seconds of start-up); one subprocess
checks the installed entry point end to end.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from ddsp_models.cli import main
from ddsp_models.errors import DDSPError, ModelLoadError
from ddsp_models.nn.autoencoder import Autoencoder
from ddsp_models.registry import UnknownModelError, load_model

SR, FR = 16000, 250

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_model() -> Autoencoder:
    graph = {"nodes": {"harmonic": {"type": "Harmonic", "sample_rate": SR, "n_harmonics": 4}},
             "edges": ["harmonic -> out"]}
    return Autoencoder(graph=graph, sample_rate=SR, frame_rate=FR,
                       decoder={"hidden_size": 8, "mlp_size": 8, "mlp_layers": 1})


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("models") / "tiny"
    tiny_model().save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    p = tmp_path_factory.mktemp("audio") / "tone.wav"
    t = np.arange(SR) / SR
    sf.write(p, 0.5 * np.sin(2 * math.pi * 220.0 * t), SR)
    return p


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, wav):
    """A one-example dataset prepared by ``ddsp prepare`` (YIN: fast)."""
    audio = wav.parent
    out = tmp_path_factory.mktemp("data") / "ds"
    assert main(["prepare", str(audio), "-o", str(out), "--f0", "yin", "--no-viterbi",
                 "--example-seconds", "1", "--hop-seconds", "1", "--quiet"]) == 0
    return out


def _corrupt_model(tmp_path, model_dir, kind: str):
    """A copy of ``model_dir`` broken in one way; returns the path to pass as --model."""
    d = tmp_path / f"broken_{kind}"
    d.mkdir()
    for f in model_dir.iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    weights, config = d / "model.safetensors", d / "config.yaml"
    if kind == "empty_weights":
        weights.write_bytes(b"")
    elif kind == "garbage_weights":
        weights.write_bytes(b"\x00garbage" * 100)
    elif kind == "truncated_weights":
        weights.write_bytes((model_dir / "model.safetensors").read_bytes()[:300])
    elif kind == "empty_config":
        config.write_text("")
    elif kind == "invalid_config":
        config.write_text("model: [unclosed\n  - : :")
    elif kind == "unknown_key_config":
        cfg = yaml.safe_load((model_dir / "config.yaml").read_text())
        cfg["model"]["colour"] = "blue"
        config.write_text(yaml.safe_dump(cfg))
    elif kind == "zero_rate_config":
        cfg = yaml.safe_load((model_dir / "config.yaml").read_text())
        cfg["model"]["sample_rate"] = 0
        config.write_text(yaml.safe_dump(cfg))
    elif kind == "missing_weights":
        weights.unlink()
    elif kind == "bad_stats":
        (d / "stats.json").write_text("{not json")
    elif kind == "empty_ckpt":
        p = tmp_path / "empty.ckpt"
        p.write_bytes(b"")
        return p
    elif kind == "garbage_ckpt":
        p = tmp_path / "garbage.ckpt"
        p.write_bytes(b"PK\x03\x04 this is not a zip" * 10)
        return p
    elif kind == "text_ckpt":  # torch's unpickler once answered "error: 101" to this
        p = tmp_path / "text.ckpt"
        p.write_text("hello, this is not a checkpoint")
        return p
    elif kind == "foreign_ckpt":
        p = tmp_path / "foreign.ckpt"
        torch.save({"model": {"w": torch.zeros(2)}}, p)
        return p
    else:  # pragma: no cover
        raise AssertionError(kind)
    return d


CORRUPT = ["empty_weights", "garbage_weights", "truncated_weights", "empty_config",
           "invalid_config", "unknown_key_config", "zero_rate_config", "missing_weights",
           "bad_stats", "empty_ckpt", "garbage_ckpt", "text_ckpt", "foreign_ckpt"]


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    line = lines[0]
    assert ": error: " in line, line
    for n in needles:
        assert n in line, (n, line)
    return line


# ---------------------------------------------------------------------------- load_model
@pytest.mark.parametrize("kind", CORRUPT)
def test_load_model_names_the_broken_file(tmp_path, model_dir, kind):
    path = _corrupt_model(tmp_path, model_dir, kind)
    with pytest.raises(DDSPError) as info:
        load_model(path)
    want = UnknownModelError if kind == "missing_weights" else ModelLoadError  # not a model dir
    assert isinstance(info.value, want)
    msg = str(info.value)
    assert "\n" not in msg.strip()
    assert str(path) in msg  # names the file (or its folder)


def test_a_text_file_as_checkpoint_is_named_as_such(tmp_path, model_dir):
    """The sweep's ``error: 101``: torch's weights-only unpickler reads "he" as BINGET 101 and
    raises KeyError(101). The message must say what the file is, not that number."""
    path = _corrupt_model(tmp_path, model_dir, "text_ckpt")
    with pytest.raises(ModelLoadError) as info:
        load_model(path)
    msg = str(info.value)
    assert "not a zip archive" in msg or "is not one" in msg, msg
    assert "101" not in msg, msg


def test_load_model_resolves_names_folders_and_checkpoints(tmp_path, model_dir, monkeypatch):
    ref = load_model(model_dir)
    monkeypatch.setenv("DDSP_MODELS_PATH", str(model_dir.parent))
    by_name = load_model("tiny")
    ckpt = tmp_path / "run.ckpt"
    torch.save({"state_dict": ref.state_dict(), "hyper_parameters": dict(ref.hparams)}, ckpt)
    from_ckpt = load_model(ckpt)
    for m in (by_name, from_ckpt):
        assert not m.training
        for k, v in ref.state_dict().items():
            assert torch.equal(m.state_dict()[k], v)
    # one implementation: the package-level, nn-level and registry names are the same loader
    import ddsp_models
    import ddsp_models.nn

    assert ddsp_models.nn.load_model is load_model
    assert ddsp_models.load_model("tiny").hop == ref.hop


def test_unknown_names_and_paths(tmp_path, wav):
    with pytest.raises(UnknownModelError, match="unknown model 'theremin'.*Available models"):
        load_model("theremin")
    with pytest.raises(UnknownModelError, match="no model file or folder at"):
        load_model(str(tmp_path / "nope" / "model"))
    with pytest.raises(UnknownModelError, match="audio file, not a model"):
        load_model(wav)
    with pytest.raises(UnknownModelError, match="lacks model.safetensors and config.yaml"):
        load_model(tmp_path)


def test_a_symlink_loop_on_the_search_path_does_not_break_names(tmp_path, model_dir,
                                                                monkeypatch):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    monkeypatch.setenv("DDSP_MODELS_PATH", f"{loop}:{model_dir.parent}")
    assert load_model("tiny").sample_rate == SR


# ---------------------------------------------------------------------------- the CLI policy
@pytest.mark.parametrize("kind", ["empty_weights", "invalid_config", "empty_ckpt",
                                  "unknown_key_config"])
@pytest.mark.parametrize("command", ["transfer", "export", "evaluate"])
def test_every_model_command_reports_a_corrupt_model_in_one_line(
        tmp_path, model_dir, wav, data_dir, capsys, command, kind):
    bad = _corrupt_model(tmp_path, model_dir, kind)
    argv = {
        "transfer": ["transfer", str(wav), "--model", str(bad), "-o", str(tmp_path / "o.wav")],
        "export": ["export", "--model", str(bad), "-o", str(tmp_path / "o.pt")],
        "evaluate": ["evaluate", "--model", str(bad), str(data_dir)],
    }[command]
    assert main(argv) == 2
    line = _one_line_error(capsys, f"ddsp {command}: error:", bad.name)
    assert not (tmp_path / "o.wav").exists() and not (tmp_path / "o.pt").exists(), line


@pytest.mark.parametrize("command", ["transfer", "export", "evaluate"])
def test_every_model_command_reports_an_unknown_model_in_one_line(tmp_path, wav, data_dir,
                                                                  capsys, command):
    argv = {
        "transfer": ["transfer", str(wav), "--model", "theremin", "-o", str(tmp_path / "o.wav")],
        "export": ["export", "--model", "theremin", "-o", str(tmp_path / "o.pt")],
        "evaluate": ["evaluate", "--model", "theremin", str(data_dir)],
    }[command]
    assert main(argv) == 2
    _one_line_error(capsys, f"ddsp {command}: error:", "unknown model 'theremin'", "violin")


def test_missing_files_of_every_command(tmp_path, model_dir, wav, data_dir, capsys):
    nope = tmp_path / "nope"
    cases = [
        (["transfer", str(nope / "in.wav"), "--model", str(model_dir), "-o",
          str(tmp_path / "o.wav")], "in.wav"),
        (["transfer", str(wav), "--model", str(nope), "-o", str(tmp_path / "o.wav")], "nope"),
        (["evaluate", "--model", str(model_dir), str(nope)], "nope"),
        (["evaluate", "--model", str(model_dir), str(data_dir), "-o", str(nope / "m.json")],
         "nope"),
        (["export", "--model", str(model_dir), "-o", str(nope / "x.pt")], "nope"),
        (["prepare", str(nope), "-o", str(tmp_path / "ds")], "nope"),
        (["prepare", str(tmp_path), "-o", str(tmp_path / "ds")], "no audio files"),
    ]
    for argv, needle in cases:
        assert main(argv) == 2, argv
        _one_line_error(capsys, f"ddsp {argv[0]}: error:", needle)


def test_corrupt_inputs_of_every_command(tmp_path, model_dir, capsys):
    bad_wav = tmp_path / "broken.wav"
    bad_wav.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x07" * 64)
    assert main(["transfer", str(bad_wav), "--model", str(model_dir), "-o",
                 str(tmp_path / "o.wav"), "--f0", "yin"]) == 2
    _one_line_error(capsys, "ddsp transfer: error:", "broken.wav")
    assert not (tmp_path / "o.wav").exists()

    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "manifest.json").write_text("{ half a manifest")
    assert main(["evaluate", "--model", str(model_dir), str(ds)]) == 2
    _one_line_error(capsys, "ddsp evaluate: error:", "manifest.json", "not valid JSON")

    audio = tmp_path / "audio"
    audio.mkdir()
    (audio / "a.wav").write_bytes(b"not audio at all" * 10)
    assert main(["prepare", str(audio), "-o", str(tmp_path / "out"), "--f0", "yin",
                 "--quiet"]) == 2
    _one_line_error(capsys, "ddsp prepare: error:", "no usable audio", "a.wav")


def test_bad_option_values_are_one_line(tmp_path, model_dir, wav, data_dir, capsys):
    cases = [
        ["prepare", str(wav.parent), "-o", str(tmp_path / "ds"), "--frame-rate", "0"],
        ["prepare", str(wav.parent), "-o", str(tmp_path / "ds"), "--sample-rate", "-16000"],
        ["prepare", str(wav.parent), "-o", str(tmp_path / "ds"), "--frame-rate", "300"],
        ["evaluate", "--model", str(model_dir), str(data_dir), "--batch-size", "0"],
        ["evaluate", "--model", str(model_dir), str(data_dir), "--max-examples", "0"],
        ["transfer", str(wav), "--model", str(model_dir), "-o", str(tmp_path / "o.wav"),
         "--chunk-seconds", "inf"],
        ["transfer", str(wav), "--model", str(model_dir), "-o", str(tmp_path / "o.wav"),
         "--pitch-shift", "nan"],
    ]
    for argv in cases:
        assert main(argv) == 2, argv
        _one_line_error(capsys, f"ddsp {argv[0]}: error:")
    # a value outside a flag's choices: argparse's usage line, then the error naming them
    with pytest.raises(SystemExit) as exit_info:
        main(["transfer", str(wav), "--model", str(model_dir), "-o", str(tmp_path / "o.wav"),
              "--loudness-map", "peak"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--loudness-map: invalid choice: 'peak'" in err and "'quantiles'" in err
    assert "Traceback" not in err and not (tmp_path / "o.wav").exists()


def test_train_reports_missing_and_corrupt_checkpoints_in_one_line(tmp_path, data_dir, capsys):
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    base = ["train", "--data.path", str(data_dir), "--trainer.max_steps", "1",
            "--trainer.default_root_dir", str(tmp_path / "run"),
            "--trainer.enable_progress_bar", "false", "--trainer.logger", "false",
            "--model.decoder", '{"hidden_size": 8, "mlp_size": 8, "mlp_layers": 1}']
    for ckpt, needle in ((tmp_path / "none.ckpt", "no such checkpoint"),
                         (empty, "empty (0 bytes)")):
        assert main(base + ["--ckpt_path", str(ckpt)]) == 2
        _one_line_error(capsys, "ddsp train: error:", ckpt.name, needle)
    assert main(["train", "--data.path", str(tmp_path / "nodata"), "--trainer.max_steps", "1",
                 "--trainer.default_root_dir", str(tmp_path / "run2"),
                 "--trainer.logger", "false"]) == 2
    _one_line_error(capsys, "ddsp train: error:", "nodata", "ddsp prepare")


def test_evaluate_accepts_a_shipped_model_name(wav, tmp_path, capsys):
    """``ddsp evaluate --model violin DATA`` (a traceback before: three loaders)."""
    from ddsp_models import load_model

    data = tmp_path / "ds"  # prepared at the shipped violin's frame rate
    assert main(["prepare", str(wav.parent), "-o", str(data), "--f0", "yin", "--no-viterbi",
                 "--frame-rate", str(load_model("violin").frame_rate),
                 "--example-seconds", "1", "--hop-seconds", "1", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--model", "violin", str(data), "--f0", "yin",
                 "--max-examples", "1"]) == 0
    out = capsys.readouterr().out
    assert '"model": "violin"' in out and '"n_examples": 1' in out


def test_a_fresh_process_follows_the_policy_and_help_skips_lightning(tmp_path):
    """End to end in a fresh interpreter (one subprocess: start-up costs seconds): listing the
    commands does not import Lightning; a corrupt model exits 2 with one line, no traceback."""
    empty = tmp_path / "m"
    empty.mkdir()
    (empty / "model.safetensors").write_bytes(b"")
    (empty / "config.yaml").write_text("")
    code = ("import sys\n"
            "from ddsp_models.cli import build_parser, main\n"
            "build_parser().format_help()\n"
            "assert 'lightning' not in sys.modules, 'ddsp --help imported Lightning'\n"
            "assert 'torch' not in sys.modules, 'ddsp --help imported torch (slow start)'\n"
            f"sys.exit(main(['export', '--model', {str(empty)!r}, '-o', "
            f"{str(tmp_path / 'x.pt')!r}]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("ddsp export: error: ") and "config.yaml" in lines[0]
