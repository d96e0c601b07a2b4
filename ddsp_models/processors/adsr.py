"""``ADSR``: an attack-decay-sustain-release envelope driven by a ``gate`` control.

A control source: a synth (no audio input) whose output ``(B, 1, samples)`` is the envelope
level in ``[0, 1]``. In a graph it usually modulates another node's parameter (see
:meth:`ddsp_models.graph.ProcessorGraph.modulate`, e.g. an FM synth's carrier amplitudes), or
multiplies audio through an effect.

The gate
--------
``gate`` is an external frame-rate control ``(B, T, 1)``: on where ``gate > 0.5`` (0/1 from
MIDI, or a continuous value). Frame ``t``'s gate holds for samples ``t·hop .. (t+1)·hop - 1``
(no interpolation, no look-ahead: latency 0); the last frame's gate holds to the end.

The curves (times in seconds, ``S`` a level)
--------------------------------------------
The envelope ``ℓ`` starts at 0. Each stage moves ``ℓ`` from where it is, so a note that ends
before the sustain is reached releases from the level it had, and a note that starts during
a release attacks from there (no jump).

* gate on — **attack** towards 1, then **decay** from 1 towards ``S``, then **sustain** at ``S``;
* gate off — **release** towards 0.

``shape="linear"``: constant slopes — attack ``+1/A`` per second, decay ``-(1-S)/D`` (reaching
``S`` from 1 in ``D``), release ``-1/R`` (reaching 0 from 1 in ``R``), each clamped at its end
level (1, ``S``, 0).

``shape="exponential"``: one-pole curves aiming past their end level by ``ratio`` (as analog
envelopes do), so each ends in finite time: with ``k = ln((1 + ratio) / ratio)``, attack
``ℓ → 1 + ratio`` with time constant ``A/k``, decay ``ℓ → S - ratio (1 - S)`` with ``D/k``,
release ``ℓ → -ratio`` with ``R/k``; from 1 (or 0) each stage takes exactly ``A``, ``D``, ``R``.
A small ``ratio`` gives strongly curved segments, a large one nearly straight ones.

Resolution
----------
``resolution="sample"`` (default) evaluates the curves at every sample. ``resolution="frame"``
evaluates them only at the frame centres (samples ``t·hop``, the same values as the sample
resolution there) and interpolates linearly between them
(:func:`~ddsp_models.core.upsample.interpolate_frames`), as a synth's control rate does: the
output is piecewise linear between frame centres, the cost per sample is one interpolation.
The level at ``(t + 1)·hop`` depends only on the gates up to frame ``t``, so this mode also
streams with latency 0.

Both shapes are closed forms of the time spent in a stage and the level it started from, so
rendering needs a loop only over the frames where some gate changes (offline) or over a
block's frames (streaming), not over samples; every stage is a semigroup in time, so blocks of
any size give the whole render. Gradients reach ``attack``, ``decay``, ``sustain`` and
``release`` (static ``(B, 1)`` parameters) through the closed forms.
"""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from ..core.scaling import LogSigmoidRange, SigmoidRange
from ..core.upsample import hop_size, interpolate_frames
from .base import Param, Processor, State

__all__ = ["ADSR", "adsr_curve"]

SHAPES = ("linear", "exponential")
RESOLUTIONS = ("sample", "frame")
#: Samples per closed-form evaluation of the offline render (a long note is cut into chunks).
_CHUNK = 4096


