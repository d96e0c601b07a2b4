"""The ``ddsp`` command.

Each subcommand lives in its own module of this package and provides
``add_parser(subparsers) -> argparse.ArgumentParser`` and ``run(args) -> int``.
A subcommand may instead define ``main(argv) -> int`` to parse its own arguments
(``ddsp train`` hands its arguments to LightningCLI).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__

#: subcommand -> module (relative to this package), in the order ``--help`` lists them.
SUBCOMMANDS: dict[str, str] = {
    "prepare": "prepare",
    "train": "train",
    "evaluate": "evaluate",
    "transfer": "transfer",
    "export": "export",
    "processors": "processors",
}


def _load(name: str):
    try:
        return importlib.import_module(f"{__name__}.{SUBCOMMANDS[name]}")
    except ModuleNotFoundError as e:  # a subcommand not built yet
        if e.name == f"{__name__}.{SUBCOMMANDS[name]}":
            return None
        raise


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``ddsp`` parser; with ``only`` set, just that subcommand is imported (fast start-up)."""
    parser = argparse.ArgumentParser(
        prog="ddsp",
        description="Differentiable DSP autoencoders: prepare data, train, transfer timbre, export.",
        epilog="Run 'ddsp COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"ddsp-models {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        if only is not None and name != only:
            continue
        module = _load(name)
        if module is None:
            continue
        if hasattr(module, "add_parser"):
            p = module.add_parser(sub)
            p.set_defaults(_run=module.run)
        else:  # the module parses its own arguments
            sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0], add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        module = _load(argv[0])
        if module is not None and hasattr(module, "main") and not hasattr(module, "add_parser"):
            return int(module.main(argv[1:]) or 0)
    parser = build_parser(only=argv[0] if argv and argv[0] in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    return int(args._run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
