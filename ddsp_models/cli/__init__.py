"""The ``ddsp`` command.

Each subcommand lives in its own module of this package and provides
``add_parser(subparsers) -> argparse.ArgumentParser`` and ``run(args) -> int``.
A subcommand may instead define ``main(argv) -> int`` to parse its own arguments
(``ddsp train`` hands its arguments to LightningCLI).

Error policy (one, for every subcommand, applied by :func:`main`): a user error — any
:class:`~ddsp_models.errors.DDSPError`, or a missing / unreadable path the user named
(:data:`USER_ERRORS`) — prints ``ddsp COMMAND: error: MESSAGE`` as ONE line on stderr and
exits with status 2, never a traceback. Subcommands raise such errors and do not catch them;
Ctrl-C prints ``ddsp COMMAND: interrupted`` and exits 130. Anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import sys
from pathlib import Path

from .. import __version__
from ..errors import DDSPError, one_line

#: Exceptions that are the user's to fix (a message, exit status 2), not bugs (a traceback).
USER_ERRORS: tuple[type[BaseException], ...] = (
    DDSPError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError,
    FileExistsError,
)

#: subcommand -> module (relative to this package), in the order ``--help`` lists them.
SUBCOMMANDS: dict[str, str] = {
    "prepare": "prepare",
    "train": "train",
    "evaluate": "evaluate",
    "transfer": "transfer",
    "synth": "synth",
    "export": "export",
    "processors": "processors",
    "demo": "demo",
}


def _load(name: str):
    try:
        return importlib.import_module(f"{__name__}.{SUBCOMMANDS[name]}")
    except ModuleNotFoundError as e:  # a subcommand not built yet
        if e.name == f"{__name__}.{SUBCOMMANDS[name]}":
            return None
        raise


def _own_parser_help(name: str) -> str | None:
    """For a subcommand that parses its own arguments (defines ``main`` but no ``add_parser``):
    the first line of its docstring, read without importing it (``ddsp train`` would import
    Lightning just to list itself); ``None`` for an ordinary subcommand."""
    spec = importlib.util.find_spec(f"{__name__}.{SUBCOMMANDS[name]}")
    if spec is None or not spec.origin:
        return None
    tree = ast.parse(Path(spec.origin).read_text())
    defs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    if "add_parser" in defs or "main" not in defs:
        return None
    return (ast.get_docstring(tree) or name).strip().splitlines()[0]


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
        own = _own_parser_help(name)
        if own is not None:  # the module parses its own arguments
            sub.add_parser(name, help=own, add_help=False)
            continue
        module = _load(name)
        if module is None:
            continue
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
    return parser


def error_message(err: BaseException) -> str:
    """One line for a user error: an OS error as ``PATH: reason``, others their message."""
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return one_line(f"{err.filename}: {err.strerror}")
    return one_line(err)


def report_error(prog: str, err: BaseException, what: str | None = None) -> None:
    """Print ``PROG: error: [WHAT: ]MESSAGE`` on stderr (the policy's one line)."""
    where = f"{what}: " if what else ""
    print(f"{prog}: error: {where}{error_message(err)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run ``ddsp ARGV``; returns the exit status (2 for user errors, see the module)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    prog = f"ddsp {command}" if command else "ddsp"
    try:
        return _dispatch(argv, command)
    except USER_ERRORS as err:
        report_error(prog, err)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def _dispatch(argv: list[str], command: str | None) -> int:
    if command is not None:
        module = _load(command)
        if module is not None and hasattr(module, "main") and not hasattr(module, "add_parser"):
            return int(module.main(argv[1:]) or 0)
    parser = build_parser(only=command)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    return int(args._run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