def adsr_curve(level: Tensor, decaying: Tensor, gate_on: Tensor, times: Tensor,
               attack: Tensor, decay: Tensor, sustain: Tensor, release: Tensor,
               linear: bool, ratio: float) -> Tuple[Tensor, Tensor]:
    """The envelope over one stretch of constant gate, from its start state.

    Args:
        level: ``(B, 1)`` the level at the stretch's first sample.
        decaying: ``(B, 1)`` 1 where this note's attack already reached 1 (decay/sustain), else 0.
        gate_on: ``(B, 1)`` bool, the gate over the stretch.
        times: ``(M + 1,)`` seconds since the stretch's start (``k / sample_rate``).
        attack, decay, release: ``(B, 1)`` seconds; sustain ``(B, 1)`` level.
        linear: the linear shape, else exponential with ``ratio``.

    Returns:
        ``(levels (B, M + 1) at ``times``, decaying flag after the stretch (B, 1))``.
    """
    dtype = level.dtype
    t = times.to(dtype)[None, :]
    a = attack.clamp_min(1e-6)
    d = decay.clamp_min(1e-6)
    r = release.clamp_min(1e-6)
    s = sustain
    l0 = level.clamp(0.0, 1.0)
    end = times[-1:].to(dtype)[None, :]
    if linear:
        t_att = (1.0 - l0) * a
        rise = l0 + t / a
        slope = (1.0 - s) / d
        from_top = torch.maximum(s, 1.0 - slope * (t - t_att))
        from_here = torch.maximum(s, l0 - slope * t)
        fall = torch.clamp_min(l0 - t / r, 0.0)
    else:
        k = math.log((1.0 + ratio) / ratio)
        t_att = (a / k) * torch.log((1.0 + ratio - l0) / ratio)
        rise = (1.0 + ratio) - (1.0 + ratio - l0) * torch.exp(-k * t / a)
        base = s - ratio * (1.0 - s)
        from_top = torch.maximum(s, base + (1.0 - base) * torch.exp(
            -k * torch.clamp_min(t - t_att, 0.0) / d))
        from_here = torch.maximum(s, base + (l0 - base) * torch.exp(-k * t / d))
        fall = torch.clamp_min(-ratio + (l0 + ratio) * torch.exp(-k * t / r), 0.0)
    dec = decaying > 0.5
    on = torch.where(dec, from_here, torch.where(t < t_att, rise, from_top))
    levels = torch.where(gate_on, on, fall)
    flag = gate_on & (dec | (end >= t_att))
    return levels, flag.to(dtype)


