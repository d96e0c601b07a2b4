"""Processor tables in the docs, generated from the processors' declarations.

Every processor declares its parameters (:meth:`~ddsp_models.processors.Processor.param_specs`),
its state (:meth:`~ddsp_models.processors.Processor.state_specs`) and its look-ahead
(:meth:`~ddsp_models.processors.Processor.latency_frames`). This module renders them as
Markdown between marker comments in ``README.md`` and ``docs/*.md``::

    <!-- processors:begin modules=biquad,svf -->
    ... generated, do not edit ...
    <!-- processors:end -->

Words after ``processors:begin`` choose what a section shows:

* ``modules=a,b`` — the processors of ``ddsp_models.processors.a`` and ``.b``;
* ``names=A,B`` — these processors;
* ``kind=synth`` / ``kind=effect`` — only synths / only effects;
* ``rest`` — every processor no other (non-``rest``) detailed section of the docs shows, so
  a new processor module is documented without touching any docs file;
* ``style=detail`` (default: one block per processor: constructor, parameter table, state
  table, latency) or ``style=summary`` (one row per processor, linked to its detailed
  section). No selection word selects every processor.

Only the processors of :mod:`ddsp_models.processors` are documented (classes registered by
user code or tests are not). Regenerate with ``python3 -m ddsp_models.docs_tables`` (or
``ddsp processors --write-docs``); ``--check`` exits 1 when the committed docs are stale,
which ``tests/test_docs_tables.py`` checks too.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

__all__ = [
    "ProcessorInfo", "processor_info", "example_instance", "scaling_text", "render_section",
    "render_docs", "write_docs", "stale_docs", "doc_files", "main",
]

BEGIN = "<!-- processors:begin"
END = "<!-- processors:end -->"
_SECTION = re.compile(
    r"(<!-- processors:begin(?P<args>[^>]*?)-->)(?P<body>.*?)(<!-- processors:end -->)", re.DOTALL)
_NOTE = ("<!-- generated from the processors' declarations by "
         "`python3 -m ddsp_models.docs_tables`; do not edit by hand -->")
#: sample rate given to processors whose constructor needs one (the package default).
SAMPLE_RATE = 16000


# ---------------------------------------------------------------------------- declarations
@dataclass
class ProcessorInfo:
    """What the docs and ``ddsp processors NAME`` say about one processor class."""

    name: str
    module: str
    kind: str  # "synth" or "effect"
    summary: str  # first sentence of the class docstring
    doc: str  # first paragraph of the class docstring
    signature: str  # ``Name(arg=default, ...)``
    example: dict[str, Any]  # constructor keywords of the instance described ({} = defaults)
    built: bool  # False: the constructor failed (e.g. a container without children)
    build_error: str = ""
    params: list = field(default_factory=list)  # Param declarations of the instance
    state: list = field(default_factory=list)  # State declarations of the instance
    latency: int | None = None
    #: how the latency reads in the docs: "1 frame", or "2 frames at hop 64 (depends on the hop)"
    latency_text: str = ""


def _doc_paragraph(cls) -> str:
    doc = inspect.getdoc(cls) or ""
    if cls.__doc__ is None:  # inherited docstrings describe the parent, not this class
        return ""
    return " ".join(doc.split("\n\n")[0].split())


def _first_sentence(text: str) -> str:
    m = re.search(r"(?<=[.!?])\s+(?=[A-Z`(])", text)
    return text[: m.start()] if m else text


def signature_text(cls) -> str:
    """``Name(arg=default, ...)`` from the constructor (no annotations)."""
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):  # pragma: no cover
        return f"{cls.__name__}(...)"
    parts = []
    for p in list(sig.parameters.values())[1:]:
        if p.kind is p.VAR_POSITIONAL:
            parts.append(f"*{p.name}")
        elif p.kind is p.VAR_KEYWORD:
            parts.append(f"**{p.name}")
        elif p.default is p.empty:
            parts.append(p.name)
        else:
            parts.append(f"{p.name}={p.default!r}")
    return f"{cls.__name__}({', '.join(parts)})"


def example_instance(cls) -> tuple[Any, dict[str, Any], str]:
    """``(instance or None, keywords, error)``: the class built with its defaults (with
    ``sample_rate`` added where it is required), else from its first ``examples()`` entry
    (containers: their children)."""
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):  # pragma: no cover
        params = {}
    sr = params.get("sample_rate")
    needs_sr = sr is not None and sr.default is sr.empty
    attempts: list[dict[str, Any]] = [{"sample_rate": SAMPLE_RATE} if needs_sr else {}]
    try:
        attempts += [dict(e) for e in cls.examples()[:1]]
    except Exception:  # noqa: BLE001 - a broken examples() leaves the defaults
        pass
    error = ""
    for kwargs in attempts:
        if needs_sr:
            kwargs.setdefault("sample_rate", SAMPLE_RATE)
        try:
            return cls(**kwargs), kwargs, ""
        except Exception as e:  # noqa: BLE001 - e.g. a container needs its children
            error = error or f"{type(e).__name__}: {e}"
    return None, attempts[0], error


def processor_info(cls) -> ProcessorInfo:
    """The declarations of ``cls`` as built by :func:`example_instance`."""
    proc, kwargs, error = example_instance(cls)
    doc = _doc_paragraph(cls)
    info = ProcessorInfo(
        name=cls.__name__, module=cls.__module__,
        kind="synth" if getattr(cls, "n_inputs", 0) == 0 else "effect",
        summary=_first_sentence(doc), doc=doc, signature=signature_text(cls), example=kwargs,
        built=proc is not None, build_error=error,
    )
    if proc is not None:
        info.params = list(proc.param_specs())
        info.state = list(proc.state_specs())
        info.latency, info.latency_text = latency_of(proc)
    return info


#: hop at which latencies that depend on the hop are shown: 16 kHz at 250 frames/s (DDSP's).
DOCS_HOP = 64
#: a second hop, to tell whether a processor's latency depends on the hop.
_OTHER_HOP = 160


def _latency_at(proc, hop: int) -> int:
    try:
        takes_hop = bool(inspect.signature(proc.latency_frames).parameters)
    except (TypeError, ValueError):  # pragma: no cover
        takes_hop = True
    return int(proc.latency_frames(hop) if takes_hop else proc.latency_frames())


def latency_of(proc, hop: int = DOCS_HOP) -> tuple[int, str]:
    """``(frames, text)``: ``proc.latency_frames`` at ``hop`` samples per frame; the text says
    "at hop N (depends on the hop)" where another hop gives another latency."""
    n = _latency_at(proc, hop)
    if _latency_at(proc, _OTHER_HOP) == n:
        return n, _plural(n, "frame")
    return n, f"{_plural(n, 'frame')} at hop {hop} (depends on the hop)"


def _num(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return repr(v)
    return f"{v:g}"


def scaling_text(scaling) -> str:
    """A short, stable description of a :class:`~ddsp_models.core.scaling.Scaling`: its class
    name, the range ``[low, high]`` where it has one, and the fields that differ from the
    class's defaults."""
    name = type(scaling).__name__
    try:
        fields = dict(scaling.to_dict())
    except Exception:  # noqa: BLE001 - not serialisable: the class name alone
        return name
    fields.pop("kind", None)
    try:
        defaults = dict(type(scaling)().to_dict())
    except Exception:  # noqa: BLE001 - no default instance
        defaults = {}
    text = name
    if "low" in fields and "high" in fields:
        text += f" [{_num(fields.pop('low'))}, {_num(fields.pop('high'))}]"
    extra = [f"{k}={_num(v)}" for k, v in fields.items() if defaults.get(k, object()) != v]
    return text + (f"({', '.join(extra)})" if extra else "")


