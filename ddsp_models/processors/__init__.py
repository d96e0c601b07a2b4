"""All processors (synths and effects) and the processor contract.

The public namespaces are :mod:`ddsp_models.synths` and :mod:`ddsp_models.effects`; this
package holds the implementations, one idea per module.

The registry
------------
A processor class registers itself when it is defined (``Processor.__init_subclass__`` fills
:data:`PROCESSORS`), so a new processor is one file: a module of this package, or any module
of the user's that defines a :class:`Processor` subclass. Nothing lists processors by hand.

Importing a processor module is not free (numba, custom autograd functions), so this package
does not import them to learn their names: :func:`discover` reads the package's ``*.py``
files with :mod:`ast` (tens of milliseconds, once per process) and finds every top-level public
class that derives from :class:`Processor`, directly or through other classes of the package,
with its module and whether it is a synth (``n_inputs == 0``, inherited). The lazy exports of
:mod:`ddsp_models.synths`, :mod:`ddsp_models.effects` and of this package are built from it;
:func:`load_processor_class` imports a class's module on first use.
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib
import pkgutil
from pathlib import Path
from types import MappingProxyType
from typing import Mapping, NamedTuple

from ..errors import DDSPError, InvalidInputError
from .base import PROCESSORS, Param, Processor, State


class UnknownProcessorError(DDSPError, ValueError):
    """A processor type name that no module defines (the message names close matches)."""


class ProcessorEntry(NamedTuple):
    """Where a processor of this package is defined, found without importing it."""

    name: str
    #: absolute module path, e.g. ``"ddsp_models.processors.harmonic"``.
    module: str
    #: ``n_inputs == 0`` (no audio input): exported by :mod:`ddsp_models.synths`.
    is_synth: bool


_ROOT = "Processor"
_SKIP = frozenset({"__init__"})


def _base_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _n_inputs_literal(cls: ast.ClassDef) -> int | None:
    """``n_inputs`` assigned a literal in the class body, else None (inherited)."""
    for stmt in cls.body:
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets, value = [stmt.target], stmt.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == "n_inputs" for t in targets):
            try:
                return int(ast.literal_eval(value))
            except (ValueError, TypeError, SyntaxError):
                return 1  # not a literal: an effect (``n_inputs > 0`` is all that matters)
    return None


def _scan_sources(sources: Mapping[str, str]) -> dict[str, ProcessorEntry]:
    """Processor classes in ``{module: source}``, found with :mod:`ast` (nothing imported).

    A class is a processor if it is top-level and one of its bases is ``Processor`` or a
    scanned class that is (resolved in its own module first, then through ``from .x import Y``
    imports, then by name among the scanned public classes). Public names only.
    """
    classes: dict[tuple[str, str], tuple[ast.ClassDef, list[str]]] = {}
    imports: dict[tuple[str, str], tuple[str, str]] = {}  # (module, alias) -> (module, name)
    package = __name__
    for module, source in sources.items():
        tree = ast.parse(source, filename=module)
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                bases = [b for b in map(_base_name, node.bases) if b]
                classes[(module, node.name)] = (node, bases)
            elif isinstance(node, ast.ImportFrom) and node.module:
                if node.level == 1:
                    source_module = f"{package}.{node.module}"
                elif node.level == 0 and node.module.startswith(package + "."):
                    source_module = node.module
                else:
                    continue
                for alias in node.names:
                    imports[(module, alias.asname or alias.name)] = (source_module, alias.name)
    public_by_name = {name: (m, name) for (m, name) in classes if not name.startswith("_")}

    def resolve(module: str, name: str) -> tuple[str, str] | None:
        if (module, name) in classes:
            return (module, name)
        if (module, name) in imports and imports[(module, name)] in classes:
            return imports[(module, name)]
        return public_by_name.get(name)

    root = (f"{package}.base", _ROOT)
    # key -> n_inputs if the class is a processor, else None; the contract's root has none
    memo: dict[tuple[str, str], int | None] = {root: 0}

    def n_inputs(key: tuple[str, str], seen: frozenset = frozenset()) -> int | None:
        if key in memo:
            return memo[key]
        if key in seen or key not in classes:
            return None
        node, bases = classes[key]
        own = _n_inputs_literal(node)
        found: int | None = None
        is_processor = False
        for b in bases:
            target = resolve(key[0], b)
            if target is None and b == _ROOT:  # e.g. imported from outside the package
                target = root
            if target is None:
                continue
            inherited = n_inputs(target, seen | {key})
            if inherited is None:
                continue
            is_processor = True
            if found is None:
                found = inherited  # the first processor base wins, as in the MRO
        memo[key] = (own if own is not None else found) if is_processor else None
        return memo[key]

    out: dict[str, ProcessorEntry] = {}
    for key in classes:
        module, name = key
        if name.startswith("_") or key == root:
            continue
        k = n_inputs(key)
        if k is not None:
            out[name] = ProcessorEntry(name, module, k == 0)
    return dict(sorted(out.items()))


@functools.lru_cache(maxsize=None)
def discover() -> Mapping[str, ProcessorEntry]:
    """Every processor class defined in this package, by name (cached for the process).

    Reads the package's ``*.py`` files with :mod:`ast`; only where no source is installed
    (a zipped or compiled-only install) does it import the modules and read the registry.
    """
    here = Path(__file__).parent
    files = sorted(p for p in here.glob("*.py") if p.stem not in _SKIP)
    if files:
        sources = {f"{__name__}.{p.stem}": p.read_text(encoding="utf-8") for p in files}
        return MappingProxyType(_scan_sources(sources))
    for info in pkgutil.iter_modules(__path__):  # pragma: no cover - no sources installed
        importlib.import_module(f"{__name__}.{info.name}")
    return MappingProxyType({
        name: ProcessorEntry(name, cls.__module__, cls.n_inputs == 0)
        for name, cls in sorted(PROCESSORS.items()) if cls.__module__.startswith(__name__ + ".")
    })


def _exports(synths: bool | None = None) -> dict[str, str]:
    return {e.name: e.module for e in discover().values()
            if synths is None or e.is_synth == synths}


def close_matches(name: str, n: int = 3) -> list[str]:
    """Known processor names that look like ``name`` (for error messages), case-insensitive:
    the names containing it, else :mod:`difflib`'s close matches."""
    known = sorted(set(discover()) | set(PROCESSORS))
    lower = {k.lower(): k for k in known}
    q = str(name).lower()
    hits = sorted((k for k in lower if len(q) >= 2 and q in k), key=len)
    if not hits:
        hits = difflib.get_close_matches(q, list(lower), n=n, cutoff=0.6)
    return [lower[h] for h in hits[:n]]


