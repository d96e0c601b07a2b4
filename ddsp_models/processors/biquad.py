"""Biquad effect: the RBJ cookbook family with fixed or time-varying cutoff, Q and gain.

Also holds the small helpers the other filter processors share (audio checks, control
upsampling, default frequency ranges) and the block path of the biquad-based processors
(:func:`biquad_cascade_step`, :func:`biquad_state_specs`, :func:`biquad_init_state`,
:func:`tv_controls`), which the equalisers share.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch
from torch import Tensor

from ..core.filter_design import BIQUAD_KINDS, biquad_coefficients, rbj_biquad, tpt_svf_system
from ..core.iir import (
    DEFAULT_N_FFT,
    fir_block,
    freq_sampling_response,
    lfilter,
    lfilter_block,
    state_space_block,
)
from ..core.scaling import LogSigmoidRange, SigmoidRange
from ..core.upsample import control_per_sample
from .base import Param, Processor, State
from .base import check_audio
from .blocks import control_block, push_samples

__all__ = ["Biquad"]

_GAIN_KINDS = ("peaking", "lowshelf", "highshelf")


per_sample = control_per_sample  # the one control upsampler (core.upsample)


def max_filter_hz(sample_rate: float) -> float:
    """Highest cutoff a processor's scaling allows: 0.45 * sample_rate (below Nyquist)."""
    return 0.45 * sample_rate


def filter_coefficients(b: Tensor, a: Tensor) -> tuple[Tensor, Tensor]:
    """Drop the singleton time axis of static coefficients ``(B, 1, 1, K)`` -> ``(B, 1, K)``
    so :func:`~ddsp_models.core.iir.lfilter` treats them as time-invariant."""
    if b.shape[-2] == 1:
        return b[..., 0, :], a[..., 0, :]
    return b, a


# --------------------------------------------------------------------------------------
# Block path shared by the biquad-based processors (Biquad, ParametricEQ, GraphicEQ)
# --------------------------------------------------------------------------------------
#
# Latency 0 for static parameters (the filter only carries its recursion state), 1 frame for
# time-varying ones (controls are interpolated towards the next frame, as ``per_sample``
# does offline, so the input is delayed by one frame to match).


def biquad_state_specs(owner: Processor, n_sections: int) -> Tuple[State, ...]:
    """The state of a cascade of ``n_sections`` biquads run by :func:`biquad_cascade_step`."""
    if owner.time_varying:
        return (
            *[State(p.name, f"(B, 1, {p.size}) {p.unit}: the last frame of {p.name}")
              for p in owner.param_specs()],
            State("audio", "(B, C, hop) input samples not yet output (one frame)"),
            State("svf", f"(B, C, {n_sections}, 2) TPT state-variable filter states per section"),
        )
    if owner.mode == "freq_sampling":
        return (State("fir_history", f"(B, C, {owner.fir_taps - 1}) the last inputs, oldest "
                                     "first: the history of the frequency-sampled FIR"),)
    return (
        State("x_history", f"(B, C, {n_sections}, 2) each section's last two inputs, newest first"),
        State("y_history", f"(B, C, {n_sections}, 2) each section's last two outputs, newest first"),
    )


def biquad_init_state(owner: Processor, n_sections: int, batch: int, channels: int, hop: int,
                      like: Tensor) -> Dict[str, Tensor]:
    """A fresh stream's state for :func:`biquad_state_specs`. The control histories start at
    valid values (``0.1 * sample_rate`` Hz, Q 1, 0 dB): they only shape the first frame's
    interpolation over samples before the signal, where input and filter state are zero, so
    the output there is exactly zero whatever they are."""
    kw = {"dtype": like.dtype, "device": like.device}
    if owner.time_varying:
        state: Dict[str, Tensor] = {}
        for p in owner.param_specs():
            value = 0.1 * owner.sample_rate if p.unit == "Hz" else (0.0 if p.unit == "dB" else 1.0)
            state[p.name] = torch.full((batch, 1, p.size), value, **kw)
        state["audio"] = torch.zeros(batch, channels, hop, **kw)
        state["svf"] = torch.zeros(batch, channels, n_sections, 2, **kw)
        return state
    if owner.mode == "freq_sampling":
        return {"fir_history": torch.zeros(batch, channels, owner.fir_taps - 1, **kw)}
    return {"x_history": torch.zeros(batch, channels, n_sections, 2, **kw),
            "y_history": torch.zeros(batch, channels, n_sections, 2, **kw)}


def tv_controls(params: Dict[str, Tensor], state: Dict[str, Tensor], new: Dict[str, Tensor],
                hop: int) -> Dict[str, Tensor]:
    """Time-varying ``(B, N, F)`` params of a block at audio rate ``(B, F, N * hop)``, one
    frame late (:func:`~ddsp_models.processors.blocks.control_block`); writes each param's new
    history into ``new``."""
    out: Dict[str, Tensor] = {}
    for name, value in params.items():
        out[name], new[name] = control_block(value, state[name], hop)
    return out