# ---------------------------------------------------------------------------- markdown
def _cell(text: Any) -> str:
    """A Markdown table cell: RST ``literals`` as `code`, pipes escaped, one line."""
    s = " ".join(str(text).replace("``", "`").split())
    return s.replace("|", "\\|") if s else "—"


def _kwargs_text(name: str, kwargs: Mapping[str, Any]) -> str:
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def render_detail(info: ProcessorInfo) -> str:
    """One processor: heading line, constructor, parameter table, state table, latency."""
    lines = [f"**`{info.name}`** ({info.kind}) — {_cell(info.doc)}", ""]
    lines.append(f"Constructor: `{info.signature}`.")
    if not info.built:
        lines += ["", f"Its declarations depend on its arguments (`ddsp processors {info.name} "
                      f"--config JSON` prints them for a configuration).", ""]
        return "\n".join(lines)
    shown = (f"declared by `{_kwargs_text(info.name, info.example)}`" if info.example
             else "declared with the defaults")
    lines.append(f"Parameters and state {shown}; latency {info.latency_text}.")
    lines.append("")
    if info.params:
        lines += ["| parameter | size | unit | scaling | time-varying | external | what |",
                  "|---|---|---|---|---|---|---|"]
        for p in info.params:
            scaling = "— (passed through)" if p.external else scaling_text(p.scaling)
            lines.append(
                f"| `{p.name}` | {p.size} | {_cell(p.unit)} | {_cell(scaling)} | "
                f"{'yes' if p.time_varying else 'no (static)'} | "
                f"{'yes' if p.external else 'no'} | {_cell(p.doc)} |")
    else:
        lines.append("No parameters.")
    lines.append("")
    if info.state:
        lines += ["| state | what |", "|---|---|"]
        lines += [f"| `{s.name}` | {_cell(s.doc)} |" for s in info.state]
    else:
        lines.append("No state carried between blocks.")
    lines.append("")
    return "\n".join(lines)


