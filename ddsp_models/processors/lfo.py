"""``LFO``: a low-frequency oscillator, a control source for modulating other parameters.

A synth (no audio input) whose output ``(B, 1, samples)`` is ``depth · w(φ)`` (or ``depth ·
(w(φ) + 1) / 2`` with ``bipolar=False``), where the phase in cycles

    ``φ[n] = phase + Σ_{k<n} rate_hz[k] / sample_rate``   (mod 1)

is accumulated in float64 (also across blocks) and ``w`` is one of the shapes, all starting at
0 or their top at ``φ = 0`` and of period 1:

* ``"sine"``: ``sin(2π φ)``;
* ``"triangle"``: ``1 - 4 |((φ + 1/4) mod 1) - 1/2|`` (0 at ``φ = 0``, rising to 1 at 1/4);
* ``"square"``: ``1`` for ``φ < 1/2``, else ``-1``;
* ``"saw"``: ``2 ((φ + 1/2) mod 1) - 1`` (0 at ``φ = 0``, rising, jumping from 1 to -1 at 1/2).

``resolution="sample"`` (default) evaluates the wave at every sample; ``resolution="frame"``
evaluates it only at the frame centres (samples ``t·hop``: the same values as the sample
resolution there, phase included) and interpolates linearly between them
(:func:`~ddsp_models.core.upsample.interpolate_frames`), as a synth's control rate does (a
square wave's jumps become one-hop ramps). The phase at the next frame centre is a closed form
of the frame's interpolated rate, so the offline render accumulates no per-sample phase; the
latency is unchanged. A static rate has no frames: its knots are ``control_rate`` per second
(``sample_rate / control_rate`` samples apart, from sample 0; a stream carries the samples
since the last knot, so any block size gives the same output).

In a graph its output modulates another node's parameter (see
:meth:`ddsp_models.graph.ProcessorGraph.modulate`), e.g. a filter's cutoff.

``rate_hz`` and ``depth`` are static ``(B, 1)`` by default (latency 0 when streamed); with
``time_varying=True`` they are per frame ``(B, T, 1)``, interpolated linearly (latency one
frame, as every interpolated control). ``phase`` (cycles) is always static.
"""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from ..core.scaling import LogSigmoidRange, SigmoidRange
from ..core.upsample import frame_hop, hop_size, interpolate_frames, upsample_linear
from .base import Param, Processor, State
from .blocks import control_block, valid_mask

__all__ = ["LFO", "lfo_wave", "WAVES"]

WAVES = ("sine", "triangle", "square", "saw")
RESOLUTIONS = ("sample", "frame")


def lfo_wave(phase: Tensor, wave: int) -> Tensor:
    """Shape number ``wave`` (index into :data:`WAVES`) at ``phase`` in cycles, in [-1, 1]."""
    if wave == 0:
        return torch.sin(2.0 * math.pi * phase)
    if wave == 1:
        return 1.0 - 4.0 * torch.abs(torch.remainder(phase + 0.25, 1.0) - 0.5)
    if wave == 2:
        return torch.where(torch.remainder(phase, 1.0) < 0.5, torch.ones_like(phase),
                           -torch.ones_like(phase))
    return 2.0 * torch.remainder(phase + 0.5, 1.0) - 1.0


def _constant_rate(start: Tensor, step: Tensor, n: int, every: int = 1
                   ) -> Tuple[Tensor, Tensor]:
    """:func:`_accumulate` of a constant ``step`` ``(B, 1)`` cycles per sample over ``n``
    samples, in closed form; with ``every > 1`` only samples ``0, every, ..`` (``n`` of them)
    and the phase ``n · every`` samples on."""
    k = torch.arange(n, dtype=torch.float64, device=step.device)
    if every > 1:
        k = k * every
    return torch.remainder(start + k * step, 1.0), torch.remainder(start + n * every * step, 1.0)


def _frame_increments(rate: Tensor, hop: int, sample_rate: float) -> Tensor:
    """Cycles advanced over each frame of per-frame rates ``rate`` ``(B, N + 1)`` Hz (float64)
    interpolated linearly over ``hop`` samples, as the per-sample sum does: ``(B, N)``."""
    cur = rate[:, :-1]
    return (hop * cur + (rate[:, 1:] - cur) * (0.5 * (hop - 1))) / sample_rate


def _accumulate(start: Tensor, step: Tensor) -> Tuple[Tensor, Tensor]:
    """Exclusive cumulative phase in cycles: ``(phase of each sample (B, M), after (B, 1))``,
    both float64 and wrapped to [0, 1)."""
    total = torch.cumsum(step, dim=-1)
    each = torch.remainder(start + total - step, 1.0)
    after = torch.remainder(start + total[:, -1:], 1.0)
    return each, after


