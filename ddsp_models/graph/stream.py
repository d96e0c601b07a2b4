"""Block-by-block rendering of a :class:`~ddsp_models.graph.ProcessorGraph` with carried state.

:class:`GraphStream` renders any graph whose processors keep the block contract of
:mod:`ddsp_models.processors.base` (all registered processors do). It reads only the
declarations — each node's ``latency_frames(hop)``, ``init_state`` and ``step`` — so it holds no
processor-specific code, and it compiles with ``torch.jit.script``.

Latency follows from the wiring. A node whose inputs arrive ``d`` frames late (its *input
delay*, the largest output latency among its sources) sees its parameters delayed by ``d``
frames too, is not stepped before its own time 0, and its output lags by ``d + L`` frames
(``L`` its own look-ahead). Edges from sources with a smaller latency are delayed by whole
frames (carried audio lines), so signals summed into one inlet line up. The graph's latency
``latency_frames`` is the input delay of ``"out"``: the stream's sample ``m`` equals the whole
render's sample ``m - latency_frames * hop`` (zeros before).

At the end of a stream, :meth:`GraphStream.step` with ``flushing=True`` for
``latency_frames`` more frames (the last frame of every parameter repeated, audio inputs zero)
returns the whole render's last samples. Within a flush, each node first receives its
remaining real frames, then its own flush (contract item 3), then nothing.

Modulation edges (:mod:`.modulation`) count like audio edges for the input delay; the source's
output, read at frame rate, is delayed by whole frames to line up with the destination's
delayed parameters, and during the destination's own flush its last modulated frame is held.

:func:`render_graph_in_blocks` drives a stream through a whole signal (for tests and for
chunked rendering of long files).
"""

from typing import Dict, List, Mapping, Sequence, Tuple

import torch
from torch import Tensor, nn

from ..processors.blocks import block_slices, push_frames, push_samples
from .modulation import apply_modulation, frame_values
from .types import IN, OUT, GraphError, n_outputs

__all__ = ["GraphStream", "render_graph_in_blocks", "graph_latencies"]



