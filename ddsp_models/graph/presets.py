"""Ready-made graphs. Each returns a fresh :class:`~ddsp_models.graph.ProcessorGraph`.

* :func:`ddsp_default` — DDSP's autoencoder output: ``harmonic + noise → reverb → out``;
* :func:`wavetable` — ``wavetable + noise → reverb → out`` (learnable wavetables);
* :func:`delay_iir` — ``harmonic + noise → filter → mod_delay → reverb → out``: a synth voice
  through a time-varying low-pass biquad (exact IIR gradients) and a modulated delay
  (chorus/flanger).

Presets are written as graph dicts (the same form a recipe's ``graph:`` entry takes), so
``preset(...).to_dict()`` is the recipe text.
"""

from __future__ import annotations

from .graph import ProcessorGraph

__all__ = ["ddsp_default", "wavetable", "delay_iir", "PRESETS"]


def ddsp_default(
    sample_rate: int = 16000, n_harmonics: int = 60, n_bands: int = 65, reverb_length: int = 16000
) -> ProcessorGraph:
    """Harmonic (``n_harmonics``) + filtered noise (``n_bands``) → learnable reverb → out."""
    return ProcessorGraph.from_dict({
        "nodes": {
            "harmonic": {"type": "Harmonic", "sample_rate": sample_rate, "n_harmonics": n_harmonics},
            "noise": {"type": "FilteredNoise", "sample_rate": sample_rate, "n_bands": n_bands},
            "reverb": {"type": "Reverb", "sample_rate": sample_rate, "length": reverb_length},
        },
        "edges": ["harmonic -> reverb", "noise -> reverb", "reverb -> out"],
    })


def wavetable(
    sample_rate: int = 16000,
    n_tables: int = 4,
    table_size: int = 2048,
    n_bands: int = 65,
    reverb_length: int = 16000,
) -> ProcessorGraph:
    """Wavetable synth (``n_tables`` learnable tables) + filtered noise → reverb → out."""
    return ProcessorGraph.from_dict({
        "nodes": {
            "wavetable": {"type": "Wavetable", "sample_rate": sample_rate,
                          "n_tables": n_tables, "table_size": table_size},
            "noise": {"type": "FilteredNoise", "sample_rate": sample_rate, "n_bands": n_bands},
            "reverb": {"type": "Reverb", "sample_rate": sample_rate, "length": reverb_length},
        },
        "edges": ["wavetable -> reverb", "noise -> reverb", "reverb -> out"],
    })


def delay_iir(
    sample_rate: int = 16000,
    n_harmonics: int = 60,
    n_bands: int = 65,
    reverb_length: int = 16000,
) -> ProcessorGraph:
    """Harmonic + noise → time-varying low-pass biquad → modulated delay → reverb → out."""
    return ProcessorGraph.from_dict({
        "nodes": {
            "harmonic": {"type": "Harmonic", "sample_rate": sample_rate, "n_harmonics": n_harmonics},
            "noise": {"type": "FilteredNoise", "sample_rate": sample_rate, "n_bands": n_bands},
            "filter": {"type": "Biquad", "sample_rate": sample_rate, "kind": "lowpass",
                       "time_varying": True},
            "mod_delay": {"type": "ModDelay", "sample_rate": sample_rate},
            "reverb": {"type": "Reverb", "sample_rate": sample_rate, "length": reverb_length},
        },
        "edges": [
            "harmonic -> filter",
            "noise -> filter",
            "filter -> mod_delay",
            "mod_delay -> reverb",
            "reverb -> out",
        ],
    })


#: Presets by name (for recipes: ``graph: {preset: ddsp_default, sample_rate: 16000}``).
PRESETS = {"ddsp_default": ddsp_default, "wavetable": wavetable, "delay_iir": delay_iir}
