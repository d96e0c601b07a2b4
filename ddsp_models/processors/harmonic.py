"""Harmonic synth: a bank of harmonics of f0 with a normalised harmonic distribution (DDSP)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..core.oscillators import harmonic_frequencies, harmonic_synthesis, remove_above_nyquist
from ..core.scaling import ExpSigmoid
from .base import Param, Processor

__all__ = ["Harmonic"]


class Harmonic(Processor):
    """Additive synth of ``n_harmonics`` harmonics of ``f0`` (DDSP's ``Harmonic``).

    ``forward(f0_hz, amplitude, harmonic_distribution, n_samples)`` → ``(batch, 1, n_samples)``:

    * ``f0_hz`` ``(B, T, 1)`` Hz, external (from the encoder), upsampled linearly; the phase of
      f0 is accumulated in float64 and harmonic ``k`` has phase ``k φ``.
    * ``amplitude`` ``(B, T, 1)`` linear overall amplitude.
    * ``harmonic_distribution`` ``(B, T, K)`` non-negative weights; inside ``forward`` the
      harmonics at or above Nyquist are zeroed and the rest renormalised to sum to one
      (``normalize_below_nyquist=True``, as DDSP).

    Amplitudes are cross-faded between frames with Hann windows. See
    :func:`ddsp_models.core.harmonic_synthesis` for the fast kernel.
    """

    n_inputs = 0

    def __init__(
        self,
        sample_rate: float = 16000,
        n_harmonics: int = 60,
        normalize_below_nyquist: bool = True,
        phase_method: str = "float64",
    ):
        super().__init__()
        if n_harmonics < 1:
            raise ValueError(f"n_harmonics must be >= 1, got {n_harmonics}")
        self.sample_rate = float(sample_rate)
        self.n_harmonics = int(n_harmonics)
        self.normalize_below_nyquist = bool(normalize_below_nyquist)
        self.phase_method = phase_method

    def param_specs(self):
        return (
            Param("f0_hz", 1, external=True, unit="Hz", doc="fundamental frequency"),
            Param("amplitude", 1, ExpSigmoid(), unit="linear", doc="overall amplitude"),
            Param(
                "harmonic_distribution",
                self.n_harmonics,
                ExpSigmoid(),
                unit="linear",
                doc="relative harmonic weights, normalised below Nyquist in forward",
            ),
        )

    def config(self):
        return {
            "sample_rate": self.sample_rate,
            "n_harmonics": self.n_harmonics,
            "normalize_below_nyquist": self.normalize_below_nyquist,
            "phase_method": self.phase_method,
        }

    def harmonic_amplitudes(
        self, f0_hz: Tensor, amplitude: Tensor, harmonic_distribution: Tensor
    ) -> Tensor:
        """Frame-rate amplitude of each harmonic, ``(B, T, K)``, after the Nyquist mask."""
        dist = remove_above_nyquist(
            harmonic_frequencies(f0_hz, self.n_harmonics), harmonic_distribution, self.sample_rate
        )
        if self.normalize_below_nyquist:
            dist = dist / dist.sum(-1, keepdim=True).clamp_min(1e-7)
        return amplitude * dist

    def forward(
        self, f0_hz: Tensor, amplitude: Tensor, harmonic_distribution: Tensor, n_samples: int
    ) -> Tensor:
        self.check_params(
            {"f0_hz": f0_hz, "amplitude": amplitude, "harmonic_distribution": harmonic_distribution}
        )
        if not (f0_hz.shape[:2] == amplitude.shape[:2] == harmonic_distribution.shape[:2]):
            raise ValueError(
                "Harmonic: f0_hz, amplitude and harmonic_distribution must share (batch, frames); "
                f"got {tuple(f0_hz.shape)}, {tuple(amplitude.shape)}, "
                f"{tuple(harmonic_distribution.shape)}"
            )
        amps = self.harmonic_amplitudes(f0_hz, amplitude, harmonic_distribution)
        audio = harmonic_synthesis(
            f0_hz, amps, n_samples, self.sample_rate, phase_method=self.phase_method
        )
        return audio[:, None, :]