def unknown_processor(name) -> UnknownProcessorError:
    """The error for an unknown processor type ``name``: one line naming close matches."""
    if not isinstance(name, str) or not name:
        return UnknownProcessorError(
            f"a processor needs a type name (a string such as 'Harmonic'), got {name!r}; "
            "'ddsp processors' lists them")
    near = close_matches(name)
    if near:
        hint = f"did you mean {' or '.join(near)}? ('ddsp processors' lists all)"
    else:
        hint = f"known: {', '.join(sorted(set(discover()) | set(PROCESSORS)))}"
    return UnknownProcessorError(f"unknown processor type {name!r}; {hint}")


def load_processor_class(name: str) -> type[Processor]:
    """The processor class called ``name``, importing its module on first use.

    Classes registered elsewhere (defined in a user's module or a test) are found too, once
    their module has been imported. Unknown names raise :class:`UnknownProcessorError` (a
    ``ValueError``) naming close matches.
    """
    if isinstance(name, str) and name in PROCESSORS:
        return PROCESSORS[name]
    entry = discover().get(name) if isinstance(name, str) else None
    if entry is None:
        raise unknown_processor(name)
    importlib.import_module(entry.module)
    if name not in PROCESSORS:  # pragma: no cover - the scan and the registry disagree
        raise ImportError(f"{entry.module} was expected to define processor {name!r}")
    return PROCESSORS[name]


def processor_from_dict(d: Mapping) -> Processor:
    """Build a processor from ``{"type": ClassName, **config}`` (the inverse of
    ``{"type": type(p).__name__, **p.config()}``).

    Raises:
        InvalidInputError: ``d`` is not a mapping, or its keywords do not fit the class's
            constructor (names or simple types; the message lists its arguments).
        UnknownProcessorError: no processor of that type (the message names close matches).
    """
    if not isinstance(d, Mapping):
        raise InvalidInputError(
            "a processor is described by a mapping {type: ClassName, **constructor keywords}, "
            f"e.g. {{type: Harmonic, n_harmonics: 60}}; got a {type(d).__name__}: {d!r:.80}")
    d = dict(d)
    kind = d.pop("type", None)
    return load_processor_class(kind)(**d)  # the constructor checks its keywords (see base)


def all_processor_classes() -> dict[str, type[Processor]]:
    """Every registered processor class by name, sorted: imports every processor module of
    this package; classes defined elsewhere are included once their module is imported."""
    for module in sorted({e.module for e in discover().values()}):
        importlib.import_module(module)
    return dict(sorted(PROCESSORS.items()))


def __getattr__(name: str):
    if name == "SYNTHS":  # read-only views derived from the scan: name -> module
        return MappingProxyType(_exports(True))
    if name == "EFFECTS":
        return MappingProxyType(_exports(False))
    if name in discover():
        return load_processor_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), "SYNTHS", "EFFECTS", *discover()})


__all__ = ["Param", "State", "Processor", "PROCESSORS", "processor_from_dict",
           "load_processor_class", "all_processor_classes", "discover", "ProcessorEntry",
           "UnknownProcessorError"]
