"""Render a training set of a sampled instrument from MIDI melodies with FluidSynth.

Melodies come from music21's corpus (public-domain chorales, folk tunes, ...); each is
transposed into the instrument's range and written as a Standard MIDI File with expressive
performance data, then rendered by FluidSynth with the FluidR3_GM sound font:

* dynamics: note velocities follow a per-phrase arc with jitter, and an expression curve
  (CC 11) swells within each note and drifts over the phrase;
* vibrato: pitch-bend (range set to ±2 semitones through RPN 0) oscillating at 4.5–6.5 Hz,
  ±15–35 cents, faded in after the onset of notes longer than a quarter second; the
  modulation wheel (CC 1) follows the same depth.

``--style rich`` (default ``basic``, the original recipe, kept so its seeds reproduce) adds
variety: excerpts drawn evenly from every collection of the corpus and from any part, not
only the first; scales, arpeggios and long tones over the instrument's whole range
(``--melodies``); a random transposition anywhere in that range; and an articulation per
phrase: legato, détaché, staccato, accents, or a long crescendo / diminuendo over the phrase.
``--augment eq,reverb,level`` applies per file a random EQ (peaking filters and a tilt), a
synthetic room (exponentially decaying noise, RT60 0.2–1.5 s) and a random level, so a model
meets more rooms and microphones than the dry sound font has; without ``level`` each file keeps
its RMS level. ``--dry-copy DIR`` also writes each file before its augmentation to DIR, under
the same name: the pairs for input-side augmentation (``ddsp prepare DIR --features-from
OUTPUT``: features from the augmented copy, the dry audio as the target; augmentations never
change the melodies, so the same ``--seed`` without ``--augment`` renders the same dry files
too).

The output is mono (FluidSynth renders stereo; the channels are averaged), 16-bit WAV at
``--sample-rate`` (default 16 kHz; 48000 for the 48 kHz recipes), and exactly ``--minutes``
long in total: the last file is cut to fit.

Requirements (not needed by the package or its tests)::

    apt-get install -y fluidsynth fluid-soundfont-gm
    pip install music21

Usage::

    python recipes/data/render_fluidsynth.py --program 40 --minutes 10 -o data/violin-audio --seed 0
    ddsp prepare data/violin-audio -o data/violin

Programs (General MIDI, 0-based): violin 40, viola 41, cello 42, flute 73, trumpet 56,
clarinet 71, oboe 68, alto sax 65.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Note", "perform", "perform_rich", "midi_file_bytes", "transpose_into_range",
    "transpose_randomly", "exercises", "ARTICULATIONS", "RANGES", "FULL_RANGES",
    "augment", "peaking_eq", "room_ir", "to_mono", "main",
]

SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
TICKS_PER_BEAT = 480
#: Comfortable MIDI note ranges per GM program (others: C4–C6).
RANGES = {40: (55, 93), 41: (48, 84), 42: (36, 72), 73: (60, 93), 56: (55, 82),
          71: (52, 88), 68: (58, 88), 65: (49, 80)}
#: The whole playable range per GM program as FluidR3_GM renders it well (``--style rich``):
#: violin G3–E7, viola C3–E6, cello C2–A5, trumpet F#3–D6, alto sax Db3–A5, oboe Bb3–G6,
#: clarinet D3–C7, flute C4–C7 (others: C3–C6).
FULL_RANGES = {40: (55, 100), 41: (48, 88), 42: (36, 81), 56: (54, 86), 65: (49, 81),
               68: (58, 91), 71: (50, 96), 73: (60, 96)}
#: Articulations of ``perform_rich``, one per phrase.
ARTICULATIONS = ("legato", "detache", "staccato", "accents", "crescendo", "diminuendo")


@dataclass(frozen=True)
class Note:
    """One melody note: MIDI pitch, start and duration in beats."""

    pitch: int
    start: float
    duration: float


def transpose_into_range(notes: list[Note], low: int, high: int) -> list[Note]:
    """Shift by whole octaves so the melody's centre sits in the middle of ``[low, high]``,
    then fold stray notes into the range by octaves."""
    if not notes:
        return []
    centre = (min(n.pitch for n in notes) + max(n.pitch for n in notes)) / 2
    shift = 12 * round(((low + high) / 2 - centre) / 12)
    out = []
    for n in notes:
        p = n.pitch + shift
        while p < low:
            p += 12
        while p > high:
            p -= 12
        out.append(Note(p, n.start, n.duration))
    return out


def perform(notes: list[Note], tempo_bpm: float, rng: random.Random,
            vibrato: bool = True) -> list[tuple[float, bytes]]:
    """Timed MIDI channel messages (seconds, bytes) for channel 0: notes with velocities,
    expression (CC 11), modulation (CC 1) and pitch-bend vibrato."""
    spb = 60.0 / tempo_bpm
    events: list[tuple[float, bytes]] = []
    events.append((0.0, bytes([0xB0, 101, 0])))  # RPN 0 = pitch-bend range ...
    events.append((0.0, bytes([0xB0, 100, 0])))
    events.append((0.0, bytes([0xB0, 6, 2])))    # ... ±2 semitones
    events.append((0.0, bytes([0xB0, 38, 0])))
    phrase_len = rng.randint(6, 12)
    for i, note in enumerate(notes):
        t0, dur = note.start * spb, max(0.05, note.duration * spb * rng.uniform(0.9, 0.98))
        pos = (i % phrase_len) / phrase_len
        arc = math.sin(math.pi * pos)  # louder mid-phrase
        vel = int(min(127, max(20, 55 + 45 * arc + rng.gauss(0, 8))))
        base_expr = min(127, max(30, 80 + 30 * arc + rng.gauss(0, 6)))
        steps = max(2, int(dur / 0.02))
        depth_cents = rng.uniform(15, 35) if vibrato and dur > 0.25 else 0.0
        rate = rng.uniform(4.5, 6.5)
        onset = min(0.25, dur / 3)
        events.append((t0, bytes([0x90, note.pitch, vel])))
        for s in range(steps):
            t = s * dur / steps
            swell = math.sin(math.pi * min(1.0, t / dur)) ** 0.5
            expr = int(min(127, max(0, base_expr * (0.75 + 0.25 * swell))))
            events.append((t0 + t, bytes([0xB0, 11, expr])))
            fade = min(1.0, max(0.0, (t - onset) / 0.2)) if depth_cents else 0.0
            cents = depth_cents * fade * math.sin(2 * math.pi * rate * t)
            bend = 8192 + int(round(cents / 200.0 * 8191))
            bend = min(16383, max(0, bend))
            events.append((t0 + t, bytes([0xE0, bend & 0x7F, bend >> 7])))
            if s % 5 == 0:
                events.append((t0 + t, bytes([0xB0, 1, int(127 * fade * depth_cents / 35)])))
        events.append((t0 + dur, bytes([0xE0, 0x00, 0x40])))  # bend back to centre
        events.append((t0 + dur, bytes([0x80, note.pitch, 0])))
    return events


def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def midi_file_bytes(events: list[tuple[float, bytes]], program: int, tempo_bpm: float) -> bytes:
    """A format-0 Standard MIDI File: tempo, program change, then ``events`` (seconds)."""
    if not 0 <= program <= 127:
        raise ValueError(f"program must be a General MIDI program 0..127, got {program}")
    us_per_beat = int(round(60e6 / tempo_bpm))
    ticks_per_s = TICKS_PER_BEAT * tempo_bpm / 60.0
    track = bytearray()
    track += b"\x00\xff\x51\x03" + us_per_beat.to_bytes(3, "big")
    track += b"\x00" + bytes([0xC0, program])
    last = 0
    # note-offs before note-ons at equal times; stable otherwise
    order = sorted(events, key=lambda e: (round(e[0] * ticks_per_s), e[1][0] != 0x80))
    for t, msg in order:
        tick = int(round(t * ticks_per_s))
        track += _varlen(tick - last) + msg
        last = tick
    track += b"\x00\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_BEAT)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def load_melodies(max_pieces: int, rng: random.Random) -> list[list[Note]]:
    """Monophonic lines from music21's corpus (top voice of the first part)."""
    from music21 import corpus

    paths = [p for p in corpus.getPaths() if str(p).endswith((".mxl", ".xml", ".krn", ".abc"))]
    rng.shuffle(paths)
    melodies = []
    for path in paths:
        if len(melodies) >= max_pieces:
            break
        try:
            score = corpus.parse(path)
            part = score.parts[0] if score.parts else score
            notes = []
            for el in part.flatten().notes:
                pitch = max(p.midi for p in el.pitches)
                notes.append(Note(pitch, float(el.offset), float(el.quarterLength)))
        except Exception:  # some corpus files do not parse; skip them
            continue
        if len(notes) >= 16:
            melodies.append(notes)
    return melodies


