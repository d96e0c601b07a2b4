"""Subtractive synth: a band-limited sawtooth or pulse through a resonant time-varying filter."""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from ..core.scaling import ExpSigmoid, Identity, LogSigmoidRange, SigmoidRange
from ..core.upsample import check_controls, hop_size, upsample_linear
from .base import Param, Processor, State
from .blocks import control_block, valid_mask
from .ladder import ladder_step, ladder_system
from .svf import (
    _max_filter_hz,
    run_state_space,
    state_space_basis,
    state_space_block,
    state_space_from_basis,
    svf_step,
)

__all__ = ["Subtractive", "polyblep_oscillator"]

_WAVEFORMS = ("saw", "pulse")
_FILTERS = ("svf", "ladder")


def _polyblep(t: Tensor, dt: Tensor) -> Tensor:
    """Polynomial band-limited step residual for a jump of -2 at phase 0 (Välimäki 2007)."""
    safe = dt.clamp_min(1e-12)
    after = t / safe  # just after the wrap
    before = (t - 1) / safe  # just before it
    r_after = 2 * after - after * after - 1
    r_before = before * before + 2 * before + 1
    zero = torch.zeros_like(t)
    return torch.where(t < dt, r_after, torch.where(t > 1 - dt, r_before, zero))


def polyblep_oscillator(
    f0_hz: Tensor, sample_rate: float, waveform: str = "saw", pulse_width: Tensor | float = 0.5
) -> Tensor:
    """PolyBLEP sawtooth (falling edge at phase 0) or pulse, one sample per ``f0_hz`` value.

    Args:
        f0_hz: ``(..., L)`` per-sample frequency in Hz (0 <= f0 < sample_rate / 2; samples at
            or above Nyquist are silenced).
        waveform: ``"saw"`` (ramp from -1 to 1) or ``"pulse"`` (levels ``2 (1 - w)`` for a
            fraction ``w`` of the period and ``-2 w`` otherwise: zero mean).
        pulse_width: ``w`` in (0, 1), scalar or ``(..., L)``.

    The phase is accumulated in float64 and wrapped before it returns to ``f0_hz.dtype``.
    PolyBLEP corrections attenuate aliasing of the steps (tests measure it against a naive
    sawtooth).
    """
    if waveform not in _WAVEFORMS:
        raise ValueError(f"waveform must be one of {_WAVEFORMS}, got {waveform!r}")
    dt64 = f0_hz.double() / sample_rate
    phase64 = torch.cumsum(dt64, dim=-1) - dt64  # exclusive: phase[0] = 0
    phase = torch.remainder(phase64, 1.0).to(f0_hz.dtype)
    w = torch.as_tensor(pulse_width, dtype=f0_hz.dtype, device=f0_hz.device)
    return polyblep_wave(phase, f0_hz, sample_rate, waveform, w)


def _saw(t: Tensor, dt: Tensor) -> Tensor:
    return 2 * t - 1 - _polyblep(t, dt)


def polyblep_wave(phase: Tensor, f0_hz: Tensor, sample_rate: float, waveform: str,
                  pulse_width: Tensor) -> Tensor:
    """The waveform of :func:`polyblep_oscillator` at given phases (cycles in ``[0, 1)``,
    ``(..., L)``, ``f0_hz.dtype``) and frequencies ``f0_hz`` (Hz, ``(..., L)``).
    TorchScript-compatible (the block path of :class:`Subtractive`)."""
    dt = (f0_hz / sample_rate).clamp(0.0, 0.5)
    if waveform == "saw":
        out = _saw(phase, dt)
    else:
        out = _saw(phase, dt) - _saw(torch.remainder(phase + pulse_width, 1.0), dt)
    return torch.where(f0_hz < sample_rate / 2, out, torch.zeros_like(out))


def _svf_lowpass_step(states: List[Tensor], x: Tensor, g: Tensor, k: Tensor
                      ) -> Tuple[Tensor, List[Tensor]]:
    (_, _, lp), new = svf_step(states, x, g, k)
    return lp, [new[0], new[1]]