class LFO(Processor):
    """A low-frequency oscillator (sine, triangle, square or saw, phase in float64) for
    modulating other parameters: ``forward(rate_hz, depth, phase, n_samples) -> (B, 1,
    n_samples)``.

    See the module docstring for the shapes.

    Args:
        sample_rate: Hz.
        wave: ``"sine"``, ``"triangle"``, ``"square"`` or ``"saw"``.
        bipolar: output in ``[-depth, depth]`` (default), else ``[0, depth]``.
        min_rate_hz, max_rate_hz: range of the ``rate_hz`` scaling (log scale).
        max_depth: top of the ``depth`` scaling.
        time_varying: ``rate_hz`` and ``depth`` per frame ``(B, T, 1)`` instead of static.
        resolution: ``"sample"`` (the wave at every sample) or ``"frame"`` (at the frame
            centres, linear in between: the control-rate mode).
        control_rate: knots per second of the frame resolution with a static rate (it must
            divide ``sample_rate``); per-frame rates use the frame centres.

    Parameters: ``rate_hz`` (Hz), ``depth`` (linear), ``phase`` (static ``(B, 1)``, cycles: the
    phase at sample 0).
    """

    n_inputs = 0

    def __init__(self, sample_rate: float = 16000, wave: str = "sine", bipolar: bool = True,
                 min_rate_hz: float = 0.05, max_rate_hz: float = 20.0, max_depth: float = 1.0,
                 time_varying: bool = False, resolution: str = "sample",
                 control_rate: float = 250.0):
        super().__init__()
        if wave not in WAVES:
            raise ValueError(f"LFO wave must be one of {WAVES}, got {wave!r}")
        if resolution not in RESOLUTIONS:
            raise ValueError(f"LFO resolution must be one of {RESOLUTIONS}, got {resolution!r}")
        self.resolution = resolution
        self.per_sample = resolution == "sample"
        self.sample_rate = float(sample_rate)
        self.control_rate = float(control_rate)
        # samples between the knots of the static frame resolution
        self.knot_hop = 1 if self.per_sample else frame_hop(self.sample_rate, self.control_rate)
        self.wave = wave
        self.wave_index = WAVES.index(wave)
        self.bipolar = bool(bipolar)
        self.min_rate_hz, self.max_rate_hz = float(min_rate_hz), float(max_rate_hz)
        self.max_depth = float(max_depth)
        self.time_varying = bool(time_varying)
        LogSigmoidRange(self.min_rate_hz, self.max_rate_hz)
        SigmoidRange(0.0, self.max_depth)

    def config(self):
        return {"sample_rate": self.sample_rate, "wave": self.wave, "bipolar": self.bipolar,
                "min_rate_hz": self.min_rate_hz, "max_rate_hz": self.max_rate_hz,
                "max_depth": self.max_depth, "time_varying": self.time_varying,
                "resolution": self.resolution, "control_rate": self.control_rate}

    @classmethod
    def examples(cls):
        return [{}, {"wave": "triangle", "time_varying": True},
                {"wave": "square", "bipolar": False}, {"wave": "saw", "time_varying": True,
                                                       "max_rate_hz": 200.0},
                {"resolution": "frame", "control_rate": 1000.0},
                {"wave": "square", "resolution": "frame", "control_rate": 4000.0},
                {"wave": "triangle", "time_varying": True, "resolution": "frame"}]

    def param_specs(self):
        return (
            Param("rate_hz", 1, LogSigmoidRange(self.min_rate_hz, self.max_rate_hz),
                  self.time_varying, unit="Hz", doc="oscillation rate"),
            Param("depth", 1, SigmoidRange(0.0, self.max_depth), self.time_varying,
                  unit="linear", doc="output amplitude"),
            Param("phase", 1, SigmoidRange(0.0, 1.0), time_varying=False, unit="cycles",
                  doc="phase at the first sample"),
        )

    def shape_output(self, phase: Tensor, depth: Tensor) -> Tensor:
        """``depth · w(phase)`` (or the unipolar form): phase ``(B, M)`` float64 cycles,
        depth ``(B, M | 1)`` → ``(B, M)`` in depth's dtype."""
        # the wrapped phase loses nothing in the output dtype (< 1e-7 cycles in float32)
        w = lfo_wave(torch.remainder(phase, 1.0).to(depth.dtype), self.wave_index)
        if not self.bipolar:
            w = 0.5 * (w + 1.0)
        return depth * w

    def forward(self, rate_hz: Tensor, depth: Tensor, phase: Tensor, n_samples: int) -> Tensor:
        self.check_params({"rate_hz": rate_hz, "depth": depth, "phase": phase})
        if not self.per_sample:
            return self._forward_frames(rate_hz, depth, phase, n_samples)
        if self.time_varying:
            hop_size(rate_hz.shape[1], n_samples)
            step = upsample_linear(rate_hz.to(torch.float64), n_samples)[..., 0]
            amp = upsample_linear(depth, n_samples)[..., 0]
            each, _ = _accumulate(phase.to(torch.float64), step / self.sample_rate)
        else:
            amp = depth
            each, _ = _constant_rate(phase.to(torch.float64),
                                     rate_hz.to(torch.float64) / self.sample_rate, n_samples)
        return self.shape_output(each, amp)[:, None, :]

    def _forward_frames(self, rate_hz: Tensor, depth: Tensor, phase: Tensor,
                        n_samples: int) -> Tensor:
        """The frame resolution offline: the wave at samples ``k·hop``, ``k = 0 .. K``
        (``K = ceil(n_samples / hop)``, the last frame held), interpolated linearly."""
        start = phase.to(torch.float64)
        if self.time_varying:
            b, t, _ = rate_hz.shape
            hop = hop_size(t, n_samples)
            n_knots = -(-n_samples // hop) + 1
            rate = rate_hz[..., 0].to(torch.float64)
            rate = torch.cat([rate, rate[:, -1:].expand(b, n_knots - t)], dim=1)
            amp = depth[..., 0]
            amp = torch.cat([amp, amp[:, -1:].expand(b, n_knots - t)], dim=1)
            inc = _frame_increments(rate, hop, self.sample_rate)
            each, _ = _accumulate(start, torch.cat([inc, inc[:, :1]], dim=1))
        else:
            hop = self.knot_hop
            n_knots = -(-n_samples // hop) + 1
            amp = depth
            each, _ = _constant_rate(start, rate_hz.to(torch.float64) / self.sample_rate,
                                     n_knots, hop)
        knots = self.shape_output(each, amp)
        return interpolate_frames(knots[:, :, None], hop)[:, None, :n_samples, 0]

    def _static_knots(self, start: Tensor, off: Tensor, offset: Tensor, rate_hz: Tensor,
                      depth: Tensor, n: int) -> Tuple[Tensor, Tensor, Tensor]:
        """A block of the static frame resolution: ``n`` samples from phase ``start`` (float64
        ``(B, 1)``, ``off`` samples after a knot), interpolated between the knots around each
        sample -> ``(y (B, n), phase after, offset after)``."""
        h = self.knot_hop
        step = rate_hz.to(torch.float64) / self.sample_rate
        g = torch.arange(n, device=start.device, dtype=torch.int64) + off
        j = torch.div(g, h, rounding_mode="floor")
        r = (g - j * h).to(depth.dtype) / h
        left = start + (j * h - off).to(torch.float64)[None, :] * step + offset
        w0 = self.shape_output(left, depth)
        w1 = self.shape_output(left + h * step, depth)
        y = w0 + (w1 - w0) * r[None, :]
        return y, torch.remainder(start + n * step, 1.0), torch.remainder(off + n, h)

    # --- block rendering ---------------------------------------------------------------
    def latency_frames(self, hop: int) -> int:
        return 1 if self.time_varying else 0

    def state_specs(self):
        states = [State("phase", "(B, 1) float64 cycles in [0, 1): the phase accumulated "
                                 "before the next sample (without the phase parameter)")]
        if self.time_varying:
            states += [State("rate_hz", "(B, 1, 1) float64 Hz: the last frame"),
                       State("depth", "(B, 1, 1) linear: the last frame"),
                       State("position", "() int64: frames received so far")]
        elif not self.per_sample:
            states += [State("offset", "() int64: samples since the last knot, in [0, hop)")]
        return tuple(states)

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        state = {"phase": torch.zeros(batch, 1, dtype=torch.float64, device=like.device)}
        if self.time_varying:
            state["rate_hz"] = torch.zeros(batch, 1, 1, dtype=torch.float64, device=like.device)
            state["depth"] = torch.zeros(batch, 1, 1, dtype=like.dtype, device=like.device)
            state["position"] = torch.zeros((), dtype=torch.int64, device=like.device)
        elif not self.per_sample:
            state["offset"] = torch.zeros((), dtype=torch.int64, device=like.device)
        return state

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        hop = n_samples // n_frames
        new: Dict[str, Tensor] = {}
        offset = params["phase"].to(torch.float64)
        if self.time_varying:
            rate, new["rate_hz"] = control_block(params["rate_hz"].to(torch.float64),
                                                 state["rate_hz"], hop)
            amp, new["depth"] = control_block(params["depth"], state["depth"], hop)
            valid = valid_mask(state["position"], 1, n_frames, hop, rate)
            step = rate[:, 0] * valid / self.sample_rate
            each, new["phase"] = _accumulate(state["phase"], step)
            if self.per_sample:
                y = self.shape_output(each + offset, amp[:, 0]) * valid.to(amp.dtype)
            else:
                # the knots: this block's frame centres (one frame late) and the next one
                phases = torch.cat([each[:, ::hop], new["phase"]], dim=1)
                amps = torch.cat([amp[:, 0, ::hop], params["depth"][:, -1, :]], dim=1)
                knots = self.shape_output(phases + offset, amps)
                y = interpolate_frames(knots[:, :, None], hop)[:, :, 0] * valid.to(amp.dtype)
            new["position"] = state["position"] + n_frames
        elif not self.per_sample:
            y, new["phase"], new["offset"] = self._static_knots(
                state["phase"], state["offset"], offset, params["rate_hz"], params["depth"],
                n_samples)
        else:
            each, new["phase"] = _constant_rate(
                state["phase"], params["rate_hz"].to(torch.float64) / self.sample_rate,
                n_samples)
            y = self.shape_output(each + offset, params["depth"])
        return y[:, None, :], new
