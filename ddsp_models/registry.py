"""Finding models by name: ``--model violin`` → ``checkpoints/violin/``.

A *model folder* holds ``model.safetensors`` + ``config.yaml`` (and usually ``stats.json`` and
a model card ``README.md``; see ``checkpoints/README.md``). Names are looked up, in order, in

1. the ``search_path`` argument (a list of folders), if given;
2. the folders listed in the environment variable ``DDSP_MODELS_PATH`` (separated by
   ``os.pathsep``, ``:`` on Linux/macOS);
3. the repository's ``checkpoints/`` folder.

Each folder of the search path holds one sub-folder per model. :func:`resolve_model` also
accepts a path (a model folder or a Lightning ``.ckpt`` file) and returns it unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

__all__ = ["ENV_VAR", "UnknownModelError", "search_path", "available_models", "resolve_model",
           "load_model"]

ENV_VAR = "DDSP_MODELS_PATH"
#: The repository's folder of shipped models.
CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
_MARKERS = ("model.safetensors", "config.yaml")


class UnknownModelError(LookupError):
    """No model of that name on the search path (the message lists the available ones)."""


def search_path(extra: Sequence[str | os.PathLike] | None = None) -> list[Path]:
    """Folders searched for model names, in order (see the module docstring)."""
    dirs: list[Path] = [Path(p) for p in (extra or [])]
    env = os.environ.get(ENV_VAR, "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p.strip()]
    dirs.append(CHECKPOINTS)
    seen, out = set(), []
    for d in dirs:
        key = str(d.expanduser().resolve())
        if key not in seen:
            seen.add(key)
            out.append(d.expanduser())
    return out


def _is_model_dir(d: Path) -> bool:
    return d.is_dir() and all((d / m).is_file() for m in _MARKERS)


def available_models(extra: Sequence[str | os.PathLike] | None = None) -> dict[str, Path]:
    """``{name: folder}`` of every model on the search path (the first of a name wins)."""
    found: dict[str, Path] = {}
    for root in search_path(extra):
        if not root.is_dir():
            continue
        for d in sorted(root.iterdir()):
            if d.name not in found and _is_model_dir(d):
                found[d.name] = d
    return found


def resolve_model(name_or_path: str | os.PathLike,
                  extra: Sequence[str | os.PathLike] | None = None) -> Path:
    """A model folder or ``.ckpt`` path for a shipped name or a path.

    Raises:
        UnknownModelError: neither an existing path nor a known name; the message lists the
            available names and where they were searched.
    """
    p = Path(name_or_path).expanduser()
    if p.is_file() or _is_model_dir(p):
        return p
    if p.is_dir():
        raise UnknownModelError(
            f"{str(p)!r} is a folder but not a model: it needs {' and '.join(_MARKERS)} "
            "(write one with Autoencoder.save_pretrained)")
    name = str(name_or_path)
    models = available_models(extra)
    if name in models:
        return models[name]
    listed = ", ".join(sorted(models)) if models else "none"
    where = ", ".join(str(d) for d in search_path(extra))
    raise UnknownModelError(
        f"unknown model {name!r}: not a file or model folder, and no model of that name in "
        f"{where}. Available models: {listed}. Pass a model folder or .ckpt path, or add a "
        f"folder of models to ${ENV_VAR}.")


def load_model(name_or_path: str | os.PathLike, map_location: str = "cpu",
               extra: Sequence[str | os.PathLike] | None = None):
    """An :class:`~ddsp_models.nn.Autoencoder` (eval mode) from a shipped name or a path."""
    from .nn.autoencoder import load_model as _load

    return _load(resolve_model(name_or_path, extra), map_location=map_location)
