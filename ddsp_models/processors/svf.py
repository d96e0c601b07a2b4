"""State-variable filter in the zero-delay-feedback (TPT) form, with exact gradients.

The TPT update of one sample is linear in ``(state, input)``, so it defines, per sample, a
state-space system ``s[n] = A[n] s[n-1] + B[n] x[n]``, ``y[n] = C[n] s[n-1] + D[n] x[n]``.
:func:`run_state_space` reads ``A, B, C, D`` off the update itself (by running it on the
basis vectors, so the matrices are exactly the TPT structure, modulation included) and runs
the recursion with :func:`~ddsp_models.core.iir.linear_recurrence`, whose backward pass is the
exact adjoint. The ladder filter uses the same machinery. For the SVF itself the matrices are
also written in closed form (:func:`rbj_svf`), which :class:`StateVariableFilter` and the
time-varying :class:`~ddsp_models.processors.biquad.Biquad` run.

Block rendering: the same per-sample matrices, built by TorchScript-compatible functions
(:func:`state_space_basis`, :func:`state_space_from_basis`, :func:`rbj_svf_system`), are run
from a carried state by :func:`~ddsp_models.core.iir.state_space_block` (the compiled
:func:`linear_recurrence` in Python, a per-sample loop under TorchScript). The ladder,
allpass and subtractive processors stream through the same functions.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..core.filter_design import tpt_svf_system
from ..core.iir import linear_recurrence, state_space_block
from ..core.scaling import LogSigmoidRange
from ..core.upsample import control_per_sample
from .base import Param, Processor, State, check_audio
from .blocks import controls_and_input

__all__ = ["StateVariableFilter", "run_state_space", "run_system", "svf_step", "rbj_svf",
           "rbj_svf_system", "rbj_svf_block", "state_space_basis", "state_space_from_basis",
           "state_space_block"]

#: step(states, x, *coefficients) -> (output, new_states); linear in (states, x).
Step = Callable[..., Tuple[Tensor, Sequence[Tensor]]]


_per_sample = control_per_sample  # the one control upsampler (core.upsample)


def _max_filter_hz(sample_rate: float) -> float:
    """Highest cutoff a filter's scaling allows: 0.45 * sample_rate (as
    ``biquad.max_filter_hz``)."""
    return 0.45 * sample_rate


def state_space_basis(n: int, like: Tensor) -> Tuple[List[Tensor], Tensor]:
    """The ``n + 1`` probes that read a linear per-sample update off itself.

    Returns ``(states, x)``: ``states[j]`` ``(n + 1,)`` is ``e_j`` on the axis of probes
    (probe ``n`` has zero states), ``x`` ``(n + 1,)`` is one only on probe ``n``. Evaluate the
    update at them (coefficients with a trailing singleton axis) and hand the result to
    :func:`state_space_from_basis`.
    """
    eye = torch.eye(n, dtype=like.dtype, device=like.device)
    basis_s = torch.cat([eye, eye.new_zeros(1, n)])  # (n+1, n): columns e_0..e_{n-1}, then 0
    basis_x = torch.cat([eye.new_zeros(n), eye.new_ones(1)])  # (n+1,): zero, then x = 1
    return [basis_s[:, j] for j in range(n)], basis_x


def broadcast_all(tensors: List[Tensor]) -> List[Tensor]:
    """``torch.broadcast_tensors`` of a list, the same in Python and TorchScript (views)."""
    shape: List[int] = []
    for t in tensors:
        dims = t.shape
        if len(dims) > len(shape):
            shape = [1] * (len(dims) - len(shape)) + shape
        off = len(shape) - len(dims)
        for i in range(len(dims)):
            if shape[off + i] == 1:
                shape[off + i] = dims[i]
            elif dims[i] != 1 and dims[i] != shape[off + i]:
                raise RuntimeError("shapes do not broadcast")
    return [t.expand(shape) for t in tensors]


def state_space_from_basis(y: Tensor, new: List[Tensor], n: int
                           ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(a, b, c, d)`` of ``s[t] = a s[t-1] + b x[t]``, ``y[t] = c . s[t-1] + d x[t]`` from an
    update evaluated at :func:`state_space_basis`: ``a (..., n, n)`` with ``a[i, j] = d s_i' /
    d s_j``, ``b, c (..., n)``, ``d (...)``."""
    both = broadcast_all([y] + new)
    y, new = both[0], both[1:]
    a = torch.stack([s[..., :n] for s in new], dim=-2)
    b = torch.stack([s[..., n] for s in new], dim=-1)
    return a, b, y[..., :n], y[..., n]


