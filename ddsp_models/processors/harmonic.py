"""Harmonic synth: a bank of harmonics of f0 with a normalised harmonic distribution (DDSP)."""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from ..core.oscillators import (
    _split_harmonics,
    advance_phase,
    harmonic_bank,
    harmonic_frequencies,
    harmonic_synthesis,
    remove_above_nyquist,
)
from ..core.scaling import ExpSigmoid
from ..core.upsample import interpolate_frames
from .base import Param, Processor, State
from .blocks import push_frames, valid_mask

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

    Block rendering (:meth:`step`): latency 2 frames — block ``j`` interpolates f0 and
    cross-fades amplitudes from frame ``j`` to ``j + 1``, and the Nyquist mask of frame
    ``j + 1`` looks at frame ``j + 2``. The phase of f0 is carried in float64 (wrapped to
    ``[0, 2π)``) whatever ``phase_method``; the same kernel as ``forward`` renders each block.
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

    @classmethod
    def examples(cls):
        # sample_rate 4000: harmonics cross Nyquist for the tests' f0 (100..800 Hz)
        return [
            {"n_harmonics": 12},
            {"n_harmonics": 8, "sample_rate": 4000},
            {"n_harmonics": 5, "sample_rate": 4000, "normalize_below_nyquist": False},
        ]

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

    # --- block rendering -------------------------------------------------------------
    def latency_frames(self, hop: int) -> int:
        return 2

    def state_specs(self):
        return (
            State("f0_hz", "(B, 2, 1) Hz: f0 of the last two frames (interpolated towards)"),
            State("nyquist_f0_hz", "(B, 3, 1) Hz: the f0 the Nyquist mask sees for the last "
                  "three frames (-inf before the start; while flushing, the held value)"),
            State("amplitudes", f"(B, 2, {self.n_harmonics}) linear: harmonic amplitudes of "
                  "the last two frames (own-frame Nyquist mask and normalisation applied)"),
            State("phase", "(B, 1) float64 radians in [0, 2π): phase of f0 at the next sample"),
            State("position", "() int64: frames received so far"),
        )

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        kw = {"dtype": like.dtype, "device": like.device}
        return {
            "f0_hz": torch.zeros(batch, 2, 1, **kw),
            "nyquist_f0_hz": torch.full((batch, 3, 1), -math.inf, **kw),
            "amplitudes": torch.zeros(batch, 2, self.n_harmonics, **kw),
            "phase": torch.zeros(batch, 1, dtype=torch.float64, device=like.device),
            "position": torch.zeros((), dtype=torch.int64, device=like.device),
        }

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        """One block: frames ``t0 .. t0+N-1`` in, offline blocks ``t0-2 .. t0+N-3`` out."""
        hop = n_samples // n_frames
        n = n_frames
        f0 = params["f0_hz"]  # (B, N, 1)
        b = f0.shape[0]
        amps = self.harmonic_amplitudes(f0, params["amplitude"], params["harmonic_distribution"])
        # The Nyquist mask of frame q looks at f0 of frames q-1..q+1 (the edges repeat, so
        # -inf stands for the frames before the start). Offline holds the last frame's
        # *masked* amplitudes, masked over frames T-2, T-1: every flushed frame shows the
        # mask the larger of the last two values.
        nyq_f0 = f0
        if flushing:
            last = state["nyquist_f0_hz"]
            held = torch.maximum(last[:, 1:2], last[:, 2:3])
            nyq_f0 = held.expand(b, n, 1)
        gg, new_g = push_frames(state["nyquist_f0_hz"], nyq_f0)  # frames t0-3 .. t0+N-1
        ff, new_f = push_frames(state["f0_hz"], f0)  # frames t0-2 .. t0+N-1
        aa, new_a = push_frames(state["amplitudes"], amps)
        reach = torch.maximum(torch.maximum(gg[:, 0:n + 1], gg[:, 1:n + 2]), gg[:, 2:n + 3])
        k = amps.shape[-1]
        frame_amps = remove_above_nyquist(
            harmonic_frequencies(reach, k), aa[:, 0:n + 1], self.sample_rate)  # (B, N+1, K)
        dtype = torch.promote_types(f0.dtype, frame_amps.dtype)
        # f0 at audio rate and its phase in float64, as harmonic_synthesis does
        valid = valid_mask(state["position"], 2, n, hop, ff.to(torch.float64))
        f0_audio = interpolate_frames(ff[:, 0:n + 1].to(torch.float64), hop)[..., 0]  # (B, N*hop)
        omega = (2.0 * math.pi) * f0_audio / self.sample_rate * valid
        phase, new_phase = advance_phase(state["phase"], omega)
        j, m = _split_harmonics(k)
        per_sample = 2 * (j + m) + 8 * m + 4
        block = max(1, (1 << 25) // max(1, b * hop * per_sample))
        out = harmonic_bank(phase.to(dtype), frame_amps.to(dtype), hop, block)
        out = out * valid.to(dtype)
        new_state: Dict[str, Tensor] = {
            "f0_hz": new_f,
            "nyquist_f0_hz": new_g,
            "amplitudes": new_a,
            "phase": new_phase,
            "position": state["position"] + n,
        }
        return out[:, None, :], new_state

