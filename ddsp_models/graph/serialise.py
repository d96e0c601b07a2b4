"""Graphs as plain dicts and YAML, so recipes can declare them.

Canonical form (what :func:`graph_to_dict` writes)::

    nodes:
      harmonic: {type: Harmonic, sample_rate: 16000, n_harmonics: 60}
      reverb:   {type: Reverb, sample_rate: 16000, length: 16000}
    edges:
      - {src: harmonic, dst: reverb}             # inlet/outlet written only when not 0
      - {src: reverb, dst: out}
    modulations:                                 # written only when there are any
      - {from: lfo, to: filter.cutoff_hz, mode: octaves, amount: 1.0}

:func:`graph_from_dict` also accepts the short edge forms ``"harmonic -> reverb"``,
``"a -> mix:1"`` (inlet 1) and ``[src, dst]`` / ``[src, dst, inlet]``, and
``{preset: name, **kwargs}`` for a graph of :mod:`.presets`. Processors are built
with ``Class(**config)``, the class looked up in the processor registry (or in the
``processors`` mapping passed in). Learnable weights are not part of the dict; they live in
the module's ``state_dict``. ``modulations`` entries are read by
:func:`~ddsp_models.graph.modulation.modulation_from_dict` (``mode`` defaults to ``add``,
``amount`` to 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import yaml

from ..processors import load_processor_class
from .types import GraphError

if TYPE_CHECKING:  # pragma: no cover
    from .graph import ProcessorGraph

__all__ = ["graph_to_dict", "graph_from_dict", "graph_to_yaml", "graph_from_yaml", "parse_edge"]


def _plain(x: Any) -> Any:
    """Tuples → lists, recursively, so dicts survive YAML and compare equal after a round trip."""
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, Mapping):
        return {k: _plain(v) for k, v in x.items()}
    return x


def graph_to_dict(graph: "ProcessorGraph") -> dict[str, Any]:
    nodes = {
        name: {"type": type(p).__name__, **_plain(p.config())} for name, p in graph.nodes.items()
    }
    edges = []
    for e in graph.edges:
        d: dict[str, Any] = {"src": e.src, "dst": e.dst}
        if e.inlet:
            d["inlet"] = e.inlet
        if e.outlet:
            d["outlet"] = e.outlet
        edges.append(d)
    out = {"nodes": nodes, "edges": edges}
    if graph.modulations:
        from .modulation import modulation_to_dict

        out["modulations"] = [modulation_to_dict(m) for m in graph.modulations]
    return out


def _node_inlet(s: str, what: str) -> tuple[str, int]:
    s = s.strip()
    if ":" in s:
        name, k = s.split(":", 1)
        try:
            return name.strip(), int(k)
        except ValueError:
            raise ValueError(f"bad {what} {s!r}: expected 'name' or 'name:index'") from None
    return s, 0


def parse_edge(e: Any) -> dict[str, Any]:
    """One edge in any accepted form → ``{"src", "dst", "inlet", "outlet"}``."""
    if isinstance(e, str):
        if "->" not in e:
            raise GraphError(f"edge {e!r} must look like 'src -> dst' or 'src -> dst:inlet'")
        a, b = e.split("->", 1)
        src, outlet = _node_inlet(a, "edge source")
        dst, inlet = _node_inlet(b, "edge destination")
        return {"src": src, "dst": dst, "inlet": inlet, "outlet": outlet}
    if isinstance(e, (list, tuple)) and len(e) in (2, 3):
        return {"src": e[0], "dst": e[1], "inlet": e[2] if len(e) == 3 else 0, "outlet": 0}
    if isinstance(e, Mapping):
        extra = set(e) - {"src", "dst", "inlet", "outlet"}
        if extra or not {"src", "dst"} <= set(e):
            raise GraphError(
                f"edge {dict(e)} must have keys src, dst and optionally inlet, outlet; "
                f"unexpected {sorted(extra)}" if extra else f"edge {dict(e)} needs src and dst"
            )
        return {"src": e["src"], "dst": e["dst"], "inlet": e.get("inlet", 0),
                "outlet": e.get("outlet", 0)}
    raise GraphError(f"cannot read edge {e!r}: use 'src -> dst', [src, dst] or {{src:, dst:}}")


def graph_from_dict(
    d: Mapping[str, Any],
    processors: Mapping[str, type] | None = None,
    *,
    cls: type,
) -> "ProcessorGraph":
    """Build a ``cls`` graph from :func:`graph_to_dict` output (or the short forms it accepts).

    Called as ``ProcessorGraph.from_dict(d)``; ``cls`` is the graph class to build (this module
    does not import it: the graph package has no import cycle).
    """
    if isinstance(d, Mapping) and "preset" in d:
        from .preset_specs import PRESET_SPECS

        kwargs = dict(d)
        name = kwargs.pop("preset")
        if name not in PRESET_SPECS:
            raise GraphError(f"unknown graph preset {name!r}; known: {sorted(PRESET_SPECS)}")
        try:
            spec = PRESET_SPECS[name](**kwargs)
        except TypeError as err:
            raise GraphError(f"graph preset {name!r}: {err}") from err
        return graph_from_dict(spec, processors, cls=cls)
    if not isinstance(d, Mapping) or "nodes" not in d:
        raise GraphError(
            "a graph dict needs 'nodes' ({name: {type: ..., **config}}) and 'edges'; got "
            f"{sorted(d) if isinstance(d, Mapping) else type(d).__name__}"
        )
    extra = set(d) - {"nodes", "edges", "modulations"}
    if extra:
        raise GraphError(f"unexpected graph keys {sorted(extra)}; expected 'nodes', 'edges' and "
                         "optionally 'modulations'")
    g = cls()
    if not isinstance(d["nodes"] or {}, Mapping):
        raise GraphError(
            "graph 'nodes' must be a mapping {name: {type: ClassName, **config}}, got a "
            f"{type(d['nodes']).__name__}: {d['nodes']!r:.80}")
    if not isinstance(d.get("edges") or [], (list, tuple)):
        raise GraphError(
            "graph 'edges' must be a list such as ['harmonic -> reverb', 'reverb -> out'], got "
            f"a {type(d['edges']).__name__}: {d['edges']!r:.80}")
    for name, spec in (d["nodes"] or {}).items():
        if not isinstance(spec, Mapping) or "type" not in spec:
            raise GraphError(f"node {name!r}: expected {{type: ClassName, **config}}, got {spec!r}")
        spec = dict(spec)
        kind = spec.pop("type")
        try:
            klass = (processors or {}).get(kind) or load_processor_class(kind)
        except ValueError as err:
            raise GraphError(f"node {name!r}: {err}") from err
        try:
            proc = klass(**spec)
        except (TypeError, ValueError) as err:
            raise GraphError(f"node {name!r}: {kind}(**{spec}) failed: {err}") from err
        g.add(name, proc)
    for e in d.get("edges") or []:
        pe = parse_edge(e)
        g.connect(pe["src"], pe["dst"], inlet=pe["inlet"], outlet=pe["outlet"])
    if d.get("modulations"):
        from .modulation import modulation_from_dict

        for m in d["modulations"]:
            g.modulate(**modulation_from_dict(m))
    return g


def graph_to_yaml(graph: "ProcessorGraph", path: str | Path) -> Path:
    """Write :func:`graph_to_dict` to ``path`` as YAML; returns the path."""
    from ..data.atomic import atomic_write_text

    return atomic_write_text(path, yaml.safe_dump(graph_to_dict(graph), sort_keys=False))


def graph_from_yaml(
    path: str | Path, processors: Mapping[str, type] | None = None, *, cls: type
) -> "ProcessorGraph":
    """Read a graph from YAML: the whole file, its ``graph:`` entry, or its ``model: graph:``
    entry (a training recipe such as ``recipes/solo_instrument.yaml``, or a model folder's
    ``config.yaml``)."""
    path = Path(path)
    try:
        d = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise GraphError(f"cannot read a graph from {path}: {' '.join(str(err).split())}") from err
    if isinstance(d, Mapping) and "nodes" not in d and "preset" not in d:
        model = d.get("model")
        if "graph" in d:
            d = d["graph"]
        elif isinstance(model, Mapping) and "graph" in model:
            d = model["graph"]
        else:
            raise GraphError(
                f"{path} holds no graph: expected top-level 'nodes' and 'edges', a 'graph:' "
                f"entry or a 'model: graph:' entry (as in a recipe); found keys {sorted(d)}")
    try:
        return graph_from_dict(d, processors, cls=cls)
    except GraphError as err:
        raise GraphError(f"{path}: {err}") from err