def run_state_space(step: Step, n_states: int, x: Tensor, coefficients: Sequence[Tensor]) -> Tensor:
    """Run a per-sample linear update over a whole signal with exact gradients.

    Args:
        step: the update of one sample, written with elementwise torch ops; it must be linear
            in ``(states, x)`` (any function of the coefficients is fine).
        n_states: number of state variables.
        x: ``(B, C, L)`` audio.
        coefficients: tensors broadcastable to ``(B, C, L)`` (per sample) or ``(B, C, 1)``.

    Returns:
        ``(B, C, L)`` output, zero initial state.
    """
    if x.dim() < 1:
        raise ValueError("x needs a time axis")
    states, probe = state_space_basis(n_states, x)
    coefs = [c[..., None] for c in coefficients]  # (..., L or 1, 1) against the n+1 basis axis
    y, new = step(states, probe, *coefs)
    return run_system(*state_space_from_basis(y, list(new), n_states), x)


def run_system(a: Tensor, b: Tensor, c: Tensor, d: Tensor, x: Tensor) -> Tensor:
    """``s[n] = a[n] s[n-1] + b[n] x[n]``, ``y[n] = c[n] . s[n-1] + d[n] x[n]`` (zero initial
    state) with exact gradients; ``a (..., L|1, N, N)``, ``b, c (..., L|1, N)``, ``d (..., L|1)``
    broadcast against ``x (..., L)``."""
    n, length = a.shape[-1], x.shape[-1]
    a = a.expand(*a.shape[:-3], length, n, n)
    states = linear_recurrence(a, b * x[..., None])  # (..., L, n)
    prev = F.pad(states[..., :-1, :], (0, 0, 1, 0))  # s[n-1], zero before the start
    return (c * prev).sum(-1) + d * x


_SVF_OUTPUTS = ("lowpass", "bandpass", "highpass", "notch", "allpass")


def svf_step(states: List[Tensor], x: Tensor, g: Tensor, k: Tensor
             ) -> Tuple[Tuple[Tensor, Tensor, Tensor], Tuple[Tensor, Tensor]]:
    """One TPT SVF sample (Zavalishin): ``g = tan(pi fc / fs)``, damping ``k = 1 / Q``.

    Returns ``((hp, bp, lp), (s1', s2'))``.
    """
    s1, s2 = states[0], states[1]
    hp = (x - (k + g) * s1 - s2) / (1 + k * g + g * g)
    v1 = g * hp
    bp = v1 + s1
    v2 = g * bp
    lp = v2 + s2
    return (hp, bp, lp), (bp + v1, lp + v2)


rbj_svf_system = tpt_svf_system  # the one TPT SVF system (core.filter_design)


def rbj_svf(x: Tensor, kind: str, cutoff_hz: Tensor, q: Tensor, gain_db: Tensor | float,
            sample_rate: float) -> Tensor:
    """An RBJ cookbook response realised by the TPT state-variable filter.

    For fixed parameters the response equals :func:`~ddsp_models.core.biquad_coefficients`'s
    exactly (same bilinear transform); under modulation the TPT structure stays bounded where a
    direct-form biquad with per-sample coefficients can blow up. Exact gradients.

    Args:
        x: ``(B, C, L)``; cutoff_hz, q, gain_db: broadcastable to ``(B, C, L)`` (per sample).
    """
    gain_db = torch.as_tensor(gain_db, dtype=x.dtype, device=x.device)
    q = torch.as_tensor(q, dtype=x.dtype, device=x.device)
    return run_system(*rbj_svf_system(kind, cutoff_hz, q, gain_db, sample_rate), x)


def rbj_svf_block(x: Tensor, kind: str, cutoff_hz: Tensor, q: Tensor, gain_db: Tensor,
                  sample_rate: float, s0: Tensor) -> Tuple[Tensor, Tensor]:
    """One block of :func:`rbj_svf` from the carried integrator states ``s0`` ``(B, C, 2)``
    (``ic1eq, ic2eq``; zeros for a fresh stream): ``(y (B, C, M), new state (B, C, 2))``.
    ``cutoff_hz, q, gain_db`` are this block's per-sample values ``(B, 1|C, M|1)``.
    TorchScript-compatible."""
    a, b, c, d = rbj_svf_system(kind, cutoff_hz, q, gain_db, sample_rate)
    return state_space_block(a, b, c, d, x, s0)