def transpose_randomly(notes: list[Note], low: int, high: int, rng: random.Random) -> list[Note]:
    """Shift by a random number of semitones that keeps the whole melody in ``[low, high]``
    (any position in the range, not only its centre); a melody wider than the range is
    folded into it by octaves first (:func:`transpose_into_range`)."""
    if not notes:
        return []
    lo, hi = min(n.pitch for n in notes), max(n.pitch for n in notes)
    if hi - lo > high - low:
        return transpose_into_range(notes, low, high)
    shift = rng.randint(low - lo, high - hi)
    return [Note(n.pitch + shift, n.start, n.duration) for n in notes]


def exercises(low: int, high: int, rng: random.Random, n: int = 4) -> list[list[Note]]:
    """Melodies that cover ``[low, high]``: scales and arpeggios from the bottom to the top
    and back (major, minor, chromatic), and long tones spread over the range."""
    out = []
    kinds = ["scale", "arpeggio", "long_tones"]
    for k in range(n):
        kind = kinds[k % 3] if k < 3 else rng.choice(kinds)
        if kind == "long_tones":
            pitches = [rng.randint(low, high) for _ in range(rng.randint(4, 8))]
            durs = [rng.choice([2.0, 3.0, 4.0]) for _ in pitches]
        else:
            if kind == "scale":
                steps = rng.choice([(2, 2, 1, 2, 2, 2, 1), (2, 1, 2, 2, 1, 2, 2), (1,)])
            else:
                steps = rng.choice([(4, 3, 5), (3, 4, 5), (4, 3, 3, 2)])
            up, p, j = [], low + rng.randint(0, 2), 0
            while p <= high:
                up.append(p)
                p += steps[j % len(steps)]
                j += 1
            pitches = up + up[-2::-1]
            d = rng.choice([0.5, 1.0])
            durs = [d] * len(pitches)
        t, notes = 0.0, []
        for pitch, d in zip(pitches, durs):
            notes.append(Note(pitch, t, d))
            t += d
        out.append(notes)
    return out