def _svf_lowpass_system(g: Tensor, k: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    states, probe = state_space_basis(2, g)
    y, new = _svf_lowpass_step(states, probe, g[..., None], k[..., None])
    return state_space_from_basis(y, new, 2)


class Subtractive(Processor):
    """Band-limited oscillator into a resonant lowpass: ``forward(f0_hz, amplitude, cutoff_hz,
    resonance[, pulse_width], n_samples)`` -> ``(B, 1, n_samples)``.

    All controls are ``(B, T, 1)`` frame-rate tensors, upsampled linearly; ``f0_hz`` is external
    (from the encoder). The filter is the TPT state-variable lowpass (``filter="svf"``, ``Q =
    0.5 / (1 - resonance)``: 0.5 to 10) or the ladder (``filter="ladder"``, feedback
    ``4 * resonance``, pass band compensated), both with exact gradients under modulation.
    Every raw network output gives a stable filter (cutoff below 0.45 fs, resonance < 1).
    """

    n_inputs = 0

    def __init__(
        self,
        sample_rate: float = 16000,
        waveform: str = "saw",
        filter: str = "svf",
        min_hz: float = 20.0,
        max_hz: float | None = None,
        max_resonance: float = 0.95,
    ):
        super().__init__()
        if waveform not in _WAVEFORMS:
            raise ValueError(f"waveform must be one of {_WAVEFORMS}, got {waveform!r}")
        if filter not in _FILTERS:
            raise ValueError(f"filter must be one of {_FILTERS}, got {filter!r}")
        if not 0 < max_resonance < 1:
            raise ValueError(f"max_resonance must be in (0, 1) for stability, got {max_resonance}")
        self.sample_rate = float(sample_rate)
        self.waveform = waveform
        self.filter = filter
        self.min_hz = float(min_hz)
        self.max_hz = float(max_hz) if max_hz is not None else _max_filter_hz(sample_rate)
        if not 0 < self.min_hz < self.max_hz < self.sample_rate / 2:
            raise ValueError(
                f"need 0 < min_hz < max_hz < sample_rate / 2, got {self.min_hz}, {self.max_hz}"
            )
        self.max_resonance = float(max_resonance)

    def param_specs(self):
        specs = [
            Param("f0_hz", 1, Identity(), external=True, unit="Hz", doc="oscillator pitch"),
            Param("amplitude", 1, ExpSigmoid(), unit="linear", doc="output gain"),
            Param("cutoff_hz", 1, LogSigmoidRange(self.min_hz, self.max_hz), unit="Hz",
                  doc="filter cutoff"),
            Param("resonance", 1, SigmoidRange(0.0, self.max_resonance), doc="0 flat .. 1 self-oscillating"),
        ]
        if self.waveform == "pulse":
            specs.append(Param("pulse_width", 1, SigmoidRange(0.05, 0.95), doc="duty cycle"))
        return tuple(specs)

    def config(self):
        return {
            "sample_rate": self.sample_rate,
            "waveform": self.waveform,
            "filter": self.filter,
            "min_hz": self.min_hz,
            "max_hz": self.max_hz,
            "max_resonance": self.max_resonance,
        }

    def forward(
        self,
        f0_hz: Tensor,
        amplitude: Tensor,
        cutoff_hz: Tensor,
        resonance: Tensor,
        pulse_width: Tensor | None = None,
        n_samples: int | None = None,
    ) -> Tensor:
        params = {"f0_hz": f0_hz, "amplitude": amplitude, "cutoff_hz": cutoff_hz, "resonance": resonance}
        if self.waveform == "pulse":
            params["pulse_width"] = pulse_width
        elif pulse_width is not None:
            raise ValueError("Subtractive(waveform='saw') takes no pulse_width; use waveform='pulse'")
        if n_samples is None:
            raise ValueError("Subtractive is a synth: pass n_samples (the output length)")
        for name, v in params.items():
            check_controls(v, name, 1)
        self.check_params(params)
        hop_size(f0_hz.shape[1], n_samples)

        def up(v):
            return upsample_linear(v, n_samples)[..., 0]  # (B, L)

        width = up(pulse_width) if pulse_width is not None else 0.5
        osc = polyblep_oscillator(up(f0_hz), self.sample_rate, self.waveform, width)[:, None]
        dtype = osc.dtype
        g = torch.tan(math.pi * up(cutoff_hz).to(dtype) / self.sample_rate)[:, None]
        res = up(resonance).to(dtype)[:, None]
        if self.filter == "svf":
            k = 2.0 * (1.0 - res)  # 1 / Q with Q = 0.5 / (1 - resonance)
            y = run_state_space(_svf_lowpass_step, 2, osc, (g, k))
        else:
            k = 4.0 * res
            y = run_state_space(ladder_step, 4, osc, (g, k)) * (1 + k)
        return up(amplitude).to(dtype)[:, None] * y

    # --- block rendering -------------------------------------------------------------
    @classmethod
    def examples(cls):
        return [{}, {"waveform": "pulse", "filter": "ladder"}]

    def latency_frames(self, hop: int) -> int:
        return 1  # every control is interpolated towards the next frame

    def _control_names(self) -> List[str]:
        names = ["f0_hz", "amplitude", "cutoff_hz", "resonance"]
        if self.waveform == "pulse":
            names.append("pulse_width")
        return names

    def state_specs(self):
        n = 2 if self.filter == "svf" else 4
        return (
            *[State(name, f"(B, 1, 1): the last frame of {name}")
              for name in self._control_names()],
            State("phase", "(B, 1) float64 cycles in [0, 1): the oscillator phase of the next "
                           "sample"),
            State("filter", f"(B, 1, {n}) states of the {self.filter} filter"),
            State("position", "() int64: frames rendered so far (masks the frame before the "
                              "start)"),
        )

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        kw = dict(dtype=like.dtype, device=like.device)
        # start values only shape the frame before the start, which is masked to silence
        start = {"cutoff_hz": self.min_hz, "pulse_width": 0.5}
        state = {name: torch.full((batch, 1, 1), start.get(name, 0.0), **kw)
                 for name in self._control_names()}
        state["phase"] = torch.zeros(batch, 1, dtype=torch.float64, device=like.device)
        state["filter"] = torch.zeros(batch, 1, 2 if self.filter == "svf" else 4, **kw)
        state["position"] = torch.zeros((), dtype=torch.int64, device=like.device)
        return state

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        hop = n_samples // n_frames
        new: Dict[str, Tensor] = {}
        ctrl: Dict[str, Tensor] = {}  # (B, 1, M)
        for name in self._control_names():
            ctrl[name], new[name] = control_block(params[name], state[name], hop)
        f0 = ctrl["f0_hz"]
        dtype = f0.dtype
        mask = valid_mask(state["position"], 1, n_frames, hop, f0)  # silence before the start
        dt64 = f0.double() / self.sample_rate * mask.double()
        phase64 = state["phase"][:, :, None] + (torch.cumsum(dt64, dim=-1) - dt64)
        phase = torch.remainder(phase64, 1.0).to(dtype)
        new["phase"] = torch.remainder(state["phase"] + dt64.sum(-1), 1.0)
        if self.waveform == "pulse":
            width = ctrl["pulse_width"]
        else:
            width = torch.full((1,), 0.5, dtype=dtype, device=f0.device)
        osc = polyblep_wave(phase, f0, self.sample_rate, self.waveform, width) * mask
        g = torch.tan(math.pi * ctrl["cutoff_hz"].to(dtype) / self.sample_rate)
        res = ctrl["resonance"].to(dtype)
        if self.filter == "svf":
            k = 2.0 * (1.0 - res)
            a, b, c, d = _svf_lowpass_system(g, k)
            y, new["filter"] = state_space_block(a, b, c, d, osc, state["filter"])
        else:
            k = 4.0 * res
            a, b, c, d = ladder_system(g, k)
            y, new["filter"] = state_space_block(a, b, c, d, osc, state["filter"])
            y = y * (1 + k)
        new["position"] = state["position"] + n_frames
        return ctrl["amplitude"].to(dtype) * y, new
