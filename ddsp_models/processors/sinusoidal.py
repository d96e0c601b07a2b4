"""Sinusoidal synth: freely moving sinusoids (DDSP's ``Sinusoidal``)."""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from ..core.oscillators import advance_phase, oscillator_bank, remove_above_nyquist
from ..core.scaling import ExpSigmoid, LogSigmoidRange
from ..core.upsample import (
    crossfade_frames,
    interpolate_frames,
    upsample_linear,
    upsample_with_windows,
)
from .base import Param, Processor, State
from .blocks import push_frames, valid_mask

__all__ = ["Sinusoidal"]


class Sinusoidal(Processor):
    """A bank of ``n_sinusoids`` sinusoids with their own frequencies and amplitudes.

    ``forward(frequencies_hz (B, T, K), amplitudes (B, T, K), n_samples)`` →
    ``(B, 1, n_samples)``. Frequencies are upsampled linearly, amplitudes with Hann windows;
    each phase is accumulated in float64; a sinusoid at or above Nyquist is silent while it
    is there. The declared frequency range is ``[min_frequency_hz, sample_rate / 2)`` in log.

    Block rendering (:meth:`step`): latency 1 frame (block ``j`` moves from frame ``j`` to
    ``j + 1``); each sinusoid's phase is carried in float64, wrapped to ``[0, 2π)``.
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

    @classmethod
    def examples(cls):
        return [{"n_sinusoids": 6}, {"n_sinusoids": 3, "min_frequency_hz": 1000.0}]

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

    # --- block rendering -------------------------------------------------------------
    def latency_frames(self, hop: int) -> int:
        return 1

    def state_specs(self):
        k = self.n_sinusoids
        return (
            State("frequencies_hz", f"(B, 1, {k}) Hz: the last frame's frequencies"),
            State("amplitudes", f"(B, 1, {k}) linear: the last frame's amplitudes"),
            State("phase", f"(B, 1, {k}) float64 radians in [0, 2π): each sinusoid's phase "
                  "at the next sample"),
            State("position", "() int64: frames received so far"),
        )

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        k = self.n_sinusoids
        return {
            "frequencies_hz": torch.zeros(batch, 1, k, dtype=like.dtype, device=like.device),
            "amplitudes": torch.zeros(batch, 1, k, dtype=like.dtype, device=like.device),
            "phase": torch.zeros(batch, 1, k, dtype=torch.float64, device=like.device),
            "position": torch.zeros((), dtype=torch.int64, device=like.device),
        }

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        """One block: frames ``t0 .. t0+N-1`` in, offline blocks ``t0-1 .. t0+N-2`` out."""
        hop = n_samples // n_frames
        ff, new_f = push_frames(state["frequencies_hz"], params["frequencies_hz"])
        aa, new_a = push_frames(state["amplitudes"], params["amplitudes"])
        freqs = interpolate_frames(ff, hop)  # (B, N*hop, K), as upsample_linear
        amps = crossfade_frames(aa, hop)  # as upsample_with_windows
        amps = remove_above_nyquist(freqs, amps, self.sample_rate)
        valid = valid_mask(state["position"], 1, n_frames, hop, amps)[None, :, None]
        omega = (2.0 * math.pi) * freqs.to(torch.float64) / self.sample_rate
        phase, new_phase = advance_phase(state["phase"], omega * valid.to(torch.float64), dim=1)
        out = (amps * valid * torch.sin(phase.to(amps.dtype))).sum(-1)
        new_state: Dict[str, Tensor] = {
            "frequencies_hz": new_f,
            "amplitudes": new_a,
            "phase": new_phase,
            "position": state["position"] + n_frames,
        }
        return out[:, None, :], new_state
