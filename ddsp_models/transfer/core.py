"""Timbre transfer: any monophonic recording played by a trained model.

``transfer(model, audio, sample_rate)``: mix down to mono, resample to the model's rate,
extract f0 / confidence / loudness (in chunks), optionally auto-adjust them to the model's
training statistics, shift pitch and loudness, render with the model (in chunks with carried
state), resample back to ``sample_rate`` and trim to the input's length.

Silent input (peak below -80 dBFS) has no pitch to follow: the result is silence of the
input's length and a :class:`SilentInputWarning` says so (the CLI prints it and writes the
silent file).

Inputs and options are validated here, at the API boundary, before any work
(:func:`check_options`, :func:`check_sample_rate`, :func:`check_level`): implausible sample
rates, shifts outside their ranges, NaN/inf options and inputs far above full scale are
refused with an :class:`~ddsp_models.errors.InvalidInputError` naming the allowed range.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..audio_io import resample, resample_blocks, resampled_size
from ..core.upsample import frame_hop
from ..errors import InvalidInputError
from .features import Features, extract_features

__all__ = ["transfer", "transfer_with_features", "transfer_file", "TransferResult", "SilentInputWarning",
           "SILENCE_PEAK", "DEFAULT_F0_METHOD", "check_options", "check_sample_rate",
           "check_level", "LIMITS"]

#: Inputs whose absolute peak is below this (-80 dBFS) are treated as silent.
SILENCE_PEAK = 1e-4
#: Inputs whose absolute peak is above this (+60 dBFS) are refused: samples are expected in
#: [-1, 1]; such a file was written with a wrong scale (e.g. integer samples stored as float).
MAX_PEAK = 1e3

#: The pitch tracker used when none is named (chosen by measurement, see docs/transfer.md).
DEFAULT_F0_METHOD = "crepe-tiny"

#: Allowed ranges (inclusive) of the numeric options, checked by :func:`check_options`.
LIMITS: dict[str, tuple[float, float]] = {
    "sample_rate": (1000.0, 768000.0),  # Hz
    "pitch_shift": (-48.0, 48.0),  # semitones (four octaves)
    "loudness_shift": (-60.0, 60.0),  # dB
    "autotune": (0.0, 1.0),
    "note_threshold": (0.0, 10.0),
    "quiet_db": (0.0, 120.0),  # dB
    "chunk_seconds": (0.1, 3600.0),  # s
}

#: Default of ``note_threshold`` (see :func:`ddsp_models.transfer.adjust.detect_notes`).
NOTE_THRESHOLD = 1.0
#: Default of ``quiet_db``.
QUIET_DB = 20.0

_UNITS = {"sample_rate": " Hz", "pitch_shift": " semitones", "loudness_shift": " dB",
          "quiet_db": " dB", "chunk_seconds": " s"}


def _check_range(name: str, value, flag: str | None = None) -> float:
    lo, hi = LIMITS[name]
    label = flag or name
    unit = _UNITS.get(name, "")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{label} must be a number from {lo:g} to {hi:g}{unit}, got "
                                f"{value!r}") from None
    if not math.isfinite(v):
        raise InvalidInputError(f"{label} must be a finite number from {lo:g} to {hi:g}{unit}, "
                                f"got {v}")
    if not lo <= v <= hi:
        raise InvalidInputError(f"{label} {v:g}{unit} is out of range: use {lo:g} to {hi:g}{unit}")
    return v


def check_sample_rate(sample_rate, flag: str | None = None) -> int:
    """The sample rate as an int; refuses non-whole, non-finite or implausible rates
    (outside ``LIMITS["sample_rate"]``: 1 kHz to 768 kHz)."""
    v = _check_range("sample_rate", sample_rate, flag)
    if v != int(v):
        raise InvalidInputError(f"{flag or 'sample_rate'} must be a whole number of Hz, got {v}")
    return int(v)


def check_options(flags: dict[str, str] | None = None, **options) -> dict[str, float]:
    """Validate numeric transfer options (names of :data:`LIMITS`); returns them as floats.

    ``flags`` maps an option name to the name the user typed (e.g. ``--pitch-shift``) for the
    message. Raises :class:`~ddsp_models.errors.InvalidInputError` naming the allowed range.
    """
    flags = flags or {}
    return {k: _check_range(k, v, flags.get(k)) for k, v in options.items()}


def check_level(peak: float) -> str | None:
    """Refuse a peak above :data:`MAX_PEAK` (+60 dBFS); return a warning text above full
    scale (1.0), else None."""
    if not math.isfinite(peak) or peak > MAX_PEAK:
        db = 20 * math.log10(peak) if math.isfinite(peak) and peak > 0 else peak
        raise InvalidInputError(
            f"audio peaks at {db:+.0f} dBFS (sample values up to {peak:.3g}); samples are "
            f"expected in [-1, 1]: divide the audio by its peak (or fix the file's scale)")
    if peak > 1.0:
        return (f"audio peaks at {20 * math.log10(peak):+.1f} dBFS (above full scale); "
                "it is used as is (auto-adjust maps the loudness; without it the model "
                "plays loudly)")
    return None


class SilentInputWarning(UserWarning):
    """The input is silent; the transfer output is silence."""


@dataclass
class TransferResult:
    """Output audio at the input's rate, plus what drove it (for plots and checks).

    ``audio`` ``(samples,)``; ``features``: the input's features at the model rate;
    ``f0_hz``/``loudness_db``: the controls given to the model (after auto-adjust and shifts),
    ``(frames,)``; ``octaves``: octave shift chosen by auto-adjust; ``silent``; ``notes``;
    ``scale``: the scale autotune snapped to (e.g. ``"A minor"``, None when autotune is off).
    From :func:`transfer_file`: ``audio`` is None (it is in the file), ``peak`` is the
    output's peak before any normalisation and ``normalized`` whether it was scaled.
    """

    audio: Tensor | None
    sample_rate: int
    features: Features | None
    f0_hz: Tensor | None
    loudness_db: Tensor | None
    frame_rate: int
    octaves: int = 0
    silent: bool = False
    notes: tuple = ()
    scale: str | None = None
    peak: float | None = None
    normalized: bool = False


def _mix(x: Tensor) -> Tensor:
    """``(channels, samples)`` -> ``(samples,)``: the mean of the channels (the one mix-down
    of the in-memory and the streamed paths)."""
    return x.mean(0)


def _mono(audio) -> Tensor:
    x = torch.as_tensor(audio)
    if not x.is_floating_point():
        raise TypeError(f"audio must be floating point (samples in [-1, 1]), got {x.dtype}")
    if x.dim() == 3 and x.shape[0] == 1:
        x = x[0]
    if x.dim() == 2:
        if x.shape[0] > x.shape[1] and x.shape[0] > 64:
            raise InvalidInputError(f"audio {tuple(x.shape)} has more channels than samples; pass "
                             "(channels, samples)")
        x = _mix(x)
    if x.dim() != 1:
        raise InvalidInputError(f"audio must be (samples,), (channels, samples) or (1, channels, "
                         f"samples), got {tuple(x.shape)}")
    if x.numel() == 0:
        raise InvalidInputError("audio is empty")
    if not torch.isfinite(x).all():
        raise InvalidInputError("audio has NaN or infinite samples; clean it with torch.nan_to_num")
    return x.detach().float().cpu()


def _check_request(f0_method, scale, loudness_map="level", **options):
    """Validate the options before any work: ``(opts, wanted scale or None)``."""
    from ..features.f0 import F0_METHODS
    from .adjust import LOUDNESS_MAPS
    from .autotune import parse_scale

    opts = check_options(**options)
    if f0_method not in F0_METHODS:
        raise InvalidInputError(f"f0_method must be one of {sorted(F0_METHODS)}, got "
                                f"{f0_method!r}")
    if loudness_map not in LOUDNESS_MAPS:
        raise InvalidInputError(f"loudness_map must be one of {list(LOUDNESS_MAPS)}, got "
                                f"{loudness_map!r}")
    opts["loudness_map"] = loudness_map
    return opts, (parse_scale(scale) if opts["autotune"] > 0 else None)


def _check_input(model, n_in: int, sample_rate: int, peak: float) -> bool:
    """Length and level checks of the (mono) input; True when it is silent (warned)."""
    sr_m, fr = int(model.sample_rate), int(model.frame_rate)
    hop = frame_hop(sr_m, fr)
    if n_in * sr_m < hop * sample_rate:
        raise InvalidInputError(f"audio of {n_in} samples ({n_in / sample_rate * 1e3:.2g} ms) is "
                                f"shorter than one frame of the model ({hop} samples at {sr_m} "
                                "Hz)")
    if peak < SILENCE_PEAK:
        warnings.warn("the input is silent (peak below -80 dBFS): nothing to transfer; the "
                      "output is silence", SilentInputWarning, stacklevel=3)
        return True
    loud = check_level(peak)
    if loud:
        warnings.warn(loud, stacklevel=3)
    if resampled_size(n_in, sample_rate, sr_m) < hop:
        raise InvalidInputError(f"audio of {n_in} samples is shorter than one frame of the model "
                         f"({hop} samples at {sr_m} Hz)")
    return False


def _controls(model, feats: Features, f0_method: str, opts: dict, auto_adjust: bool,
              want_scale):
    """The controls given to the model from the input's features: auto-adjust, shifts,
    autotune and the clip below Nyquist. Returns ``(f0_hz, loudness_db, octaves, notes,
    scale name)`` with the controls float32 ``(frames,)``."""
    from ..features.f0 import F0_METHODS
    from .adjust import auto_adjust as _auto_adjust
    from .autotune import autotune as _autotune
    from .autotune import resolve_scale

    sr_m, fr = int(model.sample_rate), int(model.frame_rate)
    f0 = feats.f0_hz.double().numpy()
    ld = feats.loudness_db.double().numpy()
    conf = feats.confidence.double().numpy()
    octaves, notes = 0, []
    if auto_adjust:
        stats = getattr(model, "dataset_stats", None)
        if not stats:
            notes.append("the model has no dataset statistics (stats.json): auto-adjust skipped")
            warnings.warn(notes[-1], stacklevel=3)
        else:
            adj = _auto_adjust(f0, conf, ld, stats, fr, quiet_db=opts["quiet_db"],
                               loudness_map=opts["loudness_map"],
                               note_threshold=opts["note_threshold"])
            f0, ld, octaves = adj.f0_hz, adj.loudness_db, adj.octaves
            notes += adj.notes
    f0 = f0 * 2.0 ** (opts["pitch_shift"] / 12.0)
    ld = ld + opts["loudness_shift"]
    used_scale = None
    if want_scale is not None:
        # after the shifts: the model plays exactly the scale's notes
        voiced = conf >= F0_METHODS[f0_method]
        sc = resolve_scale(want_scale, f0, voiced, conf)
        f0 = _autotune(f0, voiced, opts["autotune"], sc)
        used_scale = sc.name
        how = "given" if want_scale.tonic is not None or sc.mode == "chromatic" else "detected"
        notes.append(f"autotune {opts['autotune']:g} to {used_scale} ({how})")
    nyq = sr_m / 2.0
    f0 = np.clip(f0, 1.0, nyq - 1.0)
    return (torch.from_numpy(f0).float(), torch.from_numpy(ld).float(), octaves, notes,
            used_scale)


def _fit(blocks, n: int):
    """The blocks of a signal trimmed or zero-padded to exactly ``n`` samples."""
    left = int(n)
    for b in blocks:
        if left <= 0:
            break
        b = b.reshape(-1)[:left]
        left -= b.shape[0]
        yield b
    while left > 0:  # in blocks: a long silent output stays small in memory
        k = min(left, 1 << 16)
        left -= k
        yield torch.zeros(k)


def _output_blocks(model, f0_t: Tensor, ld_t: Tensor, n_model: int, sample_rate: int,
                   n_in: int, synth_chunk_frames: int, audio: Tensor | None = None):
    """Pass 2: the output at ``sample_rate`` as blocks of ``(samples,)`` float32, exactly
    ``n_in`` samples: rendered in chunks, fitted to the model-rate input's length
    ``n_model``, resampled (streaming, the same samples as one whole resampling) and fitted to
    the input's length."""
    from .synthesis import render_blocks

    sr_m = int(model.sample_rate)
    enc = audio if getattr(model, "encoder", None) is not None else None
    y = _fit(render_blocks(model, f0_t, ld_t, synth_chunk_frames, audio=enc), n_model)
    if sample_rate != sr_m:
        y = resample_blocks(y, sr_m, sample_rate)
    return _fit(y, n_in)


