"""Reading and writing audio files (soundfile) and resampling (soxr).

* :func:`load_audio` reads WAV, FLAC, OGG/Vorbis, AIFF and, with libsndfile >= 1.1, MP3;
  returns float32 ``(channels, samples)`` or mono ``(samples,)``, optionally resampled.
* :func:`save_audio` writes through a temporary file in the same folder and renames it, so
  a crash never leaves a half-written file under the final name; the file gets the umask's
  mode (:mod:`ddsp_models.data.atomic`, the one output policy).
* :func:`resample` converts ``(..., samples)`` tensors between rates.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .errors import DDSPError
from .features.resample import resample

__all__ = ["load_audio", "save_audio", "resample", "AudioFileError", "supported_extensions"]


class AudioFileError(DDSPError, ValueError):
    """A file exists but cannot be decoded as audio, or holds no usable samples."""


def supported_extensions() -> list[str]:
    """File extensions the installed libsndfile can read (lower case, with the dot)."""
    import soundfile as sf

    exts = {"." + k.lower() for k in sf.available_formats()}
    if "OGG" in sf.available_formats():
        exts.add(".oga")
    if "AIFF" in sf.available_formats():
        exts.add(".aif")
    return sorted(exts)


def load_audio(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    mono: bool = True,
) -> tuple[Tensor, int]:
    """Read an audio file.

    Args:
        path: file to read.
        sample_rate: resample to this rate (Hz) with soxr; None keeps the file's rate.
        mono: average the channels into one ``(samples,)`` signal; else ``(channels, samples)``.

    Returns:
        ``(audio, sample_rate)``: float32 tensor in [-1, 1] (for PCM files) and its rate.

    Raises:
        FileNotFoundError: no such file.
        AudioFileError: unreadable/corrupt/unsupported file, no samples, or NaN/inf samples.
    """
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no audio file at {str(path)!r}")
    if path.is_dir():
        raise AudioFileError(f"{str(path)!r} is a folder, not an audio file")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)  # (samples, channels)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioFileError(
            f"cannot decode {str(path)!r} as audio ({e}). Is it a complete, uncorrupted file in "
            f"a format libsndfile {sf.__libsndfile_version__} reads ({', '.join(supported_extensions())})? "
            "Convert other formats with e.g. `ffmpeg -i in.m4a out.wav`."
        ) from e
    if data.size == 0:
        raise AudioFileError(f"{str(path)!r} holds no audio samples (0 frames)")
    if not np.isfinite(data).all():
        n_bad = int((~np.isfinite(data)).sum())
        raise AudioFileError(
            f"{str(path)!r} has {n_bad} NaN or infinite samples (a float file written by broken "
            "code?); fix the file, or load it with soundfile and clean it with np.nan_to_num"
        )
    if mono:  # without a (channels, samples) copy of the whole file: memory of long files
        audio = torch.from_numpy(np.ascontiguousarray(data[:, 0]) if data.shape[1] == 1
                                 else data.mean(axis=1, dtype=np.float32))
    else:
        audio = torch.from_numpy(np.ascontiguousarray(data.T))  # (channels, samples)
    if sample_rate is not None and int(sample_rate) != sr:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        audio = resample(audio, sr, int(sample_rate))
        sr = int(sample_rate)
    return audio.to(torch.float32), int(sr)


def save_audio(
    path: str | os.PathLike,
    audio: Tensor | np.ndarray,
    sample_rate: int,
    subtype: str | None = None,
) -> Path:
    """Write audio atomically (temporary file in the same folder, then rename).

    Args:
        path: destination; the format follows its extension (.wav, .flac, .ogg, ...).
        audio: ``(samples,)``, ``(channels, samples)`` or ``(1, channels, samples)``.
        sample_rate: Hz.
        subtype: soundfile subtype (default: the format's default, e.g. PCM_16 for WAV).
            PCM subtypes clip samples outside [-1, 1]; a warning says so.

    Returns:
        The written path.
    """
    import soundfile as sf

    path = Path(path)
    if isinstance(audio, Tensor):
        audio = audio.detach().to("cpu", torch.float32).numpy()
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 3 and audio.shape[0] == 1:
        audio = audio[0]
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2:
        raise ValueError(f"audio must be (samples,), (channels, samples) or (1, channels, samples), got {audio.shape}")
    if audio.shape[0] > audio.shape[1]:
        raise ValueError(
            f"audio has shape {audio.shape}: more channels than samples. Pass (channels, samples); "
            "transpose (samples, channels) arrays with audio.T"
        )
    if audio.size == 0:
        raise ValueError("audio is empty; nothing to write")
    if not np.isfinite(audio).all():
        raise ValueError("audio has NaN or infinite samples; clean it with np.nan_to_num before saving")
    if int(sample_rate) <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate}")
    fmt = path.suffix.lstrip(".").upper()
    fmt = {"OGA": "OGG", "AIF": "AIFF"}.get(fmt, fmt)
    if fmt not in sf.available_formats():
        raise ValueError(
            f"cannot write {str(path)!r}: unknown extension {path.suffix!r}; use one of "
            f"{', '.join(supported_extensions())}"
        )
    pcm = subtype is None and sf.default_subtype(fmt).startswith("PCM") or (subtype or "").startswith("PCM")
    if pcm and np.abs(audio).max() > 1.0:
        warnings.warn(
            f"audio peaks at {np.abs(audio).max():.3f} > 1 and will clip in a PCM file; "
            "normalise it or pass subtype='FLOAT'",
            stacklevel=2,
        )
    from .data.atomic import atomic_write  # the one output policy: atomic, umask modes

    return atomic_write(
        path, lambda tmp: sf.write(tmp, audio.T, int(sample_rate), subtype=subtype, format=fmt))
