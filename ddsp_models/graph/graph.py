"""``ProcessorGraph``: processors wired as a directed acyclic graph (DAG).

Nodes are named processors (:class:`~ddsp_models.processors.Processor`); two names are
reserved: ``"in"`` is the external audio input(s) and ``"out"`` the graph output. An edge
``connect(src, dst, inlet=0, outlet=0)`` feeds output ``outlet`` of ``src`` into audio input
``inlet`` of ``dst``; several edges into one inlet are summed. ``"in"`` has one outlet per
audio input passed to :meth:`ProcessorGraph.render`; ``"out"`` has one inlet.

The graph is an ``nn.Module``: its processors are submodules (``graph.nodes[name]``), so their
learnable weights (reverb impulse responses, wavetables) train and save with the model.

This module holds the structure and its validation; the flat parameter layout lives in
:mod:`.layout`, type-batched rendering in :mod:`.schedule` and :mod:`.render`, drawing in
:mod:`.draw` and (de)serialisation in :mod:`.serialise`. The leaf types (``IN``, ``OUT``,
:class:`Edge`, :class:`GraphError`, :func:`n_outputs`) live in :mod:`.types` and are re-exported
here; those sibling modules import them from there and never import this module, whose methods
import them (so the package has no import cycle).
"""

from __future__ import annotations

import heapq
import keyword
from pathlib import Path
from typing import Any, Mapping, Sequence

from torch import Tensor, nn

from ..processors import Processor
from .types import IN, OUT, Edge, GraphError, Modulation, n_outputs

__all__ = ["Edge", "GraphError", "Modulation", "ProcessorGraph", "IN", "OUT", "n_outputs"]


def _describe(name: str, processor: Processor | None) -> str:
    if processor is None:
        return repr(name)
    return f"{name!r} ({type(processor).__name__})"