class StateVariableFilter(Processor):
    """Zero-delay-feedback state-variable filter: ``forward(x (B, C, L), cutoff_hz, q)``.

    Its static response is the bilinear transform (pre-warped at the cutoff) of
    ``1 / (s^2 + s / Q + 1)`` (lowpass), ``s^2 / ...`` (highpass), ``(s / Q) / ...`` (bandpass,
    0 dB peak), ``(s^2 + 1) / ...`` (notch) or ``(s^2 - s / Q + 1) / ...`` (allpass). Under
    modulation it keeps the TPT state topology, which stays well-behaved under fast cutoff
    sweeps, and gradients are exact (see :func:`run_state_space`).

    Args:
        sample_rate: Hz. output: which response (see above).
        time_varying: ``(B, T, 1)`` parameters (default) or static ``(B, 1)``.
        min_hz, max_hz, min_q, max_q: scaling ranges; any raw value gives a stable filter
            (``0 < cutoff < Nyquist``, ``q > 0``).

    Block rendering carries the two integrator states; time-varying controls are interpolated
    towards the next frame (latency one frame, the input delayed to match), static ones need
    no look-ahead (latency 0).
    """

    n_inputs = 1

    def __init__(
        self,
        sample_rate: float = 16000,
        output: str = "lowpass",
        time_varying: bool = True,
        min_hz: float = 20.0,
        max_hz: float | None = None,
        min_q: float = 0.1,
        max_q: float = 20.0,
    ):
        super().__init__()
        if output not in _SVF_OUTPUTS:
            raise ValueError(f"output must be one of {_SVF_OUTPUTS}, got {output!r}")
        self.sample_rate = float(sample_rate)
        self.output = output
        self.time_varying = bool(time_varying)
        self.min_hz = float(min_hz)
        self.max_hz = float(max_hz) if max_hz is not None else _max_filter_hz(sample_rate)
        if not 0 < self.min_hz < self.max_hz < self.sample_rate / 2:
            raise ValueError(
                f"need 0 < min_hz < max_hz < sample_rate / 2, got {self.min_hz}, {self.max_hz}"
            )
        self.min_q, self.max_q = float(min_q), float(max_q)

    @classmethod
    def examples(cls):
        return [{}, {"output": "bandpass", "time_varying": False}, {"output": "highpass"},
                {"output": "notch"}, {"output": "allpass", "time_varying": False}]

    def param_specs(self):
        tv = self.time_varying
        return (
            Param("cutoff_hz", 1, LogSigmoidRange(self.min_hz, self.max_hz), tv, unit="Hz",
                  doc="cutoff / centre frequency"),
            Param("q", 1, LogSigmoidRange(self.min_q, self.max_q), tv, unit="",
                  doc="resonance as a quality factor (0.7071: no peak)"),
        )

    def config(self):
        return {
            "sample_rate": self.sample_rate,
            "output": self.output,
            "time_varying": self.time_varying,
            "min_hz": self.min_hz,
            "max_hz": self.max_hz,
            "min_q": self.min_q,
            "max_q": self.max_q,
        }

    def forward(self, x: Tensor, cutoff_hz: Tensor, q: Tensor) -> Tensor:
        check_audio("StateVariableFilter", x)
        self.check_params({"cutoff_hz": cutoff_hz, "q": q})
        n = x.shape[-1]
        fc = _per_sample(cutoff_hz, n)[..., 0].to(x.dtype)
        # Its five responses are RBJ responses with no gain: the same closed-form TPT system.
        return rbj_svf(x, self.output, fc, _per_sample(q, n)[..., 0].to(x.dtype), 0.0,
                       self.sample_rate)

    # --- block rendering -------------------------------------------------------------
    def latency_frames(self, hop: int) -> int:
        return 1 if self.time_varying else 0

    def state_specs(self):
        states = [State("filter", "(B, C, 2) integrator states ic1eq, ic2eq of the TPT SVF")]
        if self.time_varying:
            states += [
                State("cutoff_hz", "(B, 1, 1) Hz: the last frame of cutoff_hz (min_hz at start)"),
                State("q", "(B, 1, 1): the last frame of q (1 at start)"),
                State("audio", "(B, C, hop) input samples not yet output"),
            ]
        return tuple(states)

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        kw = dict(dtype=like.dtype, device=like.device)
        c = input_channels[0]
        state = {"filter": torch.zeros(batch, c, 2, **kw)}
        if self.time_varying:
            # any finite values: they only shape the frame before the start, where input and
            # state are zero (q = 0 would give k = 1 / q = inf and NaN)
            state["cutoff_hz"] = torch.full((batch, 1, 1), self.min_hz, **kw)
            state["q"] = torch.ones(batch, 1, 1, **kw)
            state["audio"] = torch.zeros(batch, c, hop, **kw)
        return state

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        hop = n_samples // n_frames
        x = inputs[0]
        new: Dict[str, Tensor] = {}
        ctrl, x = controls_and_input(params, state, new, x, hop)
        fc, q = ctrl["cutoff_hz"], ctrl["q"]
        zero = torch.zeros(1, dtype=x.dtype, device=x.device)
        y, new["filter"] = rbj_svf_block(x, self.output, fc.to(x.dtype), q.to(x.dtype), zero,
                                         self.sample_rate, state["filter"])
        return y, new