@torch.no_grad()
def transfer_with_features(
    model,
    audio,
    sample_rate: int,
    pitch_shift: float = 0.0,
    loudness_shift: float = 0.0,
    auto_adjust: bool = True,
    f0_method: str = DEFAULT_F0_METHOD,
    chunk_seconds: float = 30.0,
    synth_chunk_frames: int = 1000,
    quiet_db: float = QUIET_DB,
    autotune: float = 0.0,
    scale: str | None = None,
    note_threshold: float = NOTE_THRESHOLD,
    loudness_map: str = "level",
) -> TransferResult:
    """:func:`transfer`, returning a :class:`TransferResult` with the features used."""
    opts, want_scale = _check_request(
        f0_method, scale, loudness_map, pitch_shift=pitch_shift, loudness_shift=loudness_shift,
        autotune=autotune, note_threshold=note_threshold, quiet_db=quiet_db,
        chunk_seconds=chunk_seconds)
    sample_rate = check_sample_rate(sample_rate)
    x = _mono(audio)
    n_in = x.shape[0]
    sr_m, fr = int(model.sample_rate), int(model.frame_rate)
    if _check_input(model, n_in, sample_rate, float(x.abs().max())):
        return TransferResult(torch.zeros(n_in), sample_rate, None, None, None, fr, silent=True,
                              notes=("silent input",))
    xm = resample(x, sample_rate, sr_m) if sample_rate != sr_m else x
    feats = extract_features(xm, sr_m, fr, f0_method, chunk_seconds=opts["chunk_seconds"])
    f0_t, ld_t, octaves, notes, used_scale = _controls(model, feats, f0_method, opts,
                                                       auto_adjust, want_scale)
    y = torch.cat(list(_output_blocks(model, f0_t, ld_t, xm.shape[0], sample_rate, n_in,
                                      synth_chunk_frames, audio=xm)))
    return TransferResult(y, sample_rate, feats, f0_t, ld_t, fr, octaves, False, tuple(notes),
                          used_scale)


