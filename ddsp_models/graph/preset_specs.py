"""The ready-made graphs of :mod:`.presets` as graph dicts (what a recipe's ``graph:`` holds).

Plain data, importing nothing: :func:`.serialise.graph_from_dict` expands
``{preset: name, **kwargs}`` with these, and :mod:`.presets` builds graphs from them.
"""

from __future__ import annotations

__all__ = ["ddsp_default", "wavetable", "delay_iir", "PRESET_SPECS"]


def ddsp_default(
    sample_rate: int = 16000, n_harmonics: int = 60, n_bands: int = 65, reverb_length: int = 16000
) -> dict:
    """Harmonic (``n_harmonics``) + filtered noise (``n_bands``) → learnable reverb → out."""
    return {
        "nodes": {
            "harmonic": {"type": "Harmonic", "sample_rate": sample_rate, "n_harmonics": n_harmonics},
            "noise": {"type": "FilteredNoise", "sample_rate": sample_rate, "n_bands": n_bands},
            "reverb": {"type": "Reverb", "sample_rate": sample_rate, "length": reverb_length},
        },
        "edges": ["harmonic -> reverb", "noise -> reverb", "reverb -> out"],
    }


def wavetable(
    sample_rate: int = 16000,
    n_tables: int = 4,
    table_size: int = 2048,
    n_bands: int = 65,
    reverb_length: int = 16000,
) -> dict:
    """Wavetable synth (``n_tables`` learnable tables) + filtered noise → reverb → out."""
    return {
        "nodes": {
            "wavetable": {"type": "Wavetable", "sample_rate": sample_rate,
                          "n_tables": n_tables, "table_size": table_size},
            "noise": {"type": "FilteredNoise", "sample_rate": sample_rate, "n_bands": n_bands},
            "reverb": {"type": "Reverb", "sample_rate": sample_rate, "length": reverb_length},
        },
        "edges": ["wavetable -> reverb", "noise -> reverb", "reverb -> out"],
    }


def delay_iir(
    sample_rate: int = 16000,
    n_harmonics: int = 60,
    n_bands: int = 65,
    reverb_length: int = 16000,
) -> dict:
    """Harmonic + noise → time-varying low-pass biquad → modulated delay → reverb → out."""
    return {
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
    }


#: Graph dicts by preset name.
PRESET_SPECS = {"ddsp_default": ddsp_default, "wavetable": wavetable, "delay_iir": delay_iir}
