"""Modulation edges and external controls through the graph, streaming, training and the
autoencoder.

* an LFO on a filter's cutoff equals rendering the filter with the modulated cutoff by hand;
* a graph with an LFO on a ladder filter's cutoff and an ADSR on an FM synth renders the same
  block by block (any sizes, scripted, fixed-size ONNX-style blocks) as whole, round-trips
  through dict/YAML, and trains (Adam) towards a toy target, lowering the loss;
* validation: unknown / static parameters, modes, cycles, stereo sources;
* the external controls: derivations, the autoencoder with a ``gate`` graph (derived or given
  by the batch), StreamingSynth (TorchScript) equal to the offline model, unknown controls
  refused; shards carrying a ``gate`` track pass it to the batches.
"""

from __future__ import annotations

import json

import pytest
import torch

from ddsp_models.graph import GraphError, ProcessorGraph
from ddsp_models.graph.controls import CONTROLS, derive_control, resolve_controls
from ddsp_models.graph.modulation import frame_values
from ddsp_models.graph.stream import GraphStream, render_graph_in_blocks
from ddsp_models.processors import Param, Processor

SR, HOP = 16000, 32

pytestmark = pytest.mark.usefixtures("one_thread")


def synth_graph(sr=SR):
    return {
        "nodes": {"fm": {"type": "FMSynth", "sample_rate": sr},
                  "env": {"type": "ADSR", "sample_rate": sr},
                  "lfo": {"type": "LFO", "sample_rate": sr, "time_varying": True,
                          "max_rate_hz": 100.0},
                  "filt": {"type": "LadderFilter", "sample_rate": sr}},
        "edges": ["fm -> filt", "filt -> out"],
        "modulations": [
            {"from": "lfo", "to": "filt.cutoff_hz", "mode": "octaves", "amount": 1.5},
            {"from": "env", "to": "fm.amplitudes", "mode": "multiply"},
            {"from": "env", "to": "fm.mod_indices", "mode": "multiply", "amount": 0.5},
        ],
    }


def inputs(g, frames, batch=2, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    raw = torch.randn(batch, frames, g.parameter_layout().n_params, generator=gen, dtype=dtype)
    gate = (torch.rand(batch, frames, 1, generator=gen, dtype=dtype) > 0.3).to(dtype)
    f0 = 150 + 200 * torch.rand(batch, frames, 1, generator=gen, dtype=dtype)
    return g.split_params(raw), {"f0_hz": f0, "gate": gate}


def test_lfo_on_cutoff_equals_modulating_by_hand():
    g = ProcessorGraph.from_dict({
        "nodes": {"noise": {"type": "FilteredNoise", "sample_rate": SR, "n_bands": 8},
                  "lfo": {"type": "LFO", "sample_rate": SR, "wave": "triangle"},
                  "filt": {"type": "LadderFilter", "sample_rate": SR}},
        "edges": ["noise -> filt", "filt -> out"],
        "modulations": [{"from": "lfo", "to": "filt.cutoff_hz", "amount": 300.0}]}).double()
    frames = 20
    params, _ = inputs(g, frames)
    from ddsp_models.core.noise import deterministic_noise

    with deterministic_noise(seed=0):
        got = g.render(params, frames * HOP)
        wave = g.nodes["lfo"](**params["lfo"], n_samples=frames * HOP)
        m = wave[:, 0, ::HOP][..., None]
        cutoff = params["filt"]["cutoff_hz"] + 300.0 * m
        noise = g.nodes["noise"](**params["noise"], n_samples=frames * HOP)
        want = g.nodes["filt"](noise, cutoff_hz=cutoff, resonance=params["filt"]["resonance"])
    torch.testing.assert_close(got, want)
    assert not torch.allclose(got, g.nodes["filt"](noise, **params["filt"]))


def test_modulated_graph_streams_like_offline_and_round_trips(tmp_path):
    g = ProcessorGraph.from_dict(synth_graph()).double()
    d = g.to_dict()
    assert d["modulations"][0] == {"from": "lfo", "to": "filt.cutoff_hz", "mode": "octaves",
                                   "amount": 1.5}
    again = ProcessorGraph.from_yaml(g.to_yaml(tmp_path / "g.yaml"))
    assert again.to_dict() == d
    frames = 29
    params, ctl = inputs(g, frames)
    ref = g.render(params, frames * HOP, controls=ctl)
    torch.testing.assert_close(g.render(params, frames * HOP, controls=ctl, mode="sequential"),
                               ref)
    stream = GraphStream(g, HOP)
    assert stream.latency_frames == 2  # the LFO's frame of look-ahead, then the filter's
    scripted = torch.jit.script(stream)
    for sizes, fwd in (((1, 4, 7, 16), None), ((3,), None), ((5, 2), scripted)):
        got = render_graph_in_blocks(g, params, HOP, controls=ctl, block_frames=sizes,
                                     stream=stream, forward=fwd)
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-10)
    # fixed-size blocks (the ONNX form): no flush, output lags by the rounded-up latency
    fixed = GraphStream(g, HOP, block_frames=4)
    n = 28
    cut = lambda v: v[:, :n] if v.dim() == 3 else v  # noqa: E731
    p4 = {k: {kk: cut(vv) for kk, vv in v.items()} for k, v in params.items()}
    c4 = {k: cut(v) for k, v in ctl.items()}
    ref4 = g.render(p4, n * HOP, controls=c4)
    state, outs = fixed.init_state(2, ref), []
    for t0 in range(0, n, 4):
        blk = lambda v: v[:, t0:t0 + 4] if v.dim() == 3 else v  # noqa: E731
        y, state = fixed({k: {kk: blk(vv) for kk, vv in v.items()} for k, v in p4.items()},
                         {k: blk(v) for k, v in c4.items()}, [], state, 4, False)
        outs.append(y)
    lag = fixed.latency_frames * HOP
    torch.testing.assert_close(torch.cat(outs, -1)[..., lag:], ref4[..., :n * HOP - lag],
                               rtol=0, atol=1e-10)


