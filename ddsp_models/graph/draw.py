"""A picture of a :class:`~ddsp_models.graph.ProcessorGraph` with matplotlib alone.

Layered layout: a node's column is its topological depth (longest path from a source: ``in``
and synths are in column 0, ``out`` in the last column). Within a column nodes are ordered by
the mean row of their sources (one barycentre sweep, which removes most crossings). Each box
shows the node name and processor type; edges into multi-input processors are labelled with
their inlet. Modulation edges are dashed and labelled with the parameter they modulate. No
graphviz binary is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .types import IN, OUT

if TYPE_CHECKING:  # pragma: no cover
    from .graph import ProcessorGraph

__all__ = ["draw_graph", "layered_positions"]

_COLOURS = {"io": "#dddddd", "synth": "#cfe8ff", "effect": "#ffe3c2"}


def layered_positions(graph: "ProcessorGraph") -> dict[str, tuple[float, float]]:
    """``{node: (column, row)}`` for every node, ``in``/``out`` included (if used)."""
    order = graph.topological_order()
    depth: dict[str, int] = {}
    uses_in = any(e.src == IN for e in graph.edges)
    if uses_in:
        depth[IN] = 0
    for n in order:
        ps = graph.predecessors(n)
        depth[n] = 1 + max((depth[p] for p in ps), default=-1)
        if not ps and uses_in and graph.n_inlets(n) > 0:
            depth[n] = 1
    last = max(depth.values(), default=-1)
    depth[OUT] = 1 + max((depth[p] for p in graph.predecessors(OUT)), default=last)
    columns: dict[int, list[str]] = {}
    for n, d in depth.items():
        columns.setdefault(d, []).append(n)
    row: dict[str, float] = {}
    for d in sorted(columns):
        col = columns[d]
        if d > 0:
            def bary(n: str) -> float:
                ps = [row[p] for p in graph.predecessors(n) if p in row]
                return sum(ps) / len(ps) if ps else 0.0

            col.sort(key=bary)
        for i, n in enumerate(col):
            row[n] = i - (len(col) - 1) / 2
    return {n: (float(depth[n]), -row[n]) for n in depth}


def draw_graph(
    graph: "ProcessorGraph", path: str | Path, dpi: int = 120, title: str | None = None
) -> Path:
    """Draw ``graph`` to ``path``; the format follows the suffix (``.png``, ``.svg``, ``.pdf``).

    Returns the path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise ValueError(f"draw: path must end in .png, .svg or .pdf, got {path.name!r}")
    pos = layered_positions(graph)
    n_cols = 1 + int(max(x for x, _ in pos.values()))
    n_rows = max(sum(1 for x, _ in pos.values() if x == c) for c in range(n_cols))
    box_w, box_h, dx, dy = 1.5, 0.6, 2.2, 1.0
    fig = Figure(figsize=(max(4.0, 1.9 * n_cols), max(2.5, 0.95 * n_rows + 0.8)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    xy = {n: (x * dx, y * dy) for n, (x, y) in pos.items()}
    for n, (x, y) in xy.items():
        if n in (IN, OUT):
            label, colour = n, _COLOURS["io"]
        else:
            p = graph.nodes[n]
            label = f"{n}\n{type(p).__name__}"
            colour = _COLOURS["synth" if p.n_inputs == 0 else "effect"]
        ax.add_patch(FancyBboxPatch((x - box_w / 2, y - box_h / 2), box_w, box_h,
                                    boxstyle="round,pad=0.02,rounding_size=0.12",
                                    fc=colour, ec="#444444", lw=1.0, zorder=2))
        ax.text(x, y, label, ha="center", va="center", fontsize=8, zorder=3)
    for e in graph.edges:
        (x0, y0), (x1, y1) = xy[e.src], xy[e.dst]
        start, end = (x0 + box_w / 2, y0), (x1 - box_w / 2, y1)
        # edges that skip columns bend, so they do not run through the boxes between
        rad = 0.0 if abs(x1 - x0) <= dx * 1.01 else 0.15
        ax.annotate("", xy=end, xytext=start,
                    arrowprops=dict(arrowstyle="-|>", color="#555555", lw=0.9, shrinkA=0,
                                    shrinkB=1, connectionstyle=f"arc3,rad={rad}"),
                    zorder=1)
        if graph.n_inlets(e.dst) > 1 or e.outlet:
            tag = f"{e.outlet}→{e.inlet}" if e.outlet else f"in {e.inlet}"
            t = 0.8  # label near the destination, on the edge
            ax.text(start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1]) + 0.06,
                    tag, ha="center", fontsize=6, color="#222288", zorder=4,
                    bbox=dict(fc="white", ec="none", pad=0.3, alpha=0.8))
    pairs: dict[tuple[str, str], list[str]] = {}
    for m in graph.modulations:
        pairs.setdefault((m.src, m.dst), []).append(m.param)
    for (src, dst), names in pairs.items():
        (x0, y0), (x1, y1) = xy[src], xy[dst]
        start, end = (x0 + box_w / 2, y0), (x1 - box_w / 2, y1 - box_h / 4)
        ax.annotate("", xy=end, xytext=start,
                    arrowprops=dict(arrowstyle="-|>", color="#aa3377", lw=0.9, ls="--",
                                    shrinkA=0, shrinkB=1, connectionstyle="arc3,rad=-0.2"),
                    zorder=1)
        ax.text(end[0] - 0.05, end[1] - 0.12, ", ".join(names), ha="right", fontsize=6,
                color="#aa3377", zorder=4, bbox=dict(fc="white", ec="none", pad=0.3, alpha=0.8))
    xs = [x for x, _ in xy.values()]
    ys = [y for _, y in xy.values()]
    ax.set_xlim(min(xs) - box_w, max(xs) + box_w)
    ax.set_ylim(min(ys) - box_h * 1.5, max(ys) + box_h * 1.5)
    ax.set_aspect("auto")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    from ..data.atomic import atomic_write

    fmt = Path(path).suffix.lstrip(".").lower() or None
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=fmt))
    return path
