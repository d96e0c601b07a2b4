"""Filtered noise synth: white noise through a time-varying FIR filter (DDSP's FilteredNoise)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..core.filtering import frequency_filter
from ..core.noise import noise_like
from ..core.scaling import ExpSigmoid
from ..core.upsample import hop_size
from .base import Param, Processor

__all__ = ["FilteredNoise"]


class FilteredNoise(Processor):
    """Uniform white noise in ``[-1, 1)`` shaped by frame-wise magnitude responses.

    ``forward(magnitudes (B, T, n_bands), n_samples, noise=None)`` → ``(B, 1, n_samples)``.
    ``magnitudes`` are linear gains at ``n_bands`` frequencies spaced linearly from 0 Hz to
    Nyquist; each frame becomes a linear-phase FIR of ``2 (n_bands - 1)`` taps (Hann-windowed,
    or ``window_size`` taps), applied to the block of noise centred on the frame, delay
    compensated (see :func:`ddsp_models.core.frequency_filter`). Pass ``noise`` ``(B,
    n_samples)`` for reproducible output (tests, gradient checks); otherwise it is drawn from
    torch's global generator in the magnitudes' dtype and device.
    """

    n_inputs = 0

    def __init__(self, sample_rate: float = 16000, n_bands: int = 65, window_size: int = 0):
        super().__init__()
        if n_bands < 2:
            raise ValueError(f"n_bands must be >= 2, got {n_bands}")
        self.sample_rate = float(sample_rate)
        self.n_bands = int(n_bands)
        self.window_size = int(window_size)

    def param_specs(self):
        return (
            Param(
                "magnitudes",
                self.n_bands,
                ExpSigmoid(bias=-5.0),
                unit="linear",
                doc="filter gain per band, 0 Hz .. Nyquist",
            ),
        )

    def config(self):
        return {
            "sample_rate": self.sample_rate,
            "n_bands": self.n_bands,
            "window_size": self.window_size,
        }

    def forward(self, magnitudes: Tensor, n_samples: int, noise: Tensor | None = None) -> Tensor:
        self.check_params({"magnitudes": magnitudes})
        b, t, _ = magnitudes.shape
        hop_size(t, n_samples)  # clear error if n_samples < frames
        if noise is None:
            noise = noise_like(b, n_samples, magnitudes)
        elif noise.shape != (b, n_samples):
            raise ValueError(
                f"FilteredNoise: noise must be (batch, n_samples) = {(b, n_samples)}, "
                f"got {tuple(noise.shape)}"
            )
        return frequency_filter(noise, magnitudes, window_size=self.window_size)[:, None, :]