def test_lfo_and_adsr_graph_trains_towards_a_toy_target():
    from ddsp_models.nn.losses import MultiResolutionSpectralLoss

    sr, frames = 8000, 40  # 0.16 s
    g = ProcessorGraph.from_dict(synth_graph(sr))
    hop = 32
    layout = g.parameter_layout()
    gen = torch.Generator().manual_seed(3)
    target_raw = torch.randn(1, 1, layout.n_params, generator=gen).expand(1, frames, -1)
    gate = torch.zeros(1, frames, 1)
    gate[:, 2:28] = 1.0
    ctl = {"f0_hz": torch.full((1, frames, 1), 220.0), "gate": gate}
    with torch.no_grad():
        target = g.render(g.split_params(target_raw), frames * hop, controls=ctl)
    raw = torch.nn.Parameter(torch.zeros(1, frames, layout.n_params))
    loss_fn = MultiResolutionSpectralLoss(fft_sizes=(512, 256, 128), sample_rate=sr)
    opt = torch.optim.Adam([raw], lr=0.05)
    losses = []
    for _ in range(12):
        out = g.render(g.split_params(raw), frames * hop, controls=ctl)
        loss = loss_fn(out, target)
        opt.zero_grad()
        loss.backward()
        assert all(raw.grad[..., e.columns].abs().sum() > 0 for e in layout.predicted
                   if e.node in ("lfo", "env"))  # gradients reach the control sources
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_modulation_errors():
    g = ProcessorGraph.from_dict({
        "nodes": {"fm": {"type": "FMSynth"}, "lfo": {"type": "LFO", "time_varying": True},
                  "lfo2": {"type": "LFO"}, "pan": {"type": "StereoGain"}},
        "edges": ["fm -> pan", "pan -> out"]})
    with pytest.raises(GraphError, match="no parameter 'cutoff'"):
        g.modulate("lfo", "fm", "cutoff")
    with pytest.raises(GraphError, match="static"):
        g.modulate("lfo", "lfo2", "rate_hz")
    with pytest.raises(GraphError, match="mode"):
        g.modulate("lfo", "fm", "amplitudes", mode="divide")
    with pytest.raises(GraphError, match="unknown source"):
        g.modulate("in", "fm", "amplitudes")
    g.modulate("lfo", "fm", "amplitudes").modulate("lfo2", "lfo", "depth")
    with pytest.raises(GraphError, match="already modulates"):
        g.modulate("lfo", "fm", "amplitudes")
    with pytest.raises(GraphError, match="cycle"):
        g.modulate("fm", "lfo", "rate_hz")
    with pytest.raises(GraphError, match="cycle"):
        g.connect("pan", "pan")
    g.validate()  # the LFOs reach 'out' through their modulations: not dangling
    assert g.topological_order().index("lfo2") < g.topological_order().index("lfo") < \
        g.topological_order().index("fm")
    stereo = ProcessorGraph.from_dict({
        "nodes": {"fm": {"type": "FMSynth"}, "pan": {"type": "StereoGain"},
                  "fm2": {"type": "FMSynth"}},
        "edges": ["fm -> pan", "fm2 -> out"]})
    stereo.modulate("pan", "fm2", "amplitudes")
    with pytest.raises(GraphError, match="must be mono"):
        stereo.validate()
    g.remove("lfo")
    assert [str(m) for m in g.modulations] == []


