"""Dynamics processors: compressor, noise gate, limiter (feed-forward, log domain).

All three follow the same chain (Giannoulis, Massberg & Reiss 2012, "log-domain, decoupled"):

1. **detector** — ``level_db = 20 log10 |x|`` per sample (floored at -120 dB); with
   ``stereo_link=True`` the level of the loudest channel, so every channel gets the same gain;
2. **gain computer** — the static curve (:func:`compressor_gain_db`,
   :func:`expander_gain_db`) maps the level to a target gain in dB;
3. **ballistics** — :func:`~ddsp_models.core.ballistics.attack_release` smooths the target with
   an attack and a release time constant; its gradients are exact (seed 003), wrt the audio
   and wrt both time constants;
4. the smoothed gain (plus makeup) is applied to every sample.

Time constants follow ``alpha = exp(-1 / (tau * sample_rate))``: after a level step the
gain in dB covers ``1 - 1/e`` of its change in ``tau`` seconds. "Attack" is the direction in
which a processor reacts to a *louder* input: for the compressor and limiter, gain reduction
growing; for the gate, the gate opening. All parameters are static, ``(batch, 1)``.

Block rendering (``step``): the detector and the gain computer are per sample and the
parameters static, so there is no look-ahead (latency 0); the one carried state is the
ballistics' ``envelope`` (dB, ``(B, 1)`` linked or ``(B, C)``), run from block to block by
:func:`~ddsp_models.core.ballistics.attack_release_block` (numba in Python, a per-sample
torch loop under TorchScript).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..core._numba import import_numba, use_numba
from ..core.ballistics import (
    PARALLEL_MIN_SAMPLES,
    attack_release,
    attack_release_block,
    time_constant_to_alpha,
)
from ..core.scaling import LogSigmoidRange, SigmoidRange, amplitude_to_db, db_to_amplitude
from .base import Param, Processor, State, check_audio

__all__ = [
    "Compressor",
    "NoiseGate",
    "Limiter",
    "compressor_gain_db",
    "expander_gain_db",
    "soft_knee_ramp",
    "detect_peak",
    "gain_reduction_db",
]


def soft_knee_ramp(overshoot_db: Tensor, knee_db: Tensor | float = 0.0) -> Tensor:
    """``max(0, o)`` with its corner rounded by a parabola over ``|o| < knee_db / 2``.

    ``0`` for ``o <= -W/2``, ``(o + W/2)^2 / (2W)`` inside the knee, ``o`` for ``o >= W/2``;
    continuous with a continuous slope. ``knee_db = 0`` is the hard corner ``relu(o)``.
    """
    o = torch.as_tensor(overshoot_db)
    return _knee_ramp(o, torch.as_tensor(knee_db, dtype=o.dtype, device=o.device))


def _knee_ramp(o: Tensor, knee_db: Tensor) -> Tensor:
    """:func:`soft_knee_ramp` on tensors (TorchScript-compatible)."""
    w = knee_db.clamp_min(0.0)
    half = w / 2
    inside = (o.clamp(-half, half) + half) ** 2 / (2 * w.clamp_min(1e-6))
    return torch.where(o >= half, o, torch.where(o <= -half, torch.zeros_like(o), inside))


def compressor_gain_db(
    level_db: Tensor, threshold_db: Tensor | float, ratio: Tensor | float, knee_db=0.0
) -> Tensor:
    """Static curve of a downward compressor: the gain in dB (``<= 0``) at ``level_db``.

    Above the threshold each dB of input gives ``1 / ratio`` dB of output:
    ``gain = -(1 - 1/ratio) * soft_knee_ramp(level - threshold, knee)``. All arguments
    broadcast; ``ratio >= 1`` (``inf`` is a limiter).
    """
    ratio = torch.as_tensor(ratio, dtype=level_db.dtype, device=level_db.device)
    return -(1 - 1 / ratio) * soft_knee_ramp(level_db - threshold_db, knee_db)


def expander_gain_db(
    level_db: Tensor,
    threshold_db: Tensor | float,
    ratio: Tensor | float,
    knee_db=0.0,
    max_attenuation_db: float | None = None,
) -> Tensor:
    """Static curve of a downward expander (a gate for large ratios): gain in dB, ``<= 0``.

    Below the threshold each dB of input gives ``ratio`` dB of output:
    ``gain = -(ratio - 1) * soft_knee_ramp(threshold - level, knee)``, floored at
    ``-max_attenuation_db`` if given (no gradient once the floor is reached).
    """
    ratio = torch.as_tensor(ratio, dtype=level_db.dtype, device=level_db.device)
    gain = -(ratio - 1) * soft_knee_ramp(threshold_db - level_db, knee_db)
    if max_attenuation_db is not None:
        gain = gain.clamp_min(-float(max_attenuation_db))
    return gain


def detect_peak(x: Tensor, stereo_link: bool = True) -> Tensor:
    """Instantaneous peak amplitude of ``x (B, C, L)``: ``|x|``, ``(B, 1, L)`` if linked
    (the loudest channel at each sample) else ``(B, C, L)``."""
    level = x.abs()
    if stereo_link and x.shape[1] > 1:
        level = level.amax(dim=1, keepdim=True)
    return level


# --------------------------------------------------------------------------------------
# CPU fast path. The per-sample transcendental functions (the detector's log, the gain's exp)
# run as vectorised torch ops; everything between them is sequential in time and runs as one
# numba kernel each way, with the derivatives written out:
#   level_db (N, L) -> r = min(cap, slope * ramp(sign (level - thr), knee))   gain computer
#                   -> u = -r (gate) or r -> s = attack_release(u)           ballistics
# N rows share one gain: a batch item with linked channels, or one channel if unlinked. The
# backward kernel runs the ballistics' adjoint backwards in time and the gain computer's
# derivative in the same pass, so no intermediate signal is stored but s and the branches.
# --------------------------------------------------------------------------------------

_LN10_20 = 20.0 / math.log(10.0)  # dB per neper of amplitude
_KERNELS: dict[str, object] = {}


def _build_kernels(numba, parallel: bool) -> dict[str, object]:
    prange = numba.prange if parallel else range

    def curve_smooth_fwd(level, thr, slope, knee, att, rel, sign, cap, negate):
        n_rows, n = level.shape
        out = np.empty_like(level)
        up = np.empty((n_rows, n), dtype=np.bool_)
        for b in prange(n_rows):
            t, sl, w = thr[b], slope[b], max(knee[b], 0.0)
            half, a_att, a_rel = w / 2, att[b], rel[b]
            state = 0.0
            for i in range(n):
                o = sign * (level[b, i] - t)
                if o >= half:
                    r = o
                elif o <= -half:
                    r = 0.0
                else:
                    r = (o + half) ** 2 / (2 * w)
                u = min(sl * r, cap)
                if negate:
                    u = -u
                rising = u > state
                a = a_att if rising else a_rel
                state = a * state + (1 - a) * u
                out[b, i] = state
                up[b, i] = rising
        return out, up

    def curve_smooth_bwd(g, level, s, up, thr, slope, knee, att, rel, sign, cap, negate):
        n_rows, n = level.shape
        g_level = np.empty_like(level)
        grads = np.zeros((6, n_rows))  # thr, slope, knee, att, rel, (unused)
        for b in prange(n_rows):
            t, sl, w = thr[b], slope[b], max(knee[b], 0.0)
            half, a_att, a_rel = w / 2, att[b], rel[b]
            acc_thr = acc_slope = acc_knee = acc_att = acc_rel = 0.0
            lam = 0.0  # adjoint of the smoother's state, float64 whatever the dtype
            a_next = 0.0
            for i in range(n - 1, -1, -1):
                lam = g[b, i] + a_next * lam
                o = sign * (level[b, i] - t)
                if o >= half:
                    r, dr_do, dr_dw = o, 1.0, 0.0
                elif o <= -half:
                    r, dr_do, dr_dw = 0.0, 0.0, 0.0
                else:
                    r = (o + half) ** 2 / (2 * w)
                    dr_do = (o + half) / w
                    dr_dw = (o + half) * (half - o) / (2 * w * w)
                capped = sl * r > cap
                u = min(sl * r, cap)
                if negate:
                    u = -u
                prev = s[b, i - 1] if i > 0 else 0.0
                if up[b, i]:
                    a = a_att
                    acc_att += lam * (prev - u)
                else:
                    a = a_rel
                    acc_rel += lam * (prev - u)
                a_next = a
                g_u = (1 - a) * lam
                g_r = -g_u if negate else g_u
                if capped:  # held at the cap: no gradient
                    g_level[b, i] = 0.0
                    continue
                d_o = g_r * sl * dr_do
                acc_thr -= sign * d_o
                acc_slope += g_r * r
                acc_knee += g_r * sl * dr_dw
                g_level[b, i] = sign * d_o
            grads[0, b] = acc_thr
            grads[1, b] = acc_slope
            grads[2, b] = acc_knee if knee[b] > 0 else 0.0
            grads[3, b] = acc_att
            grads[4, b] = acc_rel
        return g_level, grads

    jit = numba.njit(parallel=parallel, cache=True)
    return {"fwd": jit(curve_smooth_fwd), "bwd": jit(curve_smooth_bwd)}


def _kernel(name: str, x: Tensor):
    """Serial kernels for small inputs (waking numba's thread pool costs ms), else parallel."""
    if not _KERNELS:
        numba = import_numba()

        _KERNELS["serial"] = _build_kernels(numba, parallel=False)
        _KERNELS["parallel"] = _build_kernels(numba, parallel=True)
    big = x.shape[0] > 1 and x.numel() >= PARALLEL_MIN_SAMPLES
    return _KERNELS["parallel" if big else "serial"][name]


def _np(t: Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


class _CurveSmooth(torch.autograd.Function):
    """Gain computer + ballistics on rows ``level_db (N, L)``.

    Per-row ``thr, slope, knee, att, rel (N,)`` (float64); floats ``sign`` (+1: act above the
    threshold, -1: below), ``cap`` (largest reduction, dB) and bool ``negate`` (smooth ``-r``,
    the gate's gain, instead of the reduction ``r``). Returns the smoothed ``s (N, L)``.
    """

    @staticmethod
    def forward(ctx, level, thr, slope, knee, att, rel, sign, cap, negate):
        f64 = [_np(v.double()) for v in (thr, slope, knee, att, rel)]
        s, up = _kernel("fwd", level)(_np(level), *f64, sign, cap, negate)
        s = torch.from_numpy(s)
        ctx.save_for_backward(level, s, torch.from_numpy(up), thr, slope, knee, att, rel)
        ctx.consts = (sign, cap, negate)
        return s

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        level, s, up, *params = ctx.saved_tensors
        f64 = [_np(v.double()) for v in params]
        g_level, grads = _kernel("bwd", level)(_np(g), _np(level), _np(s), _np(up), *f64,
                                               *ctx.consts)
        grads = torch.from_numpy(grads)
        return (torch.from_numpy(g_level), *(grads[k].to(p.dtype) for k, p in enumerate(params)),
                None, None, None)


class _PeakLevelDb(torch.autograd.Function):
    """``x (N, C, L)`` → ``max(20 log10 max_c |x|, min_db)``, ``(N, L)``; few large temporaries.

    The gradient of the channel maximum is shared between tied channels (as ``amax``'s).
    """

    @staticmethod
    def forward(ctx, x, min_db):
        floor = 10.0 ** (min_db / 20.0)
        amp = x[:, 0].abs() if x.shape[1] == 1 else x.abs().amax(dim=1)
        ctx.save_for_backward(x, amp)
        ctx.floor = floor
        return amp.clamp_min(floor).log10_().mul_(20.0)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        x, amp = ctx.saved_tensors
        live = amp > ctx.floor  # floored samples have no gradient
        if x.shape[1] == 1:
            gx = torch.where(live, g * _LN10_20 / x[:, 0], 0.0)[:, None]
        else:
            hit = (x.abs() == amp[:, None]) & live[:, None]
            share = g * _LN10_20 / hit.sum(1).clamp_min(1)
            gx = torch.where(hit, share[:, None] / x, 0.0)
        return gx, None


class _ApplyGainDb(torch.autograd.Function):
    """``y = x (N, C, L) * 10 ** ((sign * s (N, L) + makeup (N,)) / 20)``."""

    @staticmethod
    def forward(ctx, x, s, makeup, sign):
        lin = torch.addcmul(makeup[:, None], s, s.new_tensor(sign)).div_(_LN10_20).exp_()
        ctx.save_for_backward(x, lin)
        ctx.sign = sign
        return x * lin[:, None]

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):
        x, lin = ctx.saved_tensors
        gx = gy * lin[:, None]
        g_gain = (gx * x).sum(1) if x.shape[1] > 1 else gx[:, 0].mul(x[:, 0])
        g_gain.div_(_LN10_20)  # d y / d (gain in dB), summed over channels
        return gx, g_gain * ctx.sign, g_gain.sum(1), None


def _use_kernels(x: Tensor, backend: str) -> bool:
    return use_numba(x, backend)  # the package's one backend rule (core._numba)


def gain_reduction_db(
    amplitude: Tensor,
    threshold_db: Tensor | float,
    slope: Tensor | float,
    knee_db: Tensor | float = 0.0,
    below: bool = False,
    max_reduction_db: float = math.inf,
    min_db: float = -120.0,
    backend: str = "auto",
) -> Tensor:
    """Detector and gain computer in one: the reduction in dB (``>= 0``) wanted at each sample.

    ``level = max(20 log10 amplitude, min_db)``; ``o = level - threshold`` (``threshold -
    level`` if ``below``); ``reduction = min(slope * soft_knee_ramp(o, knee), max_reduction)``.
    A compressor uses ``slope = 1 - 1/ratio``, an expander ``slope = ratio - 1, below=True``.

    Args:
        amplitude: ``(B, C, L)``, non-negative (``|x|``, or its max over linked channels).
        threshold_db, slope, knee_db: ``(B, 1, 1)`` or ``(B, C, 1)`` (or floats).
        backend: ``"auto"`` (fused numba kernels on CPU, torch ops elsewhere) or ``"torch"``.

    Returns:
        ``(B, C, L)``; the same values and gradients from both backends.
    """
    b, c, n = amplitude.shape
    thr, sl, kn = (torch.as_tensor(v, dtype=amplitude.dtype, device=amplitude.device)
                   for v in (threshold_db, slope, knee_db))
    if not _use_kernels(amplitude, backend):
        level = amplitude_to_db(amplitude, min_db=min_db)
        o = thr - level if below else level - thr
        r = sl * soft_knee_ramp(o, kn)
        return r if math.isinf(max_reduction_db) else r.clamp_max(max_reduction_db)
    rows = lambda v: v.broadcast_to(b, c, 1).reshape(-1)  # noqa: E731
    no_smoothing = amplitude.new_zeros(b * c)  # poles 0: the smoother passes r through
    out = _CurveSmooth.apply(
        _PeakLevelDb.apply(amplitude.reshape(b * c, 1, n).contiguous(), float(min_db)),
        rows(thr), rows(sl),
        rows(kn).clamp_min(0.0), no_smoothing, no_smoothing,
        -1.0 if below else 1.0, float(max_reduction_db), False,
    )
    return out.reshape(b, c, n)


def _check_knee(name: str, knee: str) -> None:
    if knee not in ("hard", "soft"):
        raise ValueError(f"{name}: knee must be 'hard' or 'soft', got {knee!r}")


@dataclass
class _Curve:
    """One processor's static curve and gain convention, ``(B, 1)`` tensors."""

    threshold_db: Tensor
    slope: Tensor
    knee_db: Tensor
    below: bool = False  # expander: acts below the threshold
    cap: float = math.inf  # largest reduction in dB
    makeup_db: Tensor | None = None
    gate: bool = False  # smooth the gain (attack = opening) instead of the reduction


class _Dynamics(Processor):
    """Shared constructor, detector, smoothing and gain application of the three processors."""

    n_inputs = 1

    def __init__(self, sample_rate: float = 16000, knee: str = "soft", stereo_link: bool = True):
        super().__init__()
        _check_knee(type(self).__name__, knee)
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        self.sample_rate = float(sample_rate)
        self.knee = knee
        self.stereo_link = bool(stereo_link)
        #: ``"auto"``: numba kernels on CPU (fused detector + gain computer, ballistics, gain
        #: application); ``"torch"``: torch ops everywhere (the reference; other devices).
        self.backend = "auto"
        # The static curve's convention, read by the block path (``step``); subclasses set
        # them in their ``__init__`` to match their ``_curve``.
        self.below = False  # expander: acts below the threshold
        self.gate = False  # smooth the gain (attack = opening) instead of the reduction
        self.cap = math.inf  # largest reduction in dB

    @classmethod
    def examples(cls):
        return [{}, {"knee": "hard" if cls is Compressor else "soft", "stereo_link": False}]

    # --- block rendering: no look-ahead; the ballistics' state is carried ---------------
    def state_specs(self):
        return (State("envelope", "(B, 1) with linked channels, else (B, C), dB: the smoothed "
                      "gain reduction (the gate: the smoothed gain) after the last sample"),)

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        rows = 1 if self.stereo_link else input_channels[0]
        return {"envelope": torch.zeros(batch, rows, dtype=like.dtype, device=like.device)}

    def _slope(self, params: Dict[str, Tensor]) -> Tensor:
        """Gain-computer slope ``(B, 1)`` (dB of reduction per dB past the threshold)."""
        raise NotImplementedError

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        """One block ``(B, C, M)`` -> ``(B, C, M)``: the same chain as ``forward``, with the
        ballistics started from ``state["envelope"]``."""
        x = inputs[0]  # (B, C, M)
        b, ch, m = x.shape[0], x.shape[1], x.shape[2]
        level = x.abs()
        if self.stereo_link and ch > 1:
            level = level.amax(dim=1, keepdim=True)
        g = level.shape[1]  # rows sharing one gain: 1 linked, C unlinked
        level_db = amplitude_to_db(level, -120.0)
        thr = params["threshold_db"][:, :, None]
        o = thr - level_db if self.below else level_db - thr
        knee = params["knee_db"][:, :, None] if "knee_db" in params else torch.zeros_like(thr)
        r = (self._slope(params)[:, :, None] * _knee_ramp(o, knee)).clamp_max(self.cap)
        target = -r if self.gate else r
        alphas: List[Tensor] = []
        for name in ("attack_s", "release_s"):
            tau = params[name].clamp_min(1e-12)  # as time_constant_to_alpha
            alphas.append(torch.exp(-1.0 / (tau * self.sample_rate)).expand(b, g).reshape(-1, 1))
        smoothed, last = attack_release_block(target.reshape(b * g, m), alphas[0], alphas[1],
                                              state["envelope"].reshape(-1))
        smoothed = smoothed.reshape(b, g, m)
        if self.gate:
            gain_db = smoothed
        elif "makeup_db" in params:
            gain_db = params["makeup_db"][:, :, None] - smoothed
        else:
            gain_db = -smoothed
        return x * db_to_amplitude(gain_db), {"envelope": last.reshape(b, g)}

    def config(self):
        return {"sample_rate": self.sample_rate, "knee": self.knee, "stereo_link": self.stereo_link}

    def _curve(self, params: dict[str, Tensor]) -> _Curve:  # pragma: no cover - abstract
        raise NotImplementedError

    def _checked_curve(self, x: Tensor, params: dict[str, Tensor]) -> _Curve:
        check_audio(type(self).__name__, x)
        self.check_params(params)
        return self._curve(params)

    def _alphas(self, params: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        return (time_constant_to_alpha(params["attack_s"], self.sample_rate),
                time_constant_to_alpha(params["release_s"], self.sample_rate))

    def gain_db(self, x: Tensor, **params: Tensor) -> Tensor:
        """The smoothed gain in dB (makeup included) that ``forward`` applies.

        ``(B, 1, L)`` with linked channels, else ``(B, C, L)``. Always composed of torch ops
        around :func:`gain_reduction_db` and the ballistics (use it to inspect the gain).
        """
        cv = self._checked_curve(x, params)
        e = lambda v: v[:, :, None]  # noqa: E731  (B, 1) -> (B, 1, 1)
        r = gain_reduction_db(detect_peak(x, self.stereo_link), e(cv.threshold_db), e(cv.slope),
                              e(cv.knee_db), cv.below, cv.cap, backend=self.backend)
        att, rel = (e(a) for a in self._alphas(params))
        if cv.gate:
            return attack_release(-r, att, rel, backend=self.backend)
        smoothed = attack_release(r, att, rel, backend=self.backend)
        return smoothed.neg() if cv.makeup_db is None else e(cv.makeup_db) - smoothed

    def forward(self, x: Tensor, **params: Tensor) -> Tensor:
        if not _use_kernels(x, self.backend):
            return x * db_to_amplitude(self.gain_db(x, **params))
        cv = self._checked_curve(x, params)
        b, ch, n = x.shape
        linked = self.stereo_link and ch > 1
        x3 = x if linked else x.reshape(b * ch, 1, n)
        rows = lambda v: v.reshape(b) if linked else v.expand(b, ch).reshape(b * ch)  # noqa: E731
        x3 = x3.contiguous()
        att, rel = (rows(a) for a in self._alphas(params))
        s = _CurveSmooth.apply(
            _PeakLevelDb.apply(x3, -120.0), rows(cv.threshold_db), rows(cv.slope),
            rows(cv.knee_db).clamp_min(0.0), att, rel,
            -1.0 if cv.below else 1.0, float(cv.cap), cv.gate,
        )
        m = rows(cv.makeup_db) if cv.makeup_db is not None else x.new_zeros(x3.shape[0])
        y = _ApplyGainDb.apply(x3, s, m, 1.0 if cv.gate else -1.0)
        return y.reshape(b, ch, n)


class Compressor(_Dynamics):
    """Feed-forward downward compressor with exact-gradient attack/release ballistics.

    Gain reduction (dB, ``>= 0``) from :func:`compressor_gain_db` is smoothed with the attack
    pole while it grows and the release pole while it shrinks, starting from no reduction.

    Args:
        sample_rate: Hz.
        knee: ``"soft"`` (a ``knee_db`` parameter, quadratic knee) or ``"hard"``.
        stereo_link: one gain for all channels, from the loudest channel's level.

    ``forward(x (B, C, L), threshold_db, ratio, [knee_db], attack_s, release_s, makeup_db)``
    with static ``(B, 1)`` parameters returns ``(B, C, L)``.
    """

    def param_specs(self):
        specs = [
            Param("threshold_db", 1, SigmoidRange(-60.0, 0.0), False, unit="dB",
                  doc="level above which gain is reduced"),
            Param("ratio", 1, LogSigmoidRange(1.0, 20.0), False, unit="ratio",
                  doc="input dB per output dB above the threshold"),
        ]
        if self.knee == "soft":
            specs.append(Param("knee_db", 1, SigmoidRange(0.0, 24.0), False, unit="dB",
                               doc="width of the quadratic knee"))
        specs += [
            Param("attack_s", 1, LogSigmoidRange(1e-4, 0.1), False, unit="s",
                  doc="time constant while the gain reduction grows"),
            Param("release_s", 1, LogSigmoidRange(5e-3, 2.0), False, unit="s",
                  doc="time constant while the gain reduction shrinks"),
            Param("makeup_db", 1, SigmoidRange(-24.0, 24.0), False, unit="dB",
                  doc="gain after compression"),
        ]
        return tuple(specs)

    def _curve(self, p):
        thr = p["threshold_db"]
        knee = p["knee_db"] if "knee_db" in p else torch.zeros_like(thr)
        return _Curve(thr, self._slope(p), knee, makeup_db=p["makeup_db"])

    def _slope(self, params: Dict[str, Tensor]) -> Tensor:
        return 1 - 1 / params["ratio"]


class NoiseGate(_Dynamics):
    """Downward expander / noise gate: attenuates the signal below a threshold.

    Below ``threshold_db`` each dB of level drop becomes ``ratio`` dB at the output
    (:func:`expander_gain_db`), down to ``-max_attenuation_db``. The gain (dB, ``<= 0``) is
    smoothed with the attack pole while the gate opens and the release pole while it closes;
    it starts open (0 dB).

    Args:
        sample_rate: Hz.
        knee: ``"soft"`` (a ``knee_db`` parameter) or ``"hard"``.
        stereo_link: one gain for all channels.
        max_attenuation_db: the gate's range (attenuation when fully closed).
    """

    def __init__(
        self,
        sample_rate: float = 16000,
        knee: str = "hard",
        stereo_link: bool = True,
        max_attenuation_db: float = 80.0,
    ):
        super().__init__(sample_rate, knee, stereo_link)
        if max_attenuation_db <= 0:
            raise ValueError(f"max_attenuation_db must be positive, got {max_attenuation_db}")
        self.max_attenuation_db = float(max_attenuation_db)
        self.below, self.gate, self.cap = True, True, self.max_attenuation_db

    def config(self):
        return {**super().config(), "max_attenuation_db": self.max_attenuation_db}

    def param_specs(self):
        specs = [
            Param("threshold_db", 1, SigmoidRange(-90.0, -10.0), False, unit="dB",
                  doc="level below which the gate attenuates"),
            Param("ratio", 1, LogSigmoidRange(1.0, 50.0), False, unit="ratio",
                  doc="output dB per input dB below the threshold"),
        ]
        if self.knee == "soft":
            specs.append(Param("knee_db", 1, SigmoidRange(0.0, 24.0), False, unit="dB",
                               doc="width of the quadratic knee"))
        specs += [
            Param("attack_s", 1, LogSigmoidRange(1e-4, 0.1), False, unit="s",
                  doc="time constant while the gate opens"),
            Param("release_s", 1, LogSigmoidRange(5e-3, 2.0), False, unit="s",
                  doc="time constant while the gate closes"),
        ]
        return tuple(specs)

    def _curve(self, p):
        thr = p["threshold_db"]
        knee = p["knee_db"] if "knee_db" in p else torch.zeros_like(thr)
        # Opening = the gain rising = the "attack" branch of the ballistics.
        return _Curve(thr, self._slope(p), knee, below=True, cap=self.max_attenuation_db,
                      gate=True)

    def _slope(self, params: Dict[str, Tensor]) -> Tensor:
        return params["ratio"] - 1


class Limiter(_Dynamics):
    """Peak limiter: a hard-knee compressor of infinite ratio with fast attack.

    The target reduction is ``relu(level_db - threshold_db)``; once the attack has caught
    up, output peaks stay at the threshold (the ceiling). A short ``attack_s`` (the lower
    end, 10 µs, is nearly instantaneous) keeps the overshoot at onsets small.
    Parameters: ``threshold_db``, ``attack_s``, ``release_s``, static ``(B, 1)``.
    """

    def __init__(self, sample_rate: float = 16000, stereo_link: bool = True):
        super().__init__(sample_rate, "hard", stereo_link)

    def config(self):
        return {"sample_rate": self.sample_rate, "stereo_link": self.stereo_link}

    def param_specs(self):
        return (
            Param("threshold_db", 1, SigmoidRange(-24.0, 0.0), False, unit="dB",
                  doc="ceiling of the output peaks"),
            Param("attack_s", 1, LogSigmoidRange(1e-5, 1e-2), False, unit="s",
                  doc="time constant while the gain reduction grows"),
            Param("release_s", 1, LogSigmoidRange(5e-3, 1.0), False, unit="s",
                  doc="time constant while the gain reduction shrinks"),
        )

    def _curve(self, p):
        thr = p["threshold_db"]
        return _Curve(thr, self._slope(p), torch.zeros_like(thr))

    def _slope(self, params: Dict[str, Tensor]) -> Tensor:
        return torch.ones_like(params["threshold_db"])

    @classmethod
    def examples(cls):
        return [{}, {"stereo_link": False}]
