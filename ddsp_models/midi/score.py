"""Reading a Standard MIDI File (with :mod:`mido`) into notes and control curves in seconds.

:func:`read_score` returns a :class:`Score`: one :class:`Part` per (track, channel) that holds
notes, each with its notes (:class:`Note`: pitch, velocity, start and end in seconds) and the
events that shape them on its channel: control changes (CC 1 modulation, CC 7 volume, CC 11
expression, ...) and pitch bend in semitones (the bend range comes from the channel's RPN 0
messages, default ±2 semitones). Ticks become seconds through the file's tempo map (the
``set_tempo`` events of all tracks; format-2 files: of each track), divided by
``tempo_scale``.

Every problem with the file is one :class:`ScoreError` (a :class:`~ddsp_models.errors.DDSPError`)
naming the file and the fix: missing, empty, not MIDI, truncated or corrupt, no notes, only
drums (MIDI channel 10).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DDSPError, InvalidInputError, one_line

__all__ = ["Note", "Part", "Score", "ScoreError", "read_score", "DRUM_CHANNEL",
           "DEFAULT_BEND_RANGE", "note_name"]

#: 0-based MIDI channel of General MIDI percussion (channel 10).
DRUM_CHANNEL = 9
#: Pitch-bend range in semitones when the file sets none (RPN 0).
DEFAULT_BEND_RANGE = 2.0
_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


class ScoreError(DDSPError, ValueError):
    """A MIDI file that cannot be performed (the message names the file and the fix)."""


def note_name(pitch: float) -> str:
    """``60`` → ``"C4"`` (MIDI note number to scientific pitch name)."""
    p = int(round(pitch))
    return f"{_NAMES[p % 12]}{p // 12 - 1}"


@dataclass
class Note:
    """One note: MIDI ``pitch`` (0-127), ``velocity`` (1-127), ``start``/``end`` in seconds,
    the 0-based MIDI ``channel``."""

    pitch: int
    velocity: int
    start: float
    end: float
    channel: int = 0

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class Part:
    """The notes of one channel of one track, with that channel's controls.

    ``controls``: ``{cc_number: [(time_s, value 0-127), ...]}`` in time order;
    ``bend``: ``[(time_s, semitones), ...]`` (already scaled by the bend range).
    """

    track: int
    channel: int
    name: str
    notes: list[Note] = field(default_factory=list)
    controls: dict[int, list[tuple[float, int]]] = field(default_factory=dict)
    bend: list[tuple[float, float]] = field(default_factory=list)
    bend_range: float = DEFAULT_BEND_RANGE

    @property
    def is_drums(self) -> bool:
        return self.channel == DRUM_CHANNEL

    @property
    def label(self) -> str:
        """``"Violin"`` (the track's name) or ``"track 1"`` / ``"track 0 ch2"`` (number, and
        channel where a track holds several)."""
        return self.name or f"track {self.track}"

    @property
    def end(self) -> float:
        return max((n.end for n in self.notes), default=0.0)


@dataclass
class Score:
    """A whole file: its parts (drums included, flagged), duration (s) and origin."""

    parts: list[Part]
    duration: float
    path: str = "<score>"
    ticks_per_beat: int = 480

    @property
    def end(self) -> float:
        """End of the last note (seconds)."""
        return max((p.end for p in self.parts), default=0.0)


def _tempo_map(tracks, fmt: int, index: int) -> list[tuple[int, int]]:
    """``[(tick, microseconds per beat), ...]`` sorted; 500000 (120 bpm) before the first."""
    sources = [tracks[index]] if fmt == 2 else tracks
    events = []
    for tr in sources:
        tick = 0
        for msg in tr:
            tick += msg.time
            if msg.type == "set_tempo":
                events.append((tick, int(msg.tempo)))
    events.sort(key=lambda e: e[0])
    out = [(0, 500000)]
    for tick, tempo in events:
        if tick == out[-1][0]:
            out[-1] = (tick, tempo)
        else:
            out.append((tick, tempo))
    return out


class _Clock:
    """Ticks → seconds through a tempo map (piecewise linear)."""

    def __init__(self, tempo_map: list[tuple[int, int]], ticks_per_beat: int, scale: float):
        self.ticks = [t for t, _ in tempo_map]
        self.tempi = [u for _, u in tempo_map]
        self.tpb = float(ticks_per_beat)
        self.scale = float(scale)
        self.secs = [0.0]
        for i in range(1, len(self.ticks)):
            dt = self.ticks[i] - self.ticks[i - 1]
            self.secs.append(self.secs[-1] + dt * self.tempi[i - 1] / 1e6 / self.tpb)
        self._i = 0

    def __call__(self, tick: int) -> float:
        import bisect

        i = bisect.bisect_right(self.ticks, tick) - 1
        sec = self.secs[i] + (tick - self.ticks[i]) * self.tempi[i] / 1e6 / self.tpb
        return sec / self.scale


def _open(path) -> "object":
    import mido

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(2, "no such MIDI file", str(p))
    if p.is_dir():
        raise IsADirectoryError(21, "is a folder, not a MIDI file", str(p))
    size = p.stat().st_size
    fix = "pass a Standard MIDI File (.mid) written by a sequencer, notation program or mido"
    if size == 0:
        raise ScoreError(f"{p} is empty (0 bytes); {fix}")
    with open(p, "rb") as f:
        head = f.read(4)
    if head == b"RIFF":
        with open(p, "rb") as f:
            riff = f.read(12)
        if riff[8:12] != b"RMID":
            raise ScoreError(f"{p} is not a MIDI file (it starts with {head!r}: a RIFF/WAV file?); "
                             f"{fix}")
    elif head != b"MThd":
        raise ScoreError(f"{p} is not a MIDI file (it starts with {head!r}, not 'MThd'); {fix}")
    try:
        return mido.MidiFile(str(p))
    except EOFError as err:
        raise ScoreError(f"{p} is truncated: the file ends inside a track ({size} bytes); "
                         f"export or download it again") from err
    except (OSError, ValueError, KeyError, IndexError, TypeError) as err:
        raise ScoreError(f"{p} is a corrupt MIDI file ({one_line(err)}); export or download it "
                         "again") from err


def read_score(path: str | os.PathLike, tempo_scale: float = 1.0) -> Score:
    """Parts, notes and controls of a MIDI file, in seconds (see the module docstring).

    Args:
        path: a ``.mid`` file (format 0, 1 or 2).
        tempo_scale: playback speed; 2 plays twice as fast (all times divided by it).

    Raises:
        FileNotFoundError / IsADirectoryError: no such file.
        ScoreError: empty, not MIDI, truncated or corrupt, no notes, or only drums.
    """
    import math

    if not (isinstance(tempo_scale, (int, float)) and math.isfinite(tempo_scale)
            and tempo_scale > 0):
        raise InvalidInputError(f"tempo scale must be a positive number (2 = twice as fast), "
                                f"got {tempo_scale}")
    mid = _open(path)
    if mid.type not in (0, 1, 2):
        raise ScoreError(f"{path} has MIDI format {mid.type}; only formats 0, 1 and 2 exist")
    tpb = int(mid.ticks_per_beat or 480)
    parts: list[Part] = []
    duration = 0.0
    shared_map = _tempo_map(mid.tracks, mid.type, 0) if mid.type != 2 else None
    for ti, track in enumerate(mid.tracks):
        tmap = shared_map if shared_map is not None else _tempo_map(mid.tracks, 2, ti)
        clock = _Clock(tmap, tpb, tempo_scale)
        name = ""
        by_channel: dict[int, Part] = {}
        open_notes: dict[tuple[int, int], list[tuple[float, int]]] = {}
        rpn: dict[int, list[int]] = {}
        raw_bend: dict[int, list[tuple[float, int]]] = {}
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "track_name" and not name:
                name = str(msg.name).strip()
                continue
            if msg.is_meta or not hasattr(msg, "channel"):
                continue
            t = clock(tick)
            ch = int(msg.channel)
            part = by_channel.get(ch)
            if part is None:
                part = by_channel[ch] = Part(track=ti, channel=ch, name="")
            if msg.type == "note_on" and msg.velocity > 0:
                open_notes.setdefault((ch, msg.note), []).append((t, int(msg.velocity)))
            elif msg.type in ("note_off", "note_on"):
                pending = open_notes.get((ch, msg.note))
                if pending:
                    t0, vel = pending.pop(0)  # first on, first off
                    if t > t0:
                        part.notes.append(Note(int(msg.note), vel, t0, t, ch))
            elif msg.type == "control_change":
                c, v = int(msg.control), int(msg.value)
                state = rpn.setdefault(ch, [127, 127])
                if c == 101:
                    state[0] = v
                elif c == 100:
                    state[1] = v
                elif c == 6 and state == [0, 0]:
                    part.bend_range = float(v) + (part.bend_range % 1.0)
                elif c == 38 and state == [0, 0]:
                    part.bend_range = math.floor(part.bend_range) + v / 100.0
                else:
                    part.controls.setdefault(c, []).append((t, v))
            elif msg.type == "pitchwheel":
                raw_bend.setdefault(ch, []).append((t, int(msg.pitch)))
        end_t = clock(tick)
        duration = max(duration, end_t)
        for (ch, pitch), pending in open_notes.items():  # never released: end with the track
            for t0, vel in pending:
                if end_t > t0:
                    by_channel[ch].notes.append(Note(pitch, vel, t0, end_t, ch))
        for ch, part in sorted(by_channel.items()):
            if not part.notes:
                continue
            part.notes.sort(key=lambda n: (n.start, n.pitch))
            rng = part.bend_range if part.bend_range > 0 else DEFAULT_BEND_RANGE
            part.bend = [(t, rng * v / 8192.0) for t, v in raw_bend.get(ch, [])]
            part.bend_range = rng
            multi = sum(1 for p in by_channel.values() if p.notes) > 1
            base = name or f"track {ti}"
            part.name = f"{base} ch{ch + 1}" if multi else name
            parts.append(part)
    if not parts:
        raise ScoreError(f"{path} holds no notes ({len(mid.tracks)} track(s) of meta or control "
                         "events only); pass a MIDI file with notes")
    if all(p.is_drums for p in parts):
        raise ScoreError(f"{path} holds only drum notes (MIDI channel 10), which a pitched "
                         "instrument cannot play; pass a file with melodic parts")
    return Score(parts, max(duration, max(p.end for p in parts)), str(path), tpb)
