"""A new processor is one file: this file defines ``TestTremolo`` and nothing else is edited.

Defining the class registers it (``Processor.__init_subclass__``). The tests below show that,
with no other file touched, it is

* in the registry (``all_processor_classes``, ``load_processor_class``);
* checked by the same contract as every shipped processor (``tests/test_contract.py``'s own
  test functions, called for it): finite output, gradcheck, config round trip, declared state,
  blocks == whole in float64 and float32, scripted ``step`` == Python;
* usable by name in a graph built from a dict or a YAML file, offline and block by block;
* described by ``ddsp processors TestTremolo`` and listed by ``ddsp processors``;
* left out of the generated docs tables (those document the package's processors only);
* streamed inside a model through the exported TorchScript file and through ONNX.
"""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import pytest
import torch
import yaml
from torch import Tensor

import test_contract as contract  # the registry-driven contract checks, reused as they are
from ddsp_models.cli import main as ddsp
from ddsp_models.core.scaling import LogSigmoidRange, SigmoidRange
from ddsp_models.core.upsample import upsample_linear
from ddsp_models.graph import ProcessorGraph
from ddsp_models.processors import (
    Param, Processor, State, all_processor_classes, load_processor_class)
from ddsp_models.processors.base import check_audio
from ddsp_models.processors.blocks import control_block, push_samples

SR = 16000


class TestTremolo(Processor):
    """Tremolo: ``y = x · (1 - depth · (1 + sin(2π rate_hz t)) / 2)``.

    ``depth`` ``(B, T, 1)`` in [0, 1] is interpolated linearly between frames (so a block lags
    the whole render by one frame: latency 1); ``rate_hz`` ``(B, 1)`` is static; the LFO phase
    is computed in float64 from the sample index, so blocks of any size give the same numbers.
    """

    __test__ = False  # a processor, not a pytest test class
    n_inputs = 1

    def __init__(self, sample_rate: float = SR, max_rate_hz: float = 20.0):
        super().__init__()
        self.sample_rate = float(sample_rate)
        self.max_rate_hz = float(max_rate_hz)

    def config(self):
        return {"sample_rate": self.sample_rate, "max_rate_hz": self.max_rate_hz}

    @classmethod
    def examples(cls):
        return [{}, {"max_rate_hz": 400.0}]

    def param_specs(self):
        return (
            Param("depth", 1, SigmoidRange(0.0, 1.0), True, unit="ratio",
                  doc="0 no tremolo, 1 full"),
            Param("rate_hz", 1, LogSigmoidRange(0.5, self.max_rate_hz), False, unit="Hz",
                  doc="LFO rate"),
        )

    def state_specs(self):
        return (
            State("depth", "(B, 1, 1) ratio: the last frame of depth"),
            State("audio", "(B, C, hop) input samples not yet output (one frame)"),
            State("sample", "() float64: offline index of the block's first output sample"),
        )

    def latency_frames(self, hop: int = 0) -> int:
        return 1

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        return {
            "depth": torch.zeros(batch, 1, 1, dtype=like.dtype, device=like.device),
            "audio": torch.zeros(batch, input_channels[0], hop, dtype=like.dtype,
                                 device=like.device),
            "sample": torch.full((), -float(hop), dtype=torch.float64, device=like.device),
        }

    def gain(self, depth: Tensor, rate_hz: Tensor, first: Tensor, n: int) -> Tensor:
        """``(B, 1, n)`` gain for ``n`` samples from offline index ``first``; ``depth`` is
        ``(B, 1, n)`` at audio rate."""
        t = (first + torch.arange(n, dtype=torch.float64, device=depth.device)) / self.sample_rate
        lfo = 0.5 + 0.5 * torch.sin(2 * math.pi * rate_hz.double()[:, :, None] * t)
        return 1.0 - depth * lfo.to(depth.dtype)

    def forward(self, x: Tensor, depth: Tensor, rate_hz: Tensor) -> Tensor:
        check_audio("TestTremolo", x)
        self.check_params({"depth": depth, "rate_hz": rate_hz})
        n = x.shape[-1]
        d = upsample_linear(depth, n).transpose(1, 2)  # (B, 1, n)
        return x * self.gain(d, rate_hz, torch.zeros((), dtype=torch.float64), n)

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        hop = n_samples // n_frames
        d, last = control_block(params["depth"], state["depth"], hop)  # (B, 1, n), lags 1 frame
        x, line = push_samples(state["audio"], inputs[0])  # the input delayed by one frame
        y = x * self.gain(d, params["rate_hz"], state["sample"], n_samples)
        return y, {"depth": last, "audio": line, "sample": state["sample"] + n_samples}


