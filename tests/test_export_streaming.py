"""Streaming rendering and TorchScript/ONNX export of whole models.

A model streamed block by block (blocks of 1, 4, 7 and 16 frames, mixed), through the Python
module, the exported TorchScript file and the ONNX step, equals its offline rendering (same
counter-based noise): within -100 dB in float64 and -60 dB in float32. Covered: the DDSP
default graph, the issue's graphs beyond it, the presets, and every registered processor
inside a model (registry-driven).
"""

import inspect
import json

import numpy as np
import pytest
import torch

from ddsp_models.core.noise import counter_noise, deterministic_noise
from ddsp_models.export.streaming import StreamingSynth, UnsupportedGraphError
from ddsp_models.export.torchscript import IO_FILE, OfflineSynth, export_torchscript
from ddsp_models.graph import presets
from ddsp_models.nn.autoencoder import Autoencoder
from ddsp_models.processors import all_processor_classes
from ddsp_models.processors.blocks import block_slices

SMALL = dict(hidden_size=16, mlp_size=16, mlp_layers=1)
SR, FR, HOP = 16000, 250, 64
MIXED = (1, 4, 7, 16)

pytestmark = pytest.mark.usefixtures("one_thread")


def model_of(graph: dict, seed: int = 0, **kw) -> Autoencoder:
    torch.manual_seed(seed)
    m = Autoencoder(graph=graph, sample_rate=SR, frame_rate=FR, decoder=SMALL, **kw).eval()
    with torch.no_grad():  # a louder, livelier output so every part of the graph matters
        m.decoder.head.bias.add_(torch.randn_like(m.decoder.head.bias))
        for p in m.static_params.values():
            p.normal_()
    return m


def chain(*nodes: dict) -> dict:
    names = [f"n{i}" for i in range(len(nodes))]
    return {"nodes": dict(zip(names, nodes)),
            "edges": [f"{a} -> {b}" for a, b in zip(names, names[1:])] + [f"{names[-1]} -> out"]}


GRAPHS = {
    "ddsp_default": lambda: presets.ddsp_default(SR, n_harmonics=20, n_bands=33,
                                                 reverb_length=800).to_dict(),
    "harmonic_biquad_moddelay_reverb": lambda: chain(
        {"type": "Harmonic", "n_harmonics": 20},
        {"type": "Biquad", "kind": "lowpass", "time_varying": True},
        {"type": "ModDelay"},
        {"type": "Reverb", "length": 800}),
    "wavetable_phaser_compressor": lambda: chain(
        {"type": "Wavetable", "n_tables": 2, "table_size": 256},
        {"type": "Phaser"},
        {"type": "Compressor"}),
    "subtractive_svf_distortion_eq": lambda: chain(
        {"type": "Subtractive"},
        {"type": "StateVariableFilter"},
        {"type": "Distortion"},
        {"type": "ParametricEQ"}),
    "delay_iir": lambda: presets.delay_iir(SR, n_harmonics=20, n_bands=33,
                                           reverb_length=800).to_dict(),
    "wavetable": lambda: presets.wavetable(SR, n_tables=2, table_size=256, n_bands=33,
                                           reverb_length=800).to_dict(),
}


