"""Performance expression of a model: what its note statistics say, or sensible defaults.

:class:`Expression` holds the shapes a MIDI note is played with (attack, held level, release,
vibrato, glides, the velocity → loudness map and the pitch range). :func:`expression_for`
reads them from a model's ``dataset_stats`` (``stats.json``): the ``"notes"`` entry written by
:func:`ddsp_models.data.note_stats.note_statistics` (``ddsp prepare``, or
``recipes/data/note_stats.py`` for older models), the ``pitch_midi`` range and the loudness
quantiles. What is missing falls back to :data:`DEFAULTS` and is listed in
``Expression.missing`` (the renderer warns once).

Velocity mapping: velocity ``v`` (1-127) is a quantile level ``v / 127`` (kept within
``[0.02, 0.98]``) of the distribution of note peaks in the training data, so velocity 64 is
the median peak, pianissimo the quiet end and fortissimo the loud end of what the model
heard. Without note peaks the voiced-frame loudness quantiles are used (levels
``0.1 .. 0.99``), and without those a line from -50 dB to -5 dB.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

__all__ = ["Expression", "expression_for", "DEFAULTS"]

#: Used where a model's statistics say nothing (seconds, dB, cents, Hz).
DEFAULTS = {
    "attack_s": 0.05, "decay_s": 0.1, "held_minus_peak_db": -2.0, "release_s": 0.15,
    "vibrato_rate_hz": 5.5, "vibrato_depth_cents": 20.0, "vibrato_onset_s": 0.25,
    "vibrato_ramp_s": 0.2, "vibrato_fraction": 1.0, "onset_glide_cents": 0.0,
    "onset_glide_s": 0.03, "legato_glide_s": 0.06,
}


def _median(notes: dict, key: str, lo: float, hi: float, missing: list) -> float:
    s = notes.get(key) if isinstance(notes, dict) else None
    v = s.get("median") if isinstance(s, dict) else (s if isinstance(s, (int, float)) else None)
    if v is None or not np.isfinite(v):
        missing.append(key)
        return DEFAULTS[key]
    return float(np.clip(v, lo, hi))


@dataclass
class Expression:
    """How notes are played (times in seconds, levels in dB, pitch deviations in cents).

    ``peak_levels``/``peak_db``: the velocity map (quantile levels in [0, 1] → dB);
    ``pitch_range``: lowest and highest MIDI pitch the model knows (``None``: unknown);
    ``floor_db``: loudness of silence; ``missing``: statistics that fell back to defaults.
    """

    attack_s: float = DEFAULTS["attack_s"]
    decay_s: float = DEFAULTS["decay_s"]
    held_minus_peak_db: float = DEFAULTS["held_minus_peak_db"]
    release_s: float = DEFAULTS["release_s"]
    vibrato_rate_hz: float = DEFAULTS["vibrato_rate_hz"]
    vibrato_depth_cents: float = DEFAULTS["vibrato_depth_cents"]
    vibrato_onset_s: float = DEFAULTS["vibrato_onset_s"]
    vibrato_ramp_s: float = DEFAULTS["vibrato_ramp_s"]
    vibrato_fraction: float = DEFAULTS["vibrato_fraction"]
    onset_glide_cents: float = DEFAULTS["onset_glide_cents"]
    onset_glide_s: float = DEFAULTS["onset_glide_s"]
    legato_glide_s: float = DEFAULTS["legato_glide_s"]
    peak_levels: np.ndarray = field(default_factory=lambda: np.array([0.0, 1.0]))
    peak_db: np.ndarray = field(default_factory=lambda: np.array([-50.0, -5.0]))
    pitch_range: tuple[int, int] | None = None
    floor_db: float = -80.0
    missing: tuple = ()

    def velocity_db(self, velocity) -> np.ndarray:
        """Peak loudness (dB) of notes of MIDI ``velocity`` (1-127, array or scalar)."""
        level = np.clip(np.asarray(velocity, np.float64) / 127.0, 0.02, 0.98)
        return np.interp(level, self.peak_levels, self.peak_db)

    def with_(self, **changes) -> "Expression":
        """A copy with some fields changed."""
        return replace(self, **changes)


def expression_for(stats: dict | None) -> Expression:
    """The :class:`Expression` of a model whose ``dataset_stats`` are ``stats`` (or None)."""
    stats = stats if isinstance(stats, dict) else {}
    notes = stats.get("notes") if isinstance(stats.get("notes"), dict) else {}
    missing: list[str] = []
    if not notes:
        missing.append("notes")
    kw = dict(
        attack_s=_median(notes, "attack_s", 0.005, 1.0, missing),
        held_minus_peak_db=_median(notes, "held_minus_peak_db", -20.0, 0.0, missing),
        release_s=_median(notes, "release_s", 0.02, 2.0, missing),
        vibrato_rate_hz=_median(notes, "vibrato_rate_hz", 2.0, 10.0, missing),
        vibrato_depth_cents=_median(notes, "vibrato_depth_cents", 0.0, 100.0, missing),
        vibrato_onset_s=_median(notes, "vibrato_onset_s", 0.0, 1.5, missing),
        onset_glide_cents=_median(notes, "onset_glide_cents", -50.0, 50.0, missing),
        onset_glide_s=_median(notes, "onset_glide_s", 0.0, 0.3, missing),
        legato_glide_s=_median(notes, "legato_glide_s", 0.01, 0.3, missing),
    )
    if notes:
        missing = [m for m in missing if m != "notes"]
    frac = notes.get("vibrato_fraction")
    if isinstance(frac, (int, float)) and np.isfinite(frac):
        kw["vibrato_fraction"] = float(np.clip(frac, 0.0, 1.0))
    ramp = notes.get("vibrato_ramp_s")
    if isinstance(ramp, (int, float)) and ramp > 0:
        kw["vibrato_ramp_s"] = float(ramp)
    kw["decay_s"] = max(DEFAULTS["decay_s"], kw["attack_s"])
    peaks = (notes.get("peak_db") or {}).get("quantiles") if notes else None
    loud = stats.get("loudness_db_voiced") or {}
    if peaks and len(peaks) >= 2:
        kw["peak_levels"] = np.linspace(0.0, 1.0, len(peaks))
        kw["peak_db"] = np.asarray(peaks, np.float64)
    elif loud.get("quantiles"):
        q = np.asarray(loud["quantiles"], np.float64)
        levels = np.asarray(stats.get("quantile_levels") or np.linspace(0, 1, q.size), np.float64)
        want = np.linspace(0.1, 0.99, 101)
        kw["peak_levels"] = np.linspace(0.0, 1.0, 101)
        kw["peak_db"] = np.interp(want, levels, q)
        missing.append("peak_db")
    else:
        missing.append("loudness quantiles")
    pitch = stats.get("pitch_midi") or {}
    if pitch.get("min") is not None and pitch.get("max") is not None:
        kw["pitch_range"] = (int(round(pitch["min"])), int(round(pitch["max"])))
    else:
        missing.append("pitch range")
    ld_all = (stats.get("loudness_db") or {}).get("min")
    if isinstance(ld_all, (int, float)) and np.isfinite(ld_all):
        kw["floor_db"] = float(min(ld_all, -60.0))
    return Expression(**kw, missing=tuple(dict.fromkeys(missing)))