# ---------------------------------------------------------------------------- registry
def test_registered_by_definition():
    assert all_processor_classes()["TestTremolo"] is TestTremolo
    assert load_processor_class("TestTremolo") is TestTremolo


def test_offline_against_an_independent_reference():
    """forward == the formula written with numpy-style float64 arithmetic."""
    proc = TestTremolo().double()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 8 * 32, generator=g, dtype=torch.float64)
    depth = torch.rand(2, 8, 1, generator=g, dtype=torch.float64)
    rate = torch.tensor([[3.0], [7.5]], dtype=torch.float64)
    y = proc(x, depth=depth, rate_hz=rate)
    n = torch.arange(8 * 32, dtype=torch.float64)
    # depth at sample n: linear between frame centres t * 32, held after the last
    pos = (n / 32).clamp(max=7)
    lo = pos.floor().long().clamp(max=7)
    hi = (lo + 1).clamp(max=7)
    frac = pos - lo
    d = depth[:, lo, 0] * (1 - frac) + depth[:, hi, 0] * frac
    ref = x[:, 0] * (1 - d * (0.5 + 0.5 * torch.sin(2 * math.pi * rate * n / SR)))
    torch.testing.assert_close(y[:, 0], ref)


# ---------------------------------------------------------------------------- the contract
N_EXAMPLES = len(TestTremolo.examples())
CHECKS = [contract.test_finite_over_random_params, contract.test_gradcheck,
          contract.test_config_round_trip, contract.test_state_declaration_matches,
          contract.test_scripted_step_equals_python]


@pytest.mark.parametrize("i", range(N_EXAMPLES))
@pytest.mark.parametrize("check", CHECKS, ids=lambda f: f.__name__)
def test_contract(check, i):
    check("TestTremolo", i)


@pytest.mark.parametrize("i", range(N_EXAMPLES))
@pytest.mark.parametrize("dtype,limit_db", [(torch.float64, -100.0), (torch.float32, -60.0)])
def test_contract_blocks_equal_whole(dtype, limit_db, i):
    contract.test_blocks_equal_whole("TestTremolo", i, dtype, limit_db)


# ---------------------------------------------------------------------------- graphs
GRAPH = {
    "nodes": {
        "harmonic": {"type": "Harmonic", "sample_rate": SR, "n_harmonics": 8},
        "tremolo": {"type": "TestTremolo", "sample_rate": SR, "max_rate_hz": 40.0},
    },
    "edges": ["harmonic -> tremolo", "tremolo -> out"],
}


def _graph_case(graph, frames=12, hop=32):
    g = torch.Generator().manual_seed(3)
    params = {
        "harmonic": graph.nodes["harmonic"].random_params(1, frames, generator=g,
                                                           dtype=torch.float64),
        "tremolo": graph.nodes["tremolo"].random_params(1, frames, generator=g,
                                                         dtype=torch.float64),
    }
    return params, frames * hop


@pytest.mark.parametrize("source", ["dict", "yaml"])
def test_used_by_name_in_a_graph(source, tmp_path):
    if source == "dict":
        graph = ProcessorGraph.from_dict(GRAPH)
    else:
        path = tmp_path / "graph.yaml"
        path.write_text(yaml.safe_dump(GRAPH))
        graph = ProcessorGraph.from_yaml(path)
    graph = graph.double()
    assert isinstance(graph.nodes["tremolo"], TestTremolo)
    assert graph.to_dict()["nodes"]["tremolo"]["type"] == "TestTremolo"
    layout = {(e.node, e.param): e for e in graph.parameter_layout().entries}
    assert layout["tremolo", "depth"].time_varying and not layout["tremolo", "rate_hz"].time_varying
    params, n = _graph_case(graph)
    with torch.no_grad():
        y = graph.render(params, n_samples=n)
        h = graph.nodes["harmonic"](**params["harmonic"], n_samples=n)
        ref = graph.nodes["tremolo"](h, **params["tremolo"])
    torch.testing.assert_close(y, ref)