def _note_events(t0: float, dur: float, pitch: int, vel: int, expr: list[float],
                 depth_cents: float, rate: float) -> list[tuple[float, bytes]]:
    """One note: note on, ``len(expr)`` expression (CC 11) and pitch-bend vibrato steps over its
    duration (vibrato faded in after the onset), CC 1 following the depth, bend reset, off."""
    events = [(t0, bytes([0x90, pitch, vel]))]
    steps = len(expr)
    onset = min(0.25, dur / 3)
    for s, e in enumerate(expr):
        t = s * dur / steps
        events.append((t0 + t, bytes([0xB0, 11, int(min(127, max(0, e)))])))
        fade = min(1.0, max(0.0, (t - onset) / 0.2)) if depth_cents else 0.0
        cents = depth_cents * fade * math.sin(2 * math.pi * rate * t)
        bend = min(16383, max(0, 8192 + int(round(cents / 200.0 * 8191))))
        events.append((t0 + t, bytes([0xE0, bend & 0x7F, bend >> 7])))
        if s % 5 == 0:
            events.append((t0 + t, bytes([0xB0, 1, int(127 * fade * depth_cents / 35)])))
    events.append((t0 + dur, bytes([0xE0, 0x00, 0x40])))
    events.append((t0 + dur, bytes([0x80, pitch, 0])))
    return events


#: fraction of the written duration sounded, per articulation
_GATES = {"legato": (0.97, 0.995), "detache": (0.82, 0.92), "staccato": (0.35, 0.55),
          "accents": (0.8, 0.95), "crescendo": (0.9, 0.98), "diminuendo": (0.9, 0.98)}