def graph_latencies(graph, hop: int, block_frames: int = 0
                    ) -> tuple[dict[str, int], dict[str, int], int]:
    """Per node ``(input delay d, output latency d + L)`` in frames, and the graph latency.

    With ``block_frames > 0`` (fixed-size blocks) each input delay is rounded up to a multiple
    of it, so no block straddles a node's time 0.

    Returns:
        ``(input_delay, output_latency, latency_frames)``; ``"in"`` has output latency 0.
    """
    out_lat: dict[str, int] = {IN: 0}
    in_delay: dict[str, int] = {}
    for name in graph.topological_order():
        srcs = [out_lat[e.src] for e in graph.edges if e.dst == name]
        srcs += [out_lat[m.src] for m in graph.modulations if m.dst == name]
        d = max(srcs, default=0)
        if block_frames > 0:
            d = -(-d // block_frames) * block_frames
        in_delay[name] = d
        out_lat[name] = in_delay[name] + int(graph.nodes[name].latency_frames(hop))
    total = max((out_lat[e.src] for e in graph.edges if e.dst == OUT), default=0)
    return in_delay, out_lat, total


class GraphStream(nn.Module):
    """A graph rendered block by block (see the module docstring).

    Args:
        graph: the :class:`~ddsp_models.graph.ProcessorGraph` (its processors are shared, not
            copied).
        hop: samples per frame of the stream.
        input_channels: channels of each audio input of node ``"in"`` (empty for synth graphs).
        block_frames: 0 (default) for blocks of any size; ``N > 0`` for a stream of blocks of
            exactly ``N`` frames without data-dependent control flow (what ``torch.export`` and
            ONNX need): input delays are rounded up to multiples of ``N``, every node is
            stepped on every block and, before its time 0, its output is zeroed and its state
            kept (``torch.where``). That mode has no flush.

    ``step(params, controls, inputs, state, n_frames, flushing) -> (audio (B, C, n_frames *
    hop), state)``: ``params`` ``{node: {param: value}}`` for this block (time-varying ``(B,
    n_frames, size)``, static ``(B, size)``), ``controls`` the external controls such as
    ``f0_hz`` ``(B, n_frames, 1)``, ``inputs`` the audio of ``"in"`` for the block. Start with
    :meth:`init_state`.
    """

    # TorchScript reads attribute types from here (an empty list cannot be inferred)
    externals: Dict[str, List[str]]
    time_varying: Dict[str, List[str]]
    inlet_channels: Dict[str, List[int]]
    mod_src: List[str]
    mod_dst: List[str]
    mod_param: List[str]
    mod_amount: List[float]
    mod_mode: List[str]
    mod_delay: List[int]
    mod_held: Dict[str, List[str]]

    def __init__(self, graph, hop: int, input_channels: Sequence[int] = (),
                 block_frames: int = 0):
        super().__init__()
        input_channels = [int(c) for c in input_channels]
        chans = graph.validate(input_channels)
        for name, proc in graph.nodes.items():
            if n_outputs(proc) != 1:
                raise GraphError(f"node {name!r}: streaming supports one output per processor")
        order = graph.topological_order()
        self.hop = int(hop)
        self.procs = nn.ModuleDict({n: graph.nodes[n] for n in order})
        # Fixed-size blocks (ONNX): no data-dependent control flow; see forward.
        self.block_frames = int(block_frames)
        if self.block_frames > 0:
            for proc in graph.nodes.values():
                proc.use_fixed_blocks(self.block_frames)
        in_delay, out_lat, total = graph_latencies(graph, self.hop, self.block_frames)
        self.latency_frames = int(total)
        self.latency_samples = self.latency_frames * self.hop
        self.in_delay: Dict[str, int] = {n: int(in_delay[n]) for n in order}
        self.own_latency: Dict[str, int] = {n: int(graph.nodes[n].latency_frames(self.hop))
                                            for n in order}
        self.n_in: Dict[str, int] = {n: int(graph.n_inlets(n)) for n in [*order, OUT]}
        self.externals: Dict[str, List[str]] = {
            n: [s.name for s in graph.nodes[n].param_specs() if s.external] for n in order}
        self.time_varying: Dict[str, List[str]] = {
            n: [s.name for s in graph.nodes[n].param_specs() if s.time_varying] for n in order}
        edges = list(graph.edges)
        self.edge_src: List[str] = [e.src for e in edges]
        self.edge_dst: List[str] = [e.dst for e in edges]
        self.edge_inlet: List[int] = [int(e.inlet) for e in edges]
        self.edge_outlet: List[int] = [int(e.outlet) for e in edges]
        dst_delay = {**in_delay, OUT: total}
        self.edge_delay: List[int] = [
            (dst_delay[e.dst] - out_lat[e.src]) * self.hop for e in edges]
        self.input_channels: List[int] = input_channels
        mods = list(graph.modulations)
        self.mod_src = [m.src for m in mods]
        self.mod_dst = [m.dst for m in mods]
        self.mod_param = [m.param for m in mods]
        self.mod_amount = [float(m.amount) for m in mods]
        self.mod_mode = [m.mode for m in mods]
        self.mod_delay = [int(in_delay[m.dst] - out_lat[m.src]) for m in mods]
        self.mod_held = {n: [] for n in order}
        for m in mods:
            if m.param not in self.mod_held[m.dst]:
                self.mod_held[m.dst].append(m.param)

        def source_channels(e) -> int:
            return int(input_channels[e.outlet]) if e.src == IN else int(chans[e.src])

        self.out_channels: Dict[str, int] = {n: int(chans[n]) for n in order}
        self.inlet_channels: Dict[str, List[int]] = {
            n: [max(source_channels(e) for e in graph.edges_into(n, k))
                for k in range(graph.n_inlets(n))] for n in order}
        self.edge_channels: List[int] = [source_channels(e) for e in edges]

    # ------------------------------------------------------------------ state
    @torch.jit.unused
    def init_state(self, batch: int, like: Tensor) -> Dict[str, Tensor]:
        """The state of a fresh stream of ``batch`` rows in ``like``'s dtype and device."""
        zero = torch.zeros((), dtype=torch.int64, device=like.device)
        state: Dict[str, Tensor] = {"#position": zero.clone(), "#end": zero - 1}
        for name, proc in self.procs.items():
            own = proc.init_state(batch, self.inlet_channels[name], self.hop, like)
            for k, v in own.items():
                state[f"{name}.{k}"] = v
            d = self.in_delay[name]
            if d > 0:
                for spec in proc.param_specs():
                    if spec.time_varying:
                        state[f"{name}#{spec.name}"] = torch.zeros(
                            batch, d, spec.size, dtype=like.dtype, device=like.device)
        for i, d in enumerate(self.edge_delay):
            if d > 0:
                state[f"#edge{i}"] = torch.zeros(batch, self.edge_channels[i], d,
                                                 dtype=like.dtype, device=like.device)
        for i, d in enumerate(self.mod_delay):
            if d > 0:
                state[f"#mod{i}"] = torch.zeros(batch, d, 1, dtype=like.dtype, device=like.device)
        for name, keys in self.mod_held.items():
            sizes = {s.name: s.size for s in self.procs[name].param_specs()}
            for key in keys:  # the last modulated frame, held during the node's flush
                state[f"{name}@{key}"] = torch.zeros(batch, 1, sizes[key], dtype=like.dtype,
                                                     device=like.device)
        return state

    def state_names(self) -> List[str]:
        """Names of the state tensors in :meth:`init_state`'s order (for ONNX inputs)."""
        return list(self.init_state(1, torch.zeros(())).keys())

    # ------------------------------------------------------------------ one block
    def _modulate(self, name: str, p: Dict[str, Tensor], produced: Dict[str, Tensor],
                  state: Dict[str, Tensor], new: Dict[str, Tensor], n: int) -> None:
        """Apply the modulations of node ``name`` to its (delayed) block parameters ``p``."""
        for i in range(len(self.mod_dst)):
            if self.mod_dst[i] == name:
                m = frame_values(produced[self.mod_src[i]], self.hop, n)
                if self.mod_delay[i] > 0:
                    both, new[f"#mod{i}"] = push_frames(state[f"#mod{i}"], m)
                    m = both[:, :n]
                key = self.mod_param[i]
                p[key] = apply_modulation(p[key], m, self.mod_amount[i], self.mod_mode[i])

    def _node_params(self, name: str, params: Dict[str, Dict[str, Tensor]],
                     controls: Dict[str, Tensor]) -> Dict[str, Tensor]:
        out: Dict[str, Tensor] = {}
        if name in params:
            for k, v in params[name].items():
                out[k] = v
        for k in self.externals[name]:
            if k not in out:
                out[k] = controls[k]
        return out

    def forward(
        self,
        params: Dict[str, Dict[str, Tensor]],
        controls: Dict[str, Tensor],
        inputs: List[Tensor],
        state: Dict[str, Tensor],
        n_frames: int,
        flushing: bool,
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        """One block of ``n_frames`` frames; see the class docstring."""
        if self.block_frames > 0:
            return self._fixed_block(params, controls, inputs, state, n_frames)
        hop = self.hop
        n = n_frames
        position = int(state["#position"])
        end = int(state["#end"])
        new: Dict[str, Tensor] = {}
        if flushing and end < 0:
            end = position
        new["#position"] = state["#position"] + n
        new["#end"] = torch.full_like(state["#end"], end if flushing else -1)
        end_frame = end if flushing else 4611686018427387904  # 2**62: no end yet
        produced: Dict[str, Tensor] = {}
        for k, x in enumerate(inputs):
            produced[f"in{k}"] = x
        ref = self._reference(params, controls, inputs)
        for name, proc in self.procs.items():
            d = self.in_delay[name]
            own_l = self.own_latency[name]
            ins = self._inlets(name, produced, state, new)
            # ---- parameters, delayed by the input delay
            p = self._node_params(name, params, controls)
            if d > 0:
                for key in self.time_varying[name]:
                    both, new[f"{name}#{key}"] = push_frames(state[f"{name}#{key}"], p[key])
                    p[key] = both[:, :n]
            self._modulate(name, p, produced, state, new, n)
            # ---- which frames of this block the node renders: [a0, a1) in its own time
            a0 = position - d
            lo = max(0, -a0)                          # before its time 0: not called
            mid = min(n, max(lo, end_frame - a0))     # real frames
            hi = min(n, max(mid, end_frame + own_l - a0))  # its own flush
            for key in self.mod_held[name]:  # its own flush holds the last modulated frame
                last = state[f"{name}@{key}"]
                if mid > lo:
                    last = p[key][:, mid - 1:mid]
                new[f"{name}@{key}"] = last
                if hi > mid:
                    v = p[key]
                    p[key] = torch.cat([v[:, :mid], last.expand(v.shape[0], n - mid,
                                                                v.shape[2])], dim=1)
            own: Dict[str, Tensor] = {}
            prefix = name + "."
            for key, v in state.items():
                if key.startswith(prefix):
                    own[key[len(prefix):]] = v
            pieces: List[Tensor] = []
            batch = 0
            out_ch = 0
            for seg in range(2):
                s0 = lo if seg == 0 else mid
                s1 = mid if seg == 0 else hi
                if s1 > s0:
                    sp: Dict[str, Tensor] = {}
                    for key, v in p.items():
                        sp[key] = v[:, s0:s1] if v.dim() == 3 else v
                    if seg == 0:
                        sx = [x[..., s0 * hop:s1 * hop] for x in ins]
                    else:
                        sx = [torch.zeros_like(x[..., s0 * hop:s1 * hop]) for x in ins]
                    y, own = proc.step(sx, sp, own, s1 - s0, (s1 - s0) * hop, seg == 1)
                    batch = y.shape[0]
                    out_ch = y.shape[1]
                    pieces.append(y)
            for key, v in own.items():
                new[prefix + key] = v
            if len(pieces) == 0:  # not stepped in this block: silence
                produced[name] = torch.zeros(ref.shape[0], self.out_channels[name], n * hop,
                                             dtype=ref.dtype, device=ref.device)
            else:
                if lo > 0:
                    pieces.insert(0, torch.zeros(batch, out_ch, lo * hop, dtype=pieces[0].dtype,
                                                 device=pieces[0].device))
                if hi < n:
                    pieces.append(torch.zeros(batch, out_ch, (n - hi) * hop,
                                              dtype=pieces[0].dtype, device=pieces[0].device))
                produced[name] = torch.cat(pieces, dim=-1)
        return self._inlets("out", produced, state, new)[0], new

    def _inlets(self, name: str, produced: Dict[str, Tensor], state: Dict[str, Tensor],
                new: Dict[str, Tensor]) -> List[Tensor]:
        """Each inlet of ``name``: the sum of its (delayed) edges."""
        ins: List[Tensor] = []
        for k in range(self.n_in[name]):
            total = torch.zeros(0)
            first = True
            for i in range(len(self.edge_dst)):
                if self.edge_dst[i] == name and self.edge_inlet[i] == k:
                    x = self._edge_signal(i, produced, state, new)
                    if first:
                        total = x
                        first = False
                    else:
                        total = total + x
            ins.append(total)
        return ins

    def _fixed_block(self, params: Dict[str, Dict[str, Tensor]], controls: Dict[str, Tensor],
                     inputs: List[Tensor], state: Dict[str, Tensor],
                     n_frames: int) -> Tuple[Tensor, Dict[str, Tensor]]:
        """One block of exactly ``block_frames`` frames, without data-dependent control flow."""
        n = n_frames
        hop = self.hop
        position = state["#position"]
        new: Dict[str, Tensor] = {"#position": position + n, "#end": state["#end"]}
        produced: Dict[str, Tensor] = {}
        for k, x in enumerate(inputs):
            produced[f"in{k}"] = x
        for name, proc in self.procs.items():
            d = self.in_delay[name]
            ins = self._inlets(name, produced, state, new)
            p = self._node_params(name, params, controls)
            if d > 0:
                for key in self.time_varying[name]:
                    both, new[f"{name}#{key}"] = push_frames(state[f"{name}#{key}"], p[key])
                    p[key] = both[:, :n]
            self._modulate(name, p, produced, state, new, n)
            for key in self.mod_held[name]:  # no flush in this mode: carried unchanged
                new[f"{name}@{key}"] = state[f"{name}@{key}"]
            prefix = name + "."
            own: Dict[str, Tensor] = {}
            for key, v in state.items():
                if key.startswith(prefix):
                    own[key[len(prefix):]] = v
            y, stepped = proc.step(ins, p, own, n, n * hop, False)
            if d > 0:  # before its time 0 (whole blocks: d is a multiple of n) nothing happens
                before = position < d
                y = torch.where(before, torch.zeros_like(y), y)
                for key, v in stepped.items():
                    stepped[key] = torch.where(before, own[key], v)
            for key, v in stepped.items():
                new[prefix + key] = v
            produced[name] = y
        out = self._inlets("out", produced, state, new)[0]
        return out, new

    def _edge_signal(self, i: int, produced: Dict[str, Tensor], state: Dict[str, Tensor],
                     new: Dict[str, Tensor]) -> Tensor:
        src = self.edge_src[i]
        x = produced[f"in{self.edge_outlet[i]}"] if src == "in" else produced[src]
        if self.edge_delay[i] > 0:
            key = f"#edge{i}"
            x, new[key] = push_samples(state[key], x)
        return x

    def _reference(self, params: Dict[str, Dict[str, Tensor]], controls: Dict[str, Tensor],
                   inputs: List[Tensor]) -> Tensor:
        """A floating-point tensor of the block (batch size, dtype, device)."""
        if len(inputs) > 0:
            return inputs[0]
        for v in controls.values():
            if v.is_floating_point():
                return v
        for d in params.values():
            for v in d.values():
                if v.is_floating_point():
                    return v
        raise RuntimeError("GraphStream: the block has no inputs, controls or parameters")


def render_graph_in_blocks(
    graph,
    params: Mapping[str, Mapping[str, Tensor]],
    hop: int,
    controls: Mapping[str, Tensor] | None = None,
    inputs: Sequence[Tensor] = (),
    n_frames: int | None = None,
    block_frames: Sequence[int] = (1, 4, 7, 16),
    stream: GraphStream | None = None,
    forward=None,
) -> Tensor:
    """Render ``graph`` block by block, flush, and return what ``graph.render`` returns.

    Args:
        params: ``{node: {param: value}}`` for the whole signal (as ``graph.render`` takes).
        hop: samples per frame.
        controls: external controls for the whole signal, e.g. ``{"f0_hz": (B, T, 1)}``.
        inputs: audio of node ``"in"`` ``(B, C, T * hop)``.
        n_frames: ``T`` (default: from the first time-varying value, else the inputs).
        block_frames: block sizes in frames, cycled through.
        stream: the :class:`GraphStream` to use (default: a new one).
        forward: the callable stepping it (default the stream itself; pass the scripted
            module to check the TorchScript path).
    """
    controls = dict(controls or {})
    inputs = list(inputs)
    stream = stream or GraphStream(graph, hop, [x.shape[1] for x in inputs])
    forward = forward or stream
    values = [v for p in params.values() for v in p.values()] + list(controls.values())
    if n_frames is None:
        tv = [v for v in values if v.dim() == 3]
        n_frames = tv[0].shape[1] if tv else inputs[0].shape[-1] // hop
    like = next(v for v in [*inputs, *values] if v.is_floating_point())
    batch = like.shape[0]
    state = stream.init_state(batch, like)
    outs = []

    def cut(v: Tensor, t0: int, t1: int, hold: bool) -> Tensor:
        if v.dim() != 3:
            return v
        if hold:
            return v[:, -1:].expand(v.shape[0], t1 - t0, v.shape[2])
        return v[:, t0:t1]

    def run(t0: int, t1: int, flushing: bool):
        nonlocal state
        p = {n: {k: cut(v, t0, t1, flushing) for k, v in d.items()} for n, d in params.items()}
        c = {k: cut(v, t0, t1, flushing) for k, v in controls.items()}
        xs = [torch.zeros_like(x[..., :(t1 - t0) * hop]) if flushing else x[..., t0 * hop:t1 * hop]
              for x in inputs]
        y, state = forward(p, c, xs, state, t1 - t0, flushing)
        outs.append(y)

    for t0, t1 in block_slices(n_frames, block_frames):
        run(t0, t1, False)
    lat = int(stream.latency_frames)
    if lat:
        for t0, t1 in block_slices(lat, block_frames):
            run(t0, t1, True)
    return torch.cat(outs, dim=-1)[..., lat * hop:]
