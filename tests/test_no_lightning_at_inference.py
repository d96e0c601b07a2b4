"""Inference never needs Lightning (issue 17 item 1).

:class:`~ddsp_models.nn.autoencoder.Autoencoder` is a plain ``nn.Module``; only training uses
its Lightning subclass :class:`~ddsp_models.training.module.AutoencoderModule`. Each check runs
in a fresh interpreter where importing ``lightning`` or ``pytorch_lightning`` raises
``ImportError`` (a ``sys.meta_path`` finder), so any import of it, direct or transitive, fails:

* ``load_model('violin')`` and a 0.3 s transfer (``f0_method='yin'``) work;
* ``ddsp export --model violin --format torchscript --streaming`` writes its file;
* a checkpoint written by ``ddsp train`` (two steps) loads as the plain ``Autoencoder``,
  with the same weights and dataset statistics.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Runs first in every child: lightning and pytorch_lightning cannot be imported.
BLOCK = textwrap.dedent("""
    import sys

    class _NoLightning:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("lightning", "pytorch_lightning"):
                raise ImportError(f"{name} is blocked: inference must not import Lightning")
            return None

    sys.meta_path.insert(0, _NoLightning())
""")


def _run(code: str, *args: str, timeout: int = 300) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", BLOCK + textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_blocker_blocks():
    got = _run("""
        import json
        try:
            import lightning.pytorch  # noqa: F401
            blocked = False
        except ImportError:
            blocked = True
        print(json.dumps({"blocked": blocked}))
    """)
    assert got["blocked"]


def test_load_and_transfer_without_lightning():
    got = _run("""
        import json, math, sys
        import torch
        import ddsp_models

        model = ddsp_models.load_model("violin")
        sr = 16000
        t = torch.arange(int(0.3 * sr)) / sr
        x = 0.3 * torch.sin(2 * math.pi * 330.0 * t)
        y = model.transfer(x, sr, f0_method="yin")
        print(json.dumps({"type": type(model).__name__, "shape": list(y.shape),
                          "finite": bool(torch.isfinite(y).all()),
                          "hp": model.hparams.sample_rate,
                          "lightning": sorted(m for m in sys.modules if "lightning" in m)}))
    """)
    assert got["type"] == "Autoencoder" and got["shape"] == [int(0.3 * 16000)]
    assert got["finite"] and got["hp"] == 16000 and got["lightning"] == []


def test_streaming_export_cli_without_lightning(tmp_path):
    out = tmp_path / "violin_stream.ts"
    got = _run("""
        import json, sys
        from ddsp_models.cli import main

        rc = main(["export", "--model", "violin", "--format", "torchscript", "--streaming",
                   "-o", sys.argv[1]])
        print(json.dumps({"rc": rc,
                          "lightning": sorted(m for m in sys.modules if "lightning" in m)}))
    """, str(out))
    assert got["rc"] in (0, None) and got["lightning"] == []
    assert out.is_file() and out.stat().st_size > 0


def test_checkpoint_from_training_loads_without_lightning(tmp_path):
    """Train two steps (the Lightning class), then load the .ckpt in a Lightning-free child."""
    import torch

    from ddsp_models.cli.train import main as train_main
    from ddsp_models.data.prepare import PrepareConfig, prepare_dataset

    import test_train_cli as T  # its tiny recipe and synthetic-data helpers
    src = tmp_path / "audio"
    src.mkdir()
    tones = {}
    for i, f0 in enumerate((196.0, 247.0)):
        p = src / f"tone{i}.wav"
        p.write_bytes(b"")  # content supplied by the loader below
        tones[str(p)] = T._tone(f0, seconds=1.0)
    cfg = PrepareConfig(sample_rate=T.SR, frame_rate=T.FR, example_seconds=0.5,
                        hop_seconds=0.25)
    prepare_dataset(src, tmp_path / "data", cfg, progress=False,
                    load_fn=lambda path, sr: (tones[path][None], T.SR),
                    f0_fn=T.constant_f0, loudness_fn=T.rms_loudness_db, log=lambda m: None)
    run = tmp_path / "run"
    train_main(["--config", str(T._recipe(tmp_path)), "--data.path", str(tmp_path / "data"),
                "--trainer.default_root_dir", str(run), "--trainer.max_steps", "2",
                "--trainer.val_check_interval", "100", "--data.val_fraction", "0.2"])
    ckpt = run / "checkpoints" / "last.ckpt"
    saved = torch.load(ckpt, weights_only=True)
    assert saved["global_step"] == 2 and "dataset_stats_json" in saved
    sums = {k: float(v.double().sum()) for k, v in saved["state_dict"].items()}

    got = _run("""
        import json, sys
        import torch
        from ddsp_models.registry import load_model

        m = load_model(sys.argv[1])
        f0, ld = torch.full((1, 10, 1), 220.0), torch.full((1, 10, 1), -30.0)
        with torch.no_grad():
            y = m(f0, ld)
        print(json.dumps({"type": type(m).__name__,
                          "sums": {k: float(v.double().sum()) for k, v in m.state_dict().items()},
                          "stats": m.dataset_stats is not None,
                          "lr": m.hparams.learning_rate, "finite": bool(torch.isfinite(y).all()),
                          "lightning": sorted(x for x in sys.modules if "lightning" in x)}))
    """, str(ckpt))
    assert got["type"] == "Autoencoder" and got["lightning"] == []
    assert got["sums"] == sums  # same keys, same values
    assert got["stats"] and got["finite"] and got["lr"] == pytest.approx(3e-3)