def test_graph_block_by_block():
    """The graph streams with it: its latency adds to the wiring's, blocks == whole."""
    from ddsp_models.graph.stream import GraphStream, render_graph_in_blocks

    graph = ProcessorGraph.from_dict(GRAPH).double()
    params, n = _graph_case(graph)
    with torch.no_grad():
        ref = graph.render(params, n_samples=n)
        stream = GraphStream(graph, 32, [])
        assert stream.latency_frames == graph.nodes["harmonic"].latency_frames(32) + 1
        got = render_graph_in_blocks(graph, params, 32, block_frames=(1, 4, 7, 16),
                                     stream=stream)
    assert contract.error_db(got, ref) < -100


# ---------------------------------------------------------------------------- the command
def test_ddsp_processors_describes_it(capsys):
    assert ddsp(["processors", "TestTremolo"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("TestTremolo (effect, ")
    for text in ("depth [1] ratio, time-varying (B, T, 1), predicted, SigmoidRange [0, 1]",
                 "rate_hz [1] Hz, static (B, 1), predicted, LogSigmoidRange [0.5, 20]",
                 "sample: () float64", "audio: (B, C, hop)", "latency: 1 frame"):
        assert text in out, (text, out)
    assert ddsp(["processors"]) == 0
    assert "TestTremolo" in capsys.readouterr().out


def test_not_in_the_generated_docs():
    from ddsp_models.docs_tables import _package_infos

    assert "TestTremolo" not in _package_infos()


def _tremolo_model():
    from ddsp_models.nn.autoencoder import Autoencoder

    torch.manual_seed(0)
    graph = {"nodes": {"harmonic": {"type": "Harmonic", "n_harmonics": 8},
                       "tremolo": {"type": "TestTremolo"}},
             "edges": ["harmonic -> tremolo", "tremolo -> out"]}
    return Autoencoder(graph=graph, decoder=dict(hidden_size=8, mlp_size=8, mlp_layers=1)).eval()


def _features(frames):
    t = torch.arange(frames) / 250
    f0 = (220.0 * 2 ** (0.3 * torch.sin(2 * math.pi * 3 * t)))[None, :, None]
    return f0, torch.linspace(-50, -10, frames)[None, :, None]


def test_streams_and_exports_through_torchscript(tmp_path):
    from ddsp_models.core.noise import deterministic_noise
    from ddsp_models.export.torchscript import export_torchscript

    m = _tremolo_model()
    f0, ld = _features(40)
    with torch.no_grad(), deterministic_noise(seed=0):
        ref = m(f0, ld)
    path = export_torchscript(m, tmp_path / "tremolo.pt", streaming=True)
    s = torch.jit.load(str(path))
    with torch.no_grad():
        y = torch.cat([s(f0[:, a:a + 3], ld[:, a:a + 3]) for a in range(0, 40, 3)]
                      + [s.flush()], -1)[..., s.latency_samples:]
    assert (y - ref).abs().max() < 1e-5 * ref.abs().max()


def test_exports_to_onnx(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from ddsp_models.core.noise import deterministic_noise
    from ddsp_models.export.onnx import export_onnx, initial_state, onnx_names
    from ddsp_models.export.streaming import StreamingSynth

    m = _tremolo_model()
    path, info = export_onnx(m, tmp_path / "tremolo.onnx", block_frames=4)
    engine = StreamingSynth(m, block_frames=4)
    assert any(n.startswith("tremolo.") for n in onnx_names(engine))  # its declared state
    sess = ort.InferenceSession(str(path))
    names, state = onnx_names(engine), [v.numpy() for v in initial_state(engine)]
    f0, ld = _features(40)
    outs = []
    for a in range(0, 40, 4):
        res = sess.run(None, {"f0_hz": f0[:, a:a + 4].numpy(), "loudness_db": ld[:, a:a + 4].numpy(),
                              **dict(zip(names, state))})
        outs.append(torch.from_numpy(res[0]))
        state = res[1:]
    lat = info["latency_samples"]
    y = torch.cat(outs, -1)[..., lat:]
    with torch.no_grad(), deterministic_noise(seed=0):
        ref = m(f0, ld)[..., : y.shape[-1]]
    assert (y - ref).abs().max() < 1e-4 * ref.abs().max()
