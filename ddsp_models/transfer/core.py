"""Timbre transfer: any monophonic recording played by a trained model.

``transfer(model, audio, sample_rate)``: mix down to mono, resample to the model's rate,
extract f0 / confidence / loudness (in chunks), optionally auto-adjust them to the model's
training statistics, shift pitch and loudness, render with the model (in chunks with carried
state), resample back to ``sample_rate`` and trim to the input's length.

Silent input (peak below -80 dBFS) has no pitch to follow: the result is silence of the
input's length and a :class:`SilentInputWarning` says so (the CLI prints it and writes the
silent file).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..core.upsample import frame_hop
from ..errors import InvalidInputError
from .features import Features, extract_features

__all__ = ["transfer", "transfer_with_features", "TransferResult", "SilentInputWarning",
           "SILENCE_PEAK"]

#: Inputs whose absolute peak is below this (-80 dBFS) are treated as silent.
SILENCE_PEAK = 1e-4


class SilentInputWarning(UserWarning):
    """The input is silent; the transfer output is silence."""


@dataclass
class TransferResult:
    """Output audio at the input's rate, plus what drove it (for plots and checks).

    ``audio`` ``(samples,)``; ``features``: the input's features at the model rate;
    ``f0_hz``/``loudness_db``: the controls given to the model (after auto-adjust and shifts),
    ``(frames,)``; ``octaves``: octave shift chosen by auto-adjust; ``silent``; ``notes``.
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


def _mono(audio) -> Tensor:
    x = torch.as_tensor(audio)
    if not x.is_floating_point():
        raise TypeError(f"audio must be floating point (samples in [-1, 1]), got {x.dtype}")
    if x.dim() == 3 and x.shape[0] == 1:
        x = x[0]
    if x.dim() == 2:
        if x.shape[0] > x.shape[1]:
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
    f0_method: str = "crepe-full",
    chunk_seconds: float = 30.0,
    synth_chunk_frames: int = 1000,
    quiet_db: float = 20.0,
) -> TransferResult:
    """:func:`transfer`, returning a :class:`TransferResult` with the features used."""
    from ..audio_io import resample
    from .adjust import auto_adjust as _auto_adjust
    from .synthesis import render

    sample_rate = int(sample_rate)
    if sample_rate <= 0:
        raise InvalidInputError(f"sample_rate must be positive, got {sample_rate}")
    x = _mono(audio)
    n_in = x.shape[0]
    sr_m, fr = int(model.sample_rate), int(model.frame_rate)
    if float(x.abs().max()) < SILENCE_PEAK:
        warnings.warn("the input is silent (peak below -80 dBFS): nothing to transfer; the "
                      "output is silence", SilentInputWarning, stacklevel=2)
        return TransferResult(torch.zeros(n_in), sample_rate, None, None, None, fr, silent=True,
                              notes=("silent input",))
    xm = resample(x, sample_rate, sr_m) if sample_rate != sr_m else x
    hop = frame_hop(sr_m, fr)
    if xm.shape[0] < hop:
        raise InvalidInputError(f"audio of {n_in} samples is shorter than one frame of the model "
                         f"({hop} samples at {sr_m} Hz)")
    feats = extract_features(xm, sr_m, fr, f0_method, chunk_seconds=chunk_seconds)
    f0 = feats.f0_hz.double().numpy()
    ld = feats.loudness_db.double().numpy()
    octaves, notes = 0, []
    if auto_adjust:
        stats = getattr(model, "dataset_stats", None)
        if not stats:
            notes.append("the model has no dataset statistics (stats.json): auto-adjust skipped")
            warnings.warn(notes[-1], stacklevel=2)
        else:
            adj = _auto_adjust(f0, feats.confidence.numpy(), ld, stats, fr, quiet_db=quiet_db)
            f0, ld, octaves = adj.f0_hz, adj.loudness_db, adj.octaves
            notes += adj.notes
    f0 = f0 * 2.0 ** (float(pitch_shift) / 12.0)
    ld = ld + float(loudness_shift)
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
    return TransferResult(y, sample_rate, feats, f0_t, ld_t, fr, octaves, False, tuple(notes))


def transfer(
    model,
    audio,
    sample_rate: int,
    pitch_shift: float = 0.0,
    loudness_shift: float = 0.0,
    auto_adjust: bool = True,
    f0_method: str = "crepe-full",
    **kwargs,
) -> Tensor:
    """Play ``audio`` with ``model``; returns ``(samples,)`` at ``sample_rate``, same length.

    Args:
        model: an :class:`~ddsp_models.nn.Autoencoder` (e.g. from
            :func:`ddsp_models.load_model`).
        audio: ``(samples,)``, ``(channels, samples)`` (mixed down) or ``(1, channels,
            samples)``, floating point, any length.
        sample_rate: the audio's rate in Hz (resampled to the model's and back).
        pitch_shift: semitones added to f0 (after auto-adjust); 12 doubles f0.
        loudness_shift: dB added to the loudness (after auto-adjust).
        auto_adjust: octave-shift f0 toward the training data's mean pitch, map loudness onto
            its distribution and quiet non-note frames (needs the model's ``dataset_stats``;
            skipped with a warning otherwise). See :mod:`ddsp_models.transfer.adjust`.
        f0_method: ``"crepe-full"``, ``"crepe-tiny"`` or ``"yin"``.
        **kwargs: ``chunk_seconds`` (feature chunks, default 30), ``synth_chunk_frames``
            (synthesis chunks, default 1000 frames), ``quiet_db`` (default 20).
    """
    return transfer_with_features(model, audio, sample_rate, pitch_shift, loudness_shift,
                                  auto_adjust, f0_method, **kwargs).audio
