"""Note-level statistics of a dataset: how the instrument attacks, holds, releases and bends.

:func:`note_statistics` segments the notes of frame-rate features (f0, its confidence and
loudness, as ``ddsp prepare`` computes them) and summarises what a MIDI performance needs to
sound like the training data (:mod:`ddsp_models.midi.expression` reads the result):

* **attack** (``attack_s``): from the start of a note's rise to within 3 dB of its early peak
  (the maximum over its first 0.5 s);
* **held against peak** (``held_minus_peak_db``): the median loudness of the middle 60 % of a
  note minus that peak (dB, usually negative);
* **release** (``release_s``): from the last frame of a note's held part (within 3 dB of the
  held level) to 30 dB below it, for notes followed by silence;
* **dynamic range** (``peak_db``): the distribution of note peaks (101 quantiles), onto which
  MIDI velocities are mapped;
* **vibrato** (``vibrato_rate_hz``, ``vibrato_depth_cents`` = peak deviation,
  ``vibrato_onset_s`` = delay before a linear ``vibrato_ramp_s`` fade-in, ``vibrato_fraction`` =
  share of notes of 0.6 s or longer with a depth of at least 5 cents): the pitch in cents
  band-passed to 3-9 Hz, its zero crossings and Hilbert envelope;
* **glides** (``onset_glide_cents``/``onset_glide_s``: the pitch offset 8-20 ms into an attacked
  note and the time until it is within 10 cents of the note; ``legato_glide_s``: the time a
  pitch change without a re-attack takes, from 15 % to 85 % of the interval).

Segmentation: frames with confidence ``>= confidence_threshold`` and loudness above
``floor_db`` form voiced runs; a run is split at deep loudness dips (a re-attack: at least
``dip_db`` below the maxima on both sides within 0.15 s), then wherever the median-smoothed
pitch leaves the running note by more than 0.6 semitone for 40 ms (a legato change; wider
than any vibrato of the data).

Every summary is ``{"count", "median", "mean", "q10", "q25", "q75", "q90"}`` (``None`` values
when nothing was measured). The dict is JSON-ready; ``ddsp prepare`` stores it under the key
``"notes"`` of ``stats.json``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["note_statistics", "segment_notes", "NOTE_STATS_VERSION", "summary"]

NOTE_STATS_VERSION = 1
_LEVELS = np.linspace(0.0, 1.0, 101)
VIBRATO_RAMP_S = 0.2


def summary(values, quantiles: bool = False) -> dict:
    """``{count, median, mean, q10, q25, q75, q90}`` of ``values`` (+ 101 ``quantiles``)."""
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], np.float64)
    keys = ("median", "mean", "q10", "q25", "q75", "q90")
    if x.size == 0:
        out = {"count": 0, **{k: None for k in keys}}
        if quantiles:
            out["quantiles"] = []
        return out
    q = np.quantile(x, [0.5, 0.1, 0.25, 0.75, 0.9])
    out = {"count": int(x.size), "median": float(q[0]), "mean": float(x.mean()),
           "q10": float(q[1]), "q25": float(q[2]), "q75": float(q[3]), "q90": float(q[4])}
    if quantiles:
        out["quantiles"] = [float(v) for v in np.quantile(x, _LEVELS)]
    return out


def _median_filter(x: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or x.size < 3:
        return x.copy()
    from scipy.ndimage import median_filter

    return median_filter(x, size=width, mode="nearest")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of the True runs of a 1-D bool array."""
    m = np.concatenate([[False], mask, [False]]).astype(np.int8)
    d = np.diff(m)
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def segment_notes(
    midi: np.ndarray,
    loudness_db: np.ndarray,
    voiced: np.ndarray,
    frame_rate: float,
    dip_db: float = 6.0,
    min_frames: int = 5,
    step: float = 0.6,
) -> list[tuple[int, int, str]]:
    """Notes as ``(start, stop, kind)`` frame ranges; ``kind`` is ``"attack"`` (after silence
    or a loudness dip) or ``"legato"`` (a pitch change without a dip). See the module doc."""
    notes: list[tuple[int, int, str]] = []
    w = max(1, int(round(0.15 * frame_rate)))
    persist = max(2, int(round(0.04 * frame_rate)))
    smooth = _median_filter(midi, max(3, int(round(0.036 * frame_rate)) | 1))
    for a, b in _runs(voiced):
        if b - a < min_frames:
            continue
        ld = loudness_db[a:b]
        # deep local minima: re-attacks on the same or another pitch
        cuts = [0]
        n = b - a
        i = 1
        while i < n - 1:
            lo, hi = max(0, i - w), min(n, i + w + 1)
            if (ld[i] <= ld[lo:hi].min() + 1e-9 and ld[lo:i].max() - ld[i] >= dip_db
                    and ld[i + 1:hi].max() - ld[i] >= dip_db and i - cuts[-1] >= min_frames):
                cuts.append(i)
                i += w
                continue
            i += 1
        cuts.append(n)
        for c0, c1 in zip(cuts[:-1], cuts[1:]):
            kind = "attack"
            s = smooth[a + c0: a + c1]
            start = 0
            j = 0
            while j < s.size:
                ref = np.median(s[start: max(start + 1, j)])
                if abs(s[j] - ref) > step and j - start >= min_frames:
                    end = min(s.size, j + persist)
                    if np.all(np.abs(s[j:end] - ref) > step) and end - j == persist:
                        notes.append((a + c0 + start, a + c0 + j, kind))
                        kind, start = "legato", j
                j += 1
            if s.size - start >= min_frames:
                notes.append((a + c0 + start, a + c0 + s.size, kind))
    # a fragment shorter than 60 ms before an adjoining note is that note's start (the pitch
    # of a re-attack settles after the loudness dip)
    short = max(min_frames, int(round(0.06 * frame_rate)))
    merged: list[tuple[int, int, str]] = []
    for k, (a, b, kind) in enumerate(notes):
        if merged and merged[-1][1] == a and merged[-1][1] - merged[-1][0] < short:
            a0, _, kind0 = merged.pop()
            a, kind = a0, kind0
        merged.append((a, b, kind))
    return merged


