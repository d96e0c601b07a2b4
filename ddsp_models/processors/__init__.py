"""All processors (synths and effects) and the processor contract.

The public namespaces are :mod:`ddsp_models.synths` and :mod:`ddsp_models.effects`; this
package holds the implementations, one idea per module.
"""

from __future__ import annotations

import importlib

from .._lazy import lazy_exports
from .base import PROCESSORS, Param, Processor, State, processor_from_dict

_P = "ddsp_models.processors."

#: Synths: no audio input, need ``n_samples``.
SYNTHS: dict[str, str] = {
    "Harmonic": _P + "harmonic",
    "FilteredNoise": _P + "noise",
    "Wavetable": _P + "wavetable",
    "Sinusoidal": _P + "sinusoidal",
    "Subtractive": _P + "subtractive",
}

#: Effects: audio in, audio out, ``(batch, channels, samples)``.
EFFECTS: dict[str, str] = {
    "ModDelay": _P + "moddelay",
    "Reverb": _P + "reverb",
    "ExpDecayReverb": _P + "reverb",
    "FilteredNoiseReverb": _P + "reverb",
    "Biquad": _P + "biquad",
    "StateVariableFilter": _P + "svf",
    "LadderFilter": _P + "ladder",
    "AllPassCascade": _P + "allpass",
    "Phaser": _P + "allpass",
    "ParametricEQ": _P + "eq",
    "GraphicEQ": _P + "eq",
    "FIRFilter": _P + "fir",
    "Compressor": _P + "dynamics",
    "NoiseGate": _P + "dynamics",
    "Limiter": _P + "dynamics",
    "Distortion": _P + "distortion",
    "Gain": _P + "gain",
    "StereoGain": _P + "gain",
    "StereoWidener": _P + "gain",
    "DryWet": _P + "containers",
    "MultitapDelay": _P + "multitap",
    "SerialChain": _P + "containers",
    "ParallelMix": _P + "containers",
}

__getattr__, __dir__ = lazy_exports(__name__, {**SYNTHS, **EFFECTS})


def load_processor_class(name: str) -> type[Processor]:
    """The processor class called ``name``, importing its module on first use."""
    if name not in PROCESSORS:
        module = {**SYNTHS, **EFFECTS}.get(name)
        if module is None:
            raise ValueError(
                f"unknown processor type {name!r}; known: {sorted({**SYNTHS, **EFFECTS})}"
            )
        importlib.import_module(module)
    return PROCESSORS[name]


def all_processor_classes() -> dict[str, type[Processor]]:
    """Every registered processor class by name (imports every processor module)."""
    for name in {**SYNTHS, **EFFECTS}:
        load_processor_class(name)
    return dict(sorted(PROCESSORS.items()))


__all__ = ["Param", "State", "Processor", "PROCESSORS", "processor_from_dict",
           "load_processor_class", "all_processor_classes"]
