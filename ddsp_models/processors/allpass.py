"""Allpass cascades (plain, warped, stretched) and an LFO-modulated phaser with feedback.

Block rendering: every allpass cell runs as a normalised lattice in state-space form (a
stretched cell keeps ``stretch`` delayed copies of each lattice state), carried from block to
block by :func:`~ddsp_models.processors.svf.state_space_block`; the phaser also carries its
sample position, from which its LFO phase is computed in float64 as in ``forward``.
"""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from ..core.filter_design import allpass_coefficient, first_order_allpass, second_order_allpass
from ..core.iir import lfilter
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

__all__ = ["AllPassCascade", "Phaser", "lattice_allpass", "lattice_system", "phaser_step"]


class AllPassCascade(Processor):
    """``n_stages`` allpass cells in series: ``forward(x (B, C, L), **params)``.

    Cells (seed 001, Bargum et al.): first order ``(c + z^-1) / (1 + c z^-1)`` with ``c`` set by
    ``break_hz`` (phase -90 deg there), or second order with poles at ``radius *
    exp(+-j 2 pi centre_hz / fs)``. ``warped=True`` adds a per-stage ``warp`` in (-1, 1) that
    replaces each unit delay by a first-order allpass; ``stretch=K`` replaces each unit delay
    by K delays. The magnitude response is exactly 1; only the phase is shaped.

    Parameters (each ``n_stages`` wide): ``break_hz`` (order 1) or ``centre_hz`` and
    ``radius`` (order 2), plus ``warp`` if warped. Static ``(B, n_stages)`` or time-varying
    ``(B, T, n_stages)``; every raw value gives a stable cell (|c|, |warp|, radius < 1).
    Time-varying second-order cells run as normalised lattices (same response, lossless for
    any modulation, :func:`lattice_allpass`); first-order cells have one state and |c| < 1,
    so their direct form is already a contraction.
    """

    n_inputs = 1

    def __init__(
        self,
        sample_rate: float = 16000,
        n_stages: int = 4,
        order: int = 1,
        warped: bool = False,
        stretch: int = 1,
        time_varying: bool = False,
        min_hz: float = 20.0,
        max_hz: float | None = None,
        max_radius: float = 0.99,
        max_warp: float = 0.95,
    ):
        super().__init__()
        if order not in (1, 2):
            raise ValueError(f"order must be 1 or 2, got {order}")
        if n_stages < 1:
            raise ValueError(f"n_stages must be >= 1, got {n_stages}")
        if int(stretch) != stretch or stretch < 1:
            raise ValueError(f"stretch must be a positive integer, got {stretch}")
        if not (0 < max_radius < 1 and 0 < max_warp < 1):
            raise ValueError("max_radius and max_warp must lie in (0, 1) for stability")
        self.sample_rate = float(sample_rate)
        self.n_stages, self.order, self.warped, self.stretch = int(n_stages), int(order), bool(warped), int(stretch)
        self.time_varying = bool(time_varying)
        self.min_hz = float(min_hz)
        self.max_hz = float(max_hz) if max_hz is not None else _max_filter_hz(sample_rate)
        self.max_radius, self.max_warp = float(max_radius), float(max_warp)

    def param_specs(self):
        n, tv = self.n_stages, self.time_varying
        freq = LogSigmoidRange(self.min_hz, self.max_hz)
        if self.order == 1:
            specs = [Param("break_hz", n, freq, tv, unit="Hz", doc="-90 deg frequency per stage")]
        else:
            specs = [
                Param("centre_hz", n, freq, tv, unit="Hz", doc="pole angle per stage"),
                Param("radius", n, SigmoidRange(0.0, self.max_radius), tv, doc="pole radius per stage"),
            ]
        if self.warped:
            specs.append(Param("warp", n, SigmoidRange(-self.max_warp, self.max_warp), tv,
                               doc="first-order allpass replacing each delay"))
        return tuple(specs)

    def config(self):
        return {
            "sample_rate": self.sample_rate,
            "n_stages": self.n_stages,
            "order": self.order,
            "warped": self.warped,
            "stretch": self.stretch,
            "time_varying": self.time_varying,
            "min_hz": self.min_hz,
            "max_hz": self.max_hz,
            "max_radius": self.max_radius,
            "max_warp": self.max_warp,
        }

    @classmethod
    def examples(cls):
        return [
            {"n_stages": 2},
            {"n_stages": 2, "order": 2, "time_varying": True},
            {"n_stages": 2, "order": 1, "warped": True, "stretch": 3, "time_varying": True},
            {"n_stages": 2, "order": 2, "warped": True, "stretch": 2},
        ]

    # --- block rendering -------------------------------------------------------------
    def latency_frames(self, hop: int) -> int:
        return 1 if self.time_varying else 0

    def _param_names(self) -> List[str]:
        names = ["break_hz"] if self.order == 1 else ["centre_hz", "radius"]
        if self.warped:
            names.append("warp")
        return names

    def state_specs(self):
        n = self.order * self.stretch
        states = [State("filter", f"(B, C, n_stages, {n}) lattice states of every stage "
                                  "(order x stretch delayed copies)")]
        if self.time_varying:
            states += [State(name, f"(B, 1, {self.n_stages}): the last frame of {name}")
                       for name in self._param_names()]
            states.append(State("audio", "(B, C, hop) input samples not yet output"))
        return tuple(states)

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        kw = dict(dtype=like.dtype, device=like.device)
        c = input_channels[0]
        state = {"filter": torch.zeros(batch, c, self.n_stages, self.order * self.stretch, **kw)}
        if self.time_varying:
            # finite start values: they only shape the frame before the start (zero input)
            for name in self._param_names():
                fill = self.min_hz if name.endswith("_hz") else 0.0
                state[name] = torch.full((batch, 1, self.n_stages), fill, **kw)
            state["audio"] = torch.zeros(batch, c, hop, **kw)
        return state

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        hop = n_samples // n_frames
        x = inputs[0]
        new: Dict[str, Tensor] = {}
        ctrl, x = controls_and_input(params, state, new, x, hop)  # (B, n_stages, M | 1)
        for name in list(ctrl.keys()):
            ctrl[name] = ctrl[name].to(x.dtype)
        limit = _unit_limit(x.dtype)
        y = x
        filt = state["filter"]
        out_states: List[Tensor] = []
        for i in range(self.n_stages):
            if self.order == 1:
                c = _allpass_c(ctrl["break_hz"][:, i:i + 1], self.sample_rate)
                if self.warped:
                    w = ctrl["warp"][:, i:i + 1]
                    c = (w + c) / (1 + c * w)  # warped first order: again first order
                k1 = c.clamp(-limit, limit)
                k2 = k1
            else:
                r = ctrl["radius"][:, i:i + 1]
                theta = (2 * math.pi / self.sample_rate) * ctrl["centre_hz"][:, i:i + 1]
                d = -2 * r * torch.cos(theta)
                c = r * r
                if self.warped:  # z^-1 -> (w + z^-1) / (1 + w z^-1), as filter_design._warp
                    w = ctrl["warp"][:, i:i + 1]
                    ww, w2 = w * w, w + w
                    a0 = 1 + d * w + c * ww
                    d, c = (w2 + d * (ww + 1) + c * w2) / a0, (ww + d * w + c) / a0
                k2 = c.clamp(-limit, limit)
                k1 = (d / (1 + k2)).clamp(-limit, limit)
            a, b, cc, dd = lattice_system(k1, k2, self.order, self.stretch)
            y, s_i = state_space_block(a, b, cc, dd, y, filt[:, :, i])
            out_states.append(s_i)
        new["filter"] = torch.stack(out_states, dim=2)
        return y, new

    def forward(self, x: Tensor, **params: Tensor) -> Tensor:
        check_audio("AllPassCascade", x)
        self.check_params(params)
        n = x.shape[-1]
        full = {k: _per_sample(v, n).to(x.dtype) for k, v in params.items()}  # (B, 1, L|1, S)
        y = x
        for i in range(self.n_stages):
            warp = full["warp"][..., i] if self.warped else None
            if self.order == 1:
                c = allpass_coefficient(full["break_hz"][..., i], self.sample_rate)
                if self.time_varying:  # normalised lattice: lossless under any modulation
                    _, a = first_order_allpass(c, warp=warp)
                    y = _stretched(lattice_allpass, y, a, self.stretch)
                    continue
                b, a = first_order_allpass(c, warp=warp, stretch=self.stretch)
            else:
                theta = (2 * math.pi / self.sample_rate) * full["centre_hz"][..., i]
                if self.time_varying:  # normalised lattice: passive under any modulation
                    _, a = second_order_allpass(full["radius"][..., i], theta, warp=warp)
                    y = _stretched(lattice_allpass, y, a, self.stretch)
                    continue
                b, a = second_order_allpass(full["radius"][..., i], theta, warp=warp, stretch=self.stretch)
            if b.shape[-2] == 1:  # static (B, 1, 1, K) -> time-invariant (B, 1, K) for lfilter
                b, a = b[..., 0, :], a[..., 0, :]
            y = lfilter(y, b, a)
        return y


