"""The nn~ export: the scripted structure nn~ reads (methods, `<method>_params`, labels,
attributes with type ids, getters/setters returning 0/-1, set_sample_rate) and nn~'s host loop
emulated around the saved file (power-of-two buffer, last-sample decimation of control inputs,
repeat_interleave of outputs, mc batches)."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ddsp_models.export.nn_tilde import TYPE_IDS, power_ceil

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``ddsp export --format nn-tilde`` of the violin, through the CLI (written once)."""
    from ddsp_models.cli import main

    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("nn") / "violin.ts"
    assert main(["export", "--model", "violin", "--format", "nn-tilde", "-o", str(path)]) == 0
    return path


_LOADED = {}


def _load(path):
    """The loaded file, shared by the tests (each starts with set_sample_rate: a reset)."""
    if path not in _LOADED:
        _LOADED[path] = torch.jit.load(str(path))
    m = _LOADED[path]
    for name, value in [("pitch_shift", 0.0), ("gain_db", 0.0), ("gate_db", -60.0),
                        ("harmonic_mix", 0.5), ("reverb_wet", 1.0)]:
        assert getattr(m, f"set_{name}")(value) == 0
    assert m.set_auto_adjust(True) == 0
    return m


def perform(model, method, inputs, n_batches, n_vec):
    """nn~'s Backend::perform: ``inputs`` is a list of ``in_dim * n_batches`` host vectors of
    ``n_vec`` samples (signal rate); returns ``out_dim * n_batches`` host vectors."""
    in_dim, in_ratio, out_dim, out_ratio = [int(v) for v in getattr(model, f"{method}_params")]
    x = torch.cat([v.reshape(1, 1, n_vec) for v in inputs], 1)
    x = x.reshape(in_dim, n_batches, -1, in_ratio).select(-1, -1).permute(1, 0, 2)
    y = getattr(model, method)(x)
    y = y.repeat_interleave(out_ratio).reshape(n_batches, out_dim, -1)
    assert y.shape[-1] == n_vec, "model output size is not consistent"
    return [y[b, c] for b in range(n_batches) for c in range(out_dim)]


def host_loop(model, method, signals, buffer, n_batches=1):
    """Run whole signals through nn~'s loop in buffers of ``buffer`` samples."""
    n = signals[0].shape[-1]
    outs = []
    for i in range(0, n - buffer + 1, buffer):
        outs.append(perform(model, method, [s[i:i + buffer] for s in signals], n_batches,
                            buffer))
    return [torch.cat([o[k] for o in outs]) for k in range(len(outs[0]))]


def test_structure_nn_tilde_reads(exported):
    m = _load(exported)
    assert m.get_methods() == ["forward", "encode", "decode"]
    assert m.forward_params.tolist() == [1, 1, 1, 1]
    assert m.encode_params.tolist() == [1, 1, 2, 128]
    assert m.decode_params.tolist() == [2, 128, 1, 1]
    for meth in m.get_methods():
        params = getattr(m, f"{meth}_params")
        assert len(getattr(m, f"{meth}_input_labels")) == int(params[0])
        assert len(getattr(m, f"{meth}_output_labels")) == int(params[2])
    attrs = m.get_attributes()
    assert attrs == ["pitch_shift", "gain_db", "gate_db", "auto_adjust", "harmonic_mix",
                     "reverb_wet"]
    for a in attrs:
        ids = getattr(m, f"{a}_params").tolist()
        assert ids == [TYPE_IDS["bool" if a == "auto_adjust" else "float"]]
        value = getattr(m, f"get_{a}")()
        assert isinstance(value, tuple) and len(value) == 1
        assert getattr(m, f"set_{a}")(value[0]) == 0  # accepted
    assert m.set_pitch_shift(7.0) == 0 and m.get_pitch_shift() == (7.0,)
    assert m.set_pitch_shift(99.0) == -1 and m.get_pitch_shift() == (7.0,)  # rejected
    assert m.set_reverb_wet(-1.0) == -1
    assert m.set_auto_adjust(False) == 0 and m.get_auto_adjust() == (False,)
    extra = {"ddsp_io.json": ""}
    torch.jit.load(str(exported), _extra_files=extra)
    assert b"nn-tilde" in extra["ddsp_io.json"]


def test_power_ceil_like_nn_tilde():
    assert [power_ceil(n) for n in (1, 2, 3, 100, 512, 513, 3000)] == [1, 2, 4, 128, 512, 1024,
                                                                    4096]


def test_frames_per_step_reaches_the_live_model_and_the_reported_latency():
    from ddsp_models.export.live import LiveModel
    from ddsp_models.export.nn_tilde import NnTildeLive, nn_tilde_description
    from ddsp_models.registry import load_model

    model = load_model("violin")
    module = NnTildeLive(model, frames_per_step=4)
    assert module.live.frames_per_step == 4
    lat = LiveModel(model, frames_per_step=4).get_latency()
    assert nn_tilde_description(module)["latency_samples"] == lat
    assert lat > NnTildeLive(model).live.get_latency()


