"""Dataset statistics for timbre transfer's auto-adjust (pitch and loudness distributions).

Written by ``ddsp prepare`` as ``stats.json`` and shipped beside exported models. Pitch is
summarised over *voiced* frames (f0 confidence ≥ ``confidence_threshold``), in MIDI notes;
loudness (dB) over all frames and over voiced frames.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DatasetError

__all__ = ["compute_stats", "load_stats", "validate_stats", "pitch_range", "QUANTILE_LEVELS",
           "PITCH_RANGE_LEVELS"]

#: Quantile levels stored for each feature: 0 %, 1 %, ..., 100 %.
QUANTILE_LEVELS = np.linspace(0.0, 1.0, 101)

#: The quantile levels of the training data's voiced pitches that bound the range auto-adjust
#: moves an input's mean pitch into (the middle 90 %: the extremes hold f0 errors and rare
#: notes).
PITCH_RANGE_LEVELS = (0.05, 0.95)


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


#: Summaries a statistics file must hold (the others, ``loudness_db_voiced`` and ``f0_hz``,
#: are checked when present).
REQUIRED_SUMMARIES = ("pitch_midi", "loudness_db")
OPTIONAL_SUMMARIES = ("loudness_db_voiced", "f0_hz")


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def validate_stats(stats, source: str | Path = "dataset statistics") -> dict:
    """Check the structure :func:`compute_stats` writes; returns ``stats``.

    Raises :class:`~ddsp_models.errors.DatasetError` naming ``source`` and the first
    malformed entry: a statistics file auto-adjust cannot use is an error, never silently
    skipped. Required: ``quantile_levels`` (increasing numbers in [0, 1]) and the summaries
    ``pitch_midi`` and ``loudness_db``; each summary is a mapping with ``count`` (a whole
    number >= 0), ``mean`` (a finite number, or null when ``count`` is 0) and ``quantiles``
    (non-decreasing finite numbers, one per level, or empty when ``count`` is 0).
    """
    fix = ("run 'ddsp prepare' again to rewrite it (or delete it: auto-adjust is then "
           "unavailable)")

    def bad(what: str) -> DatasetError:
        return DatasetError(f"{source} is not valid dataset statistics: {what}; {fix}")

    if not isinstance(stats, dict):
        raise bad(f"it holds a {type(stats).__name__}, not a mapping")
    levels = stats.get("quantile_levels")
    if (not isinstance(levels, list) or not levels or not all(_is_number(q) for q in levels)
            or not all(0.0 <= q <= 1.0 for q in levels)
            or any(b <= a for a, b in zip(levels, levels[1:]))):
        raise bad("'quantile_levels' must be a list of increasing numbers in [0, 1]")
    for key in REQUIRED_SUMMARIES + OPTIONAL_SUMMARIES:
        if key not in stats:
            if key in REQUIRED_SUMMARIES:
                raise bad(f"'{key}' is missing")
            continue
        summary = stats[key]
        if not isinstance(summary, dict):
            raise bad(f"'{key}' must be a mapping (count, mean, quantiles, ...), got "
                      f"{type(summary).__name__}")
        count = summary.get("count")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise bad(f"'{key}.count' must be a whole number >= 0, got {count!r}")
        mean, quantiles = summary.get("mean"), summary.get("quantiles")
        if not isinstance(quantiles, list):
            raise bad(f"'{key}.quantiles' must be a list, got {type(quantiles).__name__}")
        if count == 0:
            if mean is not None and not _is_number(mean):
                raise bad(f"'{key}.mean' must be a finite number or null, got {mean!r}")
            if quantiles and len(quantiles) != len(levels):
                raise bad(f"'{key}.quantiles' holds {len(quantiles)} values for "
                          f"{len(levels)} quantile levels")
            continue
        if not _is_number(mean):
            raise bad(f"'{key}.mean' must be a finite number, got {mean!r}")
        if len(quantiles) != len(levels) or not all(_is_number(q) for q in quantiles):
            raise bad(f"'{key}.quantiles' must hold {len(levels)} finite numbers (one per "
                      f"quantile level), got {len(quantiles)} values")
        if any(b < a for a, b in zip(quantiles, quantiles[1:])):
            raise bad(f"'{key}.quantiles' must not decrease")
    return stats


def pitch_range(stats: dict,
                levels: tuple[float, float] = PITCH_RANGE_LEVELS) -> tuple[float, float] | None:
    """MIDI ``(low, high)``: the training pitches' quantiles at ``levels``, read off the stats'
    ``pitch_midi`` quantiles (linear between the stored levels); ``None`` when the stats have
    no pitch quantiles."""
    q = (stats.get("pitch_midi") or {}).get("quantiles")
    if not q:
        return None
    q = np.asarray(q, np.float64)
    stored = stats.get("quantile_levels")
    stored = np.linspace(0.0, 1.0, q.size) if stored is None else np.asarray(stored, np.float64)
    low, high = (float(np.interp(level, stored, q)) for level in levels)
    return low, high


def load_stats(path: str | Path) -> dict:
    """Read and check a ``stats.json`` (a file, or a folder holding one); a malformed file is
    a :class:`~ddsp_models.errors.DatasetError` naming it (see :func:`validate_stats`)."""
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
    return validate_stats(stats, path)
