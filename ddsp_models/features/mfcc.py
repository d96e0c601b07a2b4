"""Mel-frequency cepstral coefficients per frame, in torch (differentiable).

Pipeline: magnitude STFT of Hann-windowed frames centred on ``t * hop`` (zero padding) →
triangular mel filterbank (HTK mel scale, ``mel = 2595 log10(1 + f / 700)``, peaks of height 1)
→ ``log(mel + eps)`` → orthonormal DCT-II over the mel bands → the first ``n_mfcc``
coefficients. Frames line up with :func:`compute_f0` and :func:`compute_loudness`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..errors import InvalidInputError
from .checks import check_audio
from .loudness import _stft_power, default_n_fft

__all__ = ["compute_mfcc", "mel_filterbank", "dct_matrix", "hz_to_mel", "mel_to_hz"]


def hz_to_mel(f: Tensor) -> Tensor:
    """HTK mel scale."""
    return 2595.0 * torch.log10(1.0 + f / 700.0)


def mel_to_hz(m: Tensor) -> Tensor:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def mel_filterbank(
    n_fft: int, sample_rate: float, n_mels: int, fmin: float = 20.0, fmax: float | None = None,
    dtype=torch.float32,
) -> Tensor:
    """``(n_fft // 2 + 1, n_mels)`` triangular filters, equally spaced in mel, peak 1."""
    fmax = sample_rate / 2 if fmax is None else min(fmax, sample_rate / 2)
    if not 0 <= fmin < fmax:
        raise InvalidInputError(f"need 0 <= fmin < fmax <= sample_rate/2, got fmin={fmin}, fmax={fmax}")
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges = mel_to_hz(
        torch.linspace(
            hz_to_mel(torch.tensor(fmin, dtype=torch.float64)).item(),
            hz_to_mel(torch.tensor(fmax, dtype=torch.float64)).item(),
            n_mels + 2,
            dtype=torch.float64,
        )
    )
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]
    f = freqs[:, None]
    up = (f - lo) / (mid - lo)
    down = (hi - f) / (hi - mid)
    return torch.minimum(up, down).clamp_min(0.0).to(dtype)


def dct_matrix(n_in: int, n_out: int, dtype=torch.float32) -> Tensor:
    """``(n_in, n_out)`` orthonormal DCT-II: ``y = x @ D`` equals scipy's ``dct(x, norm='ortho')``."""
    n = torch.arange(n_in, dtype=torch.float64)[:, None]
    k = torch.arange(n_out, dtype=torch.float64)[None, :]
    d = torch.cos(math.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    d[:, 0] /= math.sqrt(2.0)
    return d.to(dtype)


def compute_mfcc(
    audio,
    sample_rate: float,
    frame_rate: float,
    n_mfcc: int = 30,
    n_fft: int | None = None,
    n_mels: int = 128,
    fmin: float = 20.0,
    fmax: float | None = 8000.0,
    eps: float = 1e-5,
) -> Tensor:
    """MFCCs per frame.

    Args:
        audio: ``(samples,)``, ``(batch, samples)`` or ``(batch, 1, samples)``.
        sample_rate: Hz. frame_rate: frames/s (the hop must be whole).
        n_mfcc: coefficients kept (``<= n_mels``).
        n_fft: FFT size (default: smallest power of two holding 64 ms: 1024 at 16 kHz).
        n_mels: mel bands; fmin, fmax: their range in Hz (fmax capped at Nyquist).
        eps: added to the mel magnitudes before the log.

    Returns:
        ``(batch, frames, n_mfcc)`` or ``(frames, n_mfcc)``; ``frames = samples // hop``.
    """
    if not 1 <= n_mfcc <= n_mels:
        raise InvalidInputError(f"need 1 <= n_mfcc <= n_mels, got n_mfcc={n_mfcc}, n_mels={n_mels}")
    inp = check_audio(audio, sample_rate, frame_rate)
    x = inp.audio
    n_fft = default_n_fft(sample_rate, 0.064) if n_fft is None else int(n_fft)
    # clamp: finite gradient at exact zeros (far below eps, so values are unchanged)
    mag = _stft_power(x, n_fft, inp.hop, inp.n_frames).clamp_min(1e-20).sqrt()
    fb = mel_filterbank(n_fft, sample_rate, n_mels, fmin, fmax, dtype=x.dtype).to(x.device)
    logmel = torch.log(mag @ fb + eps)
    mfcc = logmel @ dct_matrix(n_mels, n_mfcc, dtype=x.dtype).to(x.device)
    return inp.unbatch(mfcc)