def test_forward_through_nn_tilde_host_loop_equals_the_live_model(exported):
    m = _load(exported)
    sr = 44100
    assert m.set_sample_rate(sr) == 0
    buffer = power_ceil(3000)  # nn~ rounds the buffer argument up: 4096
    t = torch.arange(4 * buffer) / sr
    x = 0.3 * torch.sin(2 * math.pi * 392 * t) * (t > 0.02)
    (y,) = host_loop(m, "forward", [x], buffer)
    assert m.set_sample_rate(sr) == 0  # a reset; then the live model called directly
    expect = torch.cat([m.live.process(x[None, i:i + buffer])
                        for i in range(0, x.shape[0], buffer)], -1)[0]
    assert torch.equal(y, expect)
    assert float(y.abs().max()) > 1e-3
    # mc.nn~: two batches in one call, each row gets the (mixed) stream
    m.reset()
    a, b = host_loop(m, "forward", [x, x], 1024, n_batches=2)
    assert torch.equal(a, b) and torch.isfinite(a).all()


def test_encode_decode_through_host_loop(exported):
    m = _load(exported)
    sr = 48000
    assert m.set_sample_rate(sr) == 0
    assert m.set_auto_adjust(False) == 0
    buffer = 2048
    t = torch.arange(12 * buffer) / sr
    x = 0.3 * torch.sin(2 * math.pi * 440 * t)
    f0, ld = host_loop(m, "encode", [x], buffer)
    assert f0.shape == x.shape  # controls expanded back to signal rate by nn~
    late = slice(4 * buffer, None)
    assert torch.allclose(f0[late], torch.full_like(f0[late], 440.0), rtol=3e-3)
    assert (ld[late] > -40).all()
    (y,) = host_loop(m, "decode", [f0, ld], buffer)  # decimated by nn~ (last sample)
    assert torch.isfinite(y).all() and float(y[late].abs().max()) > 1e-3
    # floor loudness through decode plays (almost) nothing
    m.reset()
    (q,) = host_loop(m, "decode", [torch.full_like(x, 440.0), torch.full_like(x, -80.0)],
                     buffer)
    assert float(q[late].abs().max()) < 0.1 * float(y[late].abs().max())


def test_set_sample_rate_rejects_and_keeps_working(exported):
    m = _load(exported)
    assert m.set_sample_rate(100) == -1
    assert m.set_sample_rate(96000) == 0 and m.sr == 96000
    y = m(torch.zeros(1, 1, 512))
    assert y.shape == (1, 1, 512) and float(y.abs().max()) == 0.0
    assert m.get_latency() > 0


def test_reverb_wet_acts_on_the_saved_file(exported):
    """The wet control rescales the stream's own IR parameter (shared tensor), also after
    torch.jit.save / load."""
    m = _load(exported)
    assert m.set_sample_rate(48000) == 0
    x = (0.3 * torch.sin(2 * math.pi * 330 * torch.arange(12 * 1024) / 48000))[None, None]

    def run():
        m.reset()
        return torch.cat([m(x[..., i:i + 1024]) for i in range(0, x.shape[-1], 1024)], -1)

    wet = run()
    assert m.set_reverb_wet(0.0) == 0
    dry = run()
    assert m.set_reverb_wet(1.0) == 0
    assert float((wet - dry).norm()) > 0.1 * float(wet.norm())
    assert torch.equal(run(), wet)


OLD_PY = os.environ.get("DDSP_OLD_TORCH_PYTHON", "")


@pytest.mark.slow
@pytest.mark.skipif(not (OLD_PY and Path(OLD_PY).exists()),
                    reason="set DDSP_OLD_TORCH_PYTHON to a python with torch 2.5 (the libtorch "
                           "of nn~ 1.6; see docs/live.md, 'Older hosts')")
@pytest.mark.parametrize("fmt", ["nn-tilde", "neutone"])
def test_older_torch_loads_and_runs_the_exports(tmp_path, fmt):
    from ddsp_models.cli import main

    out = tmp_path / ("violin.ts" if fmt == "nn-tilde" else "violin.nm")
    assert main(["export", "--model", "violin", "--format", fmt, "-o", str(out)]) == 0
    script = Path(__file__).parents[1] / "benchmarks" / "check_host_compat.py"
    res = subprocess.run([OLD_PY, str(script), fmt, str(out)], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    # the same blocks give the same audio under both torch versions
    for py, pt in [(OLD_PY, "old.pt"), (sys.executable, "new.pt")]:
        res = subprocess.run([py, str(script), "render", str(out), str(tmp_path / pt)],
                             capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stdout + res.stderr
    old, new = torch.load(tmp_path / "old.pt"), torch.load(tmp_path / "new.pt")
    assert old.shape == new.shape and float(new.abs().max()) > 1e-3
    assert float((old - new).norm()) <= 1e-3 * float(new.norm())  # -60 dB (bitwise so far)
