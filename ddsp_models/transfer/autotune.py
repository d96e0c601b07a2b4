"""Autotune: move each voiced frame's pitch toward the nearest degree of a scale.

* :func:`parse_scale` reads a scale name: ``"chromatic"`` (every semitone), ``"major"`` or
  ``"minor"`` (tonic detected from the input), or a key such as ``"C#minor"``, ``"Bb major"``,
  ``"f#-minor"``, ``"Eb"`` (major when the mode is left out).
* :func:`detect_key` finds the key of a pitch track: a duration-weighted histogram of the
  voiced frames' pitch classes is correlated with the 24 rotations of the Krumhansl–Kessler
  key profiles (probe-tone ratings of how well each pitch class fits a major / minor key);
  the best correlation wins.
* :func:`autotune` snaps: with ``m`` the frame's pitch in MIDI and ``s`` the nearest scale
  degree (any octave), the new pitch is ``m + amount * (s - m)``: 0 leaves f0 unchanged, 1 puts
  every voiced frame exactly on the scale, 0.5 halves each frame's distance to it. Unvoiced
  frames are left alone. The scale is tuned to A4 = 440 Hz.

The timbre-transfer notebook of magenta/ddsp offered the same control (an amount between
"off" and "fully snapped" with the key found from the input); this is a re-implementation of
that idea with a standard key-finding method.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InvalidInputError

__all__ = ["SCALES", "Scale", "parse_scale", "detect_key", "resolve_scale", "autotune",
           "hz_to_midi", "midi_to_hz"]

#: Scale name → semitones above the tonic.
SCALES: dict[str, tuple[int, ...]] = {
    "chromatic": tuple(range(12)),
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),  # natural minor
}

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_LETTERS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}

# Krumhansl & Kessler (1982) probe-tone profiles, tonic first.
_PROFILE = {
    "major": np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]),
    "minor": np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]),
}


@dataclass(frozen=True)
class Scale:
    """A scale: ``tonic`` pitch class (0 = C; None = still to detect) and ``mode``
    (``"chromatic"``, ``"major"`` or ``"minor"``)."""

    tonic: int | None
    mode: str
    #: the tonic as the user spelled it (``"Bb"``); default: sharps (``"A#"``)
    spelling: str | None = field(default=None, compare=False)

    @property
    def pitch_classes(self) -> np.ndarray:
        """The scale's pitch classes (0..11), sorted; needs a tonic unless chromatic."""
        if self.mode == "chromatic":
            return np.arange(12)
        if self.tonic is None:
            raise ValueError("the scale's tonic is not known yet: detect_key() first")
        return np.sort((self.tonic + np.array(SCALES[self.mode])) % 12)

    @property
    def name(self) -> str:
        """``"chromatic"``, ``"major"`` (tonic unknown) or e.g. ``"C# minor"``."""
        if self.mode == "chromatic" or self.tonic is None:
            return self.mode
        return f"{self.spelling or NOTE_NAMES[self.tonic]} {self.mode}"


def parse_scale(scale: str | None) -> Scale:
    """``None`` (detect key and mode), ``"chromatic"``, ``"major"``, ``"minor"``, or a key:
    a letter A-G, optional ``#``/``b`` (or ``sharp``/``flat``), optional separator and a mode
    (``major``/``maj``/``minor``/``min``/``m``; default major). Case and spaces are ignored.
    Raises :class:`~ddsp_models.errors.InvalidInputError` for anything else."""
    if scale is None:
        return Scale(None, "auto")
    s = str(scale).strip().lower().replace(" ", "").replace("-", "").replace("_", "")
    if s in ("chromatic", "major", "minor"):
        return Scale(None, s)
    if s == "auto":
        return Scale(None, "auto")
    bad = InvalidInputError(
        f"unknown scale {scale!r}: use chromatic, major, minor (key detected) or a key such as "
        "C#minor, Bbmajor, A minor")
    if not s or s[0] not in _LETTERS:
        raise bad
    pc, rest, accidental = _LETTERS[s[0]], s[1:], ""
    for token, step in (("sharp", 1), ("flat", -1), ("#", 1), ("♯", 1), ("♭", -1), ("b", -1)):
        if rest.startswith(token):
            pc, rest, accidental = pc + step, rest[len(token):], "#" if step > 0 else "b"
            break
    modes = {"": "major", "major": "major", "maj": "major", "minor": "minor", "min": "minor",
             "m": "minor"}
    if rest not in modes:
        raise bad
    return Scale(pc % 12, modes[rest], s[0].upper() + accidental)


