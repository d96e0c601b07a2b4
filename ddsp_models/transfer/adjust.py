"""Auto-adjust: bring the input's pitch and loudness into the range a model was trained on.

Follows the semantics of DDSP's timbre-transfer demo (magenta/ddsp ``colab_utils``):

1. **Note detection** (:func:`detect_notes`): a frame is "on" when its smoothed squared f0
   confidence times its loudness above a floor (``loudness_db - min_db``) reaches the same
   product for the file's mean loudness at confidence ``confidence_threshold``. The ratio of
   the two, ``note_on_ratio``, says how clearly a frame is a note.
2. **Octave shift** (:func:`octave_shift`): the mean pitch (MIDI) of the note-on frames is
   compared with the mean pitch of the training data's voiced frames; f0 moves by the whole
   number of octaves nearest to the difference.
3. **Loudness quantile mapping** (:func:`quantile_map`): the note-on frames' loudness
   distribution is mapped onto the training data's voiced-frame distribution: each frame's
   loudness is replaced by the training quantile at the level where the input's own
   distribution puts it (piecewise linear between 101 quantiles; clipped at the ends).
4. **Quieting** the other frames: ``loudness -= quiet_db * (1 - note_on_ratio)`` on note-off
   frames, so breaths, noise and silence between notes are not played loudly.

Statistics come from the model's ``stats.json`` (:func:`ddsp_models.data.stats.compute_stats`:
``pitch_midi`` and ``loudness_db_voiced`` summaries with 101 ``quantiles``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["detect_notes", "octave_shift", "quantile_map", "auto_adjust", "Adjustment"]


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average of ``width`` frames, centred, zero-padded at the ends (DDSP's smooth)."""
    if width <= 1 or x.size == 0:
        return x
    kernel = np.ones(width) / width
    # "full" then the centred slice: np.convolve(mode="same") returns max(len(x), width)
    # values, longer than x for a clip shorter than the kernel
    full = np.convolve(x, kernel, mode="full")
    start = (width - 1) // 2
    return full[start: start + x.size]


def detect_notes(
    loudness_db: np.ndarray,
    confidence: np.ndarray,
    frame_rate: float,
    smoothing_seconds: float = 0.16,
    confidence_threshold: float = 0.7,
    exponent: float = 2.0,
    min_db: float = -120.0,
    note_threshold: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(mask_on, note_on_ratio)`` per frame (see the module docstring, step 1).

    ``note_threshold`` is the note/silence decision: a frame is a note when its ratio reaches
    it (1.0, the default, is DDSP's; higher keeps only clearer notes, lower plays quieter or
    breathier frames too). ``--note-threshold`` in ``ddsp transfer``."""
    ld = np.asarray(loudness_db, np.float64)
    conf = np.asarray(confidence, np.float64)
    width = max(1, int(round(smoothing_seconds * frame_rate)))
    level = _smooth(conf ** exponent, width) * (ld - min_db)
    reference = (ld.mean() - min_db) * confidence_threshold ** exponent
    ratio = level / max(reference, 1e-12)
    return ratio >= note_threshold, ratio


def octave_shift(pitch_midi: np.ndarray, mask_on: np.ndarray, target_mean_midi: float) -> int:
    """Whole octaves to add to the note-on frames' pitch to bring its mean nearest to
    ``target_mean_midi``; 0 if no frame is on."""
    if not np.any(mask_on):
        return 0
    diff = float(target_mean_midi) - float(np.mean(np.asarray(pitch_midi)[mask_on]))
    return int(np.round(diff / 12.0))


def quantile_map(x: np.ndarray, mask_on: np.ndarray, target_quantiles, levels=None) -> np.ndarray:
    """Map every value of ``x`` through the note-on frames' empirical CDF, then through the
    inverse of the target distribution given by its ``target_quantiles`` at ``levels``
    (default evenly spaced 0..1)."""
    x = np.asarray(x, np.float64)
    tq = np.asarray(target_quantiles, np.float64)
    levels = np.linspace(0.0, 1.0, len(tq)) if levels is None else np.asarray(levels, np.float64)
    src = x[np.asarray(mask_on, bool)]
    if src.size == 0:
        return x.copy()
    sq = np.quantile(src, levels)
    # Ties in the source quantiles (e.g. a constant loudness) would make the CDF a step:
    # average the levels over each run of equal values.
    uniq, inv = np.unique(sq, return_inverse=True)
    lv = np.bincount(inv, weights=levels) / np.bincount(inv)
    if uniq.size == 1:
        u = np.full_like(x, lv[0])
    else:
        u = np.interp(x, uniq, lv)  # clipped to [0, 1] at the ends
    return np.interp(u, levels, tq)


@dataclass
class Adjustment:
    """What :func:`auto_adjust` did: octaves added, frames on, and the adjusted features."""

    octaves: int
    mask_on: np.ndarray
    note_on_ratio: np.ndarray
    f0_hz: np.ndarray
    loudness_db: np.ndarray
    notes: list = field(default_factory=list)


def auto_adjust(
    f0_hz: np.ndarray,
    confidence: np.ndarray,
    loudness_db: np.ndarray,
    stats: dict,
    frame_rate: float,
    quiet_db: float = 20.0,
    **note_kwargs,
) -> Adjustment:
    """Steps 1-4 of the module docstring. Missing parts of ``stats`` skip their step (listed
    in ``Adjustment.notes``)."""
    f0 = np.asarray(f0_hz, np.float64)
    ld = np.asarray(loudness_db, np.float64)
    mask_on, ratio = detect_notes(ld, confidence, frame_rate, **note_kwargs)
    notes = []
    pitch = stats.get("pitch_midi") or {}
    octaves = 0
    if pitch.get("mean") is not None:
        midi = 12.0 * np.log2(np.maximum(f0, 1e-6) / 440.0) + 69.0
        octaves = octave_shift(midi, mask_on, pitch["mean"])
    else:
        notes.append("no pitch statistics: octave shift skipped")
    f0 = f0 * 2.0 ** octaves
    loud = stats.get("loudness_db_voiced") or {}
    if not loud.get("quantiles"):
        loud = stats.get("loudness_db") or {}
    if loud.get("quantiles"):
        levels = stats.get("quantile_levels")
        out = quantile_map(ld, mask_on, loud["quantiles"], levels)
    else:
        notes.append("no loudness quantiles: loudness mapping skipped")
        out = ld.copy()
    off = ~mask_on
    out[off] -= quiet_db * (1.0 - np.clip(ratio[off], 0.0, 1.0))
    if not np.any(mask_on):
        notes.append("no note detected: loudness only lowered")
    return Adjustment(octaves, mask_on, ratio, f0, out, notes)
