"""Reading and writing audio files (soundfile) and resampling (soxr).

* :func:`load_audio` reads WAV, FLAC, OGG/Vorbis, AIFF and, with libsndfile >= 1.1, MP3;
  returns float32 ``(channels, samples)`` or mono ``(samples,)``, optionally resampled.
* :func:`save_audio` writes through a temporary file in the same folder and renames it, so
  a crash never leaves a half-written file under the final name; the file gets the umask's
  mode (:mod:`ddsp_models.data.atomic`, the one output policy).
* :func:`resample` converts ``(..., samples)`` tensors between rates.
* Streaming counterparts for files of any length (memory bounded by a block):
  :func:`read_blocks` reads a file block by block, :func:`resample_blocks` resamples a
  stream of blocks (its concatenation equals :func:`resample` of the whole, bit for bit),
  :func:`resampled_size` is the length both give, and :func:`save_audio_blocks` writes
  blocks through one atomic write.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .errors import DDSPError
from .features.resample import resample, resampled_size

__all__ = ["load_audio", "save_audio", "resample", "AudioFileError", "supported_extensions",
           "read_blocks", "resample_blocks", "resampled_size", "save_audio_blocks"]


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
        raise _decode_error(path, e) from e
    if data.size == 0:
        raise AudioFileError(f"{str(path)!r} holds no audio samples (0 frames)")
    if not np.isfinite(data).all():
        raise _nonfinite_error(path, int((~np.isfinite(data)).sum()))
    if mono:  # without a (channels, samples) copy of the whole file: memory of long files
        audio = _mix_mono(data)
    else:
        audio = torch.from_numpy(np.ascontiguousarray(data.T))  # (channels, samples)
    if sample_rate is not None and int(sample_rate) != sr:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        audio = resample(audio, sr, int(sample_rate))
        sr = int(sample_rate)
    return audio.to(torch.float32), int(sr)


def _mix_mono(data: np.ndarray) -> Tensor:
    """``(samples, channels)`` float32 as soundfile reads it -> ``(samples,)``: the mean of
    the channels (the one mix-down of :func:`load_audio` and :func:`read_blocks`, so a file
    read in blocks gives the whole file's samples bit for bit)."""
    if data.shape[1] == 1:
        return torch.from_numpy(np.ascontiguousarray(data[:, 0]))
    return torch.from_numpy(data.mean(axis=1, dtype=np.float32))


def _nonfinite_error(path: Path, n_bad: int) -> AudioFileError:
    return AudioFileError(
        f"{str(path)!r} has {n_bad} NaN or infinite samples (a float file written by broken "
        "code?); fix the file, or load it with soundfile and clean it with np.nan_to_num")


def _decode_error(path: Path, e: Exception) -> AudioFileError:
    import soundfile as sf

    return AudioFileError(
        f"cannot decode {str(path)!r} as audio ({e}). Is it a complete, uncorrupted file in "
        f"a format libsndfile {sf.__libsndfile_version__} reads ({', '.join(supported_extensions())})? "
        "Convert other formats with e.g. `ffmpeg -i in.m4a out.wav`.")


def _write_format(path: Path) -> str:
    """libsndfile's format name for ``path``'s extension (ValueError if it has none)."""
    import soundfile as sf

    fmt = path.suffix.lstrip(".").upper()
    fmt = {"OGA": "OGG", "AIF": "AIFF"}.get(fmt, fmt)
    if fmt not in sf.available_formats():
        raise ValueError(
            f"cannot write {str(path)!r}: unknown extension {path.suffix!r}; use one of "
            f"{', '.join(supported_extensions())}"
        )
    return fmt


def read_blocks(path: str | os.PathLike, block_frames: int = 65536, mono: bool = False):
    """Read an audio file block by block: yields ``(sample_rate, block)`` with ``block``
    float32 ``(channels, <= block_frames)`` (the values :func:`load_audio` gives with
    ``mono=False``), or with ``mono`` ``(<= block_frames,)`` (those of ``mono=True``, bit for
    bit). Memory is one block, whatever the file's length.

    Raises:
        FileNotFoundError: no such file.
        AudioFileError: unreadable/corrupt file (also when found mid-file), no samples, or
            NaN/inf samples (raised at the block holding the first, once the rest of the file
            is read to count them: the error :func:`load_audio` gives).
    """
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no audio file at {str(path)!r}")
    if path.is_dir():
        raise AudioFileError(f"{str(path)!r} is a folder, not an audio file")
    n = 0
    try:
        with sf.SoundFile(str(path)) as f:
            sr = int(f.samplerate)
            while True:
                data = f.read(int(block_frames), dtype="float32", always_2d=True)
                if data.shape[0] == 0:
                    break
                if not np.isfinite(data).all():
                    n_bad = int((~np.isfinite(data)).sum())
                    while (data := f.read(int(block_frames), dtype="float32",
                                          always_2d=True)).shape[0]:
                        n_bad += int((~np.isfinite(data)).sum())
                    raise _nonfinite_error(path, n_bad)
                n += data.shape[0]
                yield sr, (_mix_mono(data) if mono else
                           torch.from_numpy(np.ascontiguousarray(data.T)))
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise _decode_error(path, e) from e
    if n == 0:
        raise AudioFileError(f"{str(path)!r} holds no audio samples (0 frames)")


def resample_blocks(blocks, orig_sr: float, new_sr: float, quality: str = "HQ"):
    """Streaming :func:`resample` of mono audio: ``blocks`` is an iterable of ``(samples,)``
    float32 tensors (a split of one signal); yields ``(samples,)`` float32 tensors whose
    concatenation equals ``resample(torch.cat(blocks), orig_sr, new_sr)`` exactly (soxr's
    stream and one-shot resamplers are the same filter), of total length
    :func:`resampled_size`. Memory is a block plus the filter's state."""
    import soxr

    if orig_sr <= 0 or new_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {new_sr}")
    if orig_sr == new_sr:
        for b in blocks:
            yield b
        return
    stream = soxr.ResampleStream(orig_sr, new_sr, 1, dtype="float32", quality=quality)
    it = iter(blocks)
    nxt = next(it, None)
    while nxt is not None:
        cur, nxt = nxt, next(it, None)
        x = np.ascontiguousarray(cur.detach().to("cpu", torch.float32).numpy().reshape(-1))
        y = stream.resample_chunk(x, last=nxt is None)
        if y.shape[0]:
            yield torch.from_numpy(np.ascontiguousarray(y))


def save_audio_blocks(
    path: str | os.PathLike,
    blocks,
    sample_rate: int,
    subtype: str | None = None,
) -> Path:
    """:func:`save_audio` of a mono signal given as an iterable of ``(samples,)`` blocks,
    written incrementally through ONE atomic write (memory: a block). A block with NaN or
    infinite samples aborts the write (ValueError; nothing is left under ``path``)."""
    import soundfile as sf

    path = Path(path)
    if int(sample_rate) <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate}")
    fmt = _write_format(path)
    pcm = subtype is None and sf.default_subtype(fmt).startswith("PCM") or (subtype or "").startswith("PCM")

    def write(tmp: str) -> None:
        warned, n = False, 0
        with sf.SoundFile(tmp, "w", int(sample_rate), 1, subtype=subtype, format=fmt) as f:
            for b in blocks:
                a = b.detach().to("cpu", torch.float32).numpy() if isinstance(b, Tensor) else b
                a = np.asarray(a, dtype=np.float32).reshape(-1)
                if not np.isfinite(a).all():
                    raise ValueError("audio has NaN or infinite samples; clean it with "
                                     "np.nan_to_num before saving")
                if pcm and not warned and a.size and np.abs(a).max() > 1.0:
                    warnings.warn(f"audio peaks above 1 ({np.abs(a).max():.3f}) and will clip "
                                  "in a PCM file; normalise it or pass subtype='FLOAT'",
                                  stacklevel=3)
                    warned = True
                f.write(a)
                n += a.size
        if n == 0:
            raise ValueError("audio is empty; nothing to write")

    from .data.atomic import atomic_write  # the one output policy: atomic, umask modes

    return atomic_write(path, write)


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
    fmt = _write_format(path)
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
