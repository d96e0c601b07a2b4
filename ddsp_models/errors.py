"""The one exception base of ddsp-models.

:class:`DDSPError` marks an error **the user can fix**: a missing or corrupt file, an unknown
model or processor name, an invalid graph or recipe, an option out of range, data that does not
match the model. Its message is one line (or one sentence) that names the problem — the file,
option or value at fault — and says how to fix it.

Raise a subclass of it for every user-facing error. A subclass usually also derives from the
built-in type callers already catch, so ``except ValueError`` keeps working::

    class GraphError(DDSPError, ValueError): ...

Do **not** use it for bugs (a broken invariant inside the library, an unexpected shape between
two internal functions): those stay plain ``RuntimeError``/``AssertionError`` and keep their
traceback.

The ``ddsp`` command relies on this: :func:`ddsp_models.cli.main` prints a ``DDSPError`` as
``ddsp COMMAND: error: MESSAGE`` on stderr and exits with status 2, never with a traceback.

This module imports nothing from the package, so every layer may import it.
"""

from __future__ import annotations

__all__ = ["DDSPError", "ModelLoadError", "DatasetError", "InvalidInputError", "one_line"]


class DDSPError(Exception):
    """An error the user can fix; the message names the problem and the fix (see module)."""


class ModelLoadError(DDSPError, ValueError):
    """A model folder or checkpoint that is missing, incomplete or corrupt."""


class DatasetError(DDSPError, ValueError):
    """A prepared dataset (``ddsp prepare`` output) that is missing, incomplete or corrupt, or
    recordings from which no dataset can be made."""


class InvalidInputError(DDSPError, ValueError):
    """A value given by the user (an option, a rate, a size) that cannot be used."""


def one_line(err: BaseException) -> str:
    """``err``'s message on one line (whitespace collapsed); the type name if it is empty."""
    return " ".join(str(err).split()) or type(err).__name__
