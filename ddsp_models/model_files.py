"""Checks of a model's files before it is built: the structure of its hyper-parameters.

A model folder's ``config.yaml`` (and a ``.ckpt``'s ``hyper_parameters``) hold the keyword
arguments of :class:`~ddsp_models.nn.Autoencoder`: a mapping whose ``decoder``, ``loss`` and
``encoder`` entries are keyword mappings of their own. :func:`check_model_hparams` checks that
structure against the constructors' signatures (names and simple types, with
:func:`~ddsp_models.core.arguments.check_arguments`) and the ranges a constructor would
otherwise meet as a traceback or a silent NaN (a learning rate of ``"fast"``, ``freeze: 5``,
``decoder: [1]``). The graph's own entries are checked by the processors' constructors when
the graph is built.

:func:`ddsp_models.registry.load_model` calls it for model folders; every failure is a
:class:`~ddsp_models.errors.ModelLoadError` naming the file, the key and what was expected.
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any, Mapping

from .errors import DDSPError, ModelLoadError

__all__ = ["check_model_hparams", "read_model_config"]

_FIX = "fix the file or write it again (Autoencoder.save_pretrained or 'ddsp train --export')"


def _positive(v: Any, integer: bool = False) -> bool:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
        return False
    return v > 0 and (not integer or float(v).is_integer())


def _problem(hp: Mapping[str, Any], model_cls: type) -> str | None:
    """The first problem of the hyper-parameters ``hp`` of ``model_cls``, in words, or None."""
    from .core.arguments import check_arguments

    try:
        check_arguments("model", model_cls, (), hp)
    except DDSPError as err:
        return str(err)
    ranges = (("learning_rate", False, "a positive number such as 0.0003"),
              ("lr_decay_steps", True, "a positive whole number of steps"),
              ("lr_decay_rate", False, "a positive number such as 0.98"))
    for key, integer, words in ranges:
        if key in hp and not _positive(hp[key], integer):
            return f"model.{key} must be {words}, got {hp[key]!r}"
    clip = hp.get("grad_clip_norm")
    if clip is not None and not (clip == 0 or _positive(clip)):
        return f"model.grad_clip_norm must be a number >= 0 or null, got {clip!r}"
    freeze = hp.get("freeze") or []
    if not all(isinstance(f, str) for f in freeze):
        return f"model.freeze must be a list of parameter-name prefixes (strings), got {freeze!r}"
    sections = {"decoder": ("ddsp_models.nn.decoder", "RnnFcDecoder"),
                "loss": ("ddsp_models.nn.losses", "MultiResolutionSpectralLoss"),
                "encoder": ("ddsp_models.nn.encoders", "MfccEncoder")}
    for key, (module, name) in sections.items():
        value = hp.get(key)
        if value is None:
            continue
        import importlib

        cls = getattr(importlib.import_module(module), name)
        try:  # the autoencoder adds n_out, z_dims and the rates itself
            check_arguments(f"model.{key} ({name})", cls, (), value, complete=False)
        except DDSPError as err:
            return str(err)
    return None


def check_model_hparams(hp: Any, source: str | Path, model_cls: type) -> None:
    """Raise :class:`~ddsp_models.errors.ModelLoadError` naming ``source`` unless ``hp`` is a
    mapping of ``model_cls`` (:class:`~ddsp_models.nn.Autoencoder`) keywords with well-typed
    values. The class is passed in, so this module imports nothing above it."""
    if not isinstance(hp, Mapping):
        raise ModelLoadError(f"{source}: the model's hyper-parameters must be a mapping of "
                             f"keywords, got a {type(hp).__name__}; {_FIX}")
    problem = _problem(hp, model_cls)
    if problem:
        raise ModelLoadError(f"{source} does not describe a valid model: {problem}; {_FIX}")


def read_model_config(folder: str | Path, model_cls: type) -> dict[str, Any]:
    """The ``model:`` hyper-parameters of a model folder's ``config.yaml``, checked as keywords
    of ``model_cls``.

    Raises:
        ModelLoadError: the file is unreadable, not YAML, has no ``model:`` mapping, or holds
            ill-typed keywords (the message names the file and the key).
    """
    import yaml

    path = Path(folder) / "config.yaml"
    try:
        cfg = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ModelLoadError(
            f"{path} is not readable YAML ({' '.join(str(err).split())[:160]}); {_FIX}") from err
    if not isinstance(cfg, Mapping) or not isinstance(cfg.get("model"), Mapping):
        got = "an empty file" if cfg is None else (
            f"keys {sorted(map(str, cfg))}" if isinstance(cfg, Mapping) else type(cfg).__name__)
        raise ModelLoadError(f"{path} must hold a 'model:' mapping of hyper-parameters, got "
                             f"{got}; {_FIX}")
    check_model_hparams(cfg["model"], path, model_cls)
    return dict(cfg["model"])
