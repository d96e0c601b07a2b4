"""``ddsp processors``: list the available synths and effects with their declared parameters."""

from __future__ import annotations

import argparse


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "processors",
        help="list synths and effects and the parameters a decoder must predict for each",
        description="List every processor with its declared parameters (name, size, unit, "
        "time-varying or static, external control or predicted).",
    )
    p.add_argument("name", nargs="?", help="show only this processor (e.g. Harmonic)")
    return p


def describe(cls) -> str:
    """One block of text describing a processor class built with its default arguments."""
    proc = None
    for kwargs in ({}, {"sample_rate": 16000}):
        try:
            proc = cls(**kwargs)
            break
        except TypeError:
            continue
    if proc is None:
        doc = (cls.__doc__ or "").strip().splitlines()
        first = doc[0] if doc else ""
        return f"{cls.__name__}: container, built from child processors. {first}".rstrip()
    lines = [f"{cls.__name__}({', '.join(f'{k}={v!r}' for k, v in proc.config().items())})"]
    doc = (cls.__doc__ or "").strip().splitlines()
    if doc:
        lines.append(f"    {doc[0]}")
    for spec in proc.param_specs():
        kind = "external" if spec.external else type(spec.scaling).__name__
        tv = "time-varying" if spec.time_varying else "static"
        lines.append(f"    - {spec.name} [{spec.size}] {spec.unit or ''} ({tv}, {kind}) {spec.doc}")
    return "\n".join(lines)


def run(args) -> int:
    from ..processors import EFFECTS, SYNTHS, load_processor_class

    for title, names in (("Synths", SYNTHS), ("Effects", EFFECTS)):
        shown = [n for n in names if args.name in (None, n)]
        if not shown:
            continue
        print(f"{title}:")
        for name in shown:
            try:
                cls = load_processor_class(name)
            except ImportError as e:
                print(f"  {name}: not available ({e})")
                continue
            print("  " + describe(cls).replace("\n", "\n  "))
    return 0