class ADSR(Processor):
    """An attack-decay-sustain-release envelope in ``[0, 1]`` driven by a ``gate`` control
    (linear or exponential stages): ``forward(gate (B, T, 1), attack, decay, sustain, release
    (B, 1), n_samples) -> (B, 1, n_samples)``.

    See the module docstring for the curves.

    Args:
        sample_rate: Hz.
        shape: ``"linear"`` or ``"exponential"``.
        ratio: overshoot of the exponential curves (ignored for linear); > 0.
        min_time, max_time: range (seconds) of the ``attack``, ``decay`` and ``release``
            scalings (log scale).
        resolution: ``"sample"`` (the curves at every sample) or ``"frame"`` (at the frame
            centres, linear in between: the control-rate mode).

    Parameters: ``gate`` (external, ``(B, T, 1)``, on where > 0.5), ``attack``, ``decay``,
    ``release`` (static ``(B, 1)``, seconds), ``sustain`` (static ``(B, 1)``, level in [0, 1]).
    """

    n_inputs = 0

    def __init__(self, sample_rate: float = 16000, shape: str = "linear", ratio: float = 0.1,
                 min_time: float = 0.001, max_time: float = 4.0, resolution: str = "sample"):
        super().__init__()
        if shape not in SHAPES:
            raise ValueError(f"ADSR shape must be one of {SHAPES}, got {shape!r}")
        if resolution not in RESOLUTIONS:
            raise ValueError(f"ADSR resolution must be one of {RESOLUTIONS}, got {resolution!r}")
        self.resolution = resolution
        self.per_sample = resolution == "sample"
        if not ratio > 0:
            raise ValueError(f"ADSR ratio must be > 0, got {ratio}")
        self.sample_rate = float(sample_rate)
        self.shape = shape
        self.linear = shape == "linear"
        self.ratio = float(ratio)
        self.min_time, self.max_time = float(min_time), float(max_time)
        LogSigmoidRange(self.min_time, self.max_time)  # validates the range

    def config(self):
        return {"sample_rate": self.sample_rate, "shape": self.shape, "ratio": self.ratio,
                "min_time": self.min_time, "max_time": self.max_time,
                "resolution": self.resolution}

    @classmethod
    def examples(cls):
        return [{}, {"shape": "exponential"}, {"shape": "exponential", "ratio": 0.001},
                {"resolution": "frame"}, {"shape": "exponential", "resolution": "frame"}]

    def param_specs(self):
        times = LogSigmoidRange(self.min_time, self.max_time)
        return (
            Param("gate", 1, external=True, unit="on/off",
                  doc="note on where > 0.5 (held over each frame)"),
            Param("attack", 1, times, time_varying=False, unit="s", doc="attack time 0 → 1"),
            Param("decay", 1, times, time_varying=False, unit="s", doc="decay time 1 → sustain"),
            Param("sustain", 1, SigmoidRange(0.0, 1.0), time_varying=False, unit="linear",
                  doc="sustain level"),
            Param("release", 1, times, time_varying=False, unit="s", doc="release time 1 → 0"),
        )

    def _times(self, n: int, like: Tensor, every: int = 1) -> Tensor:
        """``(n + 1,)`` float64 seconds of samples ``0, every, .., n·every``."""
        k = torch.arange(n + 1, device=like.device, dtype=torch.float64)
        return (k * every if every > 1 else k) / self.sample_rate

    def forward(self, gate: Tensor, attack: Tensor, decay: Tensor, sustain: Tensor,
                release: Tensor, n_samples: int) -> Tensor:
        self.check_params({"gate": gate, "attack": attack, "decay": decay, "sustain": sustain,
                           "release": release})
        b, t, _ = gate.shape
        hop = hop_size(t, n_samples)
        on = gate[..., 0] > 0.5  # (B, T)
        changes = (on[:, 1:] != on[:, :-1]).any(0).nonzero()[:, 0] + 1
        starts = [0] + changes.tolist()
        level = attack.new_zeros(b, 1)
        decaying = attack.new_zeros(b, 1)
        pieces: List[Tensor] = []
        if not self.per_sample:
            # the levels at samples k·hop, k = 0 .. K (the last frame's gate held to the end)
            n_knots = -(-n_samples // hop)
            for i, f0 in enumerate(starts):
                f1 = starts[i + 1] if i + 1 < len(starts) else n_knots
                for k0 in range(f0, f1, _CHUNK):
                    m = min(_CHUNK, f1 - k0)
                    levels, decaying = adsr_curve(level, decaying, on[:, f0:f0 + 1],
                                                  self._times(m, gate, hop), attack, decay,
                                                  sustain, release, self.linear, self.ratio)
                    pieces.append(levels[:, :-1])
                    level = levels[:, -1:]
            knots = torch.cat(pieces + [level], dim=-1)  # (B, K + 1)
            return interpolate_frames(knots[:, :, None], hop)[:, None, :n_samples, 0]
        for i, f0 in enumerate(starts):
            s1 = starts[i + 1] * hop if i + 1 < len(starts) else n_samples
            # long stretches in chunks that stay in cache (exact: each stage is a semigroup)
            for s0 in range(f0 * hop, s1, _CHUNK):
                m = min(_CHUNK, s1 - s0)
                levels, decaying = adsr_curve(level, decaying, on[:, f0:f0 + 1],
                                              self._times(m, gate), attack, decay, sustain,
                                              release, self.linear, self.ratio)
                pieces.append(levels[:, :-1])
                level = levels[:, -1:]
        return torch.cat(pieces, dim=-1)[:, None, :]

    # --- block rendering ---------------------------------------------------------------
    def state_specs(self):
        return (State("level", "(B, 1) linear: the level at the next sample"),
                State("decaying", "(B, 1) 1 where the note's attack is over, else 0"))

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        zeros = torch.zeros(batch, 1, dtype=like.dtype, device=like.device)
        return {"level": zeros, "decaying": zeros.clone()}

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        hop = n_samples // n_frames
        gate = params["gate"]
        level = state["level"]
        decaying = state["decaying"]
        pieces: List[Tensor] = []
        if not self.per_sample:
            ends = torch.tensor([0.0, hop / self.sample_rate], device=gate.device,
                                dtype=torch.float64)
            for f in range(n_frames):
                pieces.append(level)
                levels, decaying = adsr_curve(level, decaying, gate[:, f] > 0.5, ends,
                                              params["attack"], params["decay"],
                                              params["sustain"], params["release"],
                                              self.linear, self.ratio)
                level = levels[:, 1:]
            knots = torch.cat(pieces + [level], dim=-1)  # (B, n_frames + 1)
            y = interpolate_frames(knots[:, :, None], hop)[:, :, 0]
            return y[:, None, :], {"level": level, "decaying": decaying}
        times = torch.arange(hop + 1, device=gate.device,
                             dtype=torch.float64) / self.sample_rate
        for f in range(n_frames):
            levels, decaying = adsr_curve(level, decaying, gate[:, f] > 0.5, times,
                                          params["attack"], params["decay"], params["sustain"],
                                          params["release"], self.linear, self.ratio)
            pieces.append(levels[:, :hop])
            level = levels[:, hop:]
        return torch.cat(pieces, dim=-1)[:, None, :], {"level": level, "decaying": decaying}
