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

from ..core.upsample import frame_hop
from ..errors import InvalidInputError
from .features import Features, extract_features

__all__ = ["transfer", "transfer_with_features", "TransferResult", "SilentInputWarning",
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
    """

    audio: Tensor
    sample_rate: int
    features: Features | None
    f0_hz: Tensor | None
    loudness_db: Tensor | None
    frame_rate: int
    octaves: int = 0
    silent: bool = False
    notes: tuple = ()
    scale: str | None = None


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
        x = x.mean(0)
    if x.dim() != 1:
        raise InvalidInputError(f"audio must be (samples,), (channels, samples) or (1, channels, "
                         f"samples), got {tuple(x.shape)}")
    if x.numel() == 0:
        raise InvalidInputError("audio is empty")
    if not torch.isfinite(x).all():
        raise InvalidInputError("audio has NaN or infinite samples; clean it with torch.nan_to_num")
    return x.detach().float().cpu()


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
) -> TransferResult:
    """:func:`transfer`, returning a :class:`TransferResult` with the features used."""
    from ..audio_io import resample
    from ..features.f0 import F0_METHODS
    from .adjust import auto_adjust as _auto_adjust
    from .autotune import autotune as _autotune
    from .autotune import parse_scale, resolve_scale
    from .synthesis import render

    opts = check_options(pitch_shift=pitch_shift, loudness_shift=loudness_shift,
                         autotune=autotune, note_threshold=note_threshold, quiet_db=quiet_db,
                         chunk_seconds=chunk_seconds)
    if f0_method not in F0_METHODS:
        raise InvalidInputError(f"f0_method must be one of {sorted(F0_METHODS)}, got "
                                f"{f0_method!r}")
    want_scale = parse_scale(scale) if opts["autotune"] > 0 else None
    sample_rate = check_sample_rate(sample_rate)
    x = _mono(audio)
    n_in = x.shape[0]
    sr_m, fr = int(model.sample_rate), int(model.frame_rate)
    hop = frame_hop(sr_m, fr)
    if n_in * sr_m < hop * sample_rate:
        raise InvalidInputError(f"audio of {n_in} samples ({n_in / sample_rate * 1e3:.2g} ms) is "
                                f"shorter than one frame of the model ({hop} samples at {sr_m} "
                                "Hz)")
    peak = float(x.abs().max())
    if peak < SILENCE_PEAK:
        warnings.warn("the input is silent (peak below -80 dBFS): nothing to transfer; the "
                      "output is silence", SilentInputWarning, stacklevel=2)
        return TransferResult(torch.zeros(n_in), sample_rate, None, None, None, fr, silent=True,
                              notes=("silent input",))
    loud = check_level(peak)
    if loud:
        warnings.warn(loud, stacklevel=2)
    xm = resample(x, sample_rate, sr_m) if sample_rate != sr_m else x
    if xm.shape[0] < hop:
        raise InvalidInputError(f"audio of {n_in} samples is shorter than one frame of the model "
                         f"({hop} samples at {sr_m} Hz)")
    feats = extract_features(xm, sr_m, fr, f0_method, chunk_seconds=opts["chunk_seconds"])
    f0 = feats.f0_hz.double().numpy()
    ld = feats.loudness_db.double().numpy()
    conf = feats.confidence.double().numpy()
    octaves, notes = 0, []
    if auto_adjust:
        stats = getattr(model, "dataset_stats", None)
        if not stats:
            notes.append("the model has no dataset statistics (stats.json): auto-adjust skipped")
            warnings.warn(notes[-1], stacklevel=2)
        else:
            adj = _auto_adjust(f0, conf, ld, stats, fr, quiet_db=opts["quiet_db"],
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
    f0_t = torch.from_numpy(f0).float()
    ld_t = torch.from_numpy(ld).float()
    y = render(model, f0_t, ld_t, chunk_frames=synth_chunk_frames,
               audio=xm if getattr(model, "encoder", None) is not None else None)
    y = y.reshape(-1).float().cpu()
    y = torch.nn.functional.pad(y, (0, max(0, xm.shape[0] - y.shape[0])))[: xm.shape[0]]
    if sample_rate != sr_m:
        y = resample(y, sr_m, sample_rate)
    y = torch.nn.functional.pad(y, (0, max(0, n_in - y.shape[0])))[:n_in]
    return TransferResult(y, sample_rate, feats, f0_t, ld_t, fr, octaves, False, tuple(notes),
                          used_scale)


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
        auto_adjust: octave-shift f0 toward the training data's mean pitch, map loudness onto
            its distribution and quiet non-note frames (needs the model's ``dataset_stats``;
            skipped with a warning otherwise). See :mod:`ddsp_models.transfer.adjust`.
        f0_method: ``"crepe-tiny"`` (default: with its YIN refinement as accurate as
            ``"crepe-full"`` on our benchmarks and several times faster), ``"crepe-full"`` or
            ``"yin"``.
        **kwargs: ``autotune`` (0 = off ... 1 = every voiced frame on the scale; applied after
            the shifts, see :mod:`ddsp_models.transfer.autotune`), ``scale`` (``None`` = key
            detected from the input, ``"chromatic"``, ``"major"``/``"minor"`` (tonic detected)
            or a key like ``"C#minor"``, ``"Bbmajor"``), ``note_threshold`` (auto-adjust's
            note/silence decision, default 1.0: higher keeps fewer frames as notes),
            ``quiet_db`` (dB taken off non-note frames, default 20), ``chunk_seconds``
            (feature chunks, default 30), ``synth_chunk_frames`` (synthesis chunks, default
            1000 frames).
    """
    return transfer_with_features(model, audio, sample_rate, pitch_shift, loudness_shift,
                                  auto_adjust, f0_method, **kwargs).audio
