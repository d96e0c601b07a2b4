"""Type-batched render order (the GRAFX idea): which nodes can share one processor call.

Two nodes are *batchable together* (same class) when calling one of them on both inputs,
concatenated along the batch axis, gives both outputs:

* same processor class and equal ``config()``, and
* the same weights: both hold the very same module object, or neither has learnable
  parameters (``nn.Parameter``) and their buffers are equal, and
* the processor does not opt out with a class attribute ``graph_batchable = False`` (for
  processors that mix batch items, e.g. normalise over the batch).

Nodes of one class with *different* learnable weights form a "stacked" class: rendered in one
call only with ``weights="vmap"`` (``torch.func.vmap`` over stacked weights), one by one
otherwise (see :mod:`.render`).

The schedule is a list of steps; each step is a list of nodes of one class whose sources are
all rendered by earlier steps. It is found greedily: among the classes with ready nodes, run
the one whose ready nodes lie deepest below the output (the critical path), ties broken by
the larger count. ``sequential_schedule`` gives the one-node-per-step order for checking.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import torch

from ..processors import Processor

if TYPE_CHECKING:  # pragma: no cover
    from .graph import ProcessorGraph

__all__ = ["batch_classes", "type_batched_schedule", "sequential_schedule", "has_own_weights"]


def has_own_weights(p: Processor) -> bool:
    """True if the processor holds learnable parameters."""
    return any(True for _ in p.parameters())


def _config_key(p: Processor) -> str:
    return type(p).__qualname__ + json.dumps(p.config(), sort_keys=True, default=repr)


def _same_buffers(a: Processor, b: Processor) -> bool:
    ba, bb = dict(a.named_buffers()), dict(b.named_buffers())
    if ba.keys() != bb.keys():
        return False
    return all(
        x.shape == bb[k].shape and x.dtype == bb[k].dtype and x.device == bb[k].device
        and torch.equal(x, bb[k])
        for k, x in ba.items()
    )


def batch_classes(graph: "ProcessorGraph") -> tuple[dict[str, int], dict[int, bool]]:
    """Assign each node a batching class id (cached until the graph or a buffer changes).

    Returns ``(class_of_node, stacked)`` where ``stacked[c]`` is True for a class whose nodes
    have different learnable weights (batchable only with ``vmap``).
    """
    cached = graph._cache.get(("classes",))
    current = _all_buffers(graph)
    if cached is not None:
        seen, result = cached
        # buffers replaced (.to(), assignment) or edited in place invalidate the classes
        if len(seen) == len(current) and all(
            b is ref and b._version == version for b, (ref, version) in zip(current, seen)
        ):
            return result
    result = _batch_classes(graph)
    graph._cache[("classes",)] = ([(b, b._version) for b in current], result)
    return result


def _all_buffers(graph: "ProcessorGraph") -> list[torch.Tensor]:
    return [b for p in graph.nodes.values() for b in p.buffers()]


def _batch_classes(graph: "ProcessorGraph") -> tuple[dict[str, int], dict[int, bool]]:
    reps: list[tuple[Any, Processor, int]] = []  # (key, representative, class id)
    class_of: dict[str, int] = {}
    stacked: dict[int, bool] = {}
    for name, p in graph.nodes.items():
        if not getattr(p, "graph_batchable", True):
            c = len(stacked)
            stacked[c] = False
            class_of[name] = c
            continue
        key = _config_key(p)
        own = has_own_weights(p)
        found = None
        for k, rep, c in reps:
            if k != key or type(rep) is not type(p):
                continue
            if rep is p:
                found = c
                break
            if own and has_own_weights(rep) and stacked[c]:
                # different learnable weights of equal shapes: a stacked class
                ra, rb = dict(rep.named_parameters()), dict(p.named_parameters())
                if ra.keys() == rb.keys() and all(
                    ra[n].shape == rb[n].shape for n in ra
                ) and _same_buffers(rep, p):
                    found = c
                    break
            elif not own and not has_own_weights(rep) and _same_buffers(rep, p):
                found = c
                break
        if found is None:
            found = len(stacked)
            stacked[found] = own
            reps.append((key, p, found))
        class_of[name] = found
    return class_of, stacked


def _heights(graph: "ProcessorGraph", order: list[str]) -> dict[str, int]:
    """Longest path (in nodes) from each node to ``out``."""
    h: dict[str, int] = {}
    for n in reversed(order):
        h[n] = 1 + max((h.get(s, 0) for s in graph.successors(n)), default=0)
    return h


def type_batched_schedule(graph: "ProcessorGraph", class_of: dict[str, int]) -> list[list[str]]:
    """Greedy type-batched steps (see the module docstring); every node appears once."""
    order = graph.topological_order()
    height = _heights(graph, order)
    preds = {n: [p for p in graph.predecessors(n) if p in graph.nodes] for n in order}
    waiting = {n: len(preds[n]) for n in order}
    succ = {n: [s for s in graph.successors(n) if s in graph.nodes] for n in order}
    ready = [n for n in order if waiting[n] == 0]
    steps: list[list[str]] = []
    while ready:
        groups: dict[int, list[str]] = {}
        for n in ready:
            groups.setdefault(class_of[n], []).append(n)
        best = max(groups, key=lambda c: (max(height[n] for n in groups[c]), len(groups[c])))
        step = groups[best]
        steps.append(step)
        ready = [n for n in ready if class_of[n] != best]
        for n in step:
            for s in succ[n]:
                waiting[s] -= 1
                if waiting[s] == 0:
                    ready.append(s)
    return steps


def sequential_schedule(graph: "ProcessorGraph") -> list[list[str]]:
    """One node per step, in topological order."""
    return [[n] for n in graph.topological_order()]
