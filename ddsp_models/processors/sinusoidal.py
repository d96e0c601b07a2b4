"""Sinusoidal synth: freely moving sinusoids (DDSP's ``Sinusoidal``)."""

from __future__ import annotations

from torch import Tensor

from ..core.oscillators import oscillator_bank
from ..core.scaling import ExpSigmoid, LogSigmoidRange
from ..core.upsample import upsample_linear, upsample_with_windows
from .base import Param, Processor

__all__ = ["Sinusoidal"]


class Sinusoidal(Processor):
    """A bank of ``n_sinusoids`` sinusoids with their own frequencies and amplitudes.

    ``forward(frequencies_hz (B, T, K), amplitudes (B, T, K), n_samples)`` →
    ``(B, 1, n_samples)``. Frequencies are upsampled linearly, amplitudes with Hann windows;
    each phase is accumulated in float64; a sinusoid at or above Nyquist is silent while it
    is there. The declared frequency range is ``[min_frequency_hz, sample_rate / 2)`` in log.
    """

    n_inputs = 0

    def __init__(
        self, sample_rate: float = 16000, n_sinusoids: int = 64, min_frequency_hz: float = 20.0
    ):
        super().__init__()
        if n_sinusoids < 1:
            raise ValueError(f"n_sinusoids must be >= 1, got {n_sinusoids}")
        self.sample_rate = float(sample_rate)
        self.n_sinusoids = int(n_sinusoids)
        self.min_frequency_hz = float(min_frequency_hz)

    def param_specs(self):
        return (
            Param(
                "frequencies_hz",
                self.n_sinusoids,
                LogSigmoidRange(self.min_frequency_hz, self.sample_rate / 2),
                unit="Hz",
                doc="frequency of each sinusoid",
            ),
            Param("amplitudes", self.n_sinusoids, ExpSigmoid(), unit="linear",
                  doc="amplitude of each sinusoid"),
        )

    def config(self):
        return {
            "sample_rate": self.sample_rate,
            "n_sinusoids": self.n_sinusoids,
            "min_frequency_hz": self.min_frequency_hz,
        }

    def forward(self, frequencies_hz: Tensor, amplitudes: Tensor, n_samples: int) -> Tensor:
        self.check_params({"frequencies_hz": frequencies_hz, "amplitudes": amplitudes})
        if frequencies_hz.shape != amplitudes.shape:
            raise ValueError(
                f"Sinusoidal: frequencies_hz {tuple(frequencies_hz.shape)} and amplitudes "
                f"{tuple(amplitudes.shape)} must have the same shape"
            )
        freqs = upsample_linear(frequencies_hz, n_samples)
        amps = upsample_with_windows(amplitudes, n_samples)
        return oscillator_bank(freqs, amps, self.sample_rate)[:, None, :]
