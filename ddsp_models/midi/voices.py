"""Voice allocation: the notes of one part → monophonic voices of legato phrases.

A *voice* is one instance of the instrument (one row of the rendering batch); it plays
*phrases*, each a list of notes where every note after the first is **legato**: it takes over
from the previous one with a glide and no new attack.

Rules (:func:`allocate_voices`), walking through the notes by start time:

* notes starting within ``chord_window`` seconds of each other form a chord group;
* a single new note is legato when exactly one voice is sounding (its note still held, or
  ended at most ``touch`` seconds before) and that note began more than ``chord_window``
  earlier: overlapping or touching notes of a monophonic line glide instead of re-attacking
  (an overlap is cut at the new note's start);
* otherwise each note of the group starts a new phrase on a voice that is silent (its
  release over; the longest silent first), else on one whose release is still ringing
  (the earliest released), else on a new voice while fewer than ``max_voices`` exist, else it
  steals the voice whose note started first (that note is cut; counted in ``stolen``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .score import Note

__all__ = ["Voice", "Allocation", "allocate_voices"]


@dataclass
class Voice:
    """One voice: its phrases (lists of notes; notes after the first are legato)."""

    phrases: list[list[Note]] = field(default_factory=list)

    @property
    def last(self) -> Note | None:
        return self.phrases[-1][-1] if self.phrases else None


@dataclass
class Allocation:
    """Voices of a part, and how many notes were cut short to free a voice."""

    voices: list[Voice]
    stolen: int = 0
    legato: int = 0


def allocate_voices(
    notes: list[Note],
    max_voices: int = 16,
    release_s: float = 0.15,
    chord_window: float = 0.03,
    touch: float = 0.005,
) -> Allocation:
    """Voices for ``notes`` (any order; see the module docstring for the rules).

    Args:
        notes: the part's notes (seconds).
        max_voices: most voices at once (>= 1).
        release_s: how long a released voice still sounds (seconds).
        chord_window: notes starting this close together are a chord (seconds).
        touch: a gap this short between two notes still counts as legato (seconds).
    """
    if max_voices < 1:
        raise ValueError(f"max_voices must be >= 1, got {max_voices}")
    order = sorted(notes, key=lambda n: (n.start, n.pitch))
    voices: list[Voice] = []
    stolen = legato = 0
    i = 0
    while i < len(order):
        group = [order[i]]
        while i + len(group) < len(order) and order[i + len(group)].start - group[0].start \
                <= chord_window:
            group.append(order[i + len(group)])
        i += len(group)
        t = group[0].start
        sounding = [v for v in voices if v.last is not None and v.last.end >= t - touch]
        if (len(group) == 1 and len(sounding) == 1
                and t - sounding[0].last.start > chord_window):
            v = sounding[0]
            prev = v.last
            if prev.end > t:
                v.phrases[-1][-1] = Note(prev.pitch, prev.velocity, prev.start, t, prev.channel)
            v.phrases[-1].append(group[0])
            legato += 1
            continue
        for note in group:
            t = note.start
            silent = [v for v in voices if v.last is None or v.last.end + release_s <= t]
            ringing = [v for v in voices if v.last is not None and v.last.end <= t
                       and v not in silent]
            if silent:
                v = min(silent, key=lambda v: v.last.end if v.last else -1.0)
            elif ringing:
                v = min(ringing, key=lambda v: v.last.end)
            elif len(voices) < max_voices:
                v = Voice()
                voices.append(v)
            else:
                v = min(voices, key=lambda v: v.last.start)
                prev = v.last
                v.phrases[-1][-1] = Note(prev.pitch, prev.velocity, prev.start,
                                         max(prev.start + 1e-3, t), prev.channel)
                stolen += 1
            v.phrases.append([note])
    return Allocation(voices, stolen, legato)
