"""Dataset statistics for timbre transfer's auto-adjust (pitch and loudness distributions).

Written by ``ddsp prepare`` as ``stats.json`` and shipped beside exported models. Pitch is
summarised over *voiced* frames (f0 confidence ≥ ``confidence_threshold``), in MIDI notes;
loudness (dB) over all frames and over voiced frames.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DatasetError

__all__ = ["compute_stats", "load_stats", "QUANTILE_LEVELS"]

#: Quantile levels stored for each feature: 0 %, 1 %, ..., 100 %.
QUANTILE_LEVELS = np.linspace(0.0, 1.0, 101)


def _summary(x: np.ndarray) -> dict:
    if x.size == 0:
        return {"count": 0, "mean": None, "std": None, "min": None, "max": None, "quantiles": []}
    x = x.astype(np.float64)
    return {
        "count": int(x.size),
        "mean": float(x.mean()),
        "std": float(x.std()),
        "min": float(x.min()),
        "max": float(x.max()),
        "quantiles": [float(q) for q in np.quantile(x, QUANTILE_LEVELS)],
    }


def compute_stats(
    f0_hz: Sequence[np.ndarray],
    f0_confidence: Sequence[np.ndarray],
    loudness_db: Sequence[np.ndarray],
    confidence_threshold: float = 0.7,
) -> dict:
    """Statistics over lists of per-file frame arrays (each 1-D, same length per file).

    Returns a JSON-ready dict with ``pitch_midi`` (voiced frames), ``loudness_db`` (all frames),
    ``loudness_db_voiced`` and ``f0_hz`` summaries: count, mean, std, min, max and 101
    quantiles at ``quantile_levels``.
    """
    f0 = np.concatenate([np.asarray(a, np.float64).ravel() for a in f0_hz]) if f0_hz else np.zeros(0)
    conf = (np.concatenate([np.asarray(a, np.float64).ravel() for a in f0_confidence])
            if f0_confidence else np.zeros(0))
    ld = (np.concatenate([np.asarray(a, np.float64).ravel() for a in loudness_db])
          if loudness_db else np.zeros(0))
    if not (f0.shape == conf.shape == ld.shape):
        raise ValueError(f"f0 ({f0.shape}), confidence ({conf.shape}) and loudness ({ld.shape}) "
                         "must hold the same frames")
    voiced = (conf >= confidence_threshold) & (f0 > 0)
    midi = 12.0 * np.log2(f0[voiced] / 440.0) + 69.0
    return {
        "confidence_threshold": float(confidence_threshold),
        "n_frames": int(f0.size),
        "n_voiced_frames": int(voiced.sum()),
        "quantile_levels": [float(q) for q in QUANTILE_LEVELS],
        "pitch_midi": _summary(midi),
        "f0_hz": _summary(f0[voiced]),
        "loudness_db": _summary(ld),
        "loudness_db_voiced": _summary(ld[voiced]),
    }


def load_stats(path: str | Path) -> dict:
    """Read a ``stats.json`` (a file, or a folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "stats.json"
    if not path.is_file():
        raise FileNotFoundError(f"no dataset statistics at {path}; run 'ddsp prepare' to create them")
    try:
        stats = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
        raise DatasetError(f"{path} is not valid JSON ({err}); run 'ddsp prepare' again to "
                           "rewrite it") from err
    if not isinstance(stats, dict):
        raise DatasetError(f"{path} holds a {type(stats).__name__}, not dataset statistics; "
                           "run 'ddsp prepare' again to rewrite it")
    return stats
