"""A small dataset-statistics dict of the structure ``ddsp prepare`` writes (validated when a
model folder is read), for tests that need auto-adjust to have something to aim at: pitch
MIDI 48–72, loudness −60…−10 dB (voiced −50…−10 dB), quantiles spread evenly."""

from __future__ import annotations

import numpy as np


def _summary(lo: float, hi: float) -> dict:
    return {"count": 1000, "mean": (lo + hi) / 2, "quantiles": np.linspace(lo, hi, 101).tolist()}


def stub_dataset_stats() -> dict:
    """The statistics dict (a new one each call)."""
    return {"quantile_levels": np.linspace(0, 1, 101).tolist(),
            "pitch_midi": _summary(48.0, 72.0), "loudness_db": _summary(-60.0, -10.0),
            "loudness_db_voiced": _summary(-50.0, -10.0)}
