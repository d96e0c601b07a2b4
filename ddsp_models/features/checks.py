"""One input check shared by every feature function.

Feature functions take audio ``(samples,)``, ``(batch, samples)`` or mono ``(batch, 1, samples)``
and a ``frame_rate`` whose hop ``sample_rate / frame_rate`` is a whole number of samples. They
return ``frames = samples // hop`` frames, frame ``t`` centred on sample ``t * hop``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["FeatureInput", "check_audio", "hop_from_rates"]


@dataclass
class FeatureInput:
    """Audio validated by :func:`check_audio`.

    Attributes:
        audio: ``(batch, samples)`` floating tensor.
        squeeze: True if the caller passed ``(samples,)``; results then drop the batch axis.
        hop: samples per frame at ``sample_rate``.
        n_frames: ``samples // hop``.
    """

    audio: Tensor
    squeeze: bool
    hop: int
    n_frames: int

    def unbatch(self, x: Tensor) -> Tensor:
        """Drop the batch axis again if the input had none."""
        return x[0] if self.squeeze else x


def _divisors_near(n: int, target: float, k: int = 4) -> list[int]:
    divs = [d for d in range(1, int(math.isqrt(n)) + 1) if n % d == 0]
    divs = sorted(set(divs + [n // d for d in divs]))
    return sorted(divs, key=lambda d: abs(d - target))[:k]


def hop_from_rates(sample_rate: float, frame_rate: float) -> int:
    """``sample_rate / frame_rate`` as a whole number of samples, or a clear ``ValueError``."""
    if not (isinstance(sample_rate, numbers.Real) and sample_rate > 0 and math.isfinite(sample_rate)):
        raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate!r}")
    if not (isinstance(frame_rate, numbers.Real) and frame_rate > 0 and math.isfinite(frame_rate)):
        raise ValueError(f"frame_rate must be a positive number of frames/s, got {frame_rate!r}")
    hop = sample_rate / frame_rate
    if abs(hop - round(hop)) > 1e-9 * hop or round(hop) < 1:
        hint = ""
        if float(sample_rate).is_integer():
            sample_rate = int(sample_rate)
            good = _divisors_near(sample_rate, frame_rate)
            hint = f" Frame rates that divide {sample_rate:g} Hz near it: {good}."
        raise ValueError(
            f"frame_rate={frame_rate:g} does not divide sample_rate={sample_rate:g}: the hop "
            f"would be {hop:g} samples, not a whole number. Pick a frame rate that divides the "
            f"sample rate, or resample the audio first.{hint}"
        )
    return int(round(hop))


def check_audio(
    audio,
    sample_rate: float,
    frame_rate: float,
    name: str = "audio",
) -> FeatureInput:
    """Validate audio for a feature function; errors name the problem and the fix.

    Args:
        audio: tensor (or array) ``(samples,)``, ``(batch, samples)`` or ``(batch, 1, samples)``.
        sample_rate: Hz.
        frame_rate: frames per second; ``sample_rate / frame_rate`` must be whole.

    Raises:
        TypeError: not a floating tensor/array.
        ValueError: stereo input, empty audio, NaN/inf samples, audio shorter than one hop, or
            a frame rate that does not divide the sample rate.
    """
    hop = hop_from_rates(sample_rate, frame_rate)
    if isinstance(audio, np.ndarray):
        audio = torch.from_numpy(audio)
    if not isinstance(audio, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(audio).__name__}")
    if not audio.is_floating_point():
        raise TypeError(
            f"{name} must be floating point in [-1, 1], got {audio.dtype}; "
            "convert integer PCM with audio.float() / 32768 (16-bit) or load it with load_audio"
        )
    squeeze = audio.dim() == 1
    if audio.dim() == 3:
        if audio.shape[1] != 1:
            raise ValueError(
                f"{name} has shape {tuple(audio.shape)}: (batch, channels={audio.shape[1]}, samples). "
                "Features need mono audio; mix down first with audio.mean(dim=1), or pass one "
                "channel per batch item with audio.reshape(-1, audio.shape[-1])"
            )
        audio = audio[:, 0]
    elif audio.dim() == 1:
        audio = audio[None]
    elif audio.dim() != 2:
        raise ValueError(
            f"{name} must be (samples,), (batch, samples) or (batch, 1, samples), got shape "
            f"{tuple(audio.shape)}"
        )
    if audio.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(audio.shape)}); pass at least one hop of samples")
    bad = ~torch.isfinite(audio)
    if bool(bad.any()):
        n_bad = int(bad.sum())
        first = int(bad.reshape(-1).nonzero()[0]) % audio.shape[-1]
        raise ValueError(
            f"{name} has {n_bad} NaN or infinite samples (first at sample {first}); clean it first, "
            "e.g. torch.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0)"
        )
    n = audio.shape[-1]
    if n < hop:
        raise ValueError(
            f"{name} has {n} samples, shorter than one frame (hop = {hop} samples at "
            f"{sample_rate:g} Hz / {frame_rate:g} frames/s); pad it or pass longer audio"
        )
    return FeatureInput(audio=audio, squeeze=squeeze, hop=hop, n_frames=n // hop)
