"""A MIDI score performed by a trained model: :func:`synthesize_midi`.

Pipeline: read the file (:func:`~.score.read_score`) → choose the parts (drum channels are
skipped with a warning) → transpose, and bring notes outside the model's pitch range into it
by octaves or refuse them → allocate voices per part (:func:`~.voices.allocate_voices`) →
build each voice's f0 and loudness curves with the model's learned expression
(:mod:`.curves`, :mod:`.expression`) → render all voices as ONE batch through the model,
block by block with carried state (:class:`~ddsp_models.export.streaming.StreamingSynth`:
decoder GRU state, oscillator phases, reverb tails), so memory is bounded by the block, not
the score → sum the voices of each part (a stem) and the parts (the mix) → resample to the
output rate.

The output lasts the score (the end of its last note) plus the release of the last notes plus
the reverb tail of the model's graph (:func:`tail_seconds`).
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..core.scaling import octaves_into_range
from ..errors import InvalidInputError
from .curves import ChannelControls, release_seconds, voice_curves
from .expression import Expression, expression_for
from .score import Note, Part, Score, ScoreError, note_name, read_score
from .voices import allocate_voices

__all__ = ["synthesize_midi", "plan_performance", "Plan", "MidiResult", "MidiWarning",
           "tail_seconds", "select_parts", "model_expression", "OUT_OF_RANGE"]

OUT_OF_RANGE = ("transpose", "refuse")


class MidiWarning(UserWarning):
    """Something of the score was changed or skipped (drums, octave-transposed notes, ...)."""


@dataclass
class MidiResult:
    """A rendered score.

    ``audio``: the mix ``(channels, samples)`` at ``sample_rate``; ``stems``: ``{part label:
    (channels, samples)}`` (when asked for; they sum to ``audio``); ``f0_hz`` /
    ``loudness_db``: the curves that drove the model, ``(voices, frames)`` at ``frame_rate``;
    ``voice_part``: the part label of each voice; ``notes``: ``(part label, voice, Note)`` of
    every note played (after transposition); ``parts``: the labels of the parts played;
    ``messages``: the warnings issued; ``timings``: seconds spent in ``curves``, ``decoder``
    (in a background thread, overlapping the synthesis), ``synthesis`` (the DSP graph,
    mixing and resampling) and ``total`` (wall clock of the whole call).
    """

    audio: Tensor
    sample_rate: int
    f0_hz: Tensor
    loudness_db: Tensor
    frame_rate: int
    voice_part: list[str]
    parts: list[str]
    notes: list[tuple[str, int, Note]] = field(default_factory=list)
    stems: dict[str, Tensor] = field(default_factory=dict)
    messages: tuple = ()
    timings: dict = field(default_factory=dict)
    score_seconds: float = 0.0
    tail_seconds: float = 0.0

    @property
    def duration(self) -> float:
        return self.audio.shape[-1] / self.sample_rate


def tail_seconds(model, default: float = 0.0) -> float:
    """Length of the graph's reverb tail in seconds: the sum of the impulse-response lengths
    of its convolution reverbs (processors with ``length`` taps and a ``sample_rate``), plus 2 s
    per feedback-delay reverb (its decay is learned, not declared); ``default`` if none."""
    total = 0.0
    found = False
    for proc in model.graph.nodes.values():
        name = type(proc).__name__
        if "FDN" in name:
            total, found = total + 2.0, True
        elif hasattr(proc, "length") and hasattr(proc, "sample_rate") and "Reverb" in name:
            total, found = total + int(proc.length) / float(proc.sample_rate), True
    return total if found else float(default)


def select_parts(score: Score, tracks=None) -> tuple[list[Part], list[str]]:
    """The parts to play and the warnings about skipped ones.

    ``tracks``: ``None`` (all melodic parts) or a list of track numbers (as in the file,
    0-based: a type-1 file's first track is usually the tempo track 0) and/or names
    (case-insensitive; a part's label also matches).

    Raises:
        InvalidInputError: a requested track does not exist or holds no notes (the message
            lists the parts).
    """
    listing = "; ".join(f"{p.label!r} ({len(p.notes)} notes{', drums' if p.is_drums else ''})"
                        for p in score.parts)
    msgs = []
    chosen = list(score.parts)
    if tracks:
        chosen = []
        for sel in tracks:
            s = str(sel).strip()
            hits = [p for p in score.parts if (s.isdigit() and p.track == int(s))
                    or p.name.lower() == s.lower() or p.label.lower() == s.lower()]
            if not hits:
                raise InvalidInputError(f"--tracks {s}: no such track with notes in "
                                        f"{score.path}; its parts are: {listing}")
            chosen += [p for p in hits if p not in chosen]
    for p in [p for p in chosen if p.is_drums]:
        msgs.append(f"part {p.label!r} is on the drum channel (MIDI channel 10): skipped")
    melodic = [p for p in chosen if not p.is_drums]
    if not melodic:
        raise ScoreError(f"the chosen tracks of {score.path} hold only drums (MIDI channel 10), "
                         f"which a pitched instrument cannot play; choose others: {listing}")
    return melodic, msgs


def _fit_range(part: Part, transpose: float, expr: Expression, mode: str, nyquist_midi: float,
               msgs: list, refused: list) -> tuple[list[Note], dict]:
    """Notes of ``part`` transposed; octave offsets for those outside the model's range."""
    lo, hi = expr.pitch_range if expr.pitch_range else (0, min(127, int(nyquist_midi)))
    hi = min(hi, int(math.floor(nyquist_midi)))
    offsets: dict[int, float] = {}
    moved = []
    notes = []
    for n in part.notes:
        p = n.pitch + transpose
        if lo <= p <= hi:
            notes.append(n)
            if transpose:
                offsets[id(n)] = transpose
            continue
        if mode == "refuse":
            refused.append((part, n, p))
            continue
        q = p + 12.0 * octaves_into_range(p, lo, hi)
        notes.append(n)
        offsets[id(n)] = q - n.pitch
        moved.append((n, p, q))
    if moved:
        names = ", ".join(f"{note_name(p)}→{note_name(q)} at {n.start:.2f} s"
                          for n, p, q in moved[:6])
        more = f" and {len(moved) - 6} more" if len(moved) > 6 else ""
        msgs.append(f"part {part.label!r}: {len(moved)} note(s) outside the model's range "
                    f"{note_name(lo)}-{note_name(hi)} (MIDI {lo}-{hi}) moved by octaves: "
                    f"{names}{more}")
    return notes, offsets


def _scaled(score: Score, factor: float) -> Score:
    """A copy of ``score`` with every time divided by ``factor``."""
    parts = []
    for p in score.parts:
        q = Part(p.track, p.channel, p.name, bend_range=p.bend_range)
        q.notes = [Note(n.pitch, n.velocity, n.start / factor, n.end / factor, n.channel)
                   for n in p.notes]
        q.controls = {c: [(t / factor, v) for t, v in ev] for c, ev in p.controls.items()}
        q.bend = [(t / factor, v) for t, v in p.bend]
        parts.append(q)
    return Score(parts, score.duration / factor, score.path, score.ticks_per_beat)


class _PipelinedDecoder(torch.nn.Module):
    """Stands in for the stream's decoder: the real decoder runs ahead in a background thread
    over the same blocks (its GRU state depends on the inputs only), so the decoder of block
    ``k + 1`` overlaps the DSP of block ``k`` and two cores are used with one intra-op thread
    each (a GRU step over a few voices is far too small to share between threads; with two
    intra-op threads on a busy 2-core machine rendering ran several times slower). ``step``
    returns the precomputed ``(raw, hidden)`` of the next block; ``seconds`` adds up the
    decoder's own time."""

    def __init__(self, decoder, f0: Tensor, ld: Tensor, blocks: list, hidden: Tensor):
        super().__init__()
        import queue
        import threading

        self.inner = decoder
        self.seconds = 0.0
        self.waited = 0.0
        self.results: "queue.Queue" = queue.Queue(maxsize=2)  # bounded: memory stays flat
        self.stop = threading.Event()

        def work():
            h = hidden
            try:
                with torch.no_grad():
                    for c0, c1 in blocks:
                        if self.stop.is_set():
                            return
                        t0 = time.perf_counter()
                        raw, h = self.inner.step(f0[:, c0:c1], ld[:, c0:c1], h)
                        self.seconds += time.perf_counter() - t0
                        self.results.put((c1 - c0, raw, h))
            except BaseException as err:  # handed to the renderer, raised there
                self.results.put(err)

        self.thread = threading.Thread(target=work, name="ddsp-midi-decoder", daemon=True)
        self.thread.start()

    def init_hidden(self, *args):
        return self.inner.init_hidden(*args)

    def step(self, f0_hz: Tensor, loudness_db: Tensor, hidden: Tensor):
        t0 = time.perf_counter()
        item = self.results.get()
        self.waited += time.perf_counter() - t0
        if isinstance(item, BaseException):
            raise item
        n, raw, h = item
        if n != f0_hz.shape[1]:
            raise RuntimeError("pipelined decoder out of step with the stream")
        return raw, h

    def close(self) -> None:
        self.stop.set()
        while self.thread.is_alive():
            try:
                self.results.get(timeout=0.05)
            except Exception:
                pass
        self.thread.join()


@dataclass
class Plan:
    """What will be played: the curves of every voice and where they came from (see
    :func:`plan_performance`). ``f0_hz``/``loudness_db``: ``(voices, frames)`` float64."""

    f0_hz: np.ndarray
    loudness_db: np.ndarray
    frame_rate: int
    voice_part: list[str]
    parts: list[str]
    notes: list[tuple[str, int, Note]]
    messages: list[str]
    score_seconds: float
    tail_seconds: float
    expression: Expression


def _check_options(transpose, vibrato_depth, max_voices, out_of_range, sample_rate=None):
    if out_of_range not in OUT_OF_RANGE:
        raise InvalidInputError(f"out_of_range must be one of {OUT_OF_RANGE}, got "
                                f"{out_of_range!r}")
    for name, value in (("transpose", transpose), ("vibrato_depth", vibrato_depth)):
        if not math.isfinite(float(value)):
            raise InvalidInputError(f"{name} must be a finite number, got {value}")
    if vibrato_depth < 0:
        raise InvalidInputError(f"vibrato depth must be >= 0 (1 = as learned), got "
                                f"{vibrato_depth}")
    if int(max_voices) < 1:
        raise InvalidInputError(f"max voices must be >= 1, got {max_voices}")
    if sample_rate is not None and int(sample_rate) <= 0:
        raise InvalidInputError(f"sample rate must be a positive number of Hz, got "
                                f"{sample_rate}")


def _as_score(score, tempo_scale) -> Score:
    if not isinstance(score, Score):
        return read_score(score, tempo_scale=tempo_scale)
    if tempo_scale != 1.0:
        if not (math.isfinite(tempo_scale) and tempo_scale > 0):
            raise InvalidInputError(f"tempo scale must be a positive number, got {tempo_scale}")
        return _scaled(score, float(tempo_scale))
    return score


def plan_performance(
    score: Score | str | os.PathLike,
    expression: Expression,
    sample_rate: int,
    frame_rate: int,
    tail_s: float = 0.0,
    tracks=None,
    transpose: float = 0.0,
    tempo_scale: float = 1.0,
    vibrato_depth: float = 1.0,
    seed: int = 0,
    max_voices: int = 16,
    out_of_range: str = "transpose",
) -> Plan:
    """The curves of a performance, without rendering (the first half of
    :func:`synthesize_midi`; same arguments). ``sample_rate`` (the model's) caps f0 below
    0.45 of it; ``tail_s`` is added after the last release."""
    _check_options(transpose, vibrato_depth, max_voices, out_of_range)
    score = _as_score(score, tempo_scale)
    expr = expression
    msgs: list[str] = []
    fr = int(frame_rate)
    nyquist_midi = 69.0 + 12.0 * math.log2(0.45 * sample_rate / 440.0)
    parts, skipped = select_parts(score, tracks)
    msgs += skipped
    refused: list = []
    fitted = [_fit_range(p, float(transpose), expr, out_of_range, nyquist_midi, msgs, refused)
              for p in parts]
    if refused:
        lo, hi = expr.pitch_range or (0, int(nyquist_midi))
        listed = ", ".join(f"{note_name(p)} ({part.label}, {n.start:.2f} s)"
                           for part, n, p in refused[:6])
        more = f" and {len(refused) - 6} more" if len(refused) > 6 else ""
        raise ScoreError(f"{len(refused)} note(s) of {score.path} lie outside the model's range "
                         f"{note_name(lo)}-{note_name(hi)} (MIDI {lo}-{hi}): {listed}{more}; "
                         "pass --transpose SEMITONES, or --out-of-range transpose to move them "
                         "by octaves")
    rng = np.random.default_rng(seed)
    allocs = []
    last_end = 0.0
    for part, (notes, offsets) in zip(parts, fitted):
        alloc = allocate_voices(notes, max_voices=int(max_voices), release_s=expr.release_s)
        if alloc.stolen:
            msgs.append(f"part {part.label!r}: {alloc.stolen} note(s) cut short: more than "
                        f"{max_voices} voices at once (raise --max-voices)")
        allocs.append(alloc)
        for v in alloc.voices:
            for ph in v.phrases:
                level = float(expr.velocity_db(ph[-1].velocity)) + expr.held_minus_peak_db
                last_end = max(last_end, ph[-1].end + release_seconds(level + 6.0, expr))
    score_end = max((n.end for notes, _ in fitted for n in notes), default=0.0)
    n_frames = int(math.ceil((max(last_end, score_end) + tail_s) * fr)) + 1
    f0s, louds, voice_part, played = [], [], [], []
    times = np.arange(n_frames, dtype=np.float64) / fr
    for part, (notes, offsets), alloc in zip(parts, fitted, allocs):
        controls = ChannelControls(part, times, fr)
        for v in alloc.voices:
            f0, ld = voice_curves(v.phrases, part, n_frames, fr, expr, rng,
                                  vibrato_depth=float(vibrato_depth), pitch_offset=offsets,
                                  controls=controls)
            f0s.append(np.clip(f0, 20.0, 0.45 * sample_rate))
            louds.append(ld)
            voice_part.append(part.label)
            for ph in v.phrases:
                for n in ph:
                    off = offsets.get(id(n), 0.0)
                    played.append((part.label, len(f0s) - 1,
                                   Note(int(round(n.pitch + off)), n.velocity, n.start, n.end,
                                        n.channel)))
    return Plan(np.stack(f0s), np.stack(louds), fr, voice_part, [p.label for p in parts],
                played, msgs, score_end, float(tail_s), expr)


def synthesize_midi(
    model,
    score: Score | str | os.PathLike,
    tracks=None,
    transpose: float = 0.0,
    tempo_scale: float = 1.0,
    vibrato_depth: float = 1.0,
    seed: int = 0,
    sample_rate: int | None = None,
    max_voices: int = 16,
    out_of_range: str = "transpose",
    stems: bool = False,
    expression: Expression | None = None,
    chunk_frames: int | None = None,
) -> MidiResult:
    """Perform a MIDI score with ``model``; see the module docstring.

    Args:
        model: an :class:`~ddsp_models.nn.Autoencoder` (e.g. ``load_model("violin")``).
        score: a ``.mid`` path or a :class:`~.score.Score`.
        tracks: track numbers / names to play (``None``: every melodic part).
        transpose: semitones added to every note (before the range check).
        tempo_scale: playback speed (2 = twice as fast).
        vibrato_depth: scales the learned vibrato depth (0: none).
        seed: seed of the small random variations (detune, level, vibrato rate/phase) and of
            the model's noise.
        sample_rate: output rate (Hz); ``None``: the model's.
        max_voices: most simultaneous voices per part (extra notes steal the oldest).
        out_of_range: ``"transpose"`` (by octaves into the model's range, with a warning) or
            ``"refuse"`` (raise :class:`~.score.ScoreError` naming the notes).
        stems: also return one stem per part.
        expression: override the model's :class:`~.expression.Expression`.
        chunk_frames: frames rendered per block (memory bound); ``None``: 2000 frames for up
            to 8 voices, fewer for more (about 16000 voice-frames per block, at least 250).

    Returns:
        A :class:`MidiResult`. Warnings (:class:`MidiWarning`): skipped drum parts,
        octave-transposed notes, stolen voices, a model without note statistics.

    Raises:
        ScoreError: unreadable file, no notes, only drums, refused out-of-range notes.
        InvalidInputError: an option out of range, or a model that cannot stream.
    """
    with torch.no_grad():
        result = _synthesize(model, score, tracks, transpose, tempo_scale, vibrato_depth, seed,
                             sample_rate, max_voices, out_of_range, stems, expression,
                             chunk_frames)
    for m in result.messages:
        warnings.warn(m, MidiWarning, stacklevel=2)
    return result


def model_expression(model) -> tuple[Expression, list[str]]:
    """The model's :class:`~.expression.Expression` and a note when it fell back to defaults."""
    stats = getattr(model, "dataset_stats", None)
    expr = expression_for(stats)
    msgs = []
    if expr.missing:
        what = ("no note statistics" if "notes" in expr.missing
                else "incomplete note statistics (" + ", ".join(expr.missing) + ")")
        if not stats:
            what = "no dataset statistics (stats.json)"
        msgs.append(f"the model has {what}: default expression used for what is missing "
                    "(attack, vibrato, velocity range); add them with "
                    "recipes/data/note_stats.py or prepare the data again")
    return expr, msgs


def _synthesize(model, score, tracks, transpose, tempo_scale, vibrato_depth, seed, sample_rate,
                max_voices, out_of_range, stems, expression, chunk_frames) -> MidiResult:
    from ..audio_io import resample
    from ..export.streaming import UnsupportedGraphError, check_streamable

    t_start = time.perf_counter()
    _check_options(transpose, vibrato_depth, max_voices, out_of_range, sample_rate)
    try:
        check_streamable(model)
    except UnsupportedGraphError as err:
        raise InvalidInputError(f"this model cannot play MIDI: {err}") from err
    if expression is None:
        expression, notes_msgs = model_expression(model)
    else:
        notes_msgs = []
    sr_m, hop = int(model.sample_rate), int(model.hop)
    plan = plan_performance(score, expression, sr_m, int(model.frame_rate), tail_seconds(model),
                            tracks, transpose, tempo_scale, vibrato_depth, seed, max_voices,
                            out_of_range)
    msgs = notes_msgs + plan.messages
    f0_t = torch.from_numpy(plan.f0_hz).float()
    ld_t = torch.from_numpy(plan.loudness_db).float()
    t_curves = time.perf_counter() - t_start
    # ---- rendering: all voices as one batch, block by block
    labels = plan.parts
    n_voices, n_frames = f0_t.shape
    dev = next(model.parameters()).device
    from ..transfer.synthesis import offline_engine

    engine = offline_engine(model, seed=int(seed), batch=n_voices)
    d = engine.latency_frames
    n_out = n_frames * hop
    f0_in = f0_t.to(dev)[..., None]
    ld_in = ld_t.to(dev)[..., None]
    mixer = torch.zeros(len(labels), n_voices, device=dev)
    mixer[[labels.index(lbl) for lbl in plan.voice_part], torch.arange(n_voices)] = 1.0
    # blocks of about 16000 voice-frames (2000 frames for 8 voices) bound the memory
    chunk = (max(1, int(chunk_frames)) if chunk_frames else
             int(min(2000, max(250, 16000 // n_voices))))
    blocks = [(c0, min(n_frames, c0 + chunk)) for c0 in range(0, n_frames, chunk)]
    buf: Tensor | None = None
    pos = -d * hop  # the stream lags by d frames
    threads = torch.get_num_threads()
    cpu = dev.type == "cpu"
    if cpu:
        torch.set_num_threads(1)  # one core for the decoder thread, one for the DSP
    decoder = _PipelinedDecoder(engine.decoder, f0_in, ld_in, blocks,
                                engine.state["#hidden"])
    engine.decoder = decoder
    t_loop = time.perf_counter()
    try:
        for block in blocks + ["flush"]:
            if block == "flush":
                y = engine.flush()
            else:
                y = engine(f0_in[:, block[0]:block[1]], ld_in[:, block[0]:block[1]])
            if buf is None:
                buf = torch.zeros(len(labels), y.shape[1], n_out)
            parts_y = torch.einsum("pb,bcl->pcl", mixer, y).cpu()
            a, b = pos, pos + parts_y.shape[-1]
            pos = b
            lo, hi = max(a, 0), min(b, n_out)
            if hi > lo:
                buf[..., lo:hi] = parts_y[..., lo - a: hi - a]
    finally:
        decoder.close()
        if cpu:
            torch.set_num_threads(threads)
    t_decoder = decoder.seconds
    t_resample = time.perf_counter()
    mix = buf.sum(0)
    out_rate = sr_m if sample_rate is None else int(sample_rate)
    stem_audio: dict[str, Tensor] = {}
    if out_rate != sr_m:
        mix = resample(mix, sr_m, out_rate)
        if stems:
            buf = resample(buf, sr_m, out_rate)
    if stems:
        stem_audio = {lbl: buf[i] for i, lbl in enumerate(labels)}
    t_end = time.perf_counter()
    t_dsp = (t_resample - t_loop) - decoder.waited + (t_end - t_resample)
    return MidiResult(
        audio=mix, sample_rate=out_rate, f0_hz=f0_t, loudness_db=ld_t,
        frame_rate=plan.frame_rate, voice_part=plan.voice_part, parts=labels, notes=plan.notes,
        stems=stem_audio, messages=tuple(msgs),
        timings={"curves": t_curves, "decoder": t_decoder, "synthesis": t_dsp,
                 "total": t_end - t_start},
        score_seconds=plan.score_seconds, tail_seconds=plan.tail_seconds)
