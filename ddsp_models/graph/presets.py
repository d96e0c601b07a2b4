"""Ready-made graphs. Each returns a fresh :class:`~ddsp_models.graph.ProcessorGraph`.

* :func:`ddsp_default` — DDSP's autoencoder output: ``harmonic + noise → reverb → out``;
* :func:`wavetable` — ``wavetable + noise → reverb → out`` (learnable wavetables);
* :func:`delay_iir` — ``harmonic + noise → filter → mod_delay → reverb → out``: a synth voice
  through a time-varying low-pass biquad (exact IIR gradients) and a modulated delay
  (chorus/flanger).

Presets are written as graph dicts (the same form a recipe's ``graph:`` entry takes) in
:mod:`.preset_specs`, so ``preset(...).to_dict()`` is the recipe text.
"""

from __future__ import annotations

import functools
from typing import Callable

from . import preset_specs
from .graph import ProcessorGraph

__all__ = ["ddsp_default", "wavetable", "delay_iir", "PRESETS"]


def _preset(spec: Callable[..., dict]) -> Callable[..., ProcessorGraph]:
    """The graph-building twin of a :mod:`.preset_specs` function (same name, arguments, doc)."""

    @functools.wraps(spec)
    def build(*args, **kwargs) -> ProcessorGraph:
        return ProcessorGraph.from_dict(spec(*args, **kwargs))

    build.__annotations__ = {**spec.__annotations__, "return": ProcessorGraph}
    return build


ddsp_default = _preset(preset_specs.ddsp_default)
wavetable = _preset(preset_specs.wavetable)
delay_iir = _preset(preset_specs.delay_iir)

#: Presets by name (for recipes: ``graph: {preset: ddsp_default, sample_rate: 16000}``).
PRESETS = {"ddsp_default": ddsp_default, "wavetable": wavetable, "delay_iir": delay_iir}