def hz_to_midi(f0_hz) -> np.ndarray:
    """Hz → MIDI note number (A4 = 440 Hz = 69), float64."""
    return 69.0 + 12.0 * np.log2(np.maximum(np.asarray(f0_hz, np.float64), 1e-6) / 440.0)


def midi_to_hz(midi) -> np.ndarray:
    """MIDI note number → Hz, float64."""
    return 440.0 * 2.0 ** ((np.asarray(midi, np.float64) - 69.0) / 12.0)


def _histogram(f0_hz: np.ndarray, weights: np.ndarray) -> np.ndarray:
    pc = np.round(hz_to_midi(f0_hz)).astype(np.int64) % 12
    return np.bincount(pc, weights=weights, minlength=12)[:12]


def detect_key(f0_hz, voiced=None, weights=None, modes=("major", "minor")) -> tuple[Scale, float]:
    """The key of a pitch track and its correlation with the chosen profile.

    Args:
        f0_hz: ``(frames,)`` Hz.
        voiced: ``(frames,)`` bool; only these frames count (default: all).
        weights: ``(frames,)`` non-negative weight per frame (e.g. confidence; default 1).
        modes: the modes to consider (``("major",)`` to find the tonic of a major scale).

    Returns:
        ``(Scale(tonic, mode), r)`` with ``r`` the Pearson correlation (-1..1). With no voiced
        frame: ``(Scale(0, modes[0]), 0.0)``.
    """
    f0 = np.asarray(f0_hz, np.float64).reshape(-1)
    w = np.ones_like(f0) if weights is None else np.asarray(weights, np.float64).reshape(-1)
    if voiced is not None:
        w = w * np.asarray(voiced, bool).reshape(-1)
    w = np.where(np.isfinite(f0) & (f0 > 0), w, 0.0)
    if not w.sum() > 0:
        return Scale(0, modes[0]), 0.0
    hist = _histogram(np.where(f0 > 0, f0, 1.0), w)
    if np.ptp(hist) == 0:  # every pitch class equally used: no key to find
        return Scale(0, modes[0]), 0.0
    best = (-2.0, 0, modes[0])
    for mode in modes:
        prof = _PROFILE[mode]
        for tonic in range(12):
            r = float(np.corrcoef(hist, np.roll(prof, tonic))[0, 1])
            if r > best[0]:
                best = (r, tonic, mode)
    return Scale(best[1], best[2]), best[0]


def resolve_scale(scale: str | Scale | None, f0_hz, voiced=None, weights=None) -> Scale:
    """A :class:`Scale` with a known tonic: ``scale`` parsed, its tonic (and, for ``None``,
    its mode) detected from the voiced frames of ``f0_hz`` when not given."""
    sc = scale if isinstance(scale, Scale) else parse_scale(scale)
    if sc.mode == "chromatic" or sc.tonic is not None:
        return sc
    modes = ("major", "minor") if sc.mode == "auto" else (sc.mode,)
    return detect_key(f0_hz, voiced, weights, modes)[0]


def autotune(f0_hz, voiced, amount: float, scale: Scale) -> np.ndarray:
    """Move voiced frames' pitch ``amount`` (0..1) of the way to the nearest scale degree.

    Args:
        f0_hz: ``(frames,)`` Hz (positive).
        voiced: ``(frames,)`` bool: frames to tune; the others are returned unchanged.
        amount: 0 = unchanged, 1 = exactly on the scale.
        scale: a :class:`Scale` with a known tonic (see :func:`resolve_scale`).

    Returns:
        ``(frames,)`` float64 Hz.
    """
    amount = float(amount)
    if not 0.0 <= amount <= 1.0:
        raise InvalidInputError(f"autotune amount must be between 0 (off) and 1 (snapped to the "
                                f"scale), got {amount}")
    f0 = np.asarray(f0_hz, np.float64).reshape(-1)
    if amount == 0.0:
        return f0.copy()
    midi = hz_to_midi(f0)
    pcs = scale.pitch_classes.astype(np.float64)
    # candidate degrees in the octave below, of and above each frame's pitch
    octave = np.floor(midi / 12.0) * 12.0
    cand = (octave[:, None] + np.concatenate([pcs - 12, pcs, pcs + 12])[None, :])
    nearest = cand[np.arange(midi.shape[0]), np.abs(cand - midi[:, None]).argmin(1)]
    target = midi + amount * (nearest - midi)
    on = np.asarray(voiced, bool).reshape(-1)
    return np.where(on, midi_to_hz(target), f0)
