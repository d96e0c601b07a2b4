"""Features of audio per frame: f0 (CREPE, YIN), loudness, RMS level, MFCC.

Every function takes audio ``(samples,)``, ``(batch, samples)`` or mono
``(batch, 1, samples)`` with its ``sample_rate`` and a ``frame_rate`` whose hop
``sample_rate / frame_rate`` is a whole number of samples, and returns
``frames = samples // hop`` frames, frame ``t`` centred on sample ``t * hop``, so features of
the same audio line up with each other and with the controls of the synths.

Names resolve lazily (importing this package does not load the CREPE network).
"""

from __future__ import annotations

from .._lazy import lazy_exports

_F = "ddsp_models.features."

_LAZY = {
    "compute_f0": _F + "f0",
    "fill_unvoiced": _F + "f0",
    "refine_f0": _F + "f0",
    "F0_METHODS": _F + "f0",
    "compute_loudness": _F + "loudness",
    "compute_rms_db": _F + "loudness",
    "a_weighting_db": _F + "loudness",
    "compute_mfcc": _F + "mfcc",
    "mel_filterbank": _F + "mfcc",
    "dct_matrix": _F + "mfcc",
    "yin": _F + "yin",
    "cmnd": _F + "yin",
    "crepe_activations": _F + "crepe",
    "decode_activations": _F + "crepe",
    "CrepeNet": _F + "crepe_net",
    "load_crepe": _F + "crepe_net",
    "crepe_weights_path": _F + "crepe_net",
    "crepe_weights_available": _F + "crepe_net",
    "viterbi_banded": _F + "viterbi",
    "triangular_transition": _F + "viterbi",
    "band_from_matrix": _F + "viterbi",
    "check_audio": _F + "checks",
    "hop_from_rates": _F + "checks",
    "frame_centred": _F + "framing",
    "resample": _F + "resample",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = list(_LAZY)
