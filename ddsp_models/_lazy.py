"""Lazy re-exports: ``name -> module`` maps resolved on first attribute access.

Used by the public namespaces (``ddsp_models.synths``, ``ddsp_models.effects``, ...) so that
importing one layer does not import every processor module.
"""

from __future__ import annotations

import importlib
from typing import Callable, Mapping, Union

Exports = Union[Mapping[str, str], Callable[[], Mapping[str, str]]]


def lazy_exports(package: str, exports: Exports) -> tuple[Callable, Callable]:
    """Return ``(__getattr__, __dir__)`` for a module exposing ``exports`` lazily.

    ``exports`` maps a public name to the absolute module path that defines it, or is a
    function returning that map (called on first use, so that finding the names costs nothing
    at import). A module that defines no ``__all__`` gets ``sorted(exports)`` as its
    ``__all__`` (``from package import *`` works).
    """

    def names() -> Mapping[str, str]:
        return exports() if callable(exports) else exports

    def __getattr__(name: str):
        if name == "__all__":
            return sorted(names())
        module = names().get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__():
        return sorted(names())

    return __getattr__, __dir__
