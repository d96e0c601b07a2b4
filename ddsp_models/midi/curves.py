"""Frame-rate f0 and loudness curves of one voice, from its phrases and the part's controls.

:func:`voice_curves` returns ``f0_hz`` and ``loudness_db`` ``(frames,)`` at the model's frame
rate (frame ``k`` is time ``k / frame_rate``). For each phrase (see :mod:`.voices`):

* **pitch** (semitones): each note's pitch (+ a small seeded detune), joined at legato
  boundaries by a raised-cosine glide of ``legato_glide_s`` centred on the boundary (at most
  half of either note); the phrase's first note starts ``onset_glide_cents`` off and settles
  over ``onset_glide_s``; **vibrato** per note (a seeded share ``vibrato_fraction`` of the
  notes, every note when the channel sends CC 1): a sine of ``vibrato_rate_hz`` (±5 % seeded)
  and peak depth ``vibrato_depth_cents`` × ``vibrato_depth`` × CC 1 / 64 (CC 1 absent: 1),
  silent for ``vibrato_onset_s`` then faded in linearly over ``vibrato_ramp_s``; **pitch bend**
  (semitones, the part's bend range already applied) is added as sent.
* **loudness** (dB): the first note rises from silence to its velocity's peak
  (:meth:`.Expression.velocity_db`, ± a seeded 0.5 dB) with a linear-amplitude ramp of
  ``attack_s`` (its -30 dB point lies within 3 % of the attack after the onset), falls to the
  held level (peak + ``held_minus_peak_db``) over ``decay_s`` and holds; a legato note moves
  from the previous held level to its own over the glide (no dip); after the last note the
  level falls linearly in dB at ``30 / release_s`` dB/s to ``floor_db``; CC 7 (volume) adds
  ``40 log10(value / 100)`` dB (0 dB at its default 100) and CC 11 (expression)
  ``40 log10(value / 127)`` dB (the General MIDI law), both smoothed over 20 ms.

Between phrases the voice is silent (``floor_db``) and its f0 already holds the next phrase's
first pitch, so no glide is heard from silence.
"""

from __future__ import annotations

import numpy as np

from .expression import Expression
from .score import Note, Part

__all__ = ["voice_curves", "release_seconds", "control_curve", "midi_to_hz", "ChannelControls"]