def perform_rich(notes: list[Note], tempo_bpm: float, rng: random.Random,
                 articulations: tuple[str, ...] = ARTICULATIONS,
                 vibrato: bool = True) -> list[tuple[float, bytes]]:
    """Like :func:`perform`, with one articulation per phrase of 4–16 notes:

    * ``legato``: notes held to 97–99.5 % of their length, even velocities, smooth expression;
    * ``detache``: 82–92 %, an expression dip and recovery on every note (a new bow);
    * ``staccato``: 35–55 %, no vibrato;
    * ``accents``: a third of the notes (at random) 20–35 velocity louder with an expression
      spike at the onset that decays over 0.15 s;
    * ``crescendo`` / ``diminuendo``: expression ramps linearly over the whole phrase
      (35 → 120 or back), velocities follow.

    Notes never overlap (a note's off comes before the next note's on), so the line stays
    monophonic. Returns timed channel messages (seconds, bytes) for channel 0.
    """
    if not articulations or any(a not in ARTICULATIONS for a in articulations):
        raise ValueError(f"articulations must be a non-empty subset of {ARTICULATIONS}, "
                         f"got {articulations}")
    spb = 60.0 / tempo_bpm
    events: list[tuple[float, bytes]] = [
        (0.0, bytes([0xB0, 101, 0])), (0.0, bytes([0xB0, 100, 0])),
        (0.0, bytes([0xB0, 6, 2])), (0.0, bytes([0xB0, 38, 0]))]
    i = 0
    while i < len(notes):
        phrase = notes[i: i + rng.randint(4, 16)]
        art = rng.choice(articulations)
        level = rng.uniform(55, 100)
        for k, note in enumerate(phrase):
            nxt = notes[i + k + 1].start * spb if i + k + 1 < len(notes) else math.inf
            t0 = note.start * spb
            dur = note.duration * spb * rng.uniform(*_GATES[art])
            dur = max(0.05, min(dur, nxt - t0 - 0.01))
            pos = k / max(1, len(phrase) - 1)
            if art == "crescendo":
                base = 35 + 85 * pos
            elif art == "diminuendo":
                base = 120 - 85 * pos
            else:
                base = level + rng.gauss(0, 3 if art == "legato" else 6)
            vel = base + rng.gauss(0, 2 if art == "legato" else 6)
            accent = art == "accents" and rng.random() < 1 / 3
            if accent:
                vel += rng.uniform(20, 35)
            steps = max(2, int(dur / 0.02))
            expr = []
            for s in range(steps):
                t = s * dur / steps
                e = base
                if art in ("crescendo", "diminuendo") and len(phrase) > 1:
                    step_pos = (k + t / max(dur, 1e-3)) / (len(phrase) - 1)
                    e = (35 + 85 * step_pos) if art == "crescendo" else (120 - 85 * step_pos)
                elif art == "detache":
                    e = base * (0.8 + 0.2 * min(1.0, t / 0.08))
                if accent:
                    e = e + 30 * math.exp(-t / 0.15)
                expr.append(e)
            depth = rng.uniform(15, 35) if vibrato and art != "staccato" and dur > 0.25 else 0.0
            events += _note_events(t0, dur, note.pitch, int(min(127, max(20, vel))), expr,
                                   depth, rng.uniform(4.5, 6.5))
        i += len(phrase)
    return events


def _collection(path) -> str:
    parts = Path(str(path)).parts
    return parts[parts.index("corpus") + 1] if "corpus" in parts else Path(str(path)).parent.name


def load_excerpts(max_excerpts: int, rng: random.Random, min_notes: int = 16,
                  max_notes: int = 64) -> list[list[Note]]:
    """Monophonic excerpts from music21's corpus for ``--style rich``: collections (composer
    or song-book folders) taken in turn so no one dominates, a random score of a multi-score
    file, a random part (top voice of its chords), a random window of up to ``max_notes``."""
    from music21 import corpus

    by_coll: dict[str, list] = {}
    for path in corpus.getPaths():
        if str(path).endswith((".mxl", ".xml", ".musicxml", ".krn", ".abc")):
            by_coll.setdefault(_collection(path), []).append(path)
    colls = sorted(by_coll)
    rng.shuffle(colls)
    out: list[list[Note]] = []
    tries = 0
    while len(out) < max_excerpts and tries < 4 * max_excerpts + 20 and colls:
        coll = colls[tries % len(colls)]
        tries += 1
        try:
            score = corpus.parse(rng.choice(by_coll[coll]))
            if hasattr(score, "scores") and len(score.scores):  # an Opus of tunes
                score = score.scores[rng.randrange(len(score.scores))]
            parts = list(score.parts) or [score]
            part = rng.choice(parts)
            notes = [Note(max(p.midi for p in el.pitches), float(el.offset),
                          float(el.quarterLength)) for el in part.flatten().notes]
        except Exception:  # some corpus files do not parse; skip them
            continue
        notes = [n for n in notes if n.duration > 0]
        if len(notes) < min_notes:
            continue
        start = rng.randrange(0, max(1, len(notes) - min_notes + 1))
        window = notes[start: start + rng.randint(min_notes, max_notes)]
        t0 = window[0].start
        out.append([Note(n.pitch, n.start - t0, n.duration) for n in window])
    return out


