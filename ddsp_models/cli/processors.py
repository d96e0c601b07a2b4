"""``ddsp processors``: list the registered synths and effects, or describe one.

``ddsp processors`` lists every registered processor (the package's, and any a user module has
defined and registered in this process); ``ddsp processors NAME`` describes one: constructor,
declared parameters (size, unit, scaling, time-varying or static, external or predicted),
declared state and latency. ``--write-docs`` regenerates the processor tables of the docs
(see :mod:`ddsp_models.docs_tables`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import InvalidInputError


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "processors",
        help="list synths and effects; describe one's parameters, state and latency",
        description="List every registered processor, or describe one: its declared parameters "
        "(name, size, unit, scaling, time-varying or static, external control or predicted), "
        "the state it carries from block to block, and its latency in frames.",
    )
    p.add_argument("name", nargs="?", help="describe only this processor (e.g. Harmonic)")
    p.add_argument("--config", metavar="JSON", default=None,
                   help="constructor keywords for NAME as JSON, e.g. '{\"kind\": \"peaking\"}' "
                        "(default: its defaults)")
    p.add_argument("--write-docs", nargs="?", const="", default=None, metavar="ROOT",
                   help="regenerate the processor tables in README.md and docs/*.md under ROOT "
                        "(default: the source checkout) and exit")
    p.add_argument("--check-docs", nargs="?", const="", default=None, metavar="ROOT",
                   help="exit 1 if the processor tables under ROOT are stale")
    return p


def _config_error(message: str) -> InvalidInputError:
    return InvalidInputError(message)


def describe(cls, config: dict | None = None) -> str:
    """A block of text describing processor class ``cls`` (built with ``config``, else with
    its defaults or first example): parameters, state, latency."""
    from ..docs_tables import latency_of, processor_info, scaling_text

    if config is not None:
        try:
            proc = cls(**config)
        except (TypeError, ValueError) as e:
            raise _config_error(f"{cls.__name__}(**{config}) failed: {e}") from e
        info = processor_info(cls)
        info.example, info.built = dict(config), True
        info.params, info.state = list(proc.param_specs()), list(proc.state_specs())
        info.latency, info.latency_text = latency_of(proc)
    else:
        info = processor_info(cls)
    lines = [f"{info.name} ({info.kind}, {info.module})"]
    if info.doc:
        lines.append(f"  {info.doc.replace('``', '`')}")
    lines.append(f"  constructor: {info.signature}")
    if not info.built:
        lines.append(f"  needs arguments to build ({info.build_error}); pass --config JSON")
        return "\n".join(lines)
    if info.example:
        shown = ", ".join(f"{k}={v!r}" for k, v in info.example.items())
        lines.append(f"  declarations of {info.name}({shown}):")
    else:
        lines.append("  declarations with the defaults:")
    lines.append("  parameters:" if info.params else "  parameters: none")
    for p in info.params:
        source = "external control" if p.external else f"predicted, {scaling_text(p.scaling)}"
        varies = "time-varying (B, T, %d)" % p.size if p.time_varying else "static (B, %d)" % p.size
        unit = f" {p.unit}" if p.unit else ""
        doc = f": {p.doc}" if p.doc else ""
        lines.append(f"    {p.name} [{p.size}]{unit}, {varies}, {source}{doc}")
    lines.append("  state:" if info.state else "  state: none")
    for s in info.state:
        lines.append(f"    {s.name}" + (f": {s.doc}" if s.doc else ""))
    lines.append(f"  latency: {info.latency_text}")
    return "\n".join(lines)


def listing(classes) -> str:
    """One line per processor, synths then effects: name, parameter names, summary."""
    from ..docs_tables import _doc_paragraph, _first_sentence

    out = []
    groups = (("Synths", [c for c in classes.values() if c.n_inputs == 0]),
              ("Effects", [c for c in classes.values() if c.n_inputs != 0]))
    width = max((len(n) for n in classes), default=0)
    for title, group in groups:
        if not group:
            continue
        out.append(f"{title}:")
        for cls in sorted(group, key=lambda c: c.__name__.lower()):
            summary = _first_sentence(_doc_paragraph(cls)).replace("``", "`")
            if len(summary) > 100:
                summary = summary[:99].rstrip() + "…"
            out.append(f"  {cls.__name__:<{width}}  {summary}")
    out.append("'ddsp processors NAME' describes one: parameters, state and latency.")
    return "\n".join(out)


def _root(value: str) -> Path:
    from ..docs_tables import default_root

    return Path(value) if value else default_root()


def run(args) -> int:
    from ..processors import all_processor_classes, load_processor_class

    if args.write_docs is not None or args.check_docs is not None:
        from ..docs_tables import stale_docs, write_docs

        if args.check_docs is not None:
            stale = stale_docs(_root(args.check_docs))
            for f in stale:
                print(f"stale: {f} (run 'ddsp processors --write-docs')")
            return 1 if stale else 0
        for f in write_docs(_root(args.write_docs)):
            print(f"wrote {f}")
        return 0
    config = None
    if args.config is not None:
        if args.name is None:
            raise _config_error("--config needs a processor NAME")
        try:
            config = json.loads(args.config)
        except json.JSONDecodeError as e:
            raise _config_error(
                f"--config is not valid JSON ({e}); e.g. '{{\"kind\": \"peaking\"}}'") from e
        if not isinstance(config, dict):
            raise _config_error(f"--config must be a JSON object of keywords, got {args.config!r}")
    if args.name is None:
        print(listing(all_processor_classes()))
        return 0
    cls = load_processor_class(args.name)  # unknown: a one-line error naming close matches
    print(describe(cls, config))
    sys.stdout.flush()
    return 0