class ProcessorGraph(nn.Module):
    """A DAG of named processors, the output layer that a decoder drives.

    Example::

        g = ProcessorGraph()
        g.add("harmonic", Harmonic(16000)).add("noise", FilteredNoise(16000))
        g.add("reverb", Reverb(16000))
        g.connect("harmonic", "reverb"); g.connect("noise", "reverb"); g.connect("reverb", "out")
        layout = g.parameter_layout()            # what the decoder predicts: (B, T, layout.n_params)
        params = g.split_params(raw)             # {node: {param: physical value}}
        audio = g.render(params, n_samples=64000, controls={"f0_hz": f0})   # (B, C, n_samples)
    """

    def __init__(self) -> None:
        super().__init__()
        self.nodes: nn.ModuleDict = nn.ModuleDict()
        self.edges: list[Edge] = []
        self.modulations: list[Modulation] = []
        self._version = 0  # bumped on every structural change (invalidates cached schedules)
        self._cache: dict[Any, Any] = {}

    # ------------------------------------------------------------------ building
    def add(self, name: str, processor: Processor) -> "ProcessorGraph":
        """Add node ``name`` holding ``processor``; returns the graph (calls chain)."""
        if name in (IN, OUT):
            raise GraphError(
                f"node name {name!r} is reserved ('in' = audio inputs, 'out' = graph output); "
                "choose another name"
            )
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise GraphError(
                f"node name {name!r} must be a Python identifier (letters, digits, '_'), "
                "e.g. 'reverb' or 'eq_1'"
            )
        if name in self.nodes:
            raise GraphError(f"node {name!r} already exists; choose another name")
        if hasattr(nn.ModuleDict(), name) or name.startswith("_"):
            raise GraphError(
                f"node name {name!r} clashes with an nn.ModuleDict attribute or is private; "
                "choose another name"
            )
        if not isinstance(processor, Processor):
            raise GraphError(
                f"node {name!r}: expected a ddsp_models Processor, got {type(processor).__name__}"
            )
        self.nodes[name] = processor
        self._changed()
        return self

    def connect(self, src: str, dst: str, inlet: int = 0, outlet: int = 0) -> "ProcessorGraph":
        """Feed output ``outlet`` of ``src`` into audio input ``inlet`` of ``dst``.

        Edges into the same inlet are summed. ``src`` may be ``"in"`` (``outlet`` selects
        which of the audio inputs of :meth:`render`); ``dst`` may be ``"out"``. Raises
        :class:`GraphError` naming the node for unknown nodes, out-of-range inlets/outlets,
        duplicate edges and edges that would close a cycle. Returns the graph.
        """
        for role, n in (("source", src), ("destination", dst)):
            if n not in self.nodes and n not in (IN, OUT):
                raise GraphError(
                    f"unknown {role} node {n!r} in connect({src!r}, {dst!r}); "
                    f"nodes: {[IN, *self.nodes, OUT]}. Add it first with graph.add({n!r}, ...)"
                )
        if src == OUT:
            raise GraphError("node 'out' has no outputs; it cannot be the source of an edge")
        if dst == IN:
            raise GraphError("node 'in' has no inputs; it cannot be the destination of an edge")
        if not (isinstance(inlet, int) and isinstance(outlet, int)) or inlet < 0 or outlet < 0:
            raise GraphError(f"inlet and outlet must be integers >= 0, got {inlet!r}, {outlet!r}")
        n_in = self.n_inlets(dst)
        if inlet >= n_in:
            if n_in == 0:
                raise GraphError(
                    f"node {_describe(dst, self.nodes[dst])} is a synth with no audio inlet; "
                    "it cannot be the destination of an edge"
                )
            raise GraphError(
                f"node {_describe(dst, self._proc(dst))} has {n_in} inlet(s) "
                f"(0..{n_in - 1}); got inlet={inlet}"
            )
        if src != IN:
            n_out = n_outputs(self.nodes[src])
            if outlet >= n_out:
                raise GraphError(
                    f"node {_describe(src, self.nodes[src])} has {n_out} outlet(s); "
                    f"got outlet={outlet}"
                )
        edge = Edge(src, dst, inlet, outlet)
        if edge in self._adjacency()[2].get((dst, inlet), ()):
            raise GraphError(f"edge {edge} already exists (node {dst!r})")
        if src == dst:
            raise GraphError(f"edge {edge} connects node {src!r} to itself (a cycle)")
        path = self._path(dst, src)
        if path is not None:
            raise GraphError(
                f"edge {edge} would close a cycle through node {src!r}: "
                + " -> ".join([*path, src, dst])
            )
        self._add_edge(edge)
        self._changed()
        return self

    def modulate(self, src: str, dst: str, param: str, amount: float = 1.0,
                 mode: str = "add") -> "ProcessorGraph":
        """Let the (mono) output of node ``src`` modulate the time-varying parameter ``param``
        of node ``dst``, read at frame rate: ``"add"`` ``p + amount·m``, ``"multiply"``
        ``p·(1 - amount + amount·m)``, ``"octaves"`` ``p·2^(amount·m)``; see
        :mod:`.modulation`. ``src`` then renders before ``dst`` (a dependency like an audio
        edge; it need not reach ``"out"`` otherwise). Raises :class:`GraphError` for unknown
        nodes or parameters, static parameters, unknown modes, duplicates and cycles.
        Returns the graph."""
        from .modulation import check_mode

        for role, n in (("source", src), ("destination", dst)):
            if n not in self.nodes:
                raise GraphError(
                    f"unknown {role} node {n!r} in modulate({src!r}, {dst!r}, {param!r}); "
                    f"nodes: {list(self.nodes)} ('in' and 'out' cannot modulate or be modulated)")
        amount = check_mode(mode, amount)
        specs = self.nodes[dst].specs_by_name()
        if param not in specs:
            raise GraphError(f"node {_describe(dst, self.nodes[dst])} has no parameter "
                             f"{param!r} to modulate; its parameters: {list(specs)}")
        if not specs[param].time_varying:
            raise GraphError(f"{dst}.{param} is static (one value per signal); only time-varying "
                             "parameters can be modulated (build the node with time_varying=True "
                             "where it has that option)")
        if any((m.src, m.dst, m.param) == (src, dst, param) for m in self.modulations):
            raise GraphError(f"{src!r} already modulates {dst}.{param}")
        mod = Modulation(src, dst, param, amount, mode)
        if src == dst:
            raise GraphError(f"modulation {mod} connects node {src!r} to itself (a cycle)")
        path = self._path(dst, src)
        if path is not None:
            raise GraphError(f"modulation {mod} would close a cycle through node {src!r}: "
                             + " -> ".join([*path, src, dst]))
        self.modulations.append(mod)
        self.__dict__.pop("_adj", None)
        self._changed()
        return self

    def modulations_into(self, name: str) -> list[Modulation]:
        """The modulations of node ``name``'s parameters, in the order they apply."""
        return [m for m in self.modulations if m.dst == name]

    def remove(self, name: str) -> "ProcessorGraph":
        """Remove node ``name`` and every edge touching it; returns the graph."""
        if name not in self.nodes:
            raise GraphError(f"unknown node {name!r}; nodes: {list(self.nodes)}")
        del self.nodes[name]
        self.edges = [e for e in self.edges if name not in (e.src, e.dst)]
        self.modulations = [m for m in self.modulations if name not in (m.src, m.dst)]
        self.__dict__.pop("_adj", None)
        self._changed()
        return self

    def _changed(self) -> None:
        self._version += 1
        self._cache.clear()

    # ------------------------------------------------------------------ queries
    def _proc(self, name: str) -> Processor | None:
        return self.nodes[name] if name in self.nodes else None

    def n_inlets(self, name: str) -> int:
        """Audio inputs of node ``name`` (``"out"`` has one, ``"in"`` none)."""
        if name == OUT:
            return 1
        if name == IN:
            return 0
        return int(self.nodes[name].n_inputs)

    def _adjacency(self) -> tuple[dict, dict, dict]:
        """``(successors, predecessors, edges by (dst, inlet))``, kept up to date by
        ``connect``/``remove`` and rebuilt from ``self.edges`` if that list was edited by hand.
        Successors and predecessors include modulation edges (dependencies without audio)."""
        adj = self.__dict__.get("_adj")
        count = (len(self.edges), len(self.modulations))
        if adj is None or adj[3] != count:
            succ: dict[str, dict[str, None]] = {}
            pred: dict[str, dict[str, None]] = {}
            into: dict[tuple[str, int], list[Edge]] = {}
            for e in self.edges:
                succ.setdefault(e.src, {})[e.dst] = None
                pred.setdefault(e.dst, {})[e.src] = None
                into.setdefault((e.dst, e.inlet), []).append(e)
            for m in self.modulations:
                succ.setdefault(m.src, {})[m.dst] = None
                pred.setdefault(m.dst, {})[m.src] = None
            adj = self.__dict__["_adj"] = (succ, pred, into, count)
        return adj[:3]

    def _add_edge(self, e: Edge) -> None:
        succ, pred, into = self._adjacency()
        self.edges.append(e)
        succ.setdefault(e.src, {})[e.dst] = None
        pred.setdefault(e.dst, {})[e.src] = None
        into.setdefault((e.dst, e.inlet), []).append(e)
        self.__dict__["_adj"] = (succ, pred, into, (len(self.edges), len(self.modulations)))

    def edges_into(self, name: str, inlet: int | None = None) -> list[Edge]:
        if inlet is not None:
            return list(self._adjacency()[2].get((name, inlet), []))
        return [e for e in self.edges if e.dst == name]

    def successors(self, name: str) -> list[str]:
        return list(self._adjacency()[0].get(name, ()))

    def predecessors(self, name: str) -> list[str]:
        return list(self._adjacency()[1].get(name, ()))

    def _path(self, start: str, goal: str) -> list[str] | None:
        """A list of nodes from ``start`` to ``goal`` along edges (excluding goal), or None."""
        stack, parent = [start], {start: None}
        while stack:
            n = stack.pop()
            if n == goal:
                out, p = [], parent[n]
                while p is not None:
                    out.append(p)
                    p = parent[p]
                return out[::-1]
            for s in self.successors(n):
                if s not in parent:
                    parent[s] = n
                    stack.append(s)
        return None

    def topological_order(self) -> list[str]:
        """Processor nodes in an order where every node follows its sources (stable: ties keep
        insertion order). Raises :class:`GraphError` naming the nodes on a cycle."""
        names = list(self.nodes)
        rank = {n: i for i, n in enumerate(names)}
        succ, pred, _ = self._adjacency()
        # distinct processor sources of each node
        indeg = {n: sum(1 for p in pred.get(n, ()) if p != IN) for n in names}
        order: list[str] = []
        ready = [rank[n] for n in names if indeg[n] == 0]  # a heap: insertion order breaks ties
        heapq.heapify(ready)
        while ready:
            n = names[heapq.heappop(ready)]
            order.append(n)
            for dst in succ.get(n, ()):
                if dst in indeg:
                    indeg[dst] -= 1
                    if indeg[dst] == 0:
                        heapq.heappush(ready, rank[dst])
        if len(order) < len(names):
            stuck = [n for n in names if n not in order]
            raise GraphError(f"the graph has a cycle through node(s) {stuck}")
        return order

    # ------------------------------------------------------------------ validation
    def validate(self, input_channels: Sequence[int] | None = None) -> dict[str, int | None]:
        """Check the graph; return the output channels of every node (None where unknown).

        Checks, each raising :class:`GraphError` naming the node: edges to unknown nodes,
        cycles, inlets without an incoming edge, an empty ``"out"``, dangling nodes (whose
        output never reaches ``"out"``), edges from ``"in"`` beyond the given inputs, and
        channel mismatches (sources summed into one inlet must have equal channel counts;
        each processor is asked ``n_output_channels`` for its inputs' channels).

        Args:
            input_channels: channels of each audio input ``"in"[k]``; None if unknown (then
                channel checks downstream of ``"in"`` are skipped).
        """
        known = {IN, OUT, *self.nodes}
        for e in self.edges:
            for n in (e.src, e.dst):
                if n not in known:
                    raise GraphError(f"edge {e} refers to unknown node {n!r}")
        for m in self.modulations:
            for n in (m.src, m.dst):
                if n not in self.nodes:
                    raise GraphError(f"modulation {m} refers to unknown node {n!r}")
        order = self.topological_order()
        for name in order:
            p = self.nodes[name]
            for k in range(self.n_inlets(name)):
                if not self.edges_into(name, k):
                    raise GraphError(
                        f"node {_describe(name, p)}: inlet {k} has no incoming edge; connect a "
                        f"source with graph.connect(src, {name!r}, inlet={k})"
                    )
        if not self.edges_into(OUT):
            raise GraphError("no edge into node 'out'; connect the last processor: "
                             "graph.connect(name, 'out')")
        # Dangling: nodes whose output never reaches 'out'.
        reach, stack = {OUT}, [OUT]
        while stack:
            n = stack.pop()
            for p in self.predecessors(n):
                if p not in reach:
                    reach.add(p)
                    stack.append(p)
        for name in order:
            if name not in reach:
                raise GraphError(
                    f"node {_describe(name, self.nodes[name])} is dangling: its output never "
                    f"reaches 'out'; connect it (graph.connect({name!r}, ...)) or remove it"
                )
        # Channels.
        chans: dict[str, Any] = {}
        if input_channels is not None:
            input_channels = tuple(int(c) for c in input_channels)
        for e in self.edges:
            if e.src == IN and input_channels is not None and e.outlet >= len(input_channels):
                raise GraphError(
                    f"edge {e} (into node {e.dst!r}) reads audio input {e.outlet} but render got "
                    f"{len(input_channels)} input(s)"
                )

        def source_channels(e: Edge):
            if e.src == IN:
                return None if input_channels is None else input_channels[e.outlet]
            return chans[e.src]

        def inlet_channels(name: str, k: int):
            got = {e.src: source_channels(e) for e in self.edges_into(name, k)}
            values = {c for c in got.values() if c is not None}
            if len(values) > 1:
                raise GraphError(
                    f"node {_describe(name, self._proc(name))}: channel mismatch at inlet {k}: "
                    + ", ".join(f"{s!r} gives {c}" for s, c in got.items())
                    + "; edges summed into one inlet must have equal channel counts"
                )
            return None if None in got.values() else values.pop()

        for name in order:
            p = self.nodes[name]
            ins = tuple(inlet_channels(name, k) for k in range(self.n_inlets(name)))
            if None in ins:
                chans[name] = None
                continue
            try:
                chans[name] = int(p.n_output_channels(ins))
            except (ValueError, TypeError) as err:
                raise GraphError(
                    f"node {_describe(name, p)}: inputs with {list(ins)} channel(s) rejected: {err}"
                ) from err
        chans[OUT] = inlet_channels(OUT, 0)
        for m in self.modulations:
            if chans[m.src] not in (None, 1):
                raise GraphError(
                    f"modulation {m}: node {_describe(m.src, self.nodes[m.src])} outputs "
                    f"{chans[m.src]} channels; a modulation source must be mono")
        return chans

    # ------------------------------------------------------------------ parameters
    def parameter_layout(self):
        """The flat layout of all predicted parameters: see :class:`.layout.ParameterLayout`."""
        from .layout import build_layout

        key = ("layout", self._version)
        if key not in self._cache:
            self._cache[key] = build_layout(self)
        return self._cache[key]

    def split_params(self, raw: Tensor, scale: bool = True) -> dict[str, dict[str, Tensor]]:
        """Raw decoder output ``(B, T, P)`` → ``{node: {param: value}}`` in physical units.

        Time-varying parameters are ``(B, T, size)``; static ones the mean over ``T`` of their
        slice, ``(B, size)``; ``scale=False`` skips the declared scalings.
        """
        return self.parameter_layout().split(raw, scale=scale)

    # ------------------------------------------------------------------ rendering
    def render(
        self,
        params: Mapping[str, Mapping[str, Tensor]],
        n_samples: int | None = None,
        controls: Mapping[str, Tensor] | None = None,
        inputs: Tensor | Sequence[Tensor] | None = None,
        mode: str = "batched",
        weights: str = "separate",
    ) -> Tensor:
        """Run the graph; see :func:`.render.render_graph`. Returns ``(B, C, n_samples)``.

        ``mode="batched"`` renders ready nodes of one type (and config and weights) in one
        call; ``mode="sequential"`` one node per call. ``weights="vmap"`` also batches nodes
        whose learnable weights differ (``torch.func.vmap``); ``"separate"`` runs those alone.
        """
        from .render import render_graph

        return render_graph(self, params, n_samples, controls, inputs, mode, weights)

    def forward(self, params, n_samples=None, controls=None, inputs=None, mode="batched",
                weights="separate"):
        return self.render(params, n_samples, controls, inputs, mode, weights)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """``{"nodes": {name: {"type": ..., **config}}, "edges": [...]}``; weights excluded."""
        from .serialise import graph_to_dict

        return graph_to_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], processors: Mapping[str, type] | None = None):
        """Inverse of :meth:`to_dict`; ``processors`` adds classes not in the registry."""
        from .serialise import graph_from_dict

        return graph_from_dict(d, processors, cls=cls)

    def to_yaml(self, path: str | Path) -> Path:
        from .serialise import graph_to_yaml

        return graph_to_yaml(self, path)

    @classmethod
    def from_yaml(cls, path: str | Path, processors: Mapping[str, type] | None = None):
        from .serialise import graph_from_yaml

        return graph_from_yaml(path, processors, cls=cls)

    # ------------------------------------------------------------------ drawing
    def draw(self, path: str | Path, **kwargs) -> Path:
        """Save a picture of the graph (PNG, SVG or PDF by suffix); see :func:`.draw.draw_graph`."""
        from .draw import draw_graph

        return draw_graph(self, path, **kwargs)

    def extra_repr(self) -> str:
        text = "edges=[" + ", ".join(str(e) for e in self.edges) + "]"
        if self.modulations:
            text += ", modulations=[" + ", ".join(str(m) for m in self.modulations) + "]"
        return text