# ----------------------------------------------------------------------------- audio
def to_mono(audio):
    """``(samples,)`` or ``(samples, channels)`` → ``(samples,)``: the mean of the channels."""
    import numpy as np

    audio = np.asarray(audio, dtype=np.float64)
    return audio.mean(axis=1) if audio.ndim == 2 else audio


def peaking_eq(f0: float, gain_db: float, q: float, sample_rate: int):
    """RBJ peaking biquad ``(b, a)``: gain ``gain_db`` at ``f0`` Hz, bandwidth set by ``q``."""
    import numpy as np

    amp = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * f0 / sample_rate
    alpha = np.sin(w0) / (2 * q)
    b = np.array([1 + alpha * amp, -2 * np.cos(w0), 1 - alpha * amp])
    a = np.array([1 + alpha / amp, -2 * np.cos(w0), 1 - alpha / amp])
    return b / a[0], a / a[0]


def room_ir(rt60: float, sample_rate: int, rng: random.Random, predelay: float = 0.01):
    """A synthetic room impulse response: unit direct sound, then after ``predelay`` seconds
    Gaussian noise decaying by 60 dB in ``rt60`` seconds, high frequencies decaying faster
    (the noise is low-passed more towards the tail); normalised to unit energy of the tail."""
    import numpy as np

    n = int(rt60 * sample_rate)
    g = np.random.default_rng(rng.getrandbits(32))
    t = np.arange(n) / sample_rate
    tail = g.standard_normal(n) * 10 ** (-3 * t / rt60)
    smooth = np.convolve(tail, np.ones(4) / 4, mode="same")
    mix = np.clip(t / rt60, 0, 1)
    tail = (1 - mix) * tail + mix * smooth
    tail /= np.sqrt(np.sum(tail ** 2)) + 1e-12
    d = int(predelay * sample_rate)
    ir = np.zeros(d + n)
    ir[0] = 1.0
    ir[d:] += tail
    return ir


def augment(audio, sample_rate: int, rng: random.Random, kinds: tuple[str, ...]):
    """Random EQ (three peaking filters of ±6 dB at 100 Hz–8 kHz, Q 0.7–2, and a ±4 dB tilt
    shelf), a room (``room_ir``, RT60 0.2–1.5 s, wet 10–40 %) and a level (peak at -1 to
    -20 dBFS), each if named in ``kinds``. Without ``level`` the output keeps the input's RMS
    level (EQ and room change the colour, not the level: pairs for input-side augmentation
    then differ only in colour and room). ``audio`` is mono ``(samples,)``; same length out."""
    import numpy as np
    from scipy.signal import fftconvolve, lfilter

    x = np.asarray(audio, dtype=np.float64)
    rms_in = np.sqrt(np.mean(x ** 2))
    n = x.shape[0]
    if "eq" in kinds:
        top = min(8000.0, 0.4 * sample_rate)  # below Nyquist at any rate
        for _ in range(3):
            f0 = math.exp(rng.uniform(math.log(100.0), math.log(top)))
            b, a = peaking_eq(f0, rng.uniform(-6, 6), rng.uniform(0.7, 2.0), sample_rate)
            x = lfilter(b, a, x)
        # tilt: a first-order shelf around 1 kHz, ±4 dB at the top
        tilt = 10 ** (rng.uniform(-4, 4) / 20)
        pole = math.exp(-2 * math.pi * 1000 / sample_rate)
        high = x - lfilter([1 - pole], [1, -pole], x)
        x = x + (tilt - 1) * high
    if "reverb" in kinds:
        ir = room_ir(rng.uniform(0.2, 1.5), sample_rate, rng, predelay=rng.uniform(0.005, 0.02))
        wet = rng.uniform(0.1, 0.4)
        tail = fftconvolve(x, ir[1:], mode="full")[: n - 1]
        x = x + wet * np.concatenate([[0.0], tail]) * math.sqrt(np.mean(x ** 2) /
                                                               (np.mean(tail ** 2) + 1e-20))
    if "level" in kinds:
        peak = np.max(np.abs(x)) + 1e-12
        x = x * 10 ** (rng.uniform(-20, -1) / 20) / peak
    else:
        rms_out = np.sqrt(np.mean(x ** 2))
        if rms_out > 0:
            x = x * (rms_in / rms_out)
        peak = np.max(np.abs(x))
        if peak > 0.999:  # EQ or room may push a loud file over full scale
            x = x * 0.999 / peak
    return x