def test_frame_values_reads_frame_centres():
    y = torch.arange(12.0).reshape(1, 1, 12)
    assert frame_values(y, 4, 3).flatten().tolist() == [0.0, 4.0, 8.0]


# ------------------------------------------------------------------- external controls
def test_derived_controls():
    f0 = torch.tensor([[[0.0], [440.0], [220.0]]])
    ld = torch.tensor([[[-30.0], [-20.0], [-70.0]]])
    assert derive_control("gate", f0, ld).flatten().tolist() == [0.0, 1.0, 0.0]
    torch.testing.assert_close(derive_control("note", f0, ld).flatten(),
                               torch.tensor([0.0, 69.0, 57.0]))
    torch.testing.assert_close(derive_control("velocity", f0, ld).flatten(),
                               torch.tensor([0.625, 0.75, 0.125]))
    scripted = torch.jit.script(derive_control)
    assert torch.equal(scripted("gate", f0, ld), derive_control("gate", f0, ld))
    given = resolve_controls(["gate", "f0_hz"], f0, ld, {"gate": torch.ones(1, 3)})
    assert given["gate"].shape == (1, 3, 1) and given["gate"].sum() == 3
    assert set(CONTROLS) >= {"f0_hz", "gate", "velocity", "note"}


AE_SR, AE_FR = 8000, 250
AE_GRAPH = {
    "nodes": {"fm": {"type": "FMSynth", "sample_rate": AE_SR},
              "env": {"type": "ADSR", "sample_rate": AE_SR, "shape": "exponential"}},
    "edges": ["fm -> out"],
    "modulations": [{"from": "env", "to": "fm.amplitudes", "mode": "multiply"}],
}


def small_autoencoder():
    from ddsp_models.nn.autoencoder import Autoencoder

    torch.manual_seed(0)
    return Autoencoder(graph=AE_GRAPH, sample_rate=AE_SR, frame_rate=AE_FR,
                       decoder=dict(hidden_size=16, mlp_size=16, mlp_layers=1))


def ae_batch(frames=40):
    f0 = torch.full((1, frames, 1), 220.0)
    ld = torch.full((1, frames, 1), -30.0)
    ld[:, 25:] = -90.0  # the note ends: the derived gate closes
    return f0, ld


def test_autoencoder_with_a_gate_external_derives_or_takes_it():
    model = small_autoencoder()
    assert model.external_names == ["f0_hz", "gate"]
    f0, ld = ae_batch()
    derived = model(f0, ld)
    hop = AE_SR // AE_FR
    assert derived[..., 30 * hop:].abs().max() < 0.5 * derived[..., 10 * hop:25 * hop].abs().max()
    gate = torch.ones(1, 40, 1)
    given = model(f0, ld, controls={"gate": gate})
    assert given[..., 30 * hop:].abs().max() > derived[..., 30 * hop:].abs().max()
    # training reads a gate track from the batch when it has one
    audio = torch.randn(1, 1, 40 * hop) * 0.1
    loss_given, out = model._step({"audio": audio, "f0_hz": f0, "loudness_db": ld,
                                   "gate": gate})
    torch.testing.assert_close(out, given)
    loss_given.backward()


