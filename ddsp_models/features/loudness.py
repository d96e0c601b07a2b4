"""A-weighted loudness and RMS level per frame, in dB; differentiable.

``compute_loudness`` follows magenta/ddsp's ``spectral_ops.compute_loudness`` (v2+): power
spectrum of Hann-windowed frames centred on ``t * hop`` (zero padding), weighted per bin by
the A-weighting curve in linear power, averaged over the ``n_fft // 2 + 1`` bins, and
converted to dB with the power floored at ``10 ** (-range_db / 10)``, then ``- ref_db``, then
floored at ``-range_db``. With ``n_fft = 512`` the values are DDSP's.

The mean power per bin of a tone grows with ``n_fft``; to keep levels comparable when the
FFT size follows the sample rate, the power is referred to a 512-point FFT (multiplied by
``512 / n_fft``, i.e. nothing at DDSP's default size). A full-scale sine then reads about
+19.8 dB at 1 kHz at every sample rate.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import Tensor

from .checks import check_audio

__all__ = ["compute_loudness", "compute_rms_db", "a_weighting_db", "default_n_fft", "REFERENCE_N_FFT"]

REFERENCE_N_FFT = 512


def default_n_fft(sample_rate: float, seconds: float = 0.032) -> int:
    """Smallest power of two holding ``seconds`` of audio: 512 at 16 kHz, 1024 at 22.05 kHz,
    2048 at 44.1/48 kHz (for the default 32 ms)."""
    return 1 << max(4, math.ceil(math.log2(sample_rate * seconds) - 1e-9))


def a_weighting_db(frequency_hz: Tensor, min_db: float = -80.0) -> Tensor:
    """IEC 61672 A-weighting in dB (0 dB at 1 kHz), floored at ``min_db`` (0 Hz → ``min_db``)."""
    f2 = frequency_hz.to(torch.float64) ** 2
    num = (12194.0**2) * f2**2
    den = (f2 + 20.6**2) * torch.sqrt((f2 + 107.7**2) * (f2 + 737.9**2)) * (f2 + 12194.0**2)
    with torch.no_grad():
        ra = num / den
        db = 20.0 * torch.log10(ra.clamp_min(1e-300)) + 2.0
    return db.clamp_min(min_db).to(frequency_hz.dtype if frequency_hz.is_floating_point() else torch.float32)


@lru_cache(maxsize=16)
def _a_weight_power(sample_rate: float, n_fft: int) -> Tensor:
    """A-weighting of the rfft bins as a linear power factor (float64, CPU, cached)."""
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    return 10.0 ** (a_weighting_db(freqs) / 10.0)


def _stft_power(x: Tensor, n_fft: int, hop: int, n_frames: int) -> Tensor:
    """``(batch, n_frames, n_fft//2+1)`` power of Hann-windowed frames centred on ``t * hop``."""
    window = torch.hann_window(n_fft, periodic=True, dtype=x.dtype, device=x.device)
    if x.shape[-1] <= n_fft // 2:  # torch.stft's constant padding needs no more than this
        x = torch.nn.functional.pad(x, (0, n_fft // 2 + 1 - x.shape[-1]))
    s = torch.stft(
        x, n_fft, hop_length=hop, window=window, center=True, pad_mode="constant", return_complex=True
    )
    s = s[..., :n_frames]
    return (s.real.square() + s.imag.square()).transpose(-1, -2)  # power first: contiguous


def compute_loudness(
    audio,
    sample_rate: float,
    frame_rate: float,
    n_fft: int | None = None,
    range_db: float = 80.0,
    ref_db: float = 0.0,
) -> Tensor:
    """A-weighted loudness in dB per frame (DDSP's definition; see the module docstring).

    Args:
        audio: ``(samples,)``, ``(batch, samples)`` or ``(batch, 1, samples)``.
        sample_rate: Hz. frame_rate: frames/s; the hop must be a whole number of samples.
        n_fft: FFT size (default :func:`default_n_fft`: 512 at 16 kHz, ~32 ms).
        range_db: dynamic range; silence reads ``-range_db``, never -inf or NaN.
        ref_db: subtracted from the level (0 dB ≈ full-scale sine minus 19.8 dB).

    Returns:
        ``(batch, frames)`` or ``(frames,)``, ``frames = samples // hop``; dtype follows the
        audio; differentiable w.r.t. the audio.
    """
    inp = check_audio(audio, sample_rate, frame_rate)
    x = inp.audio
    n_fft = default_n_fft(sample_rate) if n_fft is None else int(n_fft)
    power = _stft_power(x, n_fft, inp.hop, inp.n_frames)
    weight = _a_weight_power(float(sample_rate), n_fft).to(device=x.device, dtype=x.dtype)
    mean_power = (power * weight).mean(-1) * (REFERENCE_N_FFT / n_fft)
    floor = 10.0 ** (-range_db / 10.0)
    db = 10.0 * torch.log10(mean_power.clamp_min(floor)) - ref_db
    return inp.unbatch(db.clamp_min(-range_db))


def compute_rms_db(
    audio,
    sample_rate: float,
    frame_rate: float,
    frame_size: int | None = None,
    range_db: float = 80.0,
) -> Tensor:
    """RMS level in dB (``20 log10 rms``, 0 dB = constant 1) of rectangular frames centred on
    ``t * hop``; floored at ``-range_db``. Default ``frame_size``: :func:`default_n_fft`.

    Returns:
        ``(batch, frames)`` or ``(frames,)``; differentiable.
    """
    from .framing import frame_centred

    inp = check_audio(audio, sample_rate, frame_rate)
    size = default_n_fft(sample_rate) if frame_size is None else int(frame_size)
    frames = frame_centred(inp.audio, size, inp.hop, inp.n_frames)
    ms = frames.square().mean(-1)
    db = 10.0 * torch.log10(ms.clamp_min(10.0 ** (-range_db / 10.0)))
    return inp.unbatch(db.clamp_min(-range_db))