def biquad_cascade_step(
    x: Tensor,
    kinds: List[str],
    cutoffs: List[Tensor],
    qs: List[Tensor],
    gains: List[Tensor],
    state: Dict[str, Tensor],
    new: Dict[str, Tensor],
    time_varying: bool,
    mode: str,
    n_fft: int,
    sample_rate: float,
) -> Tensor:
    """One block of RBJ biquads in series, exactly as the processors' ``forward`` runs them.

    Args:
        x: ``(B, C, M)`` the block (already delayed by one frame when time-varying).
        kinds: the sections' kinds; cutoffs, qs, gains: their parameters, ``(B, 1, M)`` per
            sample (time-varying: the TPT state-variable form, state ``"svf"``) or ``(B, 1)``
            / 0-dim (static: direct-form-I biquads, states ``"x_history"``, ``"y_history"``;
            or with ``mode="freq_sampling"`` the FIR of their product response on ``n_fft``
            points, state ``"fir_history"``).
        state, new: the carried state and the dict the new state is written into.

    Returns:
        ``(B, C, M)``.
    """
    if time_varying:
        s_out: List[Tensor] = []
        svf = state["svf"]
        for i in range(len(kinds)):
            a, b, c, d = tpt_svf_system(kinds[i], cutoffs[i], qs[i], gains[i], sample_rate)
            x, s = state_space_block(a, b, c, d, x, svf[:, :, i])
            s_out.append(s)
        new["svf"] = torch.stack(s_out, dim=2)
        return x
    bs: List[Tensor] = []
    as_: List[Tensor] = []
    for i in range(len(kinds)):
        b, a = rbj_biquad(kinds[i], cutoffs[i], qs[i], gains[i], sample_rate)
        bs.append(b.to(x.dtype))
        as_.append(a.to(x.dtype))
    if mode == "freq_sampling":
        h = freq_sampling_response(torch.stack(bs, dim=-2), torch.stack(as_, dim=-2), n_fft, True)
        y, new["fir_history"] = fir_block(x, h, state["fir_history"])
        return y
    xh: List[Tensor] = []
    yh: List[Tensor] = []
    for i in range(len(kinds)):
        x, xi, yi = lfilter_block(x, bs[i], as_[i], state["x_history"][:, :, i],
                                  state["y_history"][:, :, i])
        xh.append(xi)
        yh.append(yi)
    new["x_history"] = torch.stack(xh, dim=2)
    new["y_history"] = torch.stack(yh, dim=2)
    return x


