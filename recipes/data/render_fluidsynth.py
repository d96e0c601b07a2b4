"""Render a training set of a sampled instrument from MIDI melodies with FluidSynth.

Melodies come from music21's corpus (public-domain chorales, folk tunes, ...); each is
transposed into the instrument's range and written as a Standard MIDI File with expressive
performance data, then rendered by FluidSynth with the FluidR3_GM sound font:

* dynamics: note velocities follow a per-phrase arc with jitter, and an expression curve
  (CC 11) swells within each note and drifts over the phrase;
* vibrato: pitch-bend (range set to ±2 semitones through RPN 0) oscillating at 4.5–6.5 Hz,
  ±15–35 cents, faded in after the onset of notes longer than a quarter second; the
  modulation wheel (CC 1) follows the same depth.

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
import random
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Note", "perform", "midi_file_bytes", "transpose_into_range", "RANGES", "main"]

SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
TICKS_PER_BEAT = 480
#: Comfortable MIDI note ranges per GM program (others: C4–C6).
RANGES = {40: (55, 93), 41: (48, 84), 42: (36, 72), 73: (60, 93), 56: (55, 82),
          71: (52, 88), 68: (58, 88), 65: (49, 80)}


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


def render(midi: Path, wav: Path, soundfont: str, sample_rate: int, reverb: bool) -> None:
    cmd = ["fluidsynth", "-ni", "-g", "0.6", "-r", str(sample_rate), "-F", str(wav)]
    if not reverb:
        cmd += ["-R", "0", "-C", "0"]
    subprocess.run(cmd + [soundfont, str(midi)], check=True, capture_output=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Render a solo-instrument training set with FluidSynth.")
    ap.add_argument("--program", type=int, default=40, help="GM program (violin 40, flute 73, trumpet 56)")
    ap.add_argument("--minutes", type=float, default=10.0, help="total audio to render")
    ap.add_argument("-o", "--output", required=True, help="output folder of wav files")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--soundfont", default=SOUNDFONT)
    ap.add_argument("--sample-rate", type=int, default=16000)
    ap.add_argument("--reverb", action="store_true", help="keep FluidSynth's reverb and chorus")
    args = ap.parse_args(argv)
    if shutil.which("fluidsynth") is None:
        sys.exit("fluidsynth is not installed: apt-get install -y fluidsynth fluid-soundfont-gm")
    if not Path(args.soundfont).is_file():
        sys.exit(f"no sound font at {args.soundfont}: apt-get install -y fluid-soundfont-gm")
    import soundfile as sf

    rng = random.Random(args.seed)
    low, high = RANGES.get(args.program, (60, 84))
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    total, i = 0.0, 0
    target = args.minutes * 60
    melodies = load_melodies(max_pieces=int(args.minutes * 8) + 20, rng=rng)
    if not melodies:
        sys.exit("no melodies found in music21's corpus")
    with tempfile.TemporaryDirectory() as tmp:
        while total < target:
            notes = transpose_into_range(melodies[i % len(melodies)], low, high)
            tempo = rng.uniform(60, 110)
            midi = Path(tmp) / f"{i:04d}.mid"
            midi.write_bytes(midi_file_bytes(perform(notes, tempo, rng), args.program, tempo))
            wav = out / f"{i:04d}.wav"
            render(midi, wav, args.soundfont, args.sample_rate, args.reverb)
            total += sf.info(str(wav)).duration
            i += 1
            print(f"\r{i} pieces, {total / 60:.1f} / {args.minutes} min", end="", file=sys.stderr)
    print(f"\nwrote {i} files ({total / 60:.1f} min) to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