def render_summary(infos: Sequence[ProcessorInfo], links: Mapping[str, str]) -> str:
    """One row per processor: kind, summary, parameter and state names, latency, docs link."""
    lines = ["| processor | kind | what | parameters | state | latency (frames) | docs |",
             "|---|---|---|---|---|---|---|"]
    for info in infos:
        if info.built:
            params = ", ".join(f"`{p.name}`" + (" (external)" if p.external else "")
                               for p in info.params) or "—"
            state = ", ".join(f"`{s.name}`" for s in info.state) or "—"
            latency = str(info.latency) + ("" if info.latency_text.endswith("frame") or
                                           info.latency_text.endswith("frames")
                                           else f" at hop {DOCS_HOP}")
        else:
            params = state = latency = "see `ddsp processors " + info.name + "`"
        link = links.get(info.name, "")
        lines.append(f"| `{info.name}` | {info.kind} | {_cell(info.summary)} | {params} | "
                     f"{state} | {latency} | {link or '—'} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class _Args:
    modules: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    kind: str | None = None
    rest: bool = False
    style: str = "detail"


def _parse_args(text: str, where: str) -> _Args:
    kw: dict[str, Any] = {}
    for word in text.split():
        key, _, value = word.partition("=")
        if key in ("modules", "names"):
            kw[key] = tuple(v for v in value.split(",") if v)
        elif key == "kind" and value in ("synth", "effect"):
            kw["kind"] = value
        elif key == "style" and value in ("detail", "summary"):
            kw["style"] = value
        elif word == "rest":
            kw["rest"] = True
        else:
            raise ValueError(f"{where}: unknown word {word!r} in '{BEGIN} ... -->' (expected "
                             "modules=, names=, kind=synth|effect, rest, style=detail|summary)")
    return _Args(**kw)


def _package_infos() -> dict[str, ProcessorInfo]:
    """Info for every processor of the package (not classes registered by user code)."""
    import importlib

    from .processors import discover

    # The class from its own module: a class of the same name registered later by user code
    # (a test, a notebook) does not change the docs.
    infos = [processor_info(getattr(importlib.import_module(e.module), name))
             for name, e in discover().items()]
    infos.sort(key=lambda i: (i.kind != "synth", i.name.lower()))
    return {i.name: i for i in infos}


def _select(args: _Args, infos: Mapping[str, ProcessorInfo], claimed: set[str],
            where: str) -> list[ProcessorInfo]:
    unknown = [n for n in args.names if n not in infos]
    if unknown:
        raise ValueError(f"{where}: no processors {unknown} in ddsp_models.processors")
    known_modules = {i.module.rsplit(".", 1)[-1] for i in infos.values()}
    bad = [m for m in args.modules if m not in known_modules]
    if bad:
        raise ValueError(f"{where}: no processor modules {bad} in ddsp_models.processors")
    out = []
    for name, info in infos.items():
        if args.names and name not in args.names:
            continue
        if args.modules and info.module.rsplit(".", 1)[-1] not in args.modules:
            continue
        if args.kind and info.kind != args.kind:
            continue
        if args.rest and name in claimed:
            continue
        out.append(info)
    if args.names:  # the order given
        out.sort(key=lambda i: args.names.index(i.name))
    return out


def render_section(args_text: str, infos: Mapping[str, ProcessorInfo] | None = None,
                   claimed: Iterable[str] = (), links: Mapping[str, str] | None = None,
                   where: str = "<section>") -> str:
    """The generated body of one marked section (between the two marker lines)."""
    infos = _package_infos() if infos is None else infos
    args = _parse_args(args_text, where)
    chosen = _select(args, infos, set(claimed), where)
    if args.style == "summary":
        body = render_summary(chosen, links or {})
    else:
        empty = ("None: every processor has a section of its own." if args.rest
                 else "No processors.")
        body = "\n".join(render_detail(i) for i in chosen) if chosen else empty
    return f"\n{_NOTE}\n\n{body.rstrip()}\n\n"


def doc_files(root: str | Path) -> list[Path]:
    """``README.md`` and ``docs/*.md`` under ``root`` that hold marked sections."""
    root = Path(root)
    files = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    return [f for f in files if f.is_file() and BEGIN in f.read_text(encoding="utf-8")]


def render_docs(root: str | Path) -> dict[Path, str]:
    """``{file: new text}`` for every doc file under ``root`` with marked sections."""
    root = Path(root)
    infos = _package_infos()
    texts = {f: f.read_text(encoding="utf-8") for f in doc_files(root)}
    # Where each processor is shown in detail (for ``rest`` and the summary links).
    claimed: set[str] = set()
    detail_home: dict[str, Path] = {}
    parsed: dict[Path, list[tuple[_Args, str]]] = {}
    for f, text in texts.items():
        for m in _SECTION.finditer(text):
            args = _parse_args(m["args"], str(f))
            parsed.setdefault(f, []).append((args, m["args"]))
            if args.style == "detail" and not args.rest:
                for info in _select(args, infos, set(), str(f)):
                    claimed.add(info.name)
                    detail_home.setdefault(info.name, f)
    for f, items in parsed.items():
        for args, _ in items:
            if args.style == "detail" and args.rest:
                for info in _select(args, infos, claimed, str(f)):
                    detail_home.setdefault(info.name, f)
    out: dict[Path, str] = {}
    for f, text in texts.items():
        links = {}
        for name, home in detail_home.items():
            rel = Path(_relpath(home, f.parent))
            links[name] = f"[{home.stem}]({rel.as_posix()})"

        def replace(m: re.Match, f=f, links=links) -> str:
            body = render_section(m["args"], infos, claimed, links, where=str(f))
            return f"{m.group(1)}{body}{m.group(4)}"

        out[f] = _SECTION.sub(replace, text)
    return out


def _relpath(target: Path, start: Path) -> str:
    import os

    return os.path.relpath(target, start)


def stale_docs(root: str | Path) -> list[Path]:
    """Doc files whose generated sections differ from the declarations."""
    return [f for f, new in render_docs(root).items() if f.read_text(encoding="utf-8") != new]


def write_docs(root: str | Path) -> list[Path]:
    """Regenerate every marked section under ``root``; return the files that changed."""
    changed = []
    for f, new in render_docs(root).items():
        if f.read_text(encoding="utf-8") != new:
            f.write_text(new, encoding="utf-8")
            changed.append(f)
    return changed


def default_root() -> Path:
    """The source checkout holding this package (its ``README.md`` and ``docs/``), else the
    current directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "docs").is_dir() else Path.cwd()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m ddsp_models.docs_tables",
        description="Regenerate the processor tables in README.md and docs/*.md from the "
                    "processors' declarations (parameters, state, latency).")
    parser.add_argument("--root", type=Path, default=None,
                        help="folder holding README.md and docs/ (default: the source checkout)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a file is stale")
    args = parser.parse_args(argv)
    root = args.root or default_root()
    if args.check:
        stale = stale_docs(root)
        for f in stale:
            print(f"stale: {f} (run python3 -m ddsp_models.docs_tables)")
        return 1 if stale else 0
    changed = write_docs(root)
    for f in changed:
        print(f"wrote {f}")
    if not changed:
        print(f"up to date: {', '.join(str(f) for f in doc_files(root)) or 'no marked sections'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
