"""Exporting trained models for use outside Python training code.

* :mod:`.streaming`: :class:`StreamingSynth`, any model's decoder and graph block by block with
  carried state (``ddsp_models.graph.stream.GraphStream`` underneath);
* :mod:`.noise`: compatibility names for the counter-based noise of :mod:`ddsp_models.core.noise`;
* :mod:`.torchscript`: scripted streaming / whole-signal modules (:func:`export_torchscript`);
* :mod:`.onnx`: ONNX export where the operators allow (:func:`export_onnx`);
* :mod:`.live`: :class:`LiveModel`, audio in, audio out at any host rate and block size
  (stateful resampling :mod:`.resample_stream`, causal features, the streaming synth);
* :mod:`.nn_tilde` and :mod:`.neutone`: the live model packaged for nn~ (Max, Pure Data) and
  Neutone (DAWs), see docs/live.md.
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
    "LiveModel": _E + "live",
    "StreamResampler": _E + "resample_stream",
    "export_nn_tilde": _E + "nn_tilde",
    "export_neutone": _E + "neutone",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = list(_LAZY)
