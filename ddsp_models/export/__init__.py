"""Exporting trained models for use outside Python training code.

* :mod:`.streaming`: :class:`StreamingSynth`, any model's decoder and graph block by block with
  carried state (``ddsp_models.graph.stream.GraphStream`` underneath);
* :mod:`.noise`: compatibility names for the counter-based noise of :mod:`ddsp_models.core.noise`;
* :mod:`.torchscript`: scripted streaming / whole-signal modules (:func:`export_torchscript`);
* :mod:`.onnx`: ONNX export where the operators allow (:func:`export_onnx`).
"""

from __future__ import annotations

from .._lazy import lazy_exports

_E = "ddsp_models.export."

_LAZY = {
    "StreamingSynth": _E + "streaming",
    "UnsupportedGraphError": _E + "streaming",
    "check_streamable": _E + "streaming",
    "counter_noise": _E + "noise",
    "deterministic_noise": _E + "noise",
    "OfflineSynth": _E + "torchscript",
    "export_torchscript": _E + "torchscript",
    "export_onnx": _E + "onnx",
    "OnnxExportError": _E + "onnx",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = list(_LAZY)