def _one_file(f0, conf, ld, frame_rate, threshold, floor_db, acc: dict) -> None:
    from scipy.signal import butter, hilbert, sosfiltfilt

    fr = float(frame_rate)
    voiced = (conf >= threshold) & (f0 > 0) & (ld > floor_db)
    midi = np.where(f0 > 0, 12.0 * np.log2(np.maximum(f0, 1e-6) / 440.0) + 69.0, 0.0)
    notes = segment_notes(midi, ld, voiced, fr)
    sos = butter(2, [3.0, 9.0], btype="band", fs=fr, output="sos") if fr > 20 else None
    n = ld.size
    for k, (a, b, kind) in enumerate(notes):
        dur = (b - a) / fr
        acc["duration"].append(dur)
        if dur < 0.1:
            continue
        pitch = float(np.median(midi[a:b]))
        early = ld[a: a + max(1, min(b - a, int(0.5 * fr)))]
        peak = float(early.max())
        mid = ld[a + int(0.2 * (b - a)): a + int(0.8 * (b - a)) + 1]
        held = float(np.median(mid))
        acc["held_minus_peak"].append(held - peak)
        acc["held"].append(held)
        if kind == "attack":
            acc["n_attack"] += 1
            acc["peak"].append(peak)
            # the rise starts at the last local minimum before the note (at most 0.1 s back)
            a0 = a
            while a0 > 0 and a - a0 < int(0.1 * fr) and ld[a0 - 1] < ld[a0]:
                a0 -= 1
            reach = np.flatnonzero(ld[a0: a + early.size] >= peak - 3.0)
            if reach.size:
                acc["attack"].append(reach[0] / fr)
            dev = 100.0 * (midi[a:b] - pitch)
            if dur >= 0.2:
                # 8-20 ms in: the tracker's own onset transient (its window straddles the
                # silence before) is skipped
                k0, k1 = int(round(0.008 * fr)), max(int(round(0.008 * fr)) + 1, int(0.02 * fr))
                first = float(np.median(dev[k0:k1]))
                acc["onset_cents"].append(first)
                settled = np.flatnonzero(np.abs(dev[: int(0.15 * fr)]) < 10.0)
                acc["onset_s"].append((settled[0] if settled.size else int(0.15 * fr)) / fr)
        else:
            acc["n_legato"] += 1
            pa = notes[k - 1]
            if k > 0 and pa[1] == a:
                p_old = float(np.median(midi[pa[0]:pa[1]]))
                span = pitch - p_old
                if abs(span) >= 0.5:
                    lo, hi = max(pa[0], a - int(0.3 * fr)), min(b, a + int(0.3 * fr))
                    frac = (midi[lo:hi] - p_old) / span
                    leave = np.flatnonzero(frac < 0.15)
                    arrive = np.flatnonzero(frac > 0.85)
                    if leave.size and arrive.size:
                        i0 = leave[leave < (arrive[0] if arrive.size else hi)]
                        if i0.size:
                            acc["legato"].append(max(1, arrive[0] - i0[-1]) / fr)
        # release: only where silence follows the note
        followed = b >= n or not voiced[b: b + int(0.05 * fr)].any() or (
            k + 1 < len(notes) and notes[k + 1][2] == "attack")
        if followed:
            above = np.flatnonzero(ld[a:b] >= held - 3.0)
            if above.size:
                s_end = a + int(above[-1])
                nxt = notes[k + 1][0] if k + 1 < len(notes) else n
                stop = min(n, max(nxt, b) + int(0.05 * fr), s_end + int(1.5 * fr))
                below = np.flatnonzero(ld[s_end:stop] <= held - 30.0)
                if below.size:
                    acc["release"].append(below[0] / fr)
        # vibrato on notes of 0.6 s or longer
        if sos is not None and dur >= 0.6:
            cents = 100.0 * (midi[a:b] - pitch)
            edge = int(0.05 * fr)
            try:
                band = sosfiltfilt(sos, cents)
            except ValueError:  # too short for the filter's padding
                continue
            env = np.abs(hilbert(band))
            core = slice(edge, band.size - edge)
            late = env[band.size // 2: band.size - edge]
            depth = float(np.median(late)) if late.size else 0.0
            acc["n_long"] += 1
            if depth >= 5.0:
                acc["n_vibrato"] += 1
                acc["depth"].append(depth)
                seg = band[core]
                zc = np.flatnonzero(np.signbit(seg[1:]) != np.signbit(seg[:-1]))
                if zc.size >= 3:
                    acc["rate"].append((zc.size - 1) / 2.0 / ((zc[-1] - zc[0]) / fr))
                # the last frame of the first half still below half the depth: the fade-in's
                # middle (a pitch transient at the very start is skipped this way)
                low = np.flatnonzero(env[edge: band.size // 2] < 0.5 * depth)
                start = (low[-1] + 1 + edge) if low.size else edge
                acc["vib_onset"].append(max(0.0, start / fr - VIBRATO_RAMP_S / 2))


def note_statistics(
    f0_hz: np.ndarray | Sequence[np.ndarray],
    confidence: np.ndarray | Sequence[np.ndarray],
    loudness_db: np.ndarray | Sequence[np.ndarray],
    frame_rate: float,
    confidence_threshold: float = 0.7,
    floor_db: float = -60.0,
) -> dict:
    """Note-level statistics (see the module docstring) of one file's frame features or of
    lists of per-file arrays.

    Args:
        f0_hz: ``(frames,)`` Hz per file (unvoiced frames may hold anything).
        confidence: ``(frames,)`` f0 confidence in ``[0, 1]``.
        loudness_db: ``(frames,)`` dB (A-weighted, as :func:`ddsp_models.features.compute_loudness`).
        frame_rate: frames per second.
        confidence_threshold: voiced frames have at least this confidence.
        floor_db: frames at or below this loudness are silence.

    Returns:
        A JSON-ready dict (``version``, counts, and the summaries of the module docstring).
    """
    if isinstance(f0_hz, np.ndarray) or (len(f0_hz) and np.isscalar(f0_hz[0])):
        f0_hz, confidence, loudness_db = [f0_hz], [confidence], [loudness_db]
    if not (len(f0_hz) == len(confidence) == len(loudness_db)):
        raise ValueError("f0_hz, confidence and loudness_db must list the same files")
    keys = ("duration", "held_minus_peak", "held", "peak", "attack", "onset_cents", "onset_s",
            "legato", "release", "depth", "rate", "vib_onset")
    acc: dict = {k: [] for k in keys}
    acc.update(n_attack=0, n_legato=0, n_long=0, n_vibrato=0)
    for f, c, ld in zip(f0_hz, confidence, loudness_db):
        f = np.asarray(f, np.float64).ravel()
        c = np.asarray(c, np.float64).ravel()
        ld = np.asarray(ld, np.float64).ravel()
        if not (f.shape == c.shape == ld.shape):
            raise ValueError(f"f0 ({f.shape}), confidence ({c.shape}) and loudness "
                             f"({ld.shape}) must hold the same frames")
        _one_file(f, c, ld, frame_rate, confidence_threshold, floor_db, acc)
    return {
        "version": NOTE_STATS_VERSION,
        "frame_rate": float(frame_rate),
        "confidence_threshold": float(confidence_threshold),
        "n_notes": len(acc["duration"]),
        "n_attacked": acc["n_attack"],
        "n_legato": acc["n_legato"],
        "note_duration_s": summary(acc["duration"]),
        "attack_s": summary(acc["attack"]),
        "release_s": summary(acc["release"]),
        "held_minus_peak_db": summary(acc["held_minus_peak"]),
        "held_db": summary(acc["held"]),
        "peak_db": summary(acc["peak"], quantiles=True),
        "vibrato_rate_hz": summary(acc["rate"]),
        "vibrato_depth_cents": summary(acc["depth"]),
        "vibrato_onset_s": summary(acc["vib_onset"]),
        "vibrato_ramp_s": VIBRATO_RAMP_S,
        "vibrato_fraction": (acc["n_vibrato"] / acc["n_long"]) if acc["n_long"] else None,
        "onset_glide_cents": summary(acc["onset_cents"]),
        "onset_glide_s": summary(acc["onset_s"]),
        "legato_glide_s": summary(acc["legato"]),
    }
