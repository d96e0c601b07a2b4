"""Lazy re-exports: ``name -> module`` maps resolved on first attribute access.

Used by the public namespaces (``ddsp_models.synths``, ``ddsp_models.effects``, ...) so that
importing one layer does not import every processor module.
"""

from __future__ import annotations

import importlib
from typing import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable, Callable]:
    """Return ``(__getattr__, __dir__)`` for a module exposing ``exports`` lazily.

    ``exports`` maps a public name to the absolute module path that defines it.
    """

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    def __dir__():
        return sorted(exports)

    return __getattr__, __dir__
