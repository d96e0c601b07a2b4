"""The external controls a graph may declare, and how to derive them from f0 and loudness.

A processor declares an *external* parameter (``Param(..., external=True)``) when its value
comes from the caller rather than from the decoder: ``f0_hz`` for the oscillators, ``gate``
for :class:`~ddsp_models.processors.adsr.ADSR`. This module is the one home of the names a
graph may use, with their shape, unit and a **derivation** from the two features every model
has (``f0_hz`` and ``loudness_db``, frame rate ``(B, T, 1)``), used when the data or the caller
does not supply the control itself:

===============  ======  ========  ====================================================
name             size    unit      derived from the features when not given
===============  ======  ========  ====================================================
``f0_hz``        1       Hz        itself
``loudness_db``  1       dB        itself
``gate``         1       on/off    1 where ``loudness_db > -60`` (:data:`GATE_THRESHOLD_DB`)
                                   and ``f0_hz > 0``, else 0
``velocity``     1       0..1      ``clamp(loudness_db / 80 + 1, 0, 1)`` (-80 dB → 0, 0 dB → 1)
``note``         1       MIDI      ``hz_to_midi(f0_hz)`` (fractional; 0 where f0 is 0)
===============  ======  ========  ====================================================

All are time-varying ``(B, T, 1)``. A batch or a caller that carries a control (a ``gate``
track from a MIDI-made dataset) passes it and it is used as given: see
:func:`resolve_controls`, which the autoencoder (:class:`~ddsp_models.nn.Autoencoder`) and the
streaming engine (:class:`~ddsp_models.export.streaming.StreamingSynth`, whose TorchScript and
ONNX signatures take only ``f0_hz`` and ``loudness_db``) both call. :func:`derive_control`
compiles with TorchScript.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Mapping

import torch
from torch import Tensor

from ..core.scaling import hz_to_midi
from .types import GraphError

__all__ = ["Control", "CONTROLS", "GATE_THRESHOLD_DB", "derive_control", "resolve_controls",
           "check_externals"]

#: Loudness above which a voiced frame counts as a held note when ``gate`` is derived.
GATE_THRESHOLD_DB = -60.0


@dataclass(frozen=True)
class Control:
    """Declaration of one external control (see the module docstring)."""

    name: str
    size: int = 1
    time_varying: bool = True
    unit: str = ""
    doc: str = ""


#: Every external control a graph may declare, by name.
CONTROLS: Dict[str, Control] = {c.name: c for c in (
    Control("f0_hz", unit="Hz", doc="fundamental frequency (0 where unvoiced)"),
    Control("loudness_db", unit="dB", doc="A-weighted loudness"),
    Control("gate", unit="on/off", doc="note held where > 0.5; derived: loudness_db > -60 dB "
                                       "and f0_hz > 0"),
    Control("velocity", unit="0..1", doc="note strength; derived: loudness_db / 80 + 1, "
                                         "clamped to [0, 1]"),
    Control("note", unit="MIDI", doc="pitch as a (fractional) MIDI note; derived: "
                                     "hz_to_midi(f0_hz)"),
)}


def derive_control(name: str, f0_hz: Tensor, loudness_db: Tensor) -> Tensor:
    """Control ``name`` ``(B, T, 1)`` derived from ``f0_hz`` and ``loudness_db`` ``(B, T, 1)``
    (see the module docstring). Scriptable; an unknown name raises ``ValueError``."""
    if name == "f0_hz":
        return f0_hz
    if name == "loudness_db":
        return loudness_db
    if name == "gate":
        return ((loudness_db > -60.0) & (f0_hz > 0.0)).to(f0_hz.dtype)  # GATE_THRESHOLD_DB
    if name == "velocity":
        return torch.clamp(loudness_db / 80.0 + 1.0, 0.0, 1.0)
    if name == "note":
        return hz_to_midi(f0_hz)
    raise ValueError("unknown external control " + name)


def check_externals(specs: Mapping[str, tuple[int, bool]], owner: str = "the graph") -> None:
    """Raise :class:`GraphError` unless every external ``{name: (size, time_varying)}`` (from
    :meth:`ParameterLayout.external_specs`) is a known control of the declared shape."""
    for name, (size, time_varying) in specs.items():
        if name not in CONTROLS:
            raise GraphError(
                f"{owner} needs the external control {name!r}, which no model can supply; known "
                f"controls: {sorted(CONTROLS)} (declare new ones in ddsp_models/graph/controls.py)")
        c = CONTROLS[name]
        if (int(size), bool(time_varying)) != (c.size, c.time_varying):
            raise GraphError(
                f"{owner} declares the external control {name!r} with size={size}, "
                f"time_varying={time_varying}; it is size={c.size}, time_varying={c.time_varying}")


def resolve_controls(names, f0_hz: Tensor, loudness_db: Tensor,
                     given: Mapping[str, Tensor] | None = None) -> Dict[str, Tensor]:
    """``{name: (B, T, 1)}`` for each control in ``names``: from ``given`` where present (shape
    checked against ``f0_hz``), else derived (:func:`derive_control`)."""
    given = dict(given or {})
    out: Dict[str, Tensor] = {}
    for name in names:
        if name in given:
            v = given[name]
            if v.dim() == 2:
                v = v[..., None]
            if tuple(v.shape) != tuple(f0_hz.shape):
                raise GraphError(f"control {name!r} has shape {tuple(v.shape)}; it must be "
                                 f"(batch, frames, 1) = {tuple(f0_hz.shape)} like f0_hz")
            out[name] = v.to(f0_hz.dtype)
        else:
            out[name] = derive_control(name, f0_hz, loudness_db)
    return out
