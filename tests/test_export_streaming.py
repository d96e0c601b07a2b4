"""Streaming rendering and TorchScript/ONNX export: block-by-block output equals the model's
offline rendering (same deterministic noise) within -60 dB, for several block sizes."""

import json

import numpy as np
import pytest
import torch

from ddsp_models.export.noise import counter_noise, deterministic_noise
from ddsp_models.export.streaming import StreamingSynth, UnsupportedGraphError, latency_frames
from ddsp_models.export.torchscript import IO_FILE, OfflineSynth, export_torchscript
from ddsp_models.graph import presets
from ddsp_models.nn.autoencoder import Autoencoder

SMALL = dict(hidden_size=24, mlp_size=24, mlp_layers=1)


pytestmark = pytest.mark.usefixtures("one_thread")


def ddsp_model(sample_rate=16000, frame_rate=250, reverb_length=3000, window_size=0,
               n_harmonics=60):
    g = presets.ddsp_default(sample_rate, n_harmonics=n_harmonics,
                             reverb_length=reverb_length).to_dict()
    g["nodes"]["noise"]["window_size"] = window_size
    m = Autoencoder(graph=g, sample_rate=sample_rate, frame_rate=frame_rate, decoder=SMALL).eval()
    with torch.no_grad():  # make noise and reverb loud enough to matter in the comparison
        m.decoder.head.bias[1 + n_harmonics:] += 4.0
        m.graph.nodes["reverb"].ir.mul_(4.0)
    return m


