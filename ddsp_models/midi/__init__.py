"""MIDI performance: a score played by a trained model, with expression learned from its data.

* :func:`synthesize_midi` (:mod:`.render`): read, allocate voices, build curves, render, mix;
* :mod:`.score`: reading a MIDI file with mido (:func:`read_score`, :class:`ScoreError`);
* :mod:`.expression`: the model's note expression (:func:`expression_for`);
* :mod:`.voices`: voice allocation and legato phrases;
* :mod:`.curves`: frame-rate f0 and loudness of a voice;
* :mod:`.plot`: a piano roll over the rendered curves.

See ``docs/midi.md``.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_M = "ddsp_models.midi."

_LAZY = {
    "synthesize_midi": _M + "render",
    "plan_performance": _M + "render",
    "MidiResult": _M + "render",
    "MidiWarning": _M + "render",
    "read_score": _M + "score",
    "Score": _M + "score",
    "Part": _M + "score",
    "Note": _M + "score",
    "ScoreError": _M + "score",
    "Expression": _M + "expression",
    "expression_for": _M + "expression",
    "allocate_voices": _M + "voices",
    "plot_performance": _M + "plot",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = list(_LAZY)