def _lattice_step_1(states: List[Tensor], x: Tensor, k1: Tensor) -> Tuple[Tensor, List[Tensor]]:
    """One sample of the normalised lattice for a first-order allpass."""
    s0 = states[0]
    c1 = torch.sqrt(1 - k1 * k1)
    return k1 * x + c1 * s0, [c1 * x - k1 * s0]


def _lattice_step(states: List[Tensor], x: Tensor, k1: Tensor, k2: Tensor
                  ) -> Tuple[Tensor, List[Tensor]]:
    """One sample of the normalised (rotation) lattice for a second-order allpass."""
    s0, s1 = states[0], states[1]
    c1 = torch.sqrt(1 - k1 * k1)
    c2 = torch.sqrt(1 - k2 * k2)
    f1 = c2 * x - k2 * s1
    y = k2 * x + c2 * s1
    f0 = c1 * f1 - k1 * s0
    return y, [f0, k1 * f1 + c1 * s0]


def _unit_limit(dtype: torch.dtype) -> float:
    """``1 - eps`` of ``dtype`` (``torch.finfo`` is not scriptable): the bound on reflection
    coefficients."""
    if dtype == torch.float64:
        return 1.0 - 2.220446049250313e-16
    if dtype == torch.float16:
        return 1.0 - 0.0009765625
    if dtype == torch.bfloat16:
        return 1.0 - 0.0078125
    return 1.0 - 1.1920928955078125e-07