def features(frames: int, batch: int = 1, seed: int = 0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(frames) / FR
    base = 150.0 + 400.0 * torch.rand(batch, 1, 1, generator=g)
    f0 = base * 2.0 ** (0.5 * torch.sin(2 * np.pi * 5.0 * t))[None, :, None]  # vibrato
    ld = -40.0 + 25.0 * torch.rand(batch, frames, 1, generator=g).cumsum(1) / frames
    return f0.to(dtype), ld.to(dtype)


def offline(model, f0, ld, seed=0):
    with torch.no_grad(), deterministic_noise(seed=seed):
        return model(f0, ld)


def stream(engine, f0, ld, sizes=MIXED, flush=True):
    """Reset, feed blocks of the given sizes, flush; trimmed to the offline length."""
    engine.reset()
    with torch.no_grad():
        out = [engine(f0[:, a:b], ld[:, a:b]) for a, b in block_slices(f0.shape[1], sizes)]
        if flush:
            out.append(engine.flush())
    y = torch.cat(out, -1)
    lat = int(engine.latency_samples)
    return y[..., lat:] if flush else y


def err_db(a, ref):
    return float(20 * torch.log10((a - ref).abs().max() / ref.abs().max()))


@pytest.mark.parametrize("name", list(GRAPHS))
def test_graph_streams_equal_offline_float64(name):
    m = model_of(GRAPHS[name]()).double()
    f0, ld = features(60, dtype=torch.float64)
    ref = offline(m, f0, ld)
    assert ref.abs().max() > 1e-3  # the comparison is meaningful
    y = stream(StreamingSynth(m, dtype=torch.float64), f0, ld)
    assert y.shape == ref.shape
    assert err_db(y, ref) < -100


@pytest.mark.parametrize("name", list(GRAPHS))
def test_exported_torchscript_file_streams_equal_offline(name, tmp_path):
    m = model_of(GRAPHS[name]())
    path = export_torchscript(m, tmp_path / "m.pt", streaming=True)
    extra = {IO_FILE: ""}
    loaded = torch.jit.load(str(path), _extra_files=extra)
    io = json.loads(extra[IO_FILE])
    assert io["streaming"] and io["hop"] == HOP
    assert io["latency_samples"] == loaded.latency_samples
    f0, ld = features(60, seed=1)
    ref = offline(m, f0, ld)
    assert err_db(stream(loaded, f0, ld), ref) < -60


#: The two largest graphs take 40-50 s each to export on the 2-core CI machine: run by hand
#: (-m slow); the other graphs and tests/test_one_file_processor.py export in the default run.
_SLOW_ONNX = {"wavetable_phaser_compressor", "subtractive_svf_distortion_eq"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in _SLOW_ONNX
                                  else n for n in GRAPHS])
def test_onnx_step_equals_offline(name, tmp_path):
    assert _onnx_equals_offline(model_of(GRAPHS[name]()), tmp_path, frames=64) < -60


def _effect_chain(cls, cfg):
    """A model graph around one processor: the synth itself, or Harmonic (+ StereoGain where
    the effect needs stereo) into the effect."""
    node = {"type": cls.__name__, **cfg}
    if cls.n_inputs == 0:
        return chain(node)
    probe = cls(**({"sample_rate": SR} if "sample_rate" in inspect.signature(cls.__init__)
                   .parameters else {}), **cfg)
    try:
        probe.n_output_channels((1,))
        return chain({"type": "Harmonic", "n_harmonics": 8}, node)
    except ValueError:
        return chain({"type": "Harmonic", "n_harmonics": 8}, {"type": "StereoGain"}, node)


PROCESSOR_CASES = [pytest.param(name, i, id=f"{name}-{i}")
                   for name, cls in all_processor_classes().items()
                   if cls.__module__.startswith("ddsp_models.")
                   for i, _ in enumerate(cls.examples())]


@pytest.mark.parametrize("name,i", PROCESSOR_CASES)
def test_every_processor_streams_through_a_scripted_model(name, i):
    cls = all_processor_classes()[name]
    graph = _effect_chain(cls, dict(cls.examples()[i]))
    m = model_of(graph).double()
    f0, ld = features(30, dtype=torch.float64, seed=3)
    ref = offline(m, f0, ld)
    engine = torch.jit.script(StreamingSynth(m, dtype=torch.float64))
    y = stream(engine, f0, ld, (1, 4, 7, 16))
    assert err_db(y, ref) < -100


def _onnx_equals_offline(m, tmp_path, frames=48, n=4):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from ddsp_models.export.onnx import export_onnx, initial_state, onnx_names

    path, info = export_onnx(m, tmp_path / "m.onnx", block_frames=n)
    sess = ort.InferenceSession(str(path))
    engine = StreamingSynth(m, block_frames=n)
    names, state = onnx_names(engine), [s.numpy() for s in initial_state(engine)]
    f0, ld = features(frames, seed=2)
    outs = []
    for c in range(0, frames, n):
        res = sess.run(None, {"f0_hz": f0[:, c:c + n].numpy(),
                              "loudness_db": ld[:, c:c + n].numpy(), **dict(zip(names, state))})
        outs.append(torch.from_numpy(res[0]))
        state = res[1:]
    y = torch.cat(outs, -1)
    lat = info["latency_samples"]
    ref = offline(m, f0, ld)[..., : y.shape[-1] - lat]
    return err_db(y[..., lat:], ref)