def midi_to_hz(midi):
    """MIDI pitch (float semitones) → Hz (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((np.asarray(midi, np.float64) - 69.0) / 12.0)


def release_seconds(level_db: float, expr: Expression) -> float:
    """Seconds for a released level to fall to ``expr.floor_db``."""
    slope = 30.0 / max(expr.release_s, 1e-3)
    return max(0.0, (level_db - expr.floor_db) / slope)


def control_curve(events: list[tuple[float, float]], t: np.ndarray, default: float,
                  smooth_frames: int = 1) -> np.ndarray:
    """Step-hold curve of ``(time, value)`` events at times ``t`` (``default`` before the
    first), optionally smoothed by a moving average of ``smooth_frames`` frames."""
    if not events:
        return np.full(t.shape, float(default))
    times = np.asarray([e[0] for e in events], np.float64)
    values = np.asarray([default] + [e[1] for e in events], np.float64)
    out = values[np.searchsorted(times, t, side="right")]
    if smooth_frames > 1 and out.size > smooth_frames:
        k = np.ones(smooth_frames) / smooth_frames
        pad = np.concatenate([np.full(smooth_frames - 1, out[0]), out])
        out = np.convolve(pad, k, mode="valid")
    return out


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * x)


def _gain_db(values: np.ndarray) -> np.ndarray:
    return 40.0 * np.log10(np.maximum(values, 1e-3) / 127.0)


class ChannelControls:
    """Per-channel frame curves of a part at times ``t`` (s): ``get(channel)`` →
    ``(CC 1 factor or None, CC 7 + CC 11 gain in dB, bend in semitones)``, computed once."""

    def __init__(self, part: Part, t: np.ndarray, frame_rate: float):
        self.t = t
        self.cache: dict[int, tuple] = {}
        self.parts = {part.channel: part}
        self.smooth = max(1, int(round(0.02 * frame_rate)))

    def get(self, channel: int):
        if channel not in self.cache:
            p = self.parts.get(channel)
            t = self.t
            if p is None:
                self.cache[channel] = (None, np.zeros_like(t), np.zeros_like(t))
            else:
                mod = (control_curve(p.controls[1], t, 0.0, self.smooth) / 64.0
                       if p.controls.get(1) else None)
                gain = (_gain_db(control_curve(p.controls.get(7, []), t, 100.0, self.smooth))
                        - _gain_db(np.array(100.0)) if p.controls.get(7) else np.zeros_like(t))
                if p.controls.get(11):
                    gain = gain + _gain_db(control_curve(p.controls[11], t, 127.0, self.smooth))
                bend = control_curve(p.bend, t, 0.0, 1)
                self.cache[channel] = (mod, gain, bend)
        return self.cache[channel]


def voice_curves(
    phrases: list[list[Note]],
    part: Part,
    n_frames: int,
    frame_rate: float,
    expr: Expression,
    rng: np.random.Generator,
    vibrato_depth: float = 1.0,
    pitch_offset: dict | None = None,
    controls: "ChannelControls | None" = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(f0_hz, loudness_db)``, each ``(n_frames,)`` float64, of one voice (module doc).

    Args:
        phrases: the voice's phrases (from :func:`~.voices.allocate_voices`), seconds.
        part: the part the notes belong to (its controls and bend by channel).
        expr: the model's :class:`~.expression.Expression`.
        rng: the seeded source of the small random variations.
        vibrato_depth: scales every vibrato (0 = none).
        pitch_offset: ``{id(note): semitones}`` added to a note's pitch (octave transposition).
        controls: the part's :class:`ChannelControls` at these frames (shared by its voices;
            built when omitted).
    """
    fr = float(frame_rate)
    t = np.arange(n_frames, dtype=np.float64) / fr
    ctl = controls if controls is not None else ChannelControls(part, t, fr)
    pitch = np.full(n_frames, np.nan)
    loud = np.full(n_frames, expr.floor_db)
    offsets = pitch_offset or {}
    for phrase in phrases:
        p_start = phrase[0].start
        first = int(np.floor(p_start * fr))
        first = max(0, min(first, n_frames - 1))
        last_note = phrase[-1]
        notes_p = [n.pitch + offsets.get(id(n), 0.0) + rng.normal(0.0, 2.0) / 100.0
                   for n in phrase]
        peaks = [float(expr.velocity_db(n.velocity)) + rng.normal(0.0, 0.5) for n in phrase]
        helds = [pk + expr.held_minus_peak_db for pk in peaks]
        end_level = helds[-1]
        stop_t = last_note.end + release_seconds(end_level, expr)
        stop = min(n_frames, int(np.ceil(stop_t * fr)) + 1)
        sl = slice(first, stop)
        tt = t[sl]
        # ---- pitch: steps, legato glides, onset glide
        semis = np.full(tt.shape, notes_p[0])
        for k in range(1, len(phrase)):
            b = phrase[k].start
            g = min(expr.legato_glide_s, 0.5 * phrase[k - 1].duration, 0.5 * phrase[k].duration)
            g = max(g, 1e-3)
            w = _smoothstep((tt - (b - g / 2)) / g)
            semis = semis + (notes_p[k] - notes_p[k - 1]) * w
        if expr.onset_glide_cents and expr.onset_glide_s > 0:
            x = (tt - p_start) / expr.onset_glide_s
            semis = semis + expr.onset_glide_cents / 100.0 * (1.0 - _smoothstep(x)) * (x >= 0)
        # ---- vibrato, per note
        for k, n in enumerate(phrase):
            mod, _, _ = ctl.get(n.channel)
            if mod is None and rng.random() >= expr.vibrato_fraction:
                continue
            depth = expr.vibrato_depth_cents * vibrato_depth * rng.uniform(0.9, 1.1)
            if depth <= 0:
                continue
            rate = expr.vibrato_rate_hz * rng.uniform(0.95, 1.05)
            n_end = phrase[k + 1].start if k + 1 < len(phrase) else stop_t
            x = tt - n.start
            inside = (x >= 0) & (tt < n_end)
            ramp = np.clip((x - expr.vibrato_onset_s) / max(expr.vibrato_ramp_s, 1e-3), 0, 1)
            scale = ramp if mod is None else ramp * mod[sl]
            semis = semis + inside * depth / 100.0 * scale * np.sin(2 * np.pi * rate * x)
        # ---- loudness
        level = np.full(tt.shape, helds[0])
        x = tt - p_start
        amp = np.clip(x / max(expr.attack_s, 1e-3), 0.0, 1.0)
        attack_db = 20.0 * np.log10(np.maximum(1.0 - (1.0 - amp) ** 2, 1e-6))
        decay = _smoothstep((x - expr.attack_s) / max(expr.decay_s, 1e-3))
        level = peaks[0] + (helds[0] - peaks[0]) * decay
        level = np.where(x < expr.attack_s, peaks[0] + attack_db, level)
        for k in range(1, len(phrase)):
            b = phrase[k].start
            g = max(min(expr.legato_glide_s, 0.5 * phrase[k].duration), 1e-3)
            level = level + (helds[k] - helds[k - 1]) * _smoothstep((tt - b) / g)
        rel = tt - last_note.end
        level = np.where(rel > 0, level - 30.0 / max(expr.release_s, 1e-3) * rel, level)
        gains = np.zeros(tt.shape)
        for k, n in enumerate(phrase):
            _, gain, bend = ctl.get(n.channel)
            n_end = phrase[k + 1].start if k + 1 < len(phrase) else np.inf
            inside = (tt >= (n.start if k else -np.inf)) & (tt < n_end)
            gains = np.where(inside, gain[sl], gains)
            semis = np.where(inside, semis + bend[sl], semis)
        level = np.maximum(level + gains, expr.floor_db)
        level = np.where(x < 0, expr.floor_db, level)
        attack_zone = x < expr.attack_s
        prev = loud[sl]
        loud[sl] = np.where(attack_zone, np.maximum(prev, level), level)
        pitch[sl] = semis
    # silence between phrases holds the next phrase's first pitch
    if np.all(np.isnan(pitch)):
        pitch[:] = 60.0
    idx = np.where(~np.isnan(pitch), np.arange(n_frames), n_frames)
    nxt = np.minimum.accumulate(idx[::-1])[::-1]
    filled = np.where(nxt < n_frames, pitch[np.minimum(nxt, n_frames - 1)], np.nan)
    last_valid = np.where(~np.isnan(pitch), np.arange(n_frames), -1)
    prv = np.maximum.accumulate(last_valid)
    filled = np.where(np.isnan(filled), pitch[np.maximum(prv, 0)], filled)
    pitch = np.where(np.isnan(pitch), filled, pitch)
    return midi_to_hz(pitch), loud