class _Rescale(Exception):
    """Raised inside the output write to start it again with the output normalised."""

    def __init__(self, peak: float):
        super().__init__(peak)
        self.peak = peak


@torch.no_grad()
def transfer_file(
    model,
    in_path,
    out_path,
    pitch_shift: float = 0.0,
    loudness_shift: float = 0.0,
    auto_adjust: bool = True,
    f0_method: str = DEFAULT_F0_METHOD,
    chunk_seconds: float = 30.0,
    synth_chunk_frames: int = 1000,
    quiet_db: float = QUIET_DB,
    autotune: float = 0.0,
    scale: str | None = None,
    note_threshold: float = NOTE_THRESHOLD,
    subtype: str | None = None,
    normalize: bool = False,
    block_frames: int = 65536,
    loudness_map: str = "level",
) -> TransferResult:
    """:func:`transfer_with_features` from the file ``in_path`` to the file ``out_path``
    (mono, at the input's rate, same length) with memory bounded by a chunk, not the file
    length; the output is the same as transferring the loaded file in memory.

    Two passes over the input, read ``block_frames`` at a time (plus one quick pass for the
    level and length checks): pass 1 mixes each block to mono, resamples it to the model's
    rate (streaming) and extracts the features chunk by chunk with their context (only the
    frame-rate features are kept for the whole file, a few bytes per frame); auto-adjust and
    the shifts then run on the whole feature arrays as in memory. Pass 2 renders in chunks
    with carried state, resamples each chunk back to the input's rate (streaming) and writes
    it through ONE atomic write (nothing is left under ``out_path`` on an error).

    Models with an MFCC encoder need the audio again in pass 2 (and cannot stream anyway):
    for them the file is loaded whole and transferred in memory (memory grows with the
    file length).

    Args:
        in_path, out_path: audio files (the format follows ``out_path``'s extension).
        subtype: soundfile subtype of the output (e.g. ``"FLOAT"``; None: the format's
            default).
        normalize: when the output peaks above 1, scale it to peak 0.99 (the render is then
            written again, scaled: use it for formats that clip).
        block_frames: input frames read at a time.
        Others: as :func:`transfer`.

    Returns:
        A :class:`TransferResult` with ``audio`` None, ``peak`` the output's peak before any
        normalisation and ``normalized`` whether it was scaled.
    """
    from ..audio_io import read_blocks, save_audio_blocks
    from .features import BlockReader

    opts, want_scale = _check_request(
        f0_method, scale, loudness_map, pitch_shift=pitch_shift, loudness_shift=loudness_shift,
        autotune=autotune, note_threshold=note_threshold, quiet_db=quiet_db,
        chunk_seconds=chunk_seconds)
    sr_m, fr = int(model.sample_rate), int(model.frame_rate)

    def write(blocks_fn, sample_rate: int) -> tuple[float, bool]:
        peak = 0.0

        def tracked(gain=None):
            nonlocal peak
            for b in blocks_fn():
                if b.numel():
                    peak = max(peak, float(b.abs().max()))
                yield b if gain is None else b / gain * 0.99

        def checked():
            for b in tracked():
                if not (normalize and peak > 1.0):  # else only the peak is still needed
                    yield b
            if normalize and peak > 1.0:
                raise _Rescale(peak)

        try:
            save_audio_blocks(out_path, checked(), sample_rate, subtype=subtype)
            return peak, False
        except _Rescale as r:
            save_audio_blocks(out_path, tracked(r.peak), sample_rate, subtype=subtype)
            return r.peak, True

    if getattr(model, "encoder", None) is not None:  # needs the audio in pass 2: in memory
        from ..audio_io import load_audio

        audio, sr = load_audio(in_path, mono=False)
        res = transfer_with_features(
            model, audio, sr, pitch_shift, loudness_shift, auto_adjust, f0_method,
            chunk_seconds, synth_chunk_frames, quiet_db, autotune, scale, note_threshold,
            loudness_map)
        del audio
        res.peak, res.normalized = write(lambda: iter([res.audio]), sr)
        res.audio = None
        return res

    # quick pass: rate, length and level (the checks before any work)
    n_in, peak, sr = 0, 0.0, None
    for sr, block in read_blocks(in_path, block_frames):
        m = _mix(block)
        n_in += m.shape[0]
        peak = max(peak, float(m.abs().max()))
    sample_rate = check_sample_rate(sr)
    if _check_input(model, n_in, sample_rate, peak):
        write(lambda: _fit(iter(()), n_in), sample_rate)
        return TransferResult(None, sample_rate, None, None, None, fr, silent=True,
                              notes=("silent input",), peak=0.0)

    def mono_blocks():
        for _, block in read_blocks(in_path, block_frames):
            yield _mix(block)

    # pass 1: features of the model-rate audio, read chunk by chunk
    n_model = resampled_size(n_in, sample_rate, sr_m)
    reader = BlockReader(resample_blocks(mono_blocks(), sample_rate, sr_m), n_model)
    feats = extract_features(reader, sr_m, fr, f0_method, chunk_seconds=opts["chunk_seconds"])
    del reader
    f0_t, ld_t, octaves, notes, used_scale = _controls(model, feats, f0_method, opts,
                                                       auto_adjust, want_scale)
    # pass 2: render, resample back and write, chunk by chunk
    out_peak, scaled = write(lambda: _output_blocks(model, f0_t, ld_t, n_model, sample_rate,
                                                    n_in, synth_chunk_frames), sample_rate)
    return TransferResult(None, sample_rate, feats, f0_t, ld_t, fr, octaves, False,
                          tuple(notes), used_scale, peak=out_peak, normalized=scaled)


