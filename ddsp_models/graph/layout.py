"""The flat parameter layout of a graph: what a decoder must predict, and how to split it.

A decoder outputs one tensor ``raw`` of shape ``(batch, frames, P)``. The layout assigns every
predicted (non-external) parameter of every node a contiguous slice ``[offset, offset + size)``
of the last axis, in node insertion order and, within a node, in ``param_specs()`` order.
External parameters (``f0_hz``) take no columns; the caller passes them as ``controls``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Iterator

import torch
from torch import Tensor

from ..core.scaling import ExpSigmoid, Identity, LogSigmoidRange, Scaling, SigmoidRange

if TYPE_CHECKING:  # pragma: no cover
    from .graph import ProcessorGraph

__all__ = ["LayoutEntry", "ParameterLayout", "build_layout"]

#: Scalings that act on each element alone: entries sharing one are scaled in a single call.
_ELEMENTWISE = (Identity, ExpSigmoid, SigmoidRange, LogSigmoidRange)


@dataclass(frozen=True)
class LayoutEntry:
    """One parameter of one node in the layout.

    Attributes:
        node, param: where the value goes (``params[node][param]``).
        size: features of the parameter (its columns in ``raw``).
        time_varying: ``(B, T, size)`` if True, else ``(B, size)`` (mean of its columns over T).
        external: supplied as a control, not predicted (then ``offset`` is None).
        offset: first column of its slice in ``raw``.
        scaling: raw → physical map applied by :meth:`ParameterLayout.split`.
        unit: physical unit (for docs).
    """

    node: str
    param: str
    size: int
    time_varying: bool
    external: bool
    offset: int | None
    scaling: Scaling
    unit: str = ""

    @property
    def columns(self) -> slice:
        if self.offset is None:
            raise ValueError(f"{self.node}.{self.param} is external: it has no columns in raw")
        return slice(self.offset, self.offset + self.size)


@dataclass(frozen=True)
class ParameterLayout:
    """Ordered :class:`LayoutEntry` s of a graph (see the module docstring)."""

    entries: tuple[LayoutEntry, ...]
    nodes: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[LayoutEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def predicted(self) -> tuple[LayoutEntry, ...]:
        """Entries the decoder predicts, in column order."""
        return tuple(e for e in self.entries if not e.external)

    @property
    def n_params(self) -> int:
        """Total width ``P`` of the predicted parameters (last axis of ``raw``)."""
        return sum(e.size for e in self.predicted)

    @property
    def externals(self) -> set[str]:
        """Names of the external controls the graph needs, e.g. ``{"f0_hz"}``."""
        return {e.param for e in self.entries if e.external}

    def external_specs(self) -> dict[str, tuple[int, bool]]:
        """``{name: (size, time_varying)}`` of each external control."""
        return {e.param: (e.size, e.time_varying) for e in self.entries if e.external}

    def entry(self, node: str, param: str) -> LayoutEntry:
        for e in self.entries:
            if e.node == node and e.param == param:
                return e
        raise KeyError(f"no parameter {param!r} of node {node!r} in the layout")

    def split(self, raw: Tensor, scale: bool = True) -> dict[str, dict[str, Tensor]]:
        """``raw`` ``(B, T, P)`` → ``{node: {param: value}}`` for every node.

        Time-varying values are ``raw[..., slice]`` ``(B, T, size)``; static values are the
        mean over frames of their slice, ``(B, size)``. With ``scale`` (default) each value
        goes through its declared scaling into physical units. Nodes without predicted
        parameters map to ``{}``.
        """
        p = self.n_params
        if not isinstance(raw, Tensor):
            raise TypeError(f"raw must be a torch.Tensor, got {type(raw).__name__}")
        if raw.dim() != 3 or raw.shape[-1] != p:
            raise ValueError(
                f"raw must be (batch, frames, {p}) for this graph's layout, got shape "
                f"{tuple(raw.shape)}; size the decoder's output with layout.n_params = {p}"
            )
        out: dict[str, dict[str, Tensor]] = {n: {} for n in self.nodes}
        for (scaling, time_varying), entries, columns in self._groups:
            if columns is None:  # one entry, or a scaling that mixes features (softmax)
                (e,) = entries
                v = raw[..., e.columns]
            elif isinstance(columns, slice):
                v = raw[..., columns]
            else:
                v = raw.index_select(-1, columns.to(raw.device))
            if not time_varying:
                v = v.mean(dim=1)
            if scale:
                v = scaling(v)
            for e, piece in zip(entries, v.split([e.size for e in entries], dim=-1)):
                out.setdefault(e.node, {})[e.param] = piece
        return out

    @cached_property
    def _groups(self) -> list[tuple[tuple[Scaling, bool], list[LayoutEntry], Any]]:
        """Predicted entries grouped by (elementwise scaling, time variation), so that a
        graph of many nodes is split with a few tensor ops instead of a few per parameter.
        Each group: its key, its entries and their columns (a slice when contiguous, an
        index tensor otherwise, None for an entry scaled on its own)."""
        groups: dict[Any, list[LayoutEntry]] = {}
        for i, e in enumerate(self.predicted):
            if type(e.scaling) in _ELEMENTWISE:
                key: Any = (e.scaling, e.time_varying)
            else:
                key = ("alone", i)
            groups.setdefault(key, []).append(e)
        out = []
        for key, entries in groups.items():
            if key[0] == "alone" or len(entries) == 1:
                out.append(((entries[0].scaling, entries[0].time_varying), entries, None))
                continue
            cols = torch.cat([torch.arange(e.offset, e.offset + e.size) for e in entries])
            if bool((cols.diff() == 1).all()):
                out.append((key, entries, slice(int(cols[0]), int(cols[-1]) + 1)))
            else:
                out.append((key, entries, cols))
        return out

    def to_dict(self) -> list[dict[str, Any]]:
        """A YAML/JSON-friendly table of the layout (for docs and checkpoints)."""
        return [
            {
                "node": e.node,
                "param": e.param,
                "size": e.size,
                "time_varying": e.time_varying,
                "external": e.external,
                "offset": e.offset,
                "scaling": e.scaling.to_dict(),
                "unit": e.unit,
            }
            for e in self.entries
        ]

    def __str__(self) -> str:
        rows = [f"ParameterLayout: P={self.n_params}, externals={sorted(self.externals)}"]
        for e in self.entries:
            cols = "external" if e.external else f"[{e.offset}:{e.offset + e.size}]"
            kind = "time-varying" if e.time_varying else "static"
            rows.append(
                f"  {e.node}.{e.param:<24} {cols:>12}  size={e.size:<4} {kind:<12} "
                f"{e.scaling.kind} {e.unit}"
            )
        return "\n".join(rows)


def build_layout(graph: "ProcessorGraph") -> ParameterLayout:
    """Lay out the parameters of ``graph``'s nodes in insertion order.

    Externals with the same name are shared by all nodes that declare them and must agree in
    size and time variation (else a ``ValueError`` names both nodes).
    """
    from .types import GraphError

    entries: list[LayoutEntry] = []
    offset = 0
    seen_external: dict[str, tuple[str, int, bool]] = {}
    for node, proc in graph.nodes.items():
        for spec in proc.param_specs():
            if spec.external:
                prev = seen_external.setdefault(
                    spec.name, (node, spec.size, spec.time_varying)
                )
                if prev[1:] != (spec.size, spec.time_varying):
                    raise GraphError(
                        f"node {node!r}: external control {spec.name!r} is declared with "
                        f"size={spec.size}, time_varying={spec.time_varying}, but node "
                        f"{prev[0]!r} declares size={prev[1]}, time_varying={prev[2]}"
                    )
                entries.append(
                    LayoutEntry(node, spec.name, spec.size, spec.time_varying, True, None,
                                spec.scaling, spec.unit)
                )
            else:
                entries.append(
                    LayoutEntry(node, spec.name, spec.size, spec.time_varying, False, offset,
                                spec.scaling, spec.unit)
                )
                offset += spec.size
    return ParameterLayout(tuple(entries), tuple(graph.nodes))
