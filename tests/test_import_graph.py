"""The import graph of ``ddsp_models`` has no cycle (issue #12, "one of each").

Every module is parsed with :mod:`ast`; every ``import`` / ``from ... import`` statement counts,
wherever it is (module level or inside a function: a late import still ties the two modules
together), except those under ``if TYPE_CHECKING:``. Relative imports are resolved against the
module's package. ``from pkg import name`` is an edge to ``pkg.name`` when that is a module
(``from . import x``), else to ``pkg`` (its ``__init__``); ``import a.b`` is an edge to ``a.b``. Implicit
imports of parent packages (Python runs ``a/__init__`` before ``a.b``) are not edges: an
``__init__`` that re-exports its submodules would otherwise close a cycle with each of them.
"""

from __future__ import annotations

import ast
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent / "ddsp_models"
PKG = "ddsp_models"

def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Import nodes of ``tree``, skipping the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    """``{module: {modules of ddsp_models it imports}}``."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        package = mod if is_pkg else mod.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                subs = [f"{prefix}.{a.name}" for a in node.names]
                # ``from pkg import submodule`` needs the submodule only; any other name is
                # read from ``pkg`` (its __init__)
                targets = subs + ([prefix] if any(t not in mods for t in subs) else [])
            for t in targets:
                if t in mods and t != mod:
                    graph[mod].add(t)
    return graph


def tangles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    comps: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # graphs here are small: recursion depth is fine
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(comps)


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One (shortest) cycle per tangle of :func:`tangles`."""
    return [_one_cycle(graph, set(c)) for c in tangles(graph)]


def _one_cycle(graph: dict[str, set[str]], comp: set[str]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected component."""
    start = min(comp)
    prev: dict[str, str] = {}
    frontier, seen = [start], {start}
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & comp):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return path[::-1] + [start]
                if w not in seen:
                    seen.add(w)
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return sorted(comp)  # pragma: no cover


def _describe(graph: dict[str, set[str]], comps: list[list[str]]) -> str:
    return "\n".join(f"{len(c)} modules {c}; e.g. " + " -> ".join(_one_cycle(graph, set(c)))
                     for c in comps)


def test_the_graph_is_read_correctly():
    g = import_graph()
    assert "ddsp_models.graph.types" in g["ddsp_models.graph.render"]
    assert "ddsp_models.graph.graph" in g["ddsp_models.graph"]  # package -> its submodule
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    g = import_graph()
    comps = tangles(g)
    assert not comps, "import cycles in ddsp_models:\n" + _describe(g, comps)
