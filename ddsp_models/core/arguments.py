"""The one check of constructor keywords against a signature (recipes, configs, ``from_dict``).

A processor or model built from a YAML recipe, a model folder's ``config.yaml`` or a
``{"type": ..., **config}`` dict gets its keywords from a user. :func:`check_arguments` binds
them to the constructor's signature and checks each value against the annotation, so a wrong
name or type fails with one line naming the keyword, what was expected and the value, instead
of ``'<' not supported between instances of 'str' and 'int'`` or ``cannot convert float NaN to
integer`` deep inside.

Only the simple annotations are checked (written as strings under ``from __future__ import
annotations``): ``int`` (an integer, or a float with an integer value), ``float`` (a real
number), ``bool``, ``str``, ``None``, mappings (``dict``, ``Mapping[...]``) and sequences
(``list[...]``, ``Sequence[...]``, ``tuple[...]``), and unions of them (``X | None``,
``Optional[X]``). A parameter with any other annotation is not checked. Values are checked,
not converted: the constructor still does its own range checks.
"""

from __future__ import annotations

import difflib
import inspect
import numbers
from typing import Any, Callable, Mapping

from ..errors import InvalidInputError

__all__ = ["ArgumentError", "check_arguments", "expected_types"]


class ArgumentError(InvalidInputError, TypeError):
    """A keyword that a constructor does not take, or a value of the wrong type. Also a
    ``TypeError``, which a bad call raises without the check."""


def _is_int(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, numbers.Integral):
        return True
    return isinstance(v, numbers.Real) and float(v).is_integer()


def _is_numpy_bool(v: Any) -> bool:
    return type(v).__module__ == "numpy" and type(v).__name__ in ("bool", "bool_")


#: alternative (as written in an annotation) -> (test, words for the message)
_SIMPLE: dict[str, tuple[Callable[[Any], bool], str]] = {
    "int": (_is_int, "an integer"),
    "float": (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool), "a number"),
    "bool": (lambda v: isinstance(v, bool) or _is_numpy_bool(v)
             or (_is_int(v) and v in (0, 1)), "true or false"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "None": (lambda v: v is None, "null"),
}
_MAPPING = (lambda v: isinstance(v, Mapping), "a mapping")
_SEQUENCE = (lambda v: isinstance(v, (list, tuple)), "a list")
_MAPPING_HEADS = ("dict", "Dict", "Mapping")
_SEQUENCE_HEADS = ("list", "List", "Sequence", "tuple", "Tuple")


def _split_union(text: str) -> list[str]:
    """``"A | B[C | D] | None"`` → ``["A", "B[C | D]", "None"]`` (``Optional[X]`` → X, None)."""
    text = text.strip()
    if text.startswith("Optional[") and text.endswith("]"):
        return [*_split_union(text[len("Optional["):-1]), "None"]
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "["
        depth -= ch == "]"
        if ch == "|" and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def expected_types(annotation: Any) -> list[tuple[Callable[[Any], bool], str]] | None:
    """The checks an annotation stands for, or None where it is not a simple one."""
    if annotation is inspect.Parameter.empty:
        return None
    if not isinstance(annotation, str):
        annotation = getattr(annotation, "__name__", None) if isinstance(annotation, type) \
            else None
        if annotation is None:
            return None
    out = []
    for alt in _split_union(annotation):
        head = alt.split("[", 1)[0].strip()
        if alt in _SIMPLE:
            out.append(_SIMPLE[alt])
        elif head in _MAPPING_HEADS:
            out.append(_MAPPING)
        elif head in _SEQUENCE_HEADS:
            out.append(_SEQUENCE)
        else:
            return None  # a class or another type: not checked here
    return out


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def check_arguments(owner: str, func: Callable, args: tuple = (), kwargs: Mapping | None = None,
                    *, signature: inspect.Signature | None = None, complete: bool = True) -> None:
    """Raise :class:`ArgumentError` unless ``func(*args, **kwargs)`` binds and each value
    fits its simple annotation (see the module docstring).

    Args:
        owner: what is being built, for the message (``"Harmonic"``, ``"model.decoder"``).
        func: the constructor or function (for a class, its ``__init__`` without ``self``).
        args, kwargs: the arguments given.
        signature: ``inspect.signature(func)`` if already computed (a speed-up).
        complete: also require every argument without a default (False: the caller adds
            some itself, e.g. a decoder's ``n_out``).
    """
    sig = signature or inspect.signature(func)
    kwargs = dict(kwargs or {})
    bad_keys = [k for k in kwargs if not isinstance(k, str)]
    if bad_keys:
        raise ArgumentError(f"{owner}: keywords must be names, got {bad_keys}")
    try:
        bound = sig.bind_partial(*args, **kwargs)
    except TypeError as err:
        names = [n for n, p in sig.parameters.items()
                 if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and n != "self"]
        unknown = [k for k in kwargs if k not in sig.parameters]
        if unknown and not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            near = difflib.get_close_matches(unknown[0], names, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ArgumentError(
                f"{owner} takes no argument {unknown[0]!r}{hint}; its arguments: "
                f"{', '.join(names) or 'none'}") from None
        raise ArgumentError(f"{owner}: {err}; its arguments: {', '.join(names)}") from None
    missing = [n for n, p in sig.parameters.items()
               if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
               and n not in bound.arguments and n != "self"]
    if missing and complete:
        raise ArgumentError(f"{owner} needs {', '.join(map(repr, missing))}")
    for name, value in bound.arguments.items():
        param = sig.parameters[name]
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        checks = expected_types(param.annotation)
        if checks is None or any(test(value) for test, _ in checks):
            continue
        words = " or ".join(dict.fromkeys(w for _, w in checks))
        raise ArgumentError(f"{owner}: {name} must be {words}, got {_short(value)}")
