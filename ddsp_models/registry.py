"""Finding models by name: ``--model violin`` → ``checkpoints/violin/``.

A *model folder* holds ``model.safetensors`` + ``config.yaml`` (and usually ``stats.json`` and
a model card ``README.md``; see ``checkpoints/README.md``). Names are looked up, in order, in

1. the ``search_path`` argument (a list of folders), if given;
2. the folders listed in the environment variable ``DDSP_MODELS_PATH`` (separated by
   ``os.pathsep``, ``:`` on Linux/macOS);
3. the repository's ``checkpoints/`` folder.

Each folder of the search path holds one sub-folder per model. :func:`resolve_model` also
accepts a path (a model folder or a Lightning ``.ckpt`` file) and returns it unchanged; a file
of a model folder (``model.safetensors``, ``config.yaml``) stands for its folder; audio and
other files that cannot be a model are refused with the reason.

:func:`load_model` is THE model loader: every command (``transfer``, ``evaluate``, ``export``)
and :func:`ddsp_models.load_model` go through it. Every failure — an unknown name, a missing
path, a folder that is not a model, an empty or corrupt file, a ``config.yaml`` whose keys or
types do not fit (:mod:`ddsp_models.model_files`) — raises a
:class:`~ddsp_models.errors.DDSPError` whose one-line message names the problem and the fix.
torch is imported only when a model is actually loaded; Lightning never is (inference uses
the plain ``nn.Module`` :class:`~ddsp_models.nn.Autoencoder`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .errors import DDSPError

if TYPE_CHECKING:  # pragma: no cover
    from .nn.autoencoder import Autoencoder

__all__ = ["ENV_VAR", "UnknownModelError", "search_path", "available_models", "resolve_model",
           "load_model"]

ENV_VAR = "DDSP_MODELS_PATH"
#: The repository's folder of shipped models.
CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
_MARKERS = ("model.safetensors", "config.yaml")


#: Files that are audio, not models (a common slip: ``--model voice.wav``).
_AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".m4a", ".opus")
#: Files of a model folder that are not a model by themselves (``--model m/model.safetensors``).
_PART_SUFFIXES = (".safetensors", ".yaml", ".yml", ".json", ".md", ".txt")


class UnknownModelError(DDSPError, LookupError):
    """No model of that name or path (the message lists the available ones)."""


def _key(d: Path) -> str:
    try:
        return str(d.resolve())
    except (OSError, RuntimeError):  # a symlink loop: keep the entry, it simply holds nothing
        return str(d.absolute())


def search_path(extra: Sequence[str | os.PathLike] | None = None) -> list[Path]:
    """Folders searched for model names, in order (see the module docstring)."""
    dirs: list[Path] = [Path(p) for p in (extra or [])]
    env = os.environ.get(ENV_VAR, "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p.strip()]
    dirs.append(CHECKPOINTS)
    seen, out = set(), []
    for d in dirs:
        key = _key(d.expanduser())
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
        try:
            entries = sorted(root.iterdir()) if root.is_dir() else []
        except OSError:  # unreadable or looping entry of $DDSP_MODELS_PATH: skip it
            continue
        for d in entries:
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
    if p.is_file():
        if p.suffix.lower() in _AUDIO_SUFFIXES:
            raise UnknownModelError(
                f"{str(p)!r} is an audio file, not a model: pass a shipped model name, a model "
                "folder or a .ckpt (the audio to process is the INPUT argument)")
        if p.suffix.lower() in _PART_SUFFIXES:
            if _is_model_dir(p.parent):  # a file of a model folder: the folder is meant
                return p.parent
            raise UnknownModelError(
                f"{str(p)!r} is a {p.suffix} file, not a model: pass the model folder that "
                "holds model.safetensors and config.yaml together, a .ckpt or a shipped name")
        return p
    if _is_model_dir(p):
        return p
    if p.is_dir():
        lacks = [m for m in _MARKERS if not (p / m).is_file()]
        raise UnknownModelError(
            f"{str(p)!r} is a folder but not a model: it lacks {' and '.join(lacks)} "
            "(write one with Autoencoder.save_pretrained or 'ddsp train --export DIR')")
    name = str(name_or_path)
    models = available_models(extra)
    if name in models:
        return models[name]
    listed = ", ".join(sorted(models)) if models else "none"
    if os.sep in name or "/" in name or p.suffix in (".ckpt", ".safetensors", ".pt"):
        raise UnknownModelError(
            f"no model file or folder at {name!r}: check the path, or pass a shipped model "
            f"name (available: {listed})")
    where = ", ".join(str(d) for d in search_path(extra))
    raise UnknownModelError(
        f"unknown model {name!r}: not a file or model folder, and no model of that name in "
        f"{where}. Available models: {listed}. Pass a model folder or .ckpt path, or add a "
        f"folder of models to ${ENV_VAR}.")


def load_model(name_or_path: str | os.PathLike, map_location: str = "cpu",
               extra: Sequence[str | os.PathLike] | None = None) -> "Autoencoder":
    """An :class:`~ddsp_models.nn.Autoencoder` (eval mode) from a shipped name, a model folder
    or a Lightning ``.ckpt`` file: the one loader every command uses.

    Args:
        name_or_path: a name on the search path (``"violin"``), a folder written by
            :meth:`~ddsp_models.nn.Autoencoder.save_pretrained`, or a ``.ckpt``.
        map_location: device of the returned model.
        extra: folders searched for names before ``$DDSP_MODELS_PATH`` and ``checkpoints/``.

    Raises:
        UnknownModelError: no such name or path (the message lists the available names).
        ModelLoadError: a file of the model is missing, empty or corrupt.
        Both are :class:`~ddsp_models.errors.DDSPError`: one line naming the problem and fix.
    """
    path = resolve_model(name_or_path, extra)
    from .nn.autoencoder import Autoencoder  # torch: only when a model is loaded

    if path.is_dir():
        from .model_files import read_model_config

        read_model_config(path, Autoencoder)  # the config's structure and types, before anything is built
        return Autoencoder.from_pretrained(path, map_location=map_location)
    return Autoencoder.from_checkpoint(path, map_location=map_location)
