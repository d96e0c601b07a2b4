"""Moog-style ladder filter: four TPT one-pole lowpasses in a zero-delay feedback loop."""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from ..core.scaling import LogSigmoidRange, SigmoidRange
from .base import Param, Processor, State, check_audio
from .blocks import controls_and_input
from .svf import (
    _max_filter_hz,
    _per_sample,
    run_state_space,
    state_space_basis,
    state_space_block,
    state_space_from_basis,
)

__all__ = ["LadderFilter", "ladder_step", "ladder_system"]


def ladder_step(states: List[Tensor], x: Tensor, g: Tensor, k: Tensor
                ) -> Tuple[Tensor, List[Tensor]]:
    """One sample of the linear TPT ladder (Zavalishin, "The Art of VA Filter Design", ch. 5).

    Each stage is the TPT one-pole ``y = G x + s / (1 + g)``, ``G = g / (1 + g)``,
    ``g = tan(pi fc / fs)``; the feedback ``u = x - k y4`` is solved without a unit delay:
    ``y4 = (G^4 x + sum_i G^(3-i) s_i / (1 + g)) / (1 + k G^4)``.

    Returns ``(y4, new_states)``.
    """
    big_g = g / (1 + g)
    contrib = [s / (1 + g) for s in states]
    sigma = big_g**3 * contrib[0] + big_g**2 * contrib[1] + big_g * contrib[2] + contrib[3]
    y4 = (big_g**4 * x + sigma) / (1 + k * big_g**4)
    inp = x - k * y4
    new: List[Tensor] = []
    for s in states:
        v = (inp - s) * big_g
        out = v + s
        new.append(out + v)
        inp = out
    return inp, new


def ladder_system(g: Tensor, k: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-sample state-space matrices ``(a (..., 4, 4), b, c (..., 4), d)`` of
    :func:`ladder_step` with ``g = tan(pi fc / fs)`` and feedback ``k`` (both ``(...)``), read
    off the update exactly as :func:`~ddsp_models.processors.svf.run_state_space` does.
    TorchScript-compatible."""
    states, probe = state_space_basis(4, g)
    y, new = ladder_step(states, probe, g[..., None], k[..., None])
    return state_space_from_basis(y, new, 4)


class LadderFilter(Processor):
    """Four-pole ladder lowpass: ``forward(x (B, C, L), cutoff_hz, resonance)``.

    The static response is the bilinear transform (pre-warped at the cutoff) of the analog
    ladder ``1 / ((1 + s)^4 + k)`` with ``k = 4 * resonance``; ``resonance -> 1`` approaches
    self-oscillation. With ``compensate=True`` the output is multiplied by ``1 + k`` so the
    pass band stays at 0 dB as the resonance rises. Exact gradients under modulation (TPT
    state space, see :func:`~ddsp_models.processors.svf.run_state_space`).

    Args:
        sample_rate: Hz. time_varying: ``(B, T, 1)`` parameters (default) or ``(B, 1)``.
        min_hz, max_hz: cutoff range. max_resonance: upper bound of the resonance scaling
            (< 1 keeps every pole strictly inside the unit circle).

    Block rendering carries the four stage states; time-varying controls are interpolated
    towards the next frame (latency one frame), static ones need no look-ahead (latency 0).
    """

    n_inputs = 1

    def __init__(
        self,
        sample_rate: float = 16000,
        time_varying: bool = True,
        min_hz: float = 20.0,
        max_hz: float | None = None,
        max_resonance: float = 0.95,
        compensate: bool = True,
    ):
        super().__init__()
        self.sample_rate = float(sample_rate)
        self.time_varying = bool(time_varying)
        self.min_hz = float(min_hz)
        self.max_hz = float(max_hz) if max_hz is not None else _max_filter_hz(sample_rate)
        if not 0 < self.min_hz < self.max_hz < self.sample_rate / 2:
            raise ValueError(
                f"need 0 < min_hz < max_hz < sample_rate / 2, got {self.min_hz}, {self.max_hz}"
            )
        if not 0 < max_resonance < 1:
            raise ValueError(f"max_resonance must be in (0, 1) for stability, got {max_resonance}")
        self.max_resonance = float(max_resonance)
        self.compensate = bool(compensate)

    @classmethod
    def examples(cls):
        return [{}, {"time_varying": False, "compensate": False}]

    def param_specs(self):
        tv = self.time_varying
        return (
            Param("cutoff_hz", 1, LogSigmoidRange(self.min_hz, self.max_hz), tv, unit="Hz",
                  doc="cutoff frequency"),
            Param("resonance", 1, SigmoidRange(0.0, self.max_resonance), tv, unit="",
                  doc="feedback k / 4; 1 would self-oscillate"),
        )

    def config(self):
        return {
            "sample_rate": self.sample_rate,
            "time_varying": self.time_varying,
            "min_hz": self.min_hz,
            "max_hz": self.max_hz,
            "max_resonance": self.max_resonance,
            "compensate": self.compensate,
        }

    def forward(self, x: Tensor, cutoff_hz: Tensor, resonance: Tensor) -> Tensor:
        check_audio("LadderFilter", x)
        self.check_params({"cutoff_hz": cutoff_hz, "resonance": resonance})
        n = x.shape[-1]
        g = torch.tan(math.pi * _per_sample(cutoff_hz, n)[..., 0].to(x.dtype) / self.sample_rate)
        k = 4.0 * _per_sample(resonance, n)[..., 0].to(x.dtype)
        y = run_state_space(ladder_step, 4, x, (g, k))
        return y * (1 + k) if self.compensate else y

    # --- block rendering -------------------------------------------------------------
    def latency_frames(self, hop: int) -> int:
        return 1 if self.time_varying else 0

    def state_specs(self):
        states = [State("filter", "(B, C, 4) states of the four TPT one-pole stages")]
        if self.time_varying:
            states += [
                State("cutoff_hz", "(B, 1, 1) Hz: the last frame of cutoff_hz (min_hz at start)"),
                State("resonance", "(B, 1, 1): the last frame of resonance"),
                State("audio", "(B, C, hop) input samples not yet output"),
            ]
        return tuple(states)

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        kw = dict(dtype=like.dtype, device=like.device)
        c = input_channels[0]
        state = {"filter": torch.zeros(batch, c, 4, **kw)}
        if self.time_varying:
            state["cutoff_hz"] = torch.full((batch, 1, 1), self.min_hz, **kw)
            state["resonance"] = torch.zeros(batch, 1, 1, **kw)
            state["audio"] = torch.zeros(batch, c, hop, **kw)
        return state

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        hop = n_samples // n_frames
        x = inputs[0]
        new: Dict[str, Tensor] = {}
        ctrl, x = controls_and_input(params, state, new, x, hop)
        fc, res = ctrl["cutoff_hz"], ctrl["resonance"]
        g = torch.tan(math.pi * fc.to(x.dtype) / self.sample_rate)
        k = 4.0 * res.to(x.dtype)
        a, b, c, d = ladder_system(g, k)
        y, new["filter"] = state_space_block(a, b, c, d, x, state["filter"])
        return (y * (1 + k) if self.compensate else y), new