@pytest.mark.slow
@pytest.mark.parametrize("name,i", PROCESSOR_CASES)
def test_every_processor_exports_to_onnx(name, i, tmp_path):
    cls = all_processor_classes()[name]
    m = model_of(_effect_chain(cls, dict(cls.examples()[i])))
    assert _onnx_equals_offline(m, tmp_path) < -60


def test_offline_synth_and_flush_to_the_last_sample():
    m = model_of(GRAPHS["ddsp_default"]())
    f0, ld = features(40, seed=4)
    ref = offline(m, f0, ld)
    whole = torch.jit.script(OfflineSynth(m))
    assert err_db(whole(f0, ld).detach(), ref) < -60


def test_other_rate_and_odd_hop():
    # 22.05 kHz, 210 frames/s: hop 105 (odd)
    g = presets.ddsp_default(22050, n_harmonics=20, n_bands=17, reverb_length=500).to_dict()
    torch.manual_seed(0)
    m = Autoencoder(graph=g, sample_rate=22050, frame_rate=210, decoder=SMALL).eval()
    f0, ld = features(40, seed=5)
    ref = offline(m, f0, ld)
    eng = StreamingSynth(m)
    assert eng.hop == 105
    for sizes in ((1,), (3,), (10, 2)):
        assert err_db(stream(eng, f0, ld, sizes), ref) < -60


def test_batch_is_fixed_per_stream():
    m = model_of(GRAPHS["ddsp_default"]())
    f0, ld = features(8, batch=2)
    eng = StreamingSynth(m, batch=2)
    with torch.no_grad():
        y = eng(f0, ld)
        assert y.shape[0] == 2
        with pytest.raises(ValueError, match="batch"):
            eng(f0[:1], ld[:1])


def test_encoder_models_are_refused_with_a_reason():
    m = Autoencoder(graph=presets.ddsp_default(SR, reverb_length=100).to_dict(),
                    decoder=SMALL, encoder={"z_dims": 4})
    with pytest.raises(UnsupportedGraphError, match="MFCC encoder"):
        StreamingSynth(m)


def test_static_parameters_are_learned_constants():
    m = model_of(chain({"type": "Harmonic", "n_harmonics": 4}, {"type": "Compressor"}))
    assert set(m.static_params) == {f"n1__{p}" for p in
                                    ("threshold_db", "ratio", "knee_db", "attack_s",
                                     "release_s", "makeup_db")}
    f0, ld = features(5)
    with torch.no_grad():
        p = m.controls(f0, ld)
    assert p["n1"]["ratio"].shape == (1, 1)


def test_counter_noise_properties():
    like = torch.zeros(())
    a = counter_noise(2, -10, 200_000, 5, like)
    # block boundaries do not matter: the noise is a function of the position
    b = torch.cat([counter_noise(2, s, 1000, 5, like) for s in range(-10, 199_990, 1000)], -1)
    assert torch.equal(a, b)
    assert torch.all(a[:, :10] == 0)  # positions before 0
    x = a[:, 10:].double()
    assert x.min() >= -1 and x.max() < 1
    assert abs(float(x.mean())) < 0.01                      # uniform on [-1, 1): mean 0,
    assert abs(float(x.var()) - 1 / 3) < 0.01               # variance 1/3
    hist = torch.histc(x[0], bins=10, min=-1, max=1) / x.shape[1]
    assert torch.all((hist - 0.1).abs() < 0.01)
    for lag in (1, 2, 64, 1024):
        c = float((x[0, lag:] * x[0, :-lag]).mean() / x[0].var())
        assert abs(c) < 0.02
    assert abs(float((x[0] * x[1]).mean() / x[0].var())) < 0.02  # rows are independent


def test_export_cli(tmp_path, capsys):
    from ddsp_models.cli import main

    d = tmp_path / "tiny"
    model_of(GRAPHS["delay_iir"]()).save_pretrained(d)
    out = tmp_path / "s.pt"
    assert main(["export", "--model", str(d), "--format", "torchscript", "--streaming",
                 "-o", str(out)]) == 0
    info = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    mod = torch.jit.load(str(out))
    assert info["latency_samples"] == mod.latency_samples
    assert mod(*features(4)).shape == (1, 1, 256)
