"""One input check shared by every feature function.

Feature functions take audio ``(samples,)``, ``(batch, samples)`` or mono ``(batch, 1, samples)``
and a ``frame_rate`` whose hop ``sample_rate / frame_rate`` is a whole number of samples. They
return ``frames = samples // hop`` frames, frame ``t`` centred on sample ``t * hop``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..core.upsample import frame_hop
from ..errors import InvalidInputError

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


#: The one hop rule (:func:`ddsp_models.core.upsample.frame_hop`), under its old name.
hop_from_rates = frame_hop


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
            raise InvalidInputError(
                f"{name} has shape {tuple(audio.shape)}: (batch, channels={audio.shape[1]}, samples). "
                "Features need mono audio; mix down first with audio.mean(dim=1), or pass one "
                "channel per batch item with audio.reshape(-1, audio.shape[-1])"
            )
        audio = audio[:, 0]
    elif audio.dim() == 1:
        audio = audio[None]
    elif audio.dim() != 2:
        raise InvalidInputError(
            f"{name} must be (samples,), (batch, samples) or (batch, 1, samples), got shape "
            f"{tuple(audio.shape)}"
        )
    if audio.numel() == 0:
        raise InvalidInputError(f"{name} is empty (shape {tuple(audio.shape)}); pass at least one hop of samples")
    bad = ~torch.isfinite(audio)
    if bool(bad.any()):
        n_bad = int(bad.sum())
        first = int(bad.reshape(-1).nonzero()[0]) % audio.shape[-1]
        raise InvalidInputError(
            f"{name} has {n_bad} NaN or infinite samples (first at sample {first}); clean it first, "
            "e.g. torch.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0)"
        )
    n = audio.shape[-1]
    if n < hop:
        raise InvalidInputError(
            f"{name} has {n} samples, shorter than one frame (hop = {hop} samples at "
            f"{sample_rate:g} Hz / {frame_rate:g} frames/s); pad it or pass longer audio"
        )
    return FeatureInput(audio=audio, squeeze=squeeze, hop=hop, n_frames=n // hop)
