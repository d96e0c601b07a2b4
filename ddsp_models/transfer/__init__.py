"""Timbre transfer: features of a recording → a trained model → audio.

* :func:`transfer` / :func:`transfer_with_features` (:mod:`.core`): the whole pipeline on
  tensors; :func:`transfer_file`: file to file with memory bounded by a chunk (the CLI's);
* :mod:`.features`: chunked f0 / confidence / loudness extraction;
* :mod:`.adjust`: DDSP's auto-adjust (octave shift, loudness quantile mapping, quieting);
* :mod:`.autotune`: scales, key detection and snapping f0 toward a scale;
* :mod:`.synthesis`: chunked rendering with carried decoder and synth state;
* :mod:`.plot`: input/output spectrograms with f0 curves.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_T = "ddsp_models.transfer."

_LAZY = {
    "transfer": _T + "core",
    "transfer_with_features": _T + "core",
    "transfer_file": _T + "core",
    "TransferResult": _T + "core",
    "SilentInputWarning": _T + "core",
    "extract_features": _T + "features",
    "Features": _T + "features",
    "BlockReader": _T + "features",
    "auto_adjust": _T + "adjust",
    "detect_notes": _T + "adjust",
    "octave_shift": _T + "adjust",
    "quantile_map": _T + "adjust",
    "detect_key": _T + "autotune",
    "parse_scale": _T + "autotune",
    "Scale": _T + "autotune",
    "check_options": _T + "core",
    "DEFAULT_F0_METHOD": _T + "core",
    "render": _T + "synthesis",
    "render_blocks": _T + "synthesis",
    "plot_transfer": _T + "plot",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = list(_LAZY)