def test_streaming_synth_derives_the_gate_and_scripts():
    from ddsp_models.export.streaming import StreamingSynth

    model = small_autoencoder().eval()
    f0, ld = ae_batch()
    with torch.no_grad():
        ref = model(f0, ld)
        engine = StreamingSynth(model)
        assert "#last_gate" in engine.state_names
        scripted = torch.jit.script(StreamingSynth(model))
        for eng in (engine, scripted):
            outs = [eng(f0[:, t0:t0 + 7], ld[:, t0:t0 + 7]) for t0 in range(0, 40, 7)]
            outs.append(eng.flush())
            lag = eng.latency_samples
            got = torch.cat(outs, -1)[..., lag:]
            torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)


class BreathTestSynth(Processor):
    """A test synth declaring an external control no model supplies."""

    n_inputs = 0

    def param_specs(self):
        return (Param("breath", 1, external=True),)

    def forward(self, breath, n_samples):
        return torch.zeros(breath.shape[0], 1, n_samples)


def test_unknown_external_is_refused():
    from ddsp_models.nn.autoencoder import Autoencoder

    graph = {"nodes": {"b": {"type": "BreathTestSynth"}}, "edges": ["b -> out"]}
    with pytest.raises(ValueError, match="'breath'.*known controls"):
        Autoencoder(graph=graph, sample_rate=AE_SR, frame_rate=AE_FR)


def test_shards_with_a_gate_track_pass_it_to_batches(tmp_path):
    from safetensors.torch import save_file

    from ddsp_models.data.datamodule import collate
    from ddsp_models.data.dataset import ShardDataset
    from ddsp_models.data.prepare import FORMAT, MANIFEST

    n, frames, hop = 3, 10, 32
    tensors = {"audio": torch.zeros(n, frames * hop), "f0_hz": torch.full((n, frames), 220.0),
               "f0_confidence": torch.ones(n, frames), "loudness_db": torch.zeros(n, frames),
               "gate": (torch.arange(frames) < 6).float().expand(n, frames).contiguous(),
               "source": torch.zeros(n, dtype=torch.int64),
               "start": torch.zeros(n, dtype=torch.int64)}
    save_file(tensors, str(tmp_path / "shard-00000.safetensors"))
    (tmp_path / MANIFEST).write_text(json.dumps({
        "format": FORMAT, "sample_rate": 8000, "frame_rate": 250,
        "shards": [{"file": "shard-00000.safetensors", "n_examples": n}]}))
    ds = ShardDataset(tmp_path)
    assert ds.extra_controls == ["gate"]
    batch = collate([ds[0], ds[1]])
    assert batch["gate"].shape == (2, frames, 1)
    assert batch["gate"][0, :, 0].tolist() == [1.0] * 6 + [0.0] * 4


@pytest.mark.slow
def test_modulated_autoencoder_exports_to_onnx(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from ddsp_models.export.onnx import export_onnx, initial_state, onnx_names
    from ddsp_models.export.streaming import StreamingSynth

    model = small_autoencoder().eval()
    n, frames = 4, 40
    path, info = export_onnx(model, tmp_path / "m.onnx", block_frames=n)
    sess = ort.InferenceSession(str(path))
    engine = StreamingSynth(model, block_frames=n)
    names, state = onnx_names(engine), [s.numpy() for s in initial_state(engine)]
    f0, ld = ae_batch(frames)
    outs = []
    for c in range(0, frames, n):
        res = sess.run(None, {"f0_hz": f0[:, c:c + n].numpy(),
                              "loudness_db": ld[:, c:c + n].numpy(), **dict(zip(names, state))})
        outs.append(torch.from_numpy(res[0]))
        state = res[1:]
    y = torch.cat(outs, -1)
    lag = info["latency_samples"]
    with torch.no_grad():
        ref = model(f0, ld)[..., : y.shape[-1] - lag]
    torch.testing.assert_close(y[..., lag:], ref, rtol=1e-4, atol=1e-5)