def transfer(
    model,
    audio,
    sample_rate: int,
    pitch_shift: float = 0.0,
    loudness_shift: float = 0.0,
    auto_adjust: bool = True,
    f0_method: str = DEFAULT_F0_METHOD,
    **kwargs,
) -> Tensor:
    """Play ``audio`` with ``model``; returns ``(samples,)`` at ``sample_rate``, same length.

    Args:
        model: an :class:`~ddsp_models.nn.Autoencoder` (e.g. from
            :func:`ddsp_models.load_model`).
        audio: ``(samples,)``, ``(channels, samples)`` (mixed down) or ``(1, channels,
            samples)``, floating point, any length.
        sample_rate: the audio's rate in Hz (resampled to the model's and back), 1 kHz to
            768 kHz.
        pitch_shift: semitones added to f0 (after auto-adjust); 12 doubles f0; -48 to 48.
        loudness_shift: dB added to the loudness (after auto-adjust); -60 to 60.
        auto_adjust: octave-shift f0 into the training data's pitch range (only an input
            whose mean pitch lies outside it), map loudness onto its distribution and quiet
            non-note frames (needs the model's ``dataset_stats``; skipped with a warning
            otherwise). See :mod:`ddsp_models.transfer.adjust`.
        f0_method: ``"crepe-tiny"`` (default: with its YIN refinement as accurate as
            ``"crepe-full"`` on our benchmarks and several times faster), ``"crepe-full"`` or
            ``"yin"``.
        **kwargs: ``autotune`` (0 = off ... 1 = every voiced frame on the scale; applied after
            the shifts, see :mod:`ddsp_models.transfer.autotune`), ``scale`` (``None`` = key
            detected from the input, ``"chromatic"``, ``"major"``/``"minor"`` (tonic detected)
            or a key like ``"C#minor"``, ``"Bbmajor"``), ``note_threshold`` (auto-adjust's
            note/silence decision, default 1.0: higher keeps fewer frames as notes),
            ``quiet_db`` (dB taken off non-note frames, default 20), ``loudness_map``
            (``"level"``, the default: one dB shift to the training median, the input keeps
            its dynamics; ``"quantiles"``: DDSP's mapping of the whole distribution),
            ``chunk_seconds``
            (feature chunks, default 30), ``synth_chunk_frames`` (synthesis chunks, default
            1000 frames).
    """
    return transfer_with_features(model, audio, sample_rate, pitch_shift, loudness_shift,
                                  auto_adjust, f0_method, **kwargs).audio
