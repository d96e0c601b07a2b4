"""State-variable filter in the zero-delay-feedback (TPT) form, with exact gradients.

The TPT update of one sample is linear in ``(state, input)``, so it defines, per sample, a
state-space system ``s[n] = A[n] s[n-1] + B[n] x[n]``, ``y[n] = C[n] s[n-1] + D[n] x[n]``.
:func:`run_state_space` reads ``A, B, C, D`` off the update itself (by running it on the
basis vectors, so the matrices are exactly the TPT structure, modulation included) and runs
the recursion with :func:`~ddsp_models.core.iir.linear_recurrence`, whose backward pass is the
exact adjoint. The ladder filter uses the same machinery. For the SVF itself the matrices are
also written in closed form (:func:`rbj_svf`), which :class:`StateVariableFilter` and the
time-varying :class:`~ddsp_models.processors.biquad.Biquad` run.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..core.iir import linear_recurrence
from ..core.scaling import LogSigmoidRange
from ..core.shapes import broadcast_shapes
from .base import Param, Processor
from .biquad import check_audio, max_filter_hz, per_sample

__all__ = ["StateVariableFilter", "run_state_space", "run_system", "svf_step", "rbj_svf"]

#: step(states, x, *coefficients) -> (output, new_states); linear in (states, x).
Step = Callable[..., tuple[Tensor, Sequence[Tensor]]]


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
    n = n_states
    eye = torch.eye(n, dtype=x.dtype, device=x.device)
    if x.dim() < 1:
        raise ValueError("x needs a time axis")
    basis_s = torch.cat([eye, eye.new_zeros(1, n)])  # (n+1, n): columns e_0..e_{n-1}, then 0
    basis_x = torch.cat([eye.new_zeros(n), eye.new_ones(1)])  # (n+1,): zero, then x = 1
    coefs = [c[..., None] for c in coefficients]  # (..., L or 1, 1) against the n+1 basis axis
    y, new = step([basis_s[:, j] for j in range(n)], basis_x, *coefs)
    y = y.expand(*broadcast_shapes(y.shape, (n + 1,)))
    new = [s.expand(*broadcast_shapes(s.shape, (n + 1,))) for s in new]
    a = torch.stack([s[..., :n] for s in new], dim=-2)  # (..., L', n, n): a[i, j] = d s_i' / d s_j
    b = torch.stack([s[..., n] for s in new], dim=-1)  # (..., L', n)
    c, d = y[..., :n], y[..., n]  # (..., L', n), (..., L')
    return run_system(a, b, c, d, x)


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


def svf_step(states, x, g, k):
    """One TPT SVF sample (Zavalishin): ``g = tan(pi fc / fs)``, damping ``k = 1 / Q``.

    Returns ``((hp, bp, lp), (s1', s2'))``.
    """
    s1, s2 = states
    hp = (x - (k + g) * s1 - s2) / (1 + k * g + g * g)
    v1 = g * hp
    bp = v1 + s1
    v2 = g * bp
    lp = v2 + s2
    return (hp, bp, lp), (bp + v1, lp + v2)


def _svf_system(g: Tensor, k: Tensor, m0, m1, m2):
    """Closed-form per-sample matrices of the TPT SVF with output ``m0 x + m1 bp + m2 lp``.

    With ``h = 1 / (1 + g (g + k))`` and ``u = g h`` (from :func:`svf_step`):
    ``bp = u x + h s1 - u s2``, ``lp = g u x + g h s1 + (1 - g u) s2``, ``s1' = 2 bp - s1``,
    ``s2' = 2 lp - s2``.
    """
    h = 1 / (1 + g * (g + k))
    u = g * h
    gu, gh = g * u, g * h
    a = torch.stack([torch.stack([2 * h - 1, -2 * u], -1), torch.stack([2 * gh, 1 - 2 * gu], -1)], -2)
    b = torch.stack([2 * u, 2 * gu], -1)
    c = torch.stack([m1 * h + m2 * gh, m2 * (1 - gu) - m1 * u], -1)
    d = m0 + m1 * u + m2 * gu
    return a, b, c, d


def _rbj_mix(kind: str, k: Tensor, amp: Tensor):
    """``(m0, m1, m2)`` of each RBJ response from the SVF outputs (x, bp, lp)."""
    one, zero = torch.ones_like(k), torch.zeros_like(k)
    return {
        "lowpass": (zero, zero, one),
        "highpass": (one, -k, -one),
        "bandpass": (zero, k, zero),
        "notch": (one, -k, zero),
        "allpass": (one, -2 * k, zero),
        "peaking": (one, k * (amp * amp - 1), zero),
        "lowshelf": (one, k * (amp - 1), amp * amp - 1),
        "highshelf": (amp * amp, k * (1 - amp) * amp, 1 - amp * amp),
    }[kind]


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
    amp = torch.pow(10.0, gain_db / 40)
    g = torch.tan(math.pi * cutoff_hz / sample_rate)
    k = 1.0 / q
    if kind == "peaking":
        k = k / amp
    elif kind == "lowshelf":
        g = g / torch.sqrt(amp)
    elif kind == "highshelf":
        g = g * torch.sqrt(amp)
    shape = broadcast_shapes(g.shape, k.shape, amp.shape)
    g, k, amp = g.expand(shape), k.expand(shape), amp.expand(shape)
    return run_system(*_svf_system(g, k, *_rbj_mix(kind, k, amp)), x)


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
        self.max_hz = float(max_hz) if max_hz is not None else max_filter_hz(sample_rate)
        if not 0 < self.min_hz < self.max_hz < self.sample_rate / 2:
            raise ValueError(
                f"need 0 < min_hz < max_hz < sample_rate / 2, got {self.min_hz}, {self.max_hz}"
            )
        self.min_q, self.max_q = float(min_q), float(max_q)

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
        check_audio(x, "StateVariableFilter")
        self.check_params({"cutoff_hz": cutoff_hz, "q": q})
        n = x.shape[-1]
        fc = per_sample(cutoff_hz, n)[..., 0].to(x.dtype)
        # Its five responses are RBJ responses with no gain: the same closed-form TPT system.
        return rbj_svf(x, self.output, fc, per_sample(q, n)[..., 0].to(x.dtype), 0.0,
                       self.sample_rate)
