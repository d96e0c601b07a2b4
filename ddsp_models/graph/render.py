"""Rendering a :class:`~ddsp_models.graph.ProcessorGraph`: batched or one node at a time.

``mode="batched"`` follows the type-batched schedule of :mod:`.schedule`: the ready nodes of
one batching class run in ONE processor call, their inputs and parameters concatenated along
the batch axis (``k`` nodes × ``B`` items → a batch of ``k·B``), the output split back.
``mode="sequential"`` calls every node on its own, in topological order; both give the same
audio (up to float rounding), the second is the reference for checking.

Processors holding their own learnable weights (different per node) cannot share a call by
concatenation. ``weights="separate"`` (default) runs them one by one; ``weights="vmap"``
stacks their weights and runs them in one ``torch.func.vmap(functional_call)`` — it needs a
processor whose forward is vmappable (no ``.item()``, data-dependent control flow or custom
autograd functions without a vmap rule); see ``docs/graph.md`` for the measured trade-off.

Modulation edges (:mod:`.modulation`) are applied to a node's parameters just before the node
renders, from its sources' outputs read at frame rate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import torch
from torch import Tensor

from .modulation import apply_modulation, frame_values
from .types import IN, OUT, GraphError, n_outputs
from .schedule import batch_classes, sequential_schedule, type_batched_schedule

if TYPE_CHECKING:  # pragma: no cover
    from .graph import ProcessorGraph

__all__ = ["render_graph", "MODES", "WEIGHT_MODES", "render_plan"]

MODES = ("batched", "sequential")
WEIGHT_MODES = ("separate", "vmap")


def _as_inputs(inputs) -> list[Tensor]:
    if inputs is None:
        return []
    seq = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    for k, x in enumerate(seq):
        if not isinstance(x, Tensor) or x.dim() != 3:
            raise GraphError(
                f"audio input {k} (node 'in', outlet {k}) must be a (batch, channels, samples) "
                f"tensor, got {tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}"
            )
    if seq and len({(x.shape[0], x.shape[-1]) for x in seq}) > 1:
        raise GraphError(
            "audio inputs of node 'in' must share batch size and length, got shapes "
            f"{[tuple(x.shape) for x in seq]}"
        )
    return seq


def _specs(graph) -> dict[str, tuple[tuple[str, int, bool, bool], ...]]:
    """Per node ``(name, size, time_varying, external)`` of its declared parameters (cached)."""
    key = ("specs",)
    if key not in graph._cache:
        graph._cache[key] = {
            n: tuple((s.name, s.size, s.time_varying, s.external) for s in p.param_specs())
            for n, p in graph.nodes.items()
        }
    return graph._cache[key]


def _node_kwargs(graph, params, controls) -> dict[str, dict[str, Tensor]]:
    """Each node's keyword arguments: its params plus the external controls it declares.

    Shapes are checked against the declarations; on a mismatch the node's own
    ``check_params`` produces the message, prefixed with the node name.
    """
    if not isinstance(params, Mapping):
        raise GraphError(
            f"params must be {{node: {{param: tensor}}}} (e.g. graph.split_params(raw)), "
            f"got {type(params).__name__}"
        )
    unknown = [n for n in params if n not in graph.nodes]
    if unknown:
        raise GraphError(f"params given for unknown node(s) {unknown}; nodes: {list(graph.nodes)}")
    controls = controls or {}
    out: dict[str, dict[str, Tensor]] = {}
    for name, specs in _specs(graph).items():
        given = params.get(name) or {}
        kw: dict[str, Tensor] = {}  # in declaration order, so nodes' keywords line up
        ok = len(given) <= len(specs)
        for pname, size, time_varying, external in specs:
            v = given.get(pname)
            if v is None and external:
                if pname not in controls:
                    raise GraphError(
                        f"node {name!r} ({type(graph.nodes[name]).__name__}) needs the external "
                        f"control {pname!r}; pass render(..., controls={{{pname!r}: tensor}})"
                    )
                v = controls[pname]
            if v is not None:
                kw[pname] = v
            if not (isinstance(v, Tensor) and v.dim() == (3 if time_varying else 2)
                    and v.shape[-1] == size):
                ok = False
        if not ok or len(kw) != len(specs):
            kw = {**given, **kw}
            proc = graph.nodes[name]
            try:
                proc.check_params(kw)
            except (ValueError, TypeError) as err:
                raise GraphError(f"node {name!r}: {err}") from err
            raise GraphError(f"node {name!r} ({type(proc).__name__}): parameters {sorted(kw)} do "
                             f"not match the declaration {[s[0] for s in specs]}")
        out[name] = kw
    return out


def _batch_size(kwargs, inputs) -> int | None:
    """The common batch size of inputs and parameters; a mismatch names the first offender."""
    sizes = {x.shape[0] for x in inputs}
    for kw in kwargs.values():
        for v in kw.values():
            sizes.add(v.shape[0])
    if len(sizes) <= 1:
        return next(iter(sizes), None)
    named = [(f"'in'[{k}]", x.shape[0]) for k, x in enumerate(inputs)]
    named += [(f"{n}.{p}", v.shape[0]) for n, kw in kwargs.items() for p, v in kw.items()]
    first = named[0]
    bad = next(item for item in named if item[1] != first[1])
    raise GraphError(
        f"batch size mismatch: {first[0]} has batch {first[1]} but {bad[0]} has {bad[1]} "
        f"(node {bad[0].split('.')[0]})"
    )


def _call(name: str, proc, ins: list[Tensor], kw: dict, n_samples: int, batch: int):
    """Call one processor; return its outputs as a tuple, checked to be (batch, C, L)."""
    try:
        out = proc(n_samples=n_samples, **kw) if proc.n_inputs == 0 else proc(*ins, **kw)
    except GraphError:
        raise
    except (ValueError, TypeError) as err:
        raise GraphError(f"node {name} ({type(proc).__name__}) failed: {err}") from err
    outs = tuple(out) if n_outputs(proc) > 1 else (out,)
    for y in outs:
        if (not isinstance(y, Tensor) or y.dim() != 3 or y.shape[0] != batch
                or y.shape[-1] != n_samples):
            got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
            raise GraphError(
                f"node {name} ({type(proc).__name__}) returned {got}; expected "
                f"(batch={batch}, channels, samples={n_samples})"
            )
    return outs


def _modulated(name: str, kw: dict, mods: list, produced: dict, n_samples: int) -> dict:
    """``kw`` with the modulations of node ``name`` applied (see :mod:`.modulation`)."""
    kw = dict(kw)
    for m in mods:
        value = kw[m.param]
        y = produced[m.src][0]
        if y.shape[1] != 1:
            raise GraphError(f"modulation {m}: node {m.src!r} gave {y.shape[1]} channels; a "
                             "modulation source must be mono")
        frames = value.shape[1]
        kw[m.param] = apply_modulation(value, frame_values(y, n_samples // frames, frames),
                                       m.amount, m.mode)
    return kw


def _signature(ins: list[Tensor], kw: dict) -> tuple:
    """What must agree for nodes to be concatenated: shapes (past the batch axis) and dtypes."""
    return (*[(x.shape[1:], x.dtype) for x in ins], *[(k, v.shape[1:], v.dtype) for k, v in kw.items()])


def _vmap_call(procs, ins_per_node, kw_per_node, n_samples):
    """Run processors with different weights of one class in one vmapped call."""
    from torch.func import functional_call, vmap

    template = procs[0]
    named = [dict(p.named_parameters()) for p in procs]
    bufs = [dict(p.named_buffers()) for p in procs]
    weights = {k: torch.stack([d[k] for d in named]) for k in named[0]}
    weights.update({k: torch.stack([d[k] for d in bufs]) for k in bufs[0]})
    ins = [torch.stack(xs) for xs in zip(*ins_per_node)]
    kw = {k: torch.stack([d[k] for d in kw_per_node]) for k in kw_per_node[0]}
    synth = template.n_inputs == 0

    def one(w, xs, kws):
        if synth:
            return functional_call(template, w, (), {**kws, "n_samples": n_samples})
        return functional_call(template, w, tuple(xs), kws)

    out = vmap(one)(weights, ins, kw)
    outs = tuple(out) if n_outputs(template) > 1 else (out,)
    # (k, B, C, L) per outlet -> per node tuples
    return [tuple(o[i] for o in outs) for i in range(len(procs))]


def render_plan(
    graph: "ProcessorGraph", mode: str = "batched", class_of: dict[str, int] | None = None
) -> list[list[str]]:
    """The steps ``render`` takes: lists of nodes rendered by one call each (before a step is
    split further by input/parameter shapes)."""
    if mode == "sequential":
        return sequential_schedule(graph)
    if class_of is None:
        class_of, _ = batch_classes(graph)
    key = ("schedule", tuple(class_of[n] for n in graph.nodes))
    if key not in graph._cache:
        graph._cache[key] = type_batched_schedule(graph, class_of)
    return graph._cache[key]


def render_graph(
    graph: "ProcessorGraph",
    params: Mapping[str, Mapping[str, Tensor]],
    n_samples: int | None = None,
    controls: Mapping[str, Tensor] | None = None,
    inputs: Tensor | Sequence[Tensor] | None = None,
    mode: str = "batched",
    weights: str = "separate",
) -> Tensor:
    """Render ``graph`` to audio ``(B, C, n_samples)``.

    Args:
        params: ``{node: {param: value}}`` in physical units (``graph.split_params(raw)``);
            time-varying ``(B, T, size)``, static ``(B, size)``. Nodes without parameters
            may be left out.
        n_samples: output length; defaults to the inputs' length (required without inputs).
        controls: external controls by name, e.g. ``{"f0_hz": (B, T, 1)}``, given to every
            node that declares them (a node's own ``params`` entry takes precedence).
        inputs: audio of node ``"in"``: one ``(B, C, L)`` tensor or a sequence of them
            (``outlet`` k of ``"in"`` is ``inputs[k]``).
        mode: ``"batched"`` (type-batched calls) or ``"sequential"`` (one node per call).
        weights: ``"separate"`` or ``"vmap"``, for nodes with different learnable weights.

    Raises:
        GraphError: naming the node, for invalid graphs, missing or misshapen parameters,
            missing controls, channel or batch mismatches.
    """
    if mode not in MODES:
        raise GraphError(f"mode must be one of {MODES}, got {mode!r}")
    if weights not in WEIGHT_MODES:
        raise GraphError(f"weights must be one of {WEIGHT_MODES}, got {weights!r}")
    ins = _as_inputs(inputs)
    reads_in = [e for e in graph.edges if e.src == IN]
    if reads_in and not ins:
        raise GraphError(
            f"edge {reads_in[0]} reads node 'in' but render got inputs=None; pass "
            "inputs=(B, C, L) audio"
        )
    vkey = ("validate", tuple(x.shape[1] for x in ins))
    if vkey not in graph._cache:
        graph._cache[vkey] = graph.validate([x.shape[1] for x in ins])
    if ins:
        length = ins[0].shape[-1]
        if n_samples is not None and n_samples != length:
            raise GraphError(f"n_samples={n_samples} differs from the inputs' length {length}")
        n_samples = length
    if n_samples is None:
        raise GraphError("n_samples is required when the graph has no audio inputs")
    kwargs = _node_kwargs(graph, params, controls)
    batch = _batch_size(kwargs, ins)
    if batch is None:
        raise GraphError("cannot tell the batch size: the graph has no parameters and no inputs")

    edges_into = graph._adjacency()[2]  # {(dst, inlet): [edges]}, read only here
    uses: dict[str, int] = {}
    for e in graph.edges:
        uses[e.src] = uses.get(e.src, 0) + 1
    mods_into: dict[str, list] = {}
    for m in graph.modulations:
        mods_into.setdefault(m.dst, []).append(m)
        uses[m.src] = uses.get(m.src, 0) + 1
    nodes = dict(graph.nodes.items())
    n_in = {n: graph.n_inlets(n) for n in nodes}
    produced: dict[str, tuple[Tensor, ...]] = {}
    # (node, outlet) -> (call output, first row, rows) for outputs split from a batched call
    origin: dict[tuple[str, int], tuple[Tensor, int, int]] = {}

    def inlet(name: str, k: int) -> tuple[Tensor, tuple[Tensor, int, int] | None]:
        """Inlet ``k`` of ``name`` (its edges summed) and, when it is exactly one batched
        call's rows (one edge from such a node), that call's ``origin`` entry."""
        total, source = None, None
        edges = edges_into[(name, k)]
        for e in edges:
            x = ins[e.outlet] if e.src == IN else produced[e.src][e.outlet]
            total = x if total is None else total + x
            if e.src != IN:
                if len(edges) == 1:
                    source = origin.get((e.src, e.outlet))
                uses[e.src] -= 1
                if uses[e.src] == 0 and e.src in produced:
                    for j in range(len(produced.pop(e.src))):  # last reader: free it early
                        origin.pop((e.src, j), None)
        return total, source

    def concat_rows(values: list[Tensor], sources: list) -> Tensor:
        """A group's inlet values along the batch axis. When they are consecutive rows of one
        earlier batched call's output (a chain of same-type stages, e.g. channel strips), that
        output is reused as it is: no copy forward and no split/concatenate of gradients
        backward."""
        if sources[0] is None:
            return torch.cat(values)
        parent, start, rows = sources[0]
        for src in sources[1:]:
            if src is None or src[0] is not parent or src[1] != start + rows:
                return torch.cat(values)
            rows += src[2]
        return parent if rows == parent.shape[0] else parent.narrow(0, start, rows)

    class_of, stacked = batch_classes(graph) if mode == "batched" else ({}, {})
    for step in render_plan(graph, mode, class_of):
        for n in step:
            if n in mods_into:
                kwargs[n] = _modulated(n, kwargs[n], mods_into[n], produced, n_samples)
                for m in mods_into[n]:
                    uses[m.src] -= 1
                    if uses[m.src] == 0:
                        for j in range(len(produced.pop(m.src))):
                            origin.pop((m.src, j), None)
        read = {n: [inlet(n, k) for k in range(n_in[n])] for n in step}
        node_ins = {n: [x for x, _ in r] for n, r in read.items()}
        if len(step) == 1:
            groups = [step]
        else:
            subgroups: dict[tuple, list[str]] = {}
            for n in step:
                subgroups.setdefault(_signature(node_ins[n], kwargs[n]), []).append(n)
            groups = list(subgroups.values())
        for group in groups:
            procs = [nodes[n] for n in group]
            if len(group) == 1:
                n = group[0]
                produced[n] = _call(repr(n), procs[0], node_ins[n], kwargs[n], n_samples, batch)
            elif stacked.get(class_of[group[0]], False):
                if weights == "vmap":
                    outs = _vmap_call(procs, [node_ins[n] for n in group],
                                      [kwargs[n] for n in group], n_samples)
                    produced.update(zip(group, outs))
                else:
                    for n, p in zip(group, procs):
                        produced[n] = _call(repr(n), p, node_ins[n], kwargs[n], n_samples, batch)
            else:
                k = len(group)
                cat_ins = [concat_rows([node_ins[n][i] for n in group], [read[n][i][1] for n in group])
                           for i in range(n_in[group[0]])]
                cat_kw = {p: torch.cat([kwargs[n][p] for n in group]) for p in kwargs[group[0]]}
                label = "+".join(repr(n) for n in group) + " (batched)"
                outs = _call(label, procs[0], cat_ins, cat_kw, n_samples, k * batch)
                split = [o.split(batch) for o in outs]
                for i, n in enumerate(group):
                    produced[n] = tuple(s[i] for s in split)
                    for j, o in enumerate(outs):
                        origin[(n, j)] = (o, i * batch, batch)
    return inlet(OUT, 0)[0]