def _stretched_lattice_step(states: List[Tensor], x: Tensor, k1: Tensor, k2: Tensor,
                            order: int, stretch: int) -> Tuple[Tensor, List[Tensor]]:
    """One sample of a lattice allpass of ``order`` 1 or 2 whose unit delays are ``stretch``
    delays: ``states[j * stretch + r]`` is lattice state ``j`` delayed by ``r`` more samples
    (``r = stretch - 1`` is the one the lattice reads; ``k2`` is unused for order 1)."""
    old = [states[j * stretch + stretch - 1] for j in range(order)]
    if order == 1:
        y, fresh = _lattice_step_1(old, x, k1)
    else:
        y, fresh = _lattice_step(old, x, k1, k2)
    new: List[Tensor] = []
    for j in range(order):
        new.append(fresh[j])
        for r in range(stretch - 1):
            new.append(states[j * stretch + r])
    return y, new


def lattice_system(k1: Tensor, k2: Tensor, order: int, stretch: int
                   ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-sample state-space matrices (``order * stretch`` states) of the normalised lattice
    allpass with reflection coefficients ``k1`` (and ``k2`` for order 2), each ``(...)``, and
    every unit delay stretched to ``stretch`` samples. TorchScript-compatible."""
    n = order * stretch
    states, probe = state_space_basis(n, k1)
    y, new = _stretched_lattice_step(states, probe, k1[..., None], k2[..., None], order, stretch)
    return state_space_from_basis(y, new, n)


def lattice_allpass(x: Tensor, a: Tensor) -> Tensor:
    """First-order ``(c + z^-1) / (1 + c z^-1)`` (``a = [1, c]``) or second-order
    ``(c + d z^-1 + z^-2) / (1 + d z^-1 + c z^-2)`` (``a = [1, d, c]``) allpass as a normalised
    lattice with reflection coefficients ``k1 = c`` (first order) or ``k2 = c``,
    ``k1 = d / (1 + c)`` (second order).

    Each sample applies two plane rotations to (input, states), so the structure is lossless:
    with ``|k1|, |k2| < 1`` (exactly the stable allpasses) the output energy never exceeds the
    input energy, however fast the coefficients change. Fixed coefficients give exactly the
    direct-form response.

    Args:
        x: ``(..., L)``; a: ``(..., L, 2 or 3)`` per-sample coefficients (broadcast against x).
    """
    limit = _unit_limit(a.dtype)
    if a.shape[-1] == 2:
        return run_state_space(_lattice_step_1, 1, x, (a[..., 1].clamp(-limit, limit),))
    if a.shape[-1] != 3:
        raise ValueError(f"lattice_allpass handles orders 1 and 2; got a of shape {tuple(a.shape)}")
    d, c = a[..., 1], a[..., 2]
    k2 = c.clamp(-limit, limit)
    k1 = (d / (1 + k2)).clamp(-limit, limit)
    return run_state_space(_lattice_step, 2, x, (k1, k2))


def _stretched(filt, x: Tensor, a: Tensor, stretch: int) -> Tensor:
    """Run ``filt(x, a)`` with every unit delay replaced by ``stretch`` delays: the ``stretch``
    interleaved phases of ``x`` (``x[r::K]``) are independent filters with the per-sample
    coefficients ``a`` ``(B, 1, L, n)`` of their own samples."""
    if stretch == 1:
        return filt(x, a)
    length = x.shape[-1]
    pad = (-length) % stretch
    xp = torch.nn.functional.pad(x, (0, pad))
    ap = torch.cat([a, a[..., -1:, :].expand(*a.shape[:-2], pad, a.shape[-1])], dim=-2)
    phases = xp.reshape(*x.shape[:-1], -1, stretch).transpose(-1, -2)  # (B, C, K, L/K)
    a_ph = ap.reshape(*ap.shape[:-2], -1, stretch, a.shape[-1]).transpose(-2, -3)  # (B, 1, K, L/K, n)
    y = filt(phases, a_ph).transpose(-1, -2).reshape(*x.shape[:-1], -1)
    return y[..., :length]


def phaser_step(states: List[Tensor], x: Tensor, c: Tensor, feedback: Tensor
                ) -> Tuple[Tensor, List[Tensor]]:
    """Per-sample phaser update: feedback of the previous wet sample into a cascade of
    ``len(states) - 1`` first-order allpass stages, each a normalised lattice (one state,
    lossless); ``states[-1]`` holds the previous wet output. Returns ``(wet, new_states)``."""
    n_stages = len(states) - 1
    u = x + feedback * states[-1]
    rot = torch.sqrt(1 - c * c)
    new: List[Tensor] = []
    for i in range(n_stages):
        s = states[i]
        y = c * u + rot * s
        new.append(rot * u - c * s)
        u = y
    new.append(u)
    return u, new


def _phaser_step(n_stages: int):
    """:func:`phaser_step` (for ``n_stages + 1`` states)."""
    return phaser_step


def phaser_system(c: Tensor, feedback: Tensor, n_stages: int
                  ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-sample state-space matrices (``n_stages + 1`` states) of :func:`phaser_step` for
    stage coefficients ``c`` and ``feedback`` (both ``(...)``). TorchScript-compatible."""
    states, probe = state_space_basis(n_stages + 1, c)
    y, new = phaser_step(states, probe, c[..., None], feedback[..., None])
    return state_space_from_basis(y, new, n_stages + 1)


def _allpass_c(break_hz: Tensor, sample_rate: float) -> Tensor:
    """:func:`~ddsp_models.core.filter_design.allpass_coefficient` (same arithmetic), scriptable."""
    t = torch.tan(math.pi * break_hz / sample_rate)
    return (t - 1) / (t + 1)


class Phaser(Processor):
    """LFO-swept allpass cascade with feedback, mixed with the dry signal.

    ``forward(x (B, C, L), rate_hz, depth, centre_hz, feedback, mix)``, all static ``(B, 1)``.
    The break frequency of every first-order stage follows
    ``centre_hz * 2 ** (max_octaves * depth * sin(2 pi rate_hz t + lfo_phase))``; the wet path
    feeds ``feedback`` times its previous output back to its input; the output is
    ``(1 - mix) x + mix wet``. With ``mix = 0.5`` and no feedback, notches sit where the
    cascade's phase is an odd multiple of -180 deg, so they sweep with the LFO.
    The whole effect is one time-varying state-space system (``n_stages + 1`` states) run by
    :func:`~ddsp_models.processors.svf.run_state_space`: exact gradients, cascade numerics.
    Each stage is a normalised lattice (lossless for any sweep), so with |feedback| < 1 the
    loop gain stays below one: stable for any raw parameters and any LFO.
    """

    n_inputs = 1

    def __init__(
        self,
        sample_rate: float = 16000,
        n_stages: int = 4,
        max_octaves: float = 2.0,
        min_centre_hz: float = 100.0,
        max_centre_hz: float = 4000.0,
        max_rate_hz: float = 10.0,
        max_feedback: float = 0.9,
        lfo_phase: float = 0.0,
    ):
        super().__init__()
        if n_stages < 1:
            raise ValueError(f"n_stages must be >= 1, got {n_stages}")
        if not 0 < max_feedback < 1:
            raise ValueError(f"max_feedback must be in (0, 1) for stability, got {max_feedback}")
        self.sample_rate = float(sample_rate)
        self.n_stages = int(n_stages)
        self.max_octaves = float(max_octaves)
        self.min_centre_hz = float(min_centre_hz)
        self.max_centre_hz = min(float(max_centre_hz), _max_filter_hz(sample_rate))
        if not 0 < self.min_centre_hz < self.max_centre_hz:
            raise ValueError("need 0 < min_centre_hz < max_centre_hz < 0.45 * sample_rate")
        self.max_rate_hz = float(max_rate_hz)
        self.max_feedback = float(max_feedback)
        self.lfo_phase = float(lfo_phase)

    def param_specs(self):
        return (
            Param("rate_hz", 1, LogSigmoidRange(0.01, self.max_rate_hz), False, unit="Hz", doc="LFO rate"),
            Param("depth", 1, SigmoidRange(0.0, 1.0), False, doc="sweep, fraction of max_octaves"),
            Param("centre_hz", 1, LogSigmoidRange(self.min_centre_hz, self.max_centre_hz), False,
                  unit="Hz", doc="break frequency at the LFO's zero crossing"),
            Param("feedback", 1, SigmoidRange(-self.max_feedback, self.max_feedback), False,
                  doc="wet output fed back to the cascade input"),
            Param("mix", 1, SigmoidRange(0.0, 1.0), False, doc="0 dry .. 1 wet"),
        )

    def config(self):
        return {
            "sample_rate": self.sample_rate,
            "n_stages": self.n_stages,
            "max_octaves": self.max_octaves,
            "min_centre_hz": self.min_centre_hz,
            "max_centre_hz": self.max_centre_hz,
            "max_rate_hz": self.max_rate_hz,
            "max_feedback": self.max_feedback,
            "lfo_phase": self.lfo_phase,
        }

    @classmethod
    def examples(cls):
        return [{}, {"n_stages": 2, "lfo_phase": 1.0, "max_octaves": 3.0}]

    def break_frequencies(self, rate_hz: Tensor, depth: Tensor, centre_hz: Tensor, n_samples: int,
                          start: int = 0) -> Tensor:
        """Stage break frequency per sample ``(B, L)`` in Hz (the LFO sweep), for samples
        ``start .. start + n_samples - 1``."""
        position = torch.full((), start, dtype=torch.int64, device=rate_hz.device)
        return self._break_hz(rate_hz, depth, centre_hz, position, n_samples)

    def _break_hz(self, rate_hz: Tensor, depth: Tensor, centre_hz: Tensor, position: Tensor,
                  n_samples: int) -> Tensor:
        # the LFO phase is rate * t wrapped in float64, t from the absolute sample index
        n = torch.arange(n_samples, dtype=torch.float64, device=rate_hz.device)
        t = (n + position.to(torch.float64)) / self.sample_rate
        cycles = torch.remainder(rate_hz.double() * t, 1.0)  # float64 phase, wrapped
        lfo = torch.sin(2 * math.pi * cycles + self.lfo_phase).to(rate_hz.dtype)
        f = centre_hz * torch.exp2(self.max_octaves * depth * lfo)
        return f.clamp(5.0, _max_filter_hz(self.sample_rate))

    def forward(self, x: Tensor, rate_hz: Tensor, depth: Tensor, centre_hz: Tensor,
                feedback: Tensor, mix: Tensor) -> Tensor:
        check_audio("Phaser", x)
        self.check_params(dict(rate_hz=rate_hz, depth=depth, centre_hz=centre_hz, feedback=feedback, mix=mix))
        f = self.break_frequencies(rate_hz, depth, centre_hz, x.shape[-1]).to(x.dtype)
        c = allpass_coefficient(f, self.sample_rate)[:, None, :]  # (B, 1, L)
        fb = feedback.to(x.dtype)[:, :, None]  # (B, 1, 1)
        wet = run_state_space(_phaser_step(self.n_stages), self.n_stages + 1, x, (c, fb))
        m = mix.to(x.dtype)[:, :, None]
        return (1 - m) * x + m * wet

    # --- block rendering (all parameters static: no look-ahead) ----------------------
    def state_specs(self):
        return (
            State("filter", "(B, C, n_stages + 1) lattice states of the stages, then the "
                            "previous wet sample (the feedback)"),
            State("position", "() int64: samples rendered so far (the LFO's time, float64 phase)"),
        )

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        return {
            "filter": torch.zeros(batch, input_channels[0], self.n_stages + 1, dtype=like.dtype,
                                  device=like.device),
            "position": torch.zeros((), dtype=torch.int64, device=like.device),
        }

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        x = inputs[0]
        length = x.shape[-1]
        f = self._break_hz(params["rate_hz"], params["depth"], params["centre_hz"],
                           state["position"], length).to(x.dtype)
        c = _allpass_c(f, self.sample_rate)[:, None, :]  # (B, 1, M)
        fb = params["feedback"].to(x.dtype)[:, :, None]  # (B, 1, 1)
        a, b, cc, d = phaser_system(c, fb, self.n_stages)
        wet, filt = state_space_block(a, b, cc, d, x, state["filter"])
        m = params["mix"].to(x.dtype)[:, :, None]
        new: Dict[str, Tensor] = {"filter": filt, "position": state["position"] + length}
        return (1 - m) * x + m * wet, new