class Biquad(Processor):
    """One RBJ biquad on every channel: ``forward(x (B, C, L), cutoff_hz, q[, gain_db])``.

    Args:
        sample_rate: Hz.
        kind: one of ``lowpass, highpass, bandpass, notch, allpass, peaking, lowshelf,
            highshelf`` (the last three take ``gain_db``).
        time_varying: parameters ``(B, T, 1)`` (upsampled per sample; exact gradients through
            the time-varying recursion) instead of static ``(B, 1)``.
        min_hz, max_hz: cutoff range of the scaling (default max: 0.45 * sample_rate).
        min_q, max_q: Q range. max_gain_db: gains within +-max_gain_db.
        mode: ``"recursive"`` (exact) or ``"freq_sampling"`` (static filters only).

    Any raw network output maps to ``0 < cutoff < Nyquist`` and ``q > 0``: the poles stay
    inside the unit circle. Static filters run as direct-form biquads (``lfilter``);
    time-varying ones as the TPT state-variable filter mixed into the same RBJ response
    (:func:`~ddsp_models.processors.svf.rbj_svf`): identical for fixed parameters, and
    bounded under per-sample modulation, where a direct form with per-sample coefficients
    can blow up.

    Block rendering (``step``) runs the same recursions from a carried state: static
    filters carry the direct-form-I histories (latency 0); ``mode="freq_sampling"`` carries
    the last ``n_fft - 1 = 4095`` inputs of its FIR (latency 0, equal to its offline output,
    not to the exact recursion); time-varying filters interpolate their controls towards the
    next frame, so they carry the last frame of each control, one frame of input and the
    two SVF states (latency 1 frame). See :func:`biquad_state_specs`.
    """

    n_inputs = 1

    def __init__(
        self,
        sample_rate: float = 16000,
        kind: str = "lowpass",
        time_varying: bool = False,
        min_hz: float = 20.0,
        max_hz: float | None = None,
        min_q: float = 0.1,
        max_q: float = 20.0,
        max_gain_db: float = 24.0,
        mode: str = "recursive",
    ):
        super().__init__()
        if kind not in BIQUAD_KINDS:
            raise ValueError(f"unknown biquad kind {kind!r}; choose one of {BIQUAD_KINDS}")
        if mode not in ("recursive", "freq_sampling"):
            raise ValueError(f"mode must be 'recursive' or 'freq_sampling', got {mode!r}")
        if mode == "freq_sampling" and time_varying:
            raise ValueError("mode='freq_sampling' needs static parameters (time_varying=False)")
        self.sample_rate = float(sample_rate)
        self.kind = kind
        self.time_varying = bool(time_varying)
        self.min_hz = float(min_hz)
        self.max_hz = float(max_hz) if max_hz is not None else max_filter_hz(sample_rate)
        if not 0 < self.min_hz < self.max_hz < self.sample_rate / 2:
            raise ValueError(
                f"need 0 < min_hz < max_hz < sample_rate / 2, got {self.min_hz}, {self.max_hz}"
            )
        self.min_q, self.max_q = float(min_q), float(max_q)
        self.max_gain_db = float(max_gain_db)
        self.mode = mode
        self.has_gain = kind in _GAIN_KINDS
        self.fir_taps = DEFAULT_N_FFT  # FIR length of mode="freq_sampling" (lfilter's default)

    @classmethod
    def examples(cls):
        return [
            {"kind": "lowpass"},
            {"kind": "peaking"},
            {"kind": "highshelf", "time_varying": True},
            {"kind": "bandpass", "time_varying": True},
            {"kind": "notch", "mode": "freq_sampling"},
        ]

    # --- block rendering -----------------------------------------------------------
    def latency_frames(self, hop: int) -> int:
        return 1 if self.time_varying else 0

    def state_specs(self):
        return biquad_state_specs(self, 1)

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        return biquad_init_state(self, 1, batch, input_channels[0], hop, like)

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        x = inputs[0]
        new: Dict[str, Tensor] = {}
        if self.time_varying:
            p = tv_controls(params, state, new, n_samples // n_frames)  # (B, 1, M) each
            x, new["audio"] = push_samples(state["audio"], x)
        else:
            p = params  # (B, 1) each
        fc, q = p["cutoff_hz"], p["q"]
        gain = p["gain_db"] if self.has_gain else torch.zeros_like(fc)
        y = biquad_cascade_step(x, [self.kind], [fc], [q], [gain], state, new, self.time_varying,
                                self.mode, self.fir_taps, self.sample_rate)
        return y, new

    def param_specs(self):
        tv = self.time_varying
        specs = [
            Param("cutoff_hz", 1, LogSigmoidRange(self.min_hz, self.max_hz), tv, unit="Hz",
                  doc="cutoff / centre frequency"),
            Param("q", 1, LogSigmoidRange(self.min_q, self.max_q), tv, unit="",
                  doc="quality factor (resonance)"),
        ]
        if self.kind in _GAIN_KINDS:
            specs.append(
                Param("gain_db", 1, SigmoidRange(-self.max_gain_db, self.max_gain_db), tv,
                      unit="dB", doc="boost or cut")
            )
        return tuple(specs)

    def config(self):
        return {
            "sample_rate": self.sample_rate,
            "kind": self.kind,
            "time_varying": self.time_varying,
            "min_hz": self.min_hz,
            "max_hz": self.max_hz,
            "min_q": self.min_q,
            "max_q": self.max_q,
            "max_gain_db": self.max_gain_db,
            "mode": self.mode,
        }

    def forward(self, x: Tensor, cutoff_hz: Tensor, q: Tensor, gain_db: Tensor | None = None) -> Tensor:
        check_audio("Biquad", x)
        params = {"cutoff_hz": cutoff_hz, "q": q}
        if self.kind in _GAIN_KINDS:
            params["gain_db"] = gain_db
        elif gain_db is not None:
            raise ValueError(f"Biquad(kind={self.kind!r}) takes no gain_db; only {_GAIN_KINDS} do")
        self.check_params(params)
        n = x.shape[-1]
        gain = per_sample(gain_db, n)[..., 0].to(x.dtype) if gain_db is not None else 0.0
        if self.time_varying:  # TPT state-variable form: bounded under fast modulation
            from .svf import rbj_svf

            fc = per_sample(cutoff_hz, n)[..., 0].to(x.dtype)
            return rbj_svf(x, self.kind, fc, per_sample(q, n)[..., 0].to(x.dtype), gain, self.sample_rate)
        b, a = biquad_coefficients(
            self.kind, per_sample(cutoff_hz, n)[..., 0], per_sample(q, n)[..., 0], gain, self.sample_rate
        )
        b, a = filter_coefficients(b.to(x.dtype), a.to(x.dtype))
        return lfilter(x, b, a, mode=self.mode)
