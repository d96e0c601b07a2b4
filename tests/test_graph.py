"""ProcessorGraph with small test processors defined here (not registered: leading '_').

Real processors (once they exist) are exercised in tests/test_graph_real.py.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from ddsp_models.core.scaling import ExpSigmoid, LogSigmoidRange, SigmoidRange
from ddsp_models.core.upsample import upsample_linear
from ddsp_models.graph import GraphError, ProcessorGraph
from ddsp_models.graph.render import render_plan
from ddsp_models.graph.schedule import batch_classes
from ddsp_models.processors import Param, Processor

SR = 1000


# --------------------------------------------------------------------------- test processors
class _Osc(Processor):
    """Sine oscillator: external f0_hz, time-varying amplitude."""

    def __init__(self, sample_rate: int = SR):
        super().__init__()
        self.sample_rate = sample_rate

    def param_specs(self):
        return (Param("f0_hz", 1, external=True, unit="Hz"),
                Param("amplitude", 1, ExpSigmoid(), unit="linear"))

    def config(self):
        return {"sample_rate": self.sample_rate}

    def forward(self, n_samples=None, f0_hz=None, amplitude=None):
        self.check_params({"f0_hz": f0_hz, "amplitude": amplitude})
        f = upsample_linear(f0_hz, n_samples)[..., 0].double()
        phase = 2 * math.pi * torch.cumsum(f / self.sample_rate, dim=-1)
        a = upsample_linear(amplitude, n_samples)[..., 0]
        return (a * torch.sin(phase).to(a.dtype))[:, None, :]


class _Ramp(Processor):
    """A synth without externals: static level times a ramp from 0 to 1."""

    def param_specs(self):
        return (Param("level", 1, SigmoidRange(0.0, 1.0), time_varying=False),)

    def forward(self, n_samples=None, level=None):
        self.check_params({"level": level})
        ramp = torch.linspace(0, 1, n_samples, dtype=level.dtype, device=level.device)
        return (level[:, :, None] * ramp)


class _Gain(Processor):
    n_inputs = 1

    def __init__(self, max_gain: float = 2.0):
        super().__init__()
        self.max_gain = max_gain

    def param_specs(self):
        return (Param("gain", 1, SigmoidRange(0.0, self.max_gain), unit="linear"),)

    def config(self):
        return {"max_gain": self.max_gain}

    def forward(self, x, gain):
        self.check_params({"gain": gain})
        return x * upsample_linear(gain, x.shape[-1])[..., 0][:, None, :]


class _Tanh(Processor):
    n_inputs = 1

    def param_specs(self):
        return (Param("drive", 1, LogSigmoidRange(0.1, 10.0), time_varying=False),)

    def forward(self, x, drive):
        self.check_params({"drive": drive})
        return torch.tanh(drive[:, :, None] * x)


class _FIR(Processor):
    """Static per-item FIR with ``n_taps`` taps: y[n] = sum_k h[k] x[n - k]."""

    n_inputs = 1

    def __init__(self, n_taps: int = 4):
        super().__init__()
        self.n_taps = n_taps

    def param_specs(self):
        return (Param("taps", self.n_taps, SigmoidRange(-1.0, 1.0), time_varying=False),)

    def config(self):
        return {"n_taps": self.n_taps}

    def forward(self, x, taps):
        self.check_params({"taps": taps})
        xp = torch.nn.functional.pad(x, (self.n_taps - 1, 0))
        frames = xp.unfold(-1, self.n_taps, 1)  # (B, C, L, K): x[n-K+1 .. n]
        return (frames * taps.flip(-1)[:, None, None, :]).sum(-1)


class _Mix2(Processor):
    """Two inputs: balance * x0 + (1 - balance) * x1."""

    n_inputs = 2

    def param_specs(self):
        return (Param("balance", 1, SigmoidRange(0.0, 1.0), time_varying=False),)

    def n_output_channels(self, input_channels=()):
        if input_channels[0] != input_channels[1]:
            raise ValueError(f"inputs need equal channels, got {input_channels}")
        return input_channels[0]

    def forward(self, x0, x1, balance):
        self.check_params({"balance": balance})
        b = balance[:, :, None]
        return b * x0 + (1 - b) * x1


class _Pan(Processor):
    """Mono to stereo with a static pan."""

    n_inputs = 1

    def param_specs(self):
        return (Param("pan", 1, SigmoidRange(0.0, 1.0), time_varying=False),)

    def n_output_channels(self, input_channels=()):
        if input_channels[0] != 1:
            raise ValueError(f"_Pan takes a mono input, got {input_channels[0]} channels")
        return 2

    def forward(self, x, pan):
        p = pan[:, :, None]
        return torch.cat([x * (1 - p), x * p], dim=1)


class _LearnedIR(Processor):
    """Convolution with a learnable impulse response (its own weights) and a static wet gain."""

    n_inputs = 1

    def __init__(self, length: int = 8):
        super().__init__()
        self.length = length
        self.ir = nn.Parameter(torch.randn(length) / length)

    def param_specs(self):
        return (Param("wet", 1, SigmoidRange(0.0, 1.0), time_varying=False),)

    def config(self):
        return {"length": self.length}

    def forward(self, x, wet):
        xp = torch.nn.functional.pad(x, (self.length - 1, 0))
        y = (xp.unfold(-1, self.length, 1) * self.ir.flip(-1)).sum(-1)
        return x + wet[:, :, None] * y


TEST_PROCESSORS = {c.__name__: c for c in (_Osc, _Ramp, _Gain, _Tanh, _FIR, _Mix2, _Pan, _LearnedIR)}


# --------------------------------------------------------------------------- helpers
def small_graph() -> ProcessorGraph:
    g = ProcessorGraph()
    g.add("osc", _Osc()).add("ramp", _Ramp()).add("gain", _Gain(3.0)).add("fir", _FIR(3))
    g.add("drive", _Tanh())
    g.connect("osc", "gain").connect("ramp", "gain").connect("gain", "fir")
    g.connect("fir", "drive").connect("drive", "out").connect("osc", "out")
    return g


def random_dag(n_nodes: int, seed: int, learned: bool = False) -> ProcessorGraph:
    """A random DAG of mixed test processors; every node reaches 'out'."""
    rng = random.Random(seed)
    g = ProcessorGraph()
    names: list[str] = []
    shared_gain = _Gain(1.5)
    for i in range(n_nodes):
        name = f"n{i}"
        if i < 3 or rng.random() < 0.08:
            proc = _Osc() if rng.random() < 0.6 else _Ramp()
        else:
            kinds = [lambda: _Gain(2.0), lambda: _Gain(4.0), lambda: shared_gain, _Tanh,
                     lambda: _FIR(3), lambda: _FIR(5), _Mix2]
            if learned:
                kinds.append(lambda: _LearnedIR(6))
            proc = rng.choice(kinds)()
        g.add(name, proc)
        for k in range(proc.n_inputs):
            for src in rng.sample(names, min(len(names), rng.choice([1, 1, 2]))):
                g.connect(src, name, inlet=k)
        names.append(name)
    for n in names:
        if not g.successors(n):
            g.connect(n, "out")
    return g


def raw_for(g: ProcessorGraph, batch: int, frames: int, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames, g.parameter_layout().n_params, generator=gen, dtype=dtype)


def f0_for(batch, frames, dtype=torch.float64):
    return torch.linspace(50, 200, batch * frames, dtype=dtype).reshape(batch, frames, 1)


# --------------------------------------------------------------------------- layout and split
def test_layout_offsets_sizes_and_externals():
    g = small_graph()
    layout = g.parameter_layout()
    got = [(e.node, e.param, e.size, e.time_varying, e.external, e.offset) for e in layout]
    assert got == [
        ("osc", "f0_hz", 1, True, True, None),
        ("osc", "amplitude", 1, True, False, 0),
        ("ramp", "level", 1, False, False, 1),
        ("gain", "gain", 1, True, False, 2),
        ("fir", "taps", 3, False, False, 3),
        ("drive", "drive", 1, False, False, 6),
    ]
    assert layout.n_params == 7
    assert layout.externals == {"f0_hz"}
    assert layout.entry("fir", "taps").columns == slice(3, 6)


def test_split_params_scales_and_averages_static_params():
    g = small_graph()
    raw = raw_for(g, 2, 5)
    p = g.split_params(raw)
    assert set(p) == {"osc", "ramp", "gain", "fir", "drive"}
    assert p["osc"].keys() == {"amplitude"}  # externals are not predicted
    # independent computation of each value
    torch.testing.assert_close(p["osc"]["amplitude"], ExpSigmoid()(raw[..., 0:1]))
    torch.testing.assert_close(p["ramp"]["level"], torch.sigmoid(raw[..., 1:2].mean(1)))
    torch.testing.assert_close(p["gain"]["gain"], 3.0 * torch.sigmoid(raw[..., 2:3]))
    torch.testing.assert_close(p["fir"]["taps"], -1 + 2 * torch.sigmoid(raw[..., 3:6].mean(1)))
    assert p["fir"]["taps"].shape == (2, 3) and p["gain"]["gain"].shape == (2, 5, 1)
    unscaled = g.split_params(raw, scale=False)
    torch.testing.assert_close(unscaled["gain"]["gain"], raw[..., 2:3])
    with pytest.raises(ValueError, match=r"raw must be \(batch, frames, 7\)"):
        g.split_params(raw[..., :6])


def test_grouped_split_equals_per_entry_reference_including_softmax():
    from ddsp_models.core.scaling import Softmax

    class _Mixture(_Gain):
        def param_specs(self):
            return (*super().param_specs(), Param("weights", 3, Softmax()),
                    Param("level", 2, SigmoidRange(0.0, 1.0), time_varying=False))

    g = random_dag(25, seed=4)
    g.add("m1", _Mixture()).add("m2", _Mixture(3.0))
    layout = g.parameter_layout()
    raw = raw_for(g, 3, 6)
    got = g.split_params(raw)
    for e in layout.predicted:  # the obvious per-parameter computation
        v = raw[..., e.offset:e.offset + e.size]
        v = e.scaling(v if e.time_varying else v.mean(1))
        torch.testing.assert_close(got[e.node][e.param], v, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(got["m1"]["weights"].sum(-1), torch.ones(3, 6, dtype=raw.dtype))


def test_conflicting_external_declarations_name_the_node():
    class _OscWide(_Osc):
        def param_specs(self):
            return (Param("f0_hz", 2, external=True),)

    g = ProcessorGraph().add("a", _Osc()).add("b", _OscWide())
    with pytest.raises(GraphError, match="node 'b': external control 'f0_hz'.*node 'a'"):
        g.parameter_layout()


# --------------------------------------------------------------------------- rendering
def test_graph_equals_hand_written_composition():
    g = small_graph()
    B, T, L = 2, 5, 400
    raw = raw_for(g, B, T, dtype=torch.float32)
    f0 = f0_for(B, T, torch.float32)
    p = g.split_params(raw)
    n = g.nodes
    osc = n["osc"](n_samples=L, f0_hz=f0, **p["osc"])
    ramp = n["ramp"](n_samples=L, **p["ramp"])
    expected = n["drive"](n["fir"](n["gain"](osc + ramp, **p["gain"]), **p["fir"]), **p["drive"]) + osc
    for mode in ("sequential", "batched"):
        out = g.render(p, n_samples=L, controls={"f0_hz": f0}, mode=mode)
        assert out.shape == (B, 1, L)
        torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)
    # forward() is render()
    torch.testing.assert_close(g(p, n_samples=L, controls={"f0_hz": f0}), expected,
                               rtol=1e-6, atol=1e-6)


def test_audio_inputs_and_multiple_outlets_of_in():
    g = ProcessorGraph().add("g1", _Gain()).add("g2", _Gain()).add("mix", _Mix2())
    g.connect("in", "g1").connect("in", "g2", outlet=1)
    g.connect("g1", "mix", inlet=0).connect("g2", "mix", inlet=1).connect("mix", "out")
    x0, x1 = torch.randn(3, 2, 64), torch.randn(3, 2, 64)
    p = g.split_params(torch.randn(3, 4, g.parameter_layout().n_params))
    out = g.render(p, inputs=[x0, x1])
    n = g.nodes
    expected = n["mix"](n["g1"](x0, **p["g1"]), n["g2"](x1, **p["g2"]), **p["mix"])
    torch.testing.assert_close(out, expected)
    assert out.shape == (3, 2, 64)


def test_random_dag_50_nodes_batched_equals_sequential_and_all_params_get_gradients():
    g = random_dag(50, seed=1, learned=True)
    B, T, L = 2, 4, 256
    raw = raw_for(g, B, T).requires_grad_(True)
    g.double()
    f0 = f0_for(B, T)
    p = g.split_params(raw)
    seq = g.render(p, n_samples=L, controls={"f0_hz": f0}, mode="sequential")
    bat = g.render(p, n_samples=L, controls={"f0_hz": f0}, mode="batched")
    torch.testing.assert_close(bat, seq, rtol=1e-12, atol=1e-12)
    assert torch.isfinite(bat).all() and bat.abs().max() > 0
    bat.pow(2).mean().backward()
    layout = g.parameter_layout()
    for e in layout.predicted:
        grad = raw.grad[..., e.columns]
        assert grad.abs().sum() > 0, f"no gradient for {e.node}.{e.param}"
    learned = [n for n, m in g.nodes.items() if isinstance(m, _LearnedIR)]
    assert learned, "the random DAG should contain learned-IR nodes"
    for n in learned:
        assert g.nodes[n].ir.grad is not None and g.nodes[n].ir.grad.abs().sum() > 0
    # batching actually happened: fewer steps than nodes
    assert len(render_plan(g)) < len(g.nodes)


def test_batched_mode_makes_fewer_processor_calls():
    g = random_dag(30, seed=3)
    calls = {"n": 0}

    def hook(*_):
        calls["n"] += 1

    unique = {id(m): m for m in g.nodes.values()}  # a shared module must count once per call
    handles = [m.register_forward_hook(hook) for m in unique.values()]
    p = g.split_params(raw_for(g, 2, 3, dtype=torch.float32))
    controls = {"f0_hz": f0_for(2, 3, torch.float32)}
    g.render(p, n_samples=30, controls=controls, mode="sequential")
    n_seq, calls["n"] = calls["n"], 0
    g.render(p, n_samples=30, controls=controls, mode="batched")
    for h in handles:
        h.remove()
    assert n_seq == 30
    assert calls["n"] <= len(render_plan(g)) < 30


def _check_schedule(g: ProcessorGraph):
    class_of, _ = batch_classes(g)
    steps = render_plan(g)
    done: set[str] = set()
    for step in steps:
        assert len({class_of[n] for n in step}) == 1
        for n in step:
            assert all(p in done or p == "in" for p in g.predecessors(n))
        done.update(step)
    assert sorted(done) == sorted(g.nodes) and sum(map(len, steps)) == len(g.nodes)


@settings(max_examples=15)
@given(n=st.integers(3, 14), seed=st.integers(0, 10_000))
def test_schedule_is_valid_and_batched_equals_sequential_on_random_dags(n, seed):
    g = random_dag(n, seed).double()
    _check_schedule(g)
    raw = raw_for(g, 2, 3, seed=seed)
    p = g.split_params(raw)
    kw = dict(n_samples=24, controls={"f0_hz": f0_for(2, 3)})
    torch.testing.assert_close(g.render(p, mode="batched", **kw),
                               g.render(p, mode="sequential", **kw), rtol=1e-12, atol=1e-12)


def test_same_type_different_config_or_weights_are_not_merged():
    g = ProcessorGraph()
    shared = _Gain()
    g.add("a", _Gain(2.0)).add("b", _Gain(2.0)).add("c", _Gain(4.0)).add("d", shared).add("e", shared)
    g.add("f", _LearnedIR()).add("h", _LearnedIR())
    class_of, stacked = batch_classes(g)
    assert class_of["a"] == class_of["b"] != class_of["c"]
    assert class_of["d"] == class_of["e"]
    assert class_of["f"] == class_of["h"] and stacked[class_of["f"]]
    assert not stacked[class_of["a"]]


def test_vmap_weights_equal_separate_and_train_each_node():
    g = ProcessorGraph()
    for i in range(4):
        g.add(f"ir{i}", _LearnedIR(5)).connect("in", f"ir{i}").connect(f"ir{i}", "out")
    g.double()
    x = torch.randn(2, 1, 40, dtype=torch.float64)
    p = g.split_params(torch.randn(2, 3, g.parameter_layout().n_params, dtype=torch.float64))
    sep = g.render(p, inputs=x, weights="separate")
    vm = g.render(p, inputs=x, weights="vmap")
    torch.testing.assert_close(vm, sep, rtol=1e-12, atol=1e-12)
    vm.sum().backward()
    for i in range(4):
        assert g.nodes[f"ir{i}"].ir.grad.abs().sum() > 0
    assert "nodes.ir0.ir" in g.state_dict()


def test_gradcheck_through_batched_render():
    g = ProcessorGraph().add("a", _Osc()).add("b", _Osc()).add("g1", _Gain()).add("g2", _Gain())
    g.add("t", _Tanh())
    g.connect("a", "g1").connect("b", "g2").connect("g1", "t").connect("g2", "t").connect("t", "out")
    g.double()
    f0 = f0_for(2, 3)

    def f(raw):
        return g.render(g.split_params(raw), n_samples=12, controls={"f0_hz": f0})

    raw = torch.randn(2, 3, g.parameter_layout().n_params, dtype=torch.float64, requires_grad=True)
    assert len(render_plan(g)) == 3  # oscs, gains, tanh: batched steps
    assert torch.autograd.gradcheck(f, (raw,), eps=1e-6, atol=1e-6)



@pytest.mark.parametrize("mixed", [False, True])
def test_chained_stages_reuse_or_gather_their_inputs_exactly(mixed):
    """Strips gain -> tanh -> FIR run as three batched steps. As plain chains each step takes
    the previous step's output as it is (no copy); when the FIRs read some tanh and some gain
    outputs they must gather the right rows. Both equal one-by-one rendering, values and
    gradients."""
    n = 4
    g = ProcessorGraph()
    for i in range(n):
        g.add(f"g{i}", _Gain()).add(f"t{i}", _Tanh()).add(f"f{i}", _FIR(3))
    for i in range(n):
        g.connect("in", f"g{i}").connect(f"g{i}", f"t{i}").connect(f"f{i}", "out")
        if mixed and i % 2:
            g.connect(f"g{i}", f"f{i}").connect(f"t{i}", "out")
        else:
            g.connect(f"t{i}", f"f{i}")
    g.double()
    assert len(render_plan(g)) == 3
    x = torch.randn(2, 1, 20, dtype=torch.float64)
    raw = torch.randn(2, 3, g.parameter_layout().n_params, dtype=torch.float64)

    def run(mode):
        r = raw.clone().requires_grad_(True)
        xi = x.clone().requires_grad_(True)
        y = g.render(g.split_params(r), inputs=xi, mode=mode)
        (y * torch.linspace(-1, 1, 20, dtype=torch.float64)).sum().backward()
        return y.detach(), r.grad, xi.grad

    for got, want in zip(run("batched"), run("sequential")):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)

    def f(r, xi):
        return g.render(g.split_params(r), inputs=xi)

    r = raw[:1, :2].clone().requires_grad_(True)
    xi = x[:1, :, :8].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(f, (r, xi))

# --------------------------------------------------------------------------- validation errors
def test_add_rejects_bad_names_and_objects():
    g = ProcessorGraph().add("a", _Gain())
    for bad, msg in [("in", "reserved"), ("out", "reserved"), ("a", "already exists"),
                     ("1x", "identifier"), ("keys", "clashes"), ("for", "identifier")]:
        with pytest.raises(GraphError, match=msg):
            g.add(bad, _Gain())
    with pytest.raises(GraphError, match="node 'z': expected a ddsp_models Processor"):
        g.add("z", nn.Linear(1, 1))


def test_connect_errors_name_the_node():
    g = ProcessorGraph().add("osc", _Osc()).add("gain", _Gain()).add("mix", _Mix2())
    with pytest.raises(GraphError, match="unknown destination node 'nope'"):
        g.connect("osc", "nope")
    with pytest.raises(GraphError, match="unknown source node 'ghost'"):
        g.connect("ghost", "gain")
    with pytest.raises(GraphError, match=r"node 'gain' \(_Gain\) has 1 inlet\(s\).*inlet=1"):
        g.connect("osc", "gain", inlet=1)
    with pytest.raises(GraphError, match=r"node 'osc' \(_Osc\) is a synth with no audio inlet"):
        g.connect("gain", "osc")
    with pytest.raises(GraphError, match=r"node 'osc' \(_Osc\) has 1 outlet"):
        g.connect("osc", "gain", outlet=1)
    g.connect("osc", "gain").connect("gain", "mix")
    with pytest.raises(GraphError, match="already exists"):
        g.connect("osc", "gain")
    with pytest.raises(GraphError, match="cycle through node 'mix': gain -> mix -> gain"):
        g.connect("mix", "gain")
    with pytest.raises(GraphError, match="connects node 'gain' to itself"):
        g.connect("gain", "gain")


def test_validate_errors_name_the_node():
    g = ProcessorGraph().add("osc", _Osc()).add("mix", _Mix2()).add("spare", _Tanh())
    g.connect("osc", "mix", inlet=0).connect("mix", "out").connect("osc", "spare")
    with pytest.raises(GraphError, match=r"node 'mix' \(_Mix2\): inlet 1 has no incoming edge"):
        g.validate()
    g.connect("osc", "mix", inlet=1)
    with pytest.raises(GraphError, match=r"node 'spare' \(_Tanh\) is dangling"):
        g.validate()
    g.remove("spare")
    g.validate()
    # channel mismatch: stereo and mono summed into one inlet
    g2 = ProcessorGraph().add("osc", _Osc()).add("pan", _Pan()).add("gain", _Gain())
    g2.connect("osc", "pan").connect("pan", "gain").connect("osc", "gain").connect("gain", "out")
    with pytest.raises(GraphError, match=r"node 'gain' \(_Gain\): channel mismatch at inlet 0: "
                                         r"'pan' gives 2, 'osc' gives 1"):
        g2.validate()
    # a processor that rejects its input channels
    g3 = ProcessorGraph().add("pan", _Pan()).connect("in", "pan").connect("pan", "out")
    g3.validate([1])
    with pytest.raises(GraphError, match=r"node 'pan' \(_Pan\): inputs with \[2\] channel"):
        g3.validate([2])
    # an edge list edited by hand into a cycle is caught by validate
    g4 = ProcessorGraph().add("a", _Gain()).add("b", _Gain())
    g4.connect("a", "b").connect("b", "out")
    from ddsp_models.graph import Edge

    g4.edges.append(Edge("b", "a"))
    with pytest.raises(GraphError, match=r"cycle through node\(s\) \['a', 'b'\]"):
        g4.validate()
    with pytest.raises(GraphError, match="no edge into node 'out'"):
        ProcessorGraph().add("o", _Osc()).validate()


def test_render_errors_name_the_node():
    g = small_graph()
    B, T, L = 2, 5, 100
    p = g.split_params(raw_for(g, B, T, dtype=torch.float32))
    f0 = f0_for(B, T, torch.float32)
    with pytest.raises(GraphError, match=r"node 'fir': _FIR: missing parameters \['taps'\]"):
        g.render({**p, "fir": {}}, n_samples=L, controls={"f0_hz": f0})
    bad = {**p, "gain": {"gain": torch.zeros(B, T)}}
    with pytest.raises(GraphError, match=r"node 'gain': _Gain.gain must be \(batch, frames, 1\)"):
        g.render(bad, n_samples=L, controls={"f0_hz": f0})
    with pytest.raises(GraphError, match="node 'osc' .* needs the external control 'f0_hz'"):
        g.render(p, n_samples=L)
    with pytest.raises(GraphError, match="unknown node"):
        g.render({**p, "ghost": {}}, n_samples=L, controls={"f0_hz": f0})
    with pytest.raises(GraphError, match="batch size mismatch.*node ramp"):
        g.render({**p, "ramp": {"level": torch.zeros(3, 1)}}, n_samples=L, controls={"f0_hz": f0})
    with pytest.raises(GraphError, match="n_samples is required"):
        g.render(p, controls={"f0_hz": f0})
    with pytest.raises(GraphError, match="mode must be one of"):
        g.render(p, n_samples=L, controls={"f0_hz": f0}, mode="fast")
    gi = ProcessorGraph().add("g", _Gain()).connect("in", "g").connect("g", "out")
    pg = {"g": {"gain": torch.ones(1, 2, 1)}}
    with pytest.raises(GraphError, match=r"reads node 'in' but render got inputs=None"):
        gi.render(pg, n_samples=8)
    with pytest.raises(GraphError, match="reads audio input 1"):
        ProcessorGraph().add("g", _Gain()).connect("in", "g", outlet=1).connect("g", "out").render(
            pg, inputs=torch.zeros(1, 1, 8))


# --------------------------------------------------------------------------- (de)serialisation
def test_dict_round_trip_is_exact_and_renders_the_same():
    g = random_dag(20, seed=5)
    d = g.to_dict()
    g2 = ProcessorGraph.from_dict(d, processors=TEST_PROCESSORS)
    assert g2.to_dict() == d
    assert list(g2.nodes) == list(g.nodes) and g2.edges == g.edges
    p = g.split_params(raw_for(g, 2, 3, dtype=torch.float32))
    kw = dict(n_samples=30, controls={"f0_hz": f0_for(2, 3, torch.float32)})
    torch.testing.assert_close(g2.render(p, **kw), g.render(p, **kw))


def test_yaml_round_trip(tmp_path):
    g = small_graph()
    g.add("mix", _Mix2()).connect("drive", "mix", inlet=1).connect("osc", "mix").connect("mix", "out")
    path = g.to_yaml(tmp_path / "graph.yaml")
    g2 = ProcessorGraph.from_yaml(path, processors=TEST_PROCESSORS)
    assert g2.to_dict() == g.to_dict()
    assert "inlet: 1" in path.read_text()
    # a recipe with a graph: entry and the short edge forms
    (tmp_path / "recipe.yaml").write_text(
        "graph:\n  nodes:\n    osc: {type: _Osc, sample_rate: 1000}\n"
        "    mix: {type: _Mix2}\n  edges: ['osc -> mix', 'osc -> mix:1', [mix, out]]\n")
    g3 = ProcessorGraph.from_yaml(tmp_path / "recipe.yaml", processors=TEST_PROCESSORS)
    assert g3.to_dict()["edges"] == [{"src": "osc", "dst": "mix"},
                                     {"src": "osc", "dst": "mix", "inlet": 1},
                                     {"src": "mix", "dst": "out"}]


def test_from_dict_errors_name_the_node():
    with pytest.raises(GraphError, match="node 'x': unknown processor type 'Nope'"):
        ProcessorGraph.from_dict({"nodes": {"x": {"type": "Nope"}}, "edges": []})
    with pytest.raises(GraphError, match=r"node 'x': _Gain\(\*\*\{'bogus': 1\}\) failed"):
        ProcessorGraph.from_dict({"nodes": {"x": {"type": "_Gain", "bogus": 1}}},
                                 processors=TEST_PROCESSORS)
    with pytest.raises(GraphError, match="node 'x': expected"):
        ProcessorGraph.from_dict({"nodes": {"x": 3}})
    with pytest.raises(GraphError, match="unknown destination node 'y'"):
        ProcessorGraph.from_dict({"nodes": {"x": {"type": "_Osc"}}, "edges": ["x -> y"]},
                                 processors=TEST_PROCESSORS)


# --------------------------------------------------------------------------- drawing
def test_draw_png_and_svg(tmp_path):
    g = random_dag(12, seed=2)
    png = g.draw(tmp_path / "g.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    svg = g.draw(tmp_path / "g.svg")
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    with pytest.raises(ValueError, match=r"\.png, \.svg or \.pdf"):
        g.draw(tmp_path / "g.jpg")


def test_layered_positions_follow_topological_depth():
    from ddsp_models.graph.draw import layered_positions

    g = small_graph()
    pos = layered_positions(g)
    for e in g.edges:
        assert pos[e.src][0] < pos[e.dst][0]
    assert pos["osc"][0] == 0 and pos["out"][0] == max(x for x, _ in pos.values())
    # nodes in one column get distinct rows
    cols: dict[float, list[float]] = {}
    for x, y in pos.values():
        cols.setdefault(x, []).append(y)
    assert all(len(set(ys)) == len(ys) for ys in cols.values())
    assert np.isfinite([v for xy in pos.values() for v in xy]).all()


def test_batch_classes_follow_buffer_changes():
    class _Buffered(_Gain):
        def __init__(self, value: float):
            super().__init__()
            self.register_buffer("table", torch.full((4,), value))

    g = ProcessorGraph().add("a", _Buffered(1.0)).add("b", _Buffered(2.0))
    class_of, _ = batch_classes(g)
    assert class_of["a"] != class_of["b"]  # different buffer values: not batchable together
    g.nodes["b"].table.fill_(1.0)  # in-place edit
    class_of, _ = batch_classes(g)
    assert class_of["a"] == class_of["b"]
    g.nodes["a"].table = torch.full((4,), 3.0)  # replaced buffer
    class_of, _ = batch_classes(g)
    assert class_of["a"] != class_of["b"]