def features(batch, frames, frame_rate, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(frames) / frame_rate
    base = 150.0 + 400.0 * torch.rand(batch, 1, 1, generator=g)
    f0 = base * 2.0 ** (0.5 * torch.sin(2 * np.pi * 5.0 * t))[None, :, None]  # vibrato
    ld = -40.0 + 25.0 * torch.rand(batch, frames, 1, generator=g).cumsum(1) / frames
    return f0, ld


def stream(engine, f0, ld, block):
    engine.reset()
    with torch.no_grad():
        return torch.cat([engine(f0[:, c:c + block], ld[:, c:c + block])
                          for c in range(0, f0.shape[1], block)], -1)


def offline(model, f0, ld, seed=0):
    with torch.no_grad(), deterministic_noise(model, seed):
        return model(f0, ld)


def err_db(a, ref):
    return float(20 * torch.log10((a - ref).norm() / ref.norm()))


@pytest.mark.parametrize("block_frames", [1, 4, 7, 16])  # 64, 256, 448, 1024 samples
def test_streaming_equals_offline_default_graph(block_frames):
    m = ddsp_model()
    f0, ld = features(2, 120, 250)
    ref = offline(m, f0, ld)
    eng = StreamingSynth(m)
    y = stream(eng, f0, ld, block_frames)
    lat = eng.latency_samples
    assert lat == 2 * 64
    assert float(y[..., :lat].abs().max()) < 1e-6  # silence (FFT rounding only)
    n = 120 * 64 - lat
    assert err_db(y[..., lat:], ref[..., :n]) < -60
    # the comparison is meaningful: every part of the graph contributes audibly
    with torch.no_grad(), deterministic_noise(m):
        p = m.controls(f0, ld)
        h = m.graph.nodes["harmonic"](f0_hz=f0, n_samples=120 * 64, **p["harmonic"])
        nz = m.graph.nodes["noise"](n_samples=120 * 64, **p["noise"])
    assert nz.norm() > 0.3 * h.norm()
    assert (ref - (h + nz)).norm() > 0.1 * ref.norm()  # the reverb's wet part


def test_scripted_stream_and_flush_equal_offline_to_the_last_sample():
    m = ddsp_model()
    f0, ld = features(1, 60, 250, seed=1)
    ref = offline(m, f0, ld)
    eng = torch.jit.script(StreamingSynth(m))
    y = stream(eng, f0, ld, 4)
    y = torch.cat([y, eng.flush()], -1)[..., eng.latency_samples:]
    assert y.shape == ref.shape
    assert err_db(y, ref) < -60
    whole = torch.jit.script(OfflineSynth(m))
    assert err_db(whole(f0, ld).detach(), ref) < -60


def test_other_rate_odd_hop_and_short_noise_filter():
    # 22.05 kHz, 210 frames/s: hop 105 (odd); 33-tap noise filters
    m = ddsp_model(sample_rate=22050, frame_rate=210, reverb_length=2000, window_size=33,
                   n_harmonics=30)
    f0, ld = features(1, 50, 210, seed=2)
    ref = offline(m, f0, ld)
    eng = StreamingSynth(m)
    assert eng.latency_frames == latency_frames(105, 33) == 2
    for block in (1, 3, 10):
        y = stream(eng, f0, ld, block)
        lat = eng.latency_samples
        assert err_db(y[..., lat:], ref[..., : 50 * 105 - lat]) < -60


def test_long_noise_filter_needs_more_latency():
    # hop 32 (16 kHz, 500 frames/s) with 128-tap filters: the filter half-length (64) plus
    # half a hop (16) spans 3 hops -> 3 frames of latency
    m = ddsp_model(frame_rate=500, reverb_length=1000, n_harmonics=20)
    eng = StreamingSynth(m)
    assert eng.latency_frames == 3
    f0, ld = features(1, 80, 500, seed=3)
    ref = offline(m, f0, ld)
    y = stream(eng, f0, ld, 5)
    lat = eng.latency_samples
    assert err_db(y[..., lat:], ref[..., : 80 * 32 - lat]) < -60


@pytest.mark.parametrize("nodes", [["harmonic"], ["noise"]])
def test_single_synth_graphs(nodes):
    spec = {"harmonic": {"type": "Harmonic", "sample_rate": 16000, "n_harmonics": 20},
            "noise": {"type": "FilteredNoise", "sample_rate": 16000, "n_bands": 33}}
    g = {"nodes": {n: spec[n] for n in nodes}, "edges": [f"{n} -> out" for n in nodes]}
    m = Autoencoder(graph=g, decoder=SMALL).eval()
    f0, ld = features(1, 40, 250, seed=4)
    ref = offline(m, f0, ld)
    eng = StreamingSynth(m)
    y = stream(eng, f0, ld, 3)
    lat = eng.latency_samples
    assert err_db(y[..., lat:], ref[..., : 40 * 64 - lat]) < -60


def test_new_batch_size_restarts_the_stream():
    m = ddsp_model()
    eng = StreamingSynth(m)
    f0, ld = features(2, 8, 250)
    with torch.no_grad():
        eng(f0, ld)
        y1 = eng(f0[:1], ld[:1])  # batch 1: a fresh stream
        eng.reset()
        y2 = eng(f0[:1], ld[:1])
    assert torch.equal(y1, y2)


@pytest.mark.parametrize("case", ["biquad", "static_reverb", "encoder", "mixed_edges"])
def test_unsupported_graphs_name_the_node(case):
    if case == "biquad":
        m = Autoencoder(graph=presets.delay_iir(16000, reverb_length=1000).to_dict(),
                        decoder=SMALL)
        match = r"node 'filter' \(Biquad\)"
    elif case == "static_reverb":
        g = {"nodes": {"harmonic": {"type": "Harmonic", "n_harmonics": 4},
                       "rv": {"type": "Reverb", "length": 100, "trainable": False}},
             "edges": ["harmonic -> rv", "rv -> out"]}
        m = Autoencoder(graph=g, decoder=SMALL)
        match = "node 'rv'.*trainable=False"
    elif case == "encoder":
        m = Autoencoder(graph=presets.ddsp_default(16000, reverb_length=1000).to_dict(),
                        decoder=SMALL, encoder={"z_dims": 4})
        match = "MFCC encoder"
    else:
        # reverb on the noise only, harmonic straight out: a valid graph, not streamable
        g = {"nodes": {"harmonic": {"type": "Harmonic", "n_harmonics": 4},
                       "noise": {"type": "FilteredNoise", "n_bands": 9},
                       "rv": {"type": "Reverb", "length": 100}},
             "edges": ["harmonic -> out", "noise -> rv", "rv -> out"]}
        m = Autoencoder(graph=g, decoder=SMALL)
        match = "edge harmonic"
    with pytest.raises(UnsupportedGraphError, match=match):
        StreamingSynth(m)


def test_counter_noise_properties():
    a = counter_noise(2, -10, 200_000, seed=5)
    # block boundaries do not matter: the noise is a function of the position
    b = torch.cat([counter_noise(2, s, 1000, seed=5) for s in range(-10, 199_990, 1000)], -1)
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


def test_torchscript_file_roundtrip(tmp_path):
    m = ddsp_model()
    path = export_torchscript(m, tmp_path / "m.pt", streaming=True)
    extra = {IO_FILE: ""}
    loaded = torch.jit.load(str(path), _extra_files=extra)
    io = json.loads(extra[IO_FILE])
    assert io["streaming"] and io["hop"] == 64 and io["latency_samples"] == 128
    f0, ld = features(1, 32, 250, seed=6)
    y = stream(loaded, f0, ld, 8)
    ref = stream(StreamingSynth(m), f0, ld, 8)
    assert err_db(y, ref) < -100


def test_export_cli(tmp_path, capsys):
    from ddsp_models.cli import main

    d = tmp_path / "tiny"
    ddsp_model().save_pretrained(d)
    out = tmp_path / "s.pt"
    assert main(["export", "--model", str(d), "--format", "torchscript", "--streaming",
                 "-o", str(out)]) == 0
    assert '"latency_samples": 128' in capsys.readouterr().out
    mod = torch.jit.load(str(out))
    assert mod(*features(1, 4, 250)).shape == (1, 1, 256)
    bad = tmp_path / "bad"
    Autoencoder(graph=presets.delay_iir(16000, reverb_length=1000).to_dict(),
                decoder=SMALL).save_pretrained(bad)
    assert main(["export", "--model", str(bad), "-o", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert "node 'filter' (Biquad)" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_onnx_step_equals_torch_stream(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from ddsp_models.export.onnx import STATE_NAMES, export_onnx, initial_state

    m = ddsp_model()
    path, info = export_onnx(m, tmp_path / "m.onnx", block_frames=4)
    sess = ort.InferenceSession(str(path))
    f0, ld = features(1, 40, 250, seed=7)
    state = initial_state(StreamingSynth(m), float(f0[0, 0, 0]))
    outs = []
    for c in range(0, 40, 4):
        feed = {"f0_hz": f0[:, c:c + 4].numpy(), "loudness_db": ld[:, c:c + 4].numpy(),
                **{k: v.numpy() for k, v in zip(STATE_NAMES, state)}}
        res = sess.run(None, feed)
        outs.append(torch.from_numpy(res[0]))
        state = [torch.from_numpy(np.asarray(r)) for r in res[1:]]
    ref = stream(StreamingSynth(m), f0, ld, 4)
    assert err_db(torch.cat(outs, -1), ref) < -60