def render(midi: Path, wav: Path, soundfont: str, sample_rate: int, reverb: bool) -> None:
    """FluidSynth renders ``midi`` to ``wav`` (its own stereo 16-bit output)."""
    cmd = ["fluidsynth", "-ni", "-g", "0.6", "-r", str(sample_rate), "-F", str(wav)]
    if not reverb:
        cmd += ["-R", "0", "-C", "0"]
    subprocess.run(cmd + [soundfont, str(midi)], check=True, capture_output=True)


def _take(available: int, remaining: int, min_file: int) -> int:
    """Samples to keep of a rendered piece so the total is exact and no file is a sliver: at
    most ``remaining``; if that would leave less than ``min_file`` samples for the next file,
    leave it exactly ``min_file`` (when this piece stays at least ``min_file`` long)."""
    take = min(available, remaining)
    left = remaining - take
    if 0 < left < min_file and take - (min_file - left) >= min_file:
        take -= min_file - left
    return take


def _write_mono(path: Path, audio, sample_rate: int) -> None:
    """16-bit mono WAV, written to a temporary name and renamed (never half-written)."""
    import numpy as np
    import soundfile as sf

    tmp = path.with_name(f".{path.stem}.tmp.wav")
    sf.write(str(tmp), np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16")
    os.replace(tmp, path)


def _articulation_list(text: str) -> tuple[str, ...]:
    names = tuple(a.strip() for a in text.split(",") if a.strip())
    bad = [a for a in names if a not in ARTICULATIONS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown articulation(s) {bad}; choose from "
                                         f"{','.join(ARTICULATIONS)}")
    return names


def _note_range(text: str) -> tuple[int, int]:
    """``LOW-HIGH`` MIDI notes (e.g. ``55-88``), at least an octave apart, within 0..127."""
    try:
        low, high = (int(v) for v in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW-HIGH in MIDI notes, e.g. 55-88; got "
                                         f"{text!r}") from None
    if not 0 <= low < high <= 127 or high - low < 12:
        raise argparse.ArgumentTypeError(f"the range {low}-{high} must lie within 0-127 and "
                                         "span at least an octave (e.g. 55-88)")
    return low, high


def _augment_list(text: str) -> tuple[str, ...]:
    names = tuple(a.strip() for a in text.split(",") if a.strip() and a.strip() != "none")
    bad = [a for a in names if a not in ("eq", "reverb", "level")]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown augmentation(s) {bad}; choose from "
                                         "eq,reverb,level (or none)")
    return names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Render a solo-instrument training set with FluidSynth.")
    ap.add_argument("--program", type=int, default=40,
                    help="GM program (violin 40, flute 73, trumpet 56)")
    ap.add_argument("--minutes", type=float, default=10.0,
                    help="total audio to render (exact: the last file is cut to fit)")
    ap.add_argument("-o", "--output", required=True, help="output folder of wav files")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--soundfont", default=SOUNDFONT)
    ap.add_argument("--sample-rate", type=int, default=16000,
                    help="output rate in Hz (default 16000; 48000 for the 48 kHz recipes)")
    ap.add_argument("--reverb", action="store_true", help="keep FluidSynth's reverb and chorus")
    ap.add_argument("--style", choices=["basic", "rich"], default="basic",
                    help="basic: the original recipe (whole pieces, first parts, centred range); "
                         "rich: excerpts of every collection and part, the whole range, "
                         "articulations")
    ap.add_argument("--melodies", choices=["corpus", "exercises", "both"], default=None,
                    help="rich style: melodies from music21's corpus, generated scales/arpeggios/"
                         "long tones over the whole range, or both (default both)")
    ap.add_argument("--articulations", type=_articulation_list, default=ARTICULATIONS,
                    help=f"rich style: comma-separated subset of {','.join(ARTICULATIONS)} "
                         "(default all)")
    ap.add_argument("--range", type=_note_range, default=None, metavar="LOW-HIGH",
                    help="MIDI notes to place the melodies in (default: the program's range; "
                         "e.g. --program 41 --range 55-88 plays the viola in the violin's "
                         "range, a second violin-family sample set)")
    ap.add_argument("--augment", type=_augment_list, default=(),
                    help="comma-separated augmentations per file: eq, reverb, level (default none)")
    ap.add_argument("--dry-copy", metavar="DIR", default=None,
                    help="with --augment: also write each file unaugmented to DIR (same names), "
                         "for ddsp prepare DIR --features-from OUTPUT")
    args = ap.parse_args(argv)
    if args.minutes <= 0 or not math.isfinite(args.minutes):
        ap.error(f"--minutes must be a positive number, got {args.minutes}")
    if args.sample_rate < 8000:
        ap.error(f"--sample-rate must be at least 8000 Hz, got {args.sample_rate}")
    if args.style == "basic" and args.melodies not in (None, "corpus"):
        ap.error("--melodies needs --style rich")
    if args.dry_copy and not args.augment:
        ap.error("--dry-copy needs --augment (without it the output is the dry copy)")
    if args.dry_copy and Path(args.dry_copy).resolve() == Path(args.output).resolve():
        ap.error("--dry-copy must be another folder than --output")
    if shutil.which("fluidsynth") is None:
        sys.exit("fluidsynth is not installed: apt-get install -y fluidsynth fluid-soundfont-gm")
    if not Path(args.soundfont).is_file():
        sys.exit(f"no sound font at {args.soundfont}: apt-get install -y fluid-soundfont-gm")
    import soundfile as sf

    rng = random.Random(args.seed)
    aug_rng = random.Random(f"augment-{args.seed}")  # augmentations do not change the melodies
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    dry_dir = Path(args.dry_copy) if args.dry_copy else None
    if dry_dir is not None:
        dry_dir.mkdir(parents=True, exist_ok=True)
    target = int(round(args.minutes * 60 * args.sample_rate))  # samples in total
    if args.style == "basic":
        low, high = args.range or RANGES.get(args.program, (60, 84))
        melodies = load_melodies(max_pieces=int(args.minutes * 8) + 20, rng=rng)
    else:
        low, high = args.range or FULL_RANGES.get(args.program, (48, 84))
        source = args.melodies or "both"
        melodies = []
        if source in ("corpus", "both"):
            melodies += load_excerpts(int(args.minutes * 6) + 10, rng)
        if source in ("exercises", "both"):
            melodies += exercises(low, high, rng, n=max(4, int(args.minutes)))
        rng.shuffle(melodies)
    if not melodies:
        sys.exit("no melodies found in music21's corpus")
    total, i = 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        while total < target:
            tempo = rng.uniform(60, 110) if args.style == "basic" else rng.uniform(50, 140)
            if args.style == "basic":
                notes = transpose_into_range(melodies[i % len(melodies)], low, high)
                events = perform(notes, tempo, rng)
            else:
                notes = transpose_randomly(melodies[i % len(melodies)], low, high, rng)
                events = perform_rich(notes, tempo, rng, args.articulations)
            midi = Path(tmp) / f"{i:04d}.mid"
            midi.write_bytes(midi_file_bytes(events, args.program, tempo))
            stereo = Path(tmp) / f"{i:04d}.wav"
            render(midi, stereo, args.soundfont, args.sample_rate, args.reverb)
            audio, rate = sf.read(str(stereo), dtype="float64", always_2d=True)
            if rate != args.sample_rate:
                sys.exit(f"fluidsynth wrote {rate} Hz instead of {args.sample_rate} Hz")
            audio = to_mono(audio)[: _take(audio.shape[0], target - total, 2 * args.sample_rate)]
            if dry_dir is not None:
                _write_mono(dry_dir / f"{i:04d}.wav", audio, args.sample_rate)
            if args.augment:
                audio = augment(audio, args.sample_rate, aug_rng, args.augment)
            _write_mono(out / f"{i:04d}.wav", audio, args.sample_rate)
            total += audio.shape[0]
            i += 1
            print(f"\r{i} pieces, {total / args.sample_rate / 60:.2f} / {args.minutes} min",
                  end="", file=sys.stderr)
    print(f"\nwrote {i} mono files ({total / args.sample_rate / 60:.2f} min at "
          f"{args.sample_rate} Hz) to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
