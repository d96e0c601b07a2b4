"""Higher-order filters from simple sections: ``StackedSVF`` and ``SchroederAllpass``.

* :class:`StackedSVF` — a filter of order ``2N`` as ``N`` zero-delay-feedback state-variable
  sections in series (the TPT SVF of :mod:`.svf`, one cutoff shared by all sections, one
  quality factor per section). With the Butterworth quality factors
  (:func:`butterworth_qs`) the cascade is the digital Butterworth filter of order ``2N``
  (bilinear transform pre-warped at the cutoff, as ``scipy.signal.butter``); with the
  Linkwitz-Riley ones (:func:`linkwitz_riley_qs`) it is a Butterworth of order ``N`` squared.
  The cutoff may change every frame: each section keeps the TPT topology, which stays bounded
  under modulation, and gradients are exact (:func:`~ddsp_models.core.iir.linear_recurrence`).
* :class:`SchroederAllpass` — a cascade of Schroeder allpass sections
  ``H(z) = (-g + z^-M) / (1 - g z^-M)`` with delays ``M`` (samples, from the config) and
  gains ``g`` (parameters, static or per frame). Optionally *frequency dependent*: the
  feedback gain becomes the one-pole lowpass ``G(z) = g (1 - p) / (1 - p z^-1)`` (gain ``g``
  at DC, ``g (1 - p) / (1 + p)`` at Nyquist) and the feed-forward path the matching
  allpass-preserving numerator, so that the section stays exactly allpass while its echoes
  decay faster at high frequencies (:func:`fd_schroeder_coefficients`).

Block rendering: the SVF sections carry their integrator states
(:func:`~ddsp_models.processors.svf.rbj_svf_block`); a Schroeder section carries the last
``M`` samples of its internal delay line. The recursion ``w[n] = x[n] + g[n] w[n - M]`` is
run as ``M`` interleaved first-order recursions (sample ``n`` in lane ``n mod M``), all in
one :func:`~ddsp_models.core.iir.lfilter_block` call, so its cost is ``O(L)`` whatever ``M``
is, with the exact all-pole adjoint (numba in Python, a loop over ``ceil(L / M)`` rows when
scripted). The frequency-dependent section runs as one order-``M`` recursion (short delays,
CPU) or chunk by chunk of ``M`` samples, each chunk a one-pole filter (see
:func:`fd_schroeder_block`).
"""

from __future__ import annotations

import math
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..core._numba import numba_available
from ..core.iir import lfilter_block
from ..core.scaling import LogSigmoidRange, SigmoidRange
from ..core.upsample import upsample_linear
from .base import Param, Processor, State, check_audio
from .blocks import controls_and_input
from .svf import _max_filter_hz, _per_sample, rbj_svf, rbj_svf_block

__all__ = ["StackedSVF", "SchroederAllpass", "butterworth_qs", "linkwitz_riley_qs",
           "schroeder_block", "fd_schroeder_block", "fd_schroeder_coefficients"]

_RESPONSES = ("butterworth", "linkwitz_riley")
_OUTPUTS = ("lowpass", "highpass")


def _butterworth_pair_qs(order: int) -> List[float]:
    """Quality factors of the complex pole pairs of the analog Butterworth prototype of
    ``order``: ``Q_k = 1 / (2 sin(pi (2k - 1) / (2 order)))``, ``k = 1 .. order // 2`` (the
    values :func:`~ddsp_models.core.filter_design.butterworth_sos` designs its sections with)."""
    return [1.0 / (2.0 * math.sin(math.pi * (2 * k - 1) / (2 * order)))
            for k in range(1, order // 2 + 1)]


def butterworth_qs(order: int) -> List[float]:
    """The ``order / 2`` section Q values of a Butterworth filter of even ``order``."""
    if int(order) != order or order < 2 or order % 2:
        raise ValueError(f"order must be even and >= 2, got {order}")
    return _butterworth_pair_qs(int(order))


def linkwitz_riley_qs(order: int) -> List[float]:
    """The ``order / 2`` section Q values of a Linkwitz-Riley filter of even ``order`` = a
    Butterworth of order ``N = order / 2`` applied twice: each pair's Q twice, and for odd
    ``N`` the squared first-order section ``1 / (s + 1)^2`` as one section with ``Q = 1/2``."""
    if int(order) != order or order < 2 or order % 2:
        raise ValueError(f"order must be even and >= 2, got {order}")
    n = int(order) // 2
    qs: List[float] = []
    for q in _butterworth_pair_qs(n):
        qs += [q, q]
    if n % 2:
        qs.append(0.5)
    return qs


class StackedSVF(Processor):
    """A lowpass or highpass of order ``2N`` from ``N`` TPT state-variable sections:
    ``forward(x (B, C, L), cutoff_hz)``.

    Args:
        sample_rate: Hz.
        order: even filter order ``2N`` (2 .. 32); ``N`` sections.
        response: ``"butterworth"`` (maximally flat, -3 dB at the cutoff) or
            ``"linkwitz_riley"`` (a Butterworth of order ``N`` squared, -6 dB at the cutoff;
            lowpass + highpass sum to an allpass, as in crossovers).
        output: ``"lowpass"`` or ``"highpass"``.
        time_varying: ``cutoff_hz`` per frame ``(B, T, 1)`` (default) or static ``(B, 1)``.
        min_hz, max_hz: range of the ``cutoff_hz`` scaling (any raw value is stable).

    For a static cutoff the response equals ``scipy.signal.butter(order, cutoff_hz,
    btype=output, fs=sample_rate)`` (Butterworth) or its square at order ``N``
    (Linkwitz-Riley). Block rendering carries ``2N`` integrator states; a time-varying cutoff
    is interpolated towards the next frame (latency one frame), a static one needs no
    look-ahead.
    """

    n_inputs = 1

    def __init__(
        self,
        sample_rate: float = 16000,
        order: int = 4,
        response: str = "butterworth",
        output: str = "lowpass",
        time_varying: bool = True,
        min_hz: float = 20.0,
        max_hz: float | None = None,
    ):
        super().__init__()
        if response not in _RESPONSES:
            raise ValueError(f"response must be one of {_RESPONSES}, got {response!r}")
        if output not in _OUTPUTS:
            raise ValueError(f"output must be one of {_OUTPUTS}, got {output!r}")
        if int(order) != order or order < 2 or order % 2 or order > 32:
            raise ValueError(f"order must be even, 2 .. 32, got {order}")
        self.sample_rate = float(sample_rate)
        self.order = int(order)
        self.response = response
        self.output = output
        self.time_varying = bool(time_varying)
        self.min_hz = float(min_hz)
        self.max_hz = float(max_hz) if max_hz is not None else _max_filter_hz(sample_rate)
        if not 0 < self.min_hz < self.max_hz < self.sample_rate / 2:
            raise ValueError(
                f"need 0 < min_hz < max_hz < sample_rate / 2, got {self.min_hz}, {self.max_hz}"
            )
        design = butterworth_qs if response == "butterworth" else linkwitz_riley_qs
        qs = design(self.order)
        self.qs: List[float] = [float(q) for q in qs]
        self.n_sections = len(self.qs)

    @classmethod
    def examples(cls):
        return [{}, {"order": 6, "output": "highpass", "time_varying": False},
                {"order": 4, "response": "linkwitz_riley", "time_varying": False},
                {"order": 2, "response": "linkwitz_riley", "output": "highpass"}]

    def param_specs(self):
        return (Param("cutoff_hz", 1, LogSigmoidRange(self.min_hz, self.max_hz),
                      self.time_varying, unit="Hz",
                      doc="cutoff (-3 dB Butterworth, -6 dB Linkwitz-Riley)"),)

    def config(self):
        return {"sample_rate": self.sample_rate, "order": self.order, "response": self.response,
                "output": self.output, "time_varying": self.time_varying,
                "min_hz": self.min_hz, "max_hz": self.max_hz}

    def forward(self, x: Tensor, cutoff_hz: Tensor) -> Tensor:
        check_audio("StackedSVF", x)
        self.check_params({"cutoff_hz": cutoff_hz})
        fc = _per_sample(cutoff_hz, x.shape[-1])[..., 0].to(x.dtype)  # (B, 1, L|1)
        y = x
        for q in self.qs:
            y = rbj_svf(y, self.output, fc, q, 0.0, self.sample_rate)
        return y

    # --- block rendering -------------------------------------------------------------
    def latency_frames(self, hop: int) -> int:
        return 1 if self.time_varying else 0

    def state_specs(self):
        states = [State("filter", f"(B, C, {2 * self.n_sections}) integrator states "
                                  "(ic1eq, ic2eq) of each section")]
        if self.time_varying:
            states += [
                State("cutoff_hz", "(B, 1, 1) Hz: the last frame of cutoff_hz (min_hz at start)"),
                State("audio", "(B, C, hop) input samples not yet output"),
            ]
        return tuple(states)

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        kw = dict(dtype=like.dtype, device=like.device)
        c = input_channels[0]
        state = {"filter": torch.zeros(batch, c, 2 * self.n_sections, **kw)}
        if self.time_varying:
            state["cutoff_hz"] = torch.full((batch, 1, 1), self.min_hz, **kw)
            state["audio"] = torch.zeros(batch, c, hop, **kw)
        return state

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        hop = n_samples // n_frames
        x = inputs[0]
        new: Dict[str, Tensor] = {}
        ctrl, x = controls_and_input(params, state, new, x, hop)
        fc = ctrl["cutoff_hz"].to(x.dtype)
        zero = torch.zeros(1, dtype=x.dtype, device=x.device)
        filt = state["filter"]
        states: List[Tensor] = []
        y = x
        for i, q in enumerate(self.qs):
            qt = torch.full([1], q, dtype=x.dtype, device=x.device)
            y, s = rbj_svf_block(y, self.output, fc, qt, zero, self.sample_rate,
                                 filt[..., 2 * i:2 * i + 2])
            states.append(s)
        new["filter"] = torch.cat(states, dim=-1)
        return y, new


# --------------------------------------------------------------------------------------
# Schroeder allpass
# --------------------------------------------------------------------------------------


def _lanes(x: Tensor, delay: int, n_rows: int) -> Tensor:
    """``(..., L)`` -> ``(..., delay, n_rows)``: sample ``k * delay + r`` at ``[r, k]`` (zero
    padded at the end to ``n_rows * delay``)."""
    length = x.shape[-1]
    x = F.pad(x, [0, n_rows * delay - length])
    shape = list(x.shape[:-1]) + [n_rows, delay]
    return x.reshape(shape).transpose(-1, -2)


def _unlanes(w: Tensor, length: int) -> Tensor:
    """Inverse of :func:`_lanes`: ``(..., delay, n_rows)`` -> ``(..., length)``."""
    w = w.transpose(-1, -2)
    shape = list(w.shape[:-2]) + [w.shape[-2] * w.shape[-1]]
    return w.reshape(shape)[..., :length]


def _comb_feedback(x: Tensor, g: Tensor, hist: Tensor, delay: int) -> Tuple[Tensor, Tensor]:
    """``w[n] = x[n] + g[n] w[n - delay]`` with ``w[-delay .. -1] = hist`` (oldest first).

    ``x (B, C, L)``; ``g (B, 1|C, L|1)``; ``hist (B, C, delay)``. Returns ``(w (B, C, L),
    the extended line (B, C, delay + L) = [hist, w])``. Runs ``delay`` interleaved first-order
    recursions of ``ceil(L / delay)`` samples each through :func:`lfilter_block`.
    """
    length = x.shape[-1]
    rows = (length + delay - 1) // delay
    v = _lanes(x, delay, rows)  # (B, C, M, K)
    if g.shape[-1] == 1:
        gl = g[..., None]  # (B, 1|C, 1, 1): one coefficient for every lane and row
    else:
        gl = _lanes(g, delay, rows)[..., None]  # (B, 1|C, M, K, 1): one per sample
    a = torch.cat([torch.ones_like(gl), -gl], dim=-1)
    b = torch.ones(1, dtype=x.dtype, device=x.device)
    x_hist = v.new_zeros(list(v.shape[:-1]) + [0])
    w, _, _ = lfilter_block(v, b, a, x_hist, hist[..., None])
    line = torch.cat([hist, _unlanes(w, length)], dim=-1)
    return line[..., delay:], line


def schroeder_block(x: Tensor, g: Tensor, hist: Tensor, delay: int) -> Tuple[Tensor, Tensor]:
    """One block of the Schroeder allpass ``H(z) = (-g + z^-M) / (1 - g z^-M)``, ``M = delay``.

    ``w[n] = x[n] + g[n] w[n - M]``, ``y[n] = -g[n] w[n] + w[n - M]``: unit magnitude for a
    fixed ``|g| < 1``, bounded for any ``|g[n]| < 1``.

    Args:
        x: ``(B, C, L)`` this block.
        g: ``(B, 1|C, L)`` gain per sample, or ``(B, 1|C, 1)`` fixed.
        hist: ``(B, C, M)`` the last ``M`` values of ``w`` before the block, oldest first
            (zeros for a fresh stream).

    Returns:
        ``(y (B, C, L), new hist (B, C, M))``. Exact gradients; TorchScript-compatible.
    """
    length = x.shape[-1]
    w, line = _comb_feedback(x, g, hist, delay)
    y = -g * w + line[..., :length]
    return y, line[..., length:]


def fd_schroeder_coefficients(gain: Tensor, damping: Tensor, delay: int) -> Tuple[Tensor, Tensor]:
    """Transfer function of the frequency-dependent Schroeder allpass section.

    The feedback gain ``g`` becomes ``G(z) = b0 / (1 - p z^-1)`` with ``b0 = g (1 - p)``,
    ``p = damping``; the denominator ``P(z) = 1 - p z^-1 - b0 z^-M`` is stable when
    ``|p| + |b0| < 1`` (true for ``|g| < 1``, ``0 <= p < 1``), and the numerator is its
    reverse ``z^-M P(1/z) = -b0 - p z^-(M-1) + z^-M``, so ``|H| = 1``. Equivalently
    ``H(z) = (-G(z) + z^-(M-1) A(z)) / (1 - G(z) z^-M)`` with the first-order allpass
    ``A(z) = (-p + z^-1) / (1 - p z^-1)``. ``damping = 0`` is the plain Schroeder section.

    Args:
        gain, damping: tensors that broadcast, ``(...)``.
        delay: ``M >= 1`` samples.

    Returns:
        ``(b, a)`` each ``(..., M + 1)`` with ``a[..., 0] = 1`` (scipy order).
    """
    gain, damping = torch.broadcast_tensors(gain, damping)
    b0 = gain * (1 - damping)
    g, p = gain[..., None], damping[..., None]
    if delay == 1:
        a = torch.cat([torch.ones_like(g), -p - b0[..., None]], dim=-1)
    else:
        zeros = g.new_zeros(list(g.shape[:-1]) + [delay - 2])
        a = torch.cat([torch.ones_like(g), -p, zeros, -b0[..., None]], dim=-1)
    return a.flip(-1), a


#: delays up to this many samples run the frequency-dependent section as one order-M
#: recursion (cost O(L M)); longer ones chunk by chunk (O(L) work in ceil(L / M) calls).
#: On CPU in Python (the compiled numba recursion) the dense form is faster up to about
#: 350 samples for fixed parameters (measured forward at L = 16000, one thread: M = 113
#: dense 1.1 ms, chunked 21 ms; M = 347 both 7 ms; M = 1000 dense 17 ms, chunked 1.1 ms) and
#: about 200 for per-sample ones (forward + backward: M = 113 dense 51 ms, chunked 104 ms;
#: M = 347 dense 191 ms, chunked 54 ms); elsewhere (GPU scan, TorchScript loop) the chunks
#: are, beyond a few samples.
FD_DENSE_MAX_DELAY_CPU = 384
FD_DENSE_MAX_DELAY_CPU_TV = 192
FD_DENSE_MAX_DELAY = 16


@torch.jit.unused
def _dense_max_delay(x: Tensor, time_varying: bool) -> int:
    """The dense / chunked switch for ``x``'s device outside TorchScript."""
    if x.device.type == "cpu" and numba_available() and not torch.compiler.is_compiling():
        return FD_DENSE_MAX_DELAY_CPU_TV if time_varying else FD_DENSE_MAX_DELAY_CPU
    return FD_DENSE_MAX_DELAY


def _fd_dense(x: Tensor, p: Tensor, b0: Tensor, hist: Tensor, delay: int) -> Tensor:
    """``v[n] = x[n] + p v[n-1] + b0 v[n-M]`` as one all-pole filter of order ``M``."""
    static = p.shape[-1] == 1 and b0.shape[-1] == 1
    if not static:
        both = torch.broadcast_tensors(p, b0)
        shape = list(both[0].shape[:-1]) + [x.shape[-1]]
        p, b0 = both[0].expand(shape), both[1].expand(shape)
    if not static:  # one coefficient set per sample: (..., L, M + 1)
        p, b0 = p[..., None], b0[..., None]
    ones = torch.ones_like(p)
    if delay == 1:
        a = torch.cat([ones, -p - b0], dim=-1)
    else:
        zeros = torch.zeros_like(p).expand(list(p.shape[:-1]) + [delay - 2])
        a = torch.cat([ones, -p, zeros, -b0], dim=-1)
    b = torch.ones(1, dtype=x.dtype, device=x.device)
    x_hist = x.new_zeros(list(x.shape[:-1]) + [0])
    v, _, _ = lfilter_block(x, b, a, x_hist, hist.flip(-1))
    return v


def _fd_chunks(x: Tensor, p: Tensor, b0: Tensor, hist: Tensor, delay: int) -> Tensor:
    """The same recursion chunk by chunk: within ``M`` samples ``v[n - M]`` is known (the
    previous chunk), so each chunk is the one-pole ``v = (x + b0 v[n-M]) / (1 - p z^-1)``."""
    length = x.shape[-1]
    b = torch.ones(1, dtype=x.dtype, device=x.device)
    prev = hist[..., delay - 1:]  # (B, C, 1): v[-1]
    far = hist
    chunks: List[Tensor] = []
    start = 0
    while start < length:
        stop = min(length, start + delay)
        n = stop - start
        pk = p if p.shape[-1] == 1 else p[..., start:stop]
        bk = b0 if b0.shape[-1] == 1 else b0[..., start:stop]
        u = x[..., start:stop] + bk * far[..., :n]
        if pk.shape[-1] == 1:
            a = torch.cat([torch.ones_like(pk), -pk], dim=-1)  # (B, 1|C, 2)
        else:
            a = torch.stack([torch.ones_like(pk), -pk], dim=-1)  # (B, 1|C, n, 2)
        x_hist = u.new_zeros(list(u.shape[:-1]) + [0])
        v, _, prev = lfilter_block(u, b, a, x_hist, prev)
        chunks.append(v)
        far = v
        start = stop
    return torch.cat(chunks, dim=-1)


def fd_schroeder_block(x: Tensor, gain: Tensor, damping: Tensor, hist: Tensor, delay: int,
                       dense_max_delay: int = -1) -> Tuple[Tensor, Tensor]:
    """One block of the frequency-dependent Schroeder section.

    ``v[n] = x[n] + p v[n - 1] + b0 v[n - M]``, ``y[n] = -b0 v[n] - p v[n - M + 1] + v[n - M]``
    (see :func:`fd_schroeder_coefficients`), ``b0 = g (1 - p)``. For fixed parameters the
    magnitude response is exactly 1; under modulation the recursion stays bounded because
    ``|p[n]| + |b0[n]| < 1`` at every sample.

    Args:
        x: ``(B, C, L)``; gain, damping: ``(B, 1|C, L|1)`` per sample or fixed.
        hist: ``(B, C, M)`` the last ``M`` values of ``v`` before the block, oldest first.

    Returns:
        ``(y (B, C, L), new hist (B, C, M))``. Exact gradients (the all-pole adjoint of
        :func:`~ddsp_models.core.iir.lfilter_block`); TorchScript-compatible. Delays up to
        ``dense_max_delay`` run as one order-``M`` recursion, longer ones chunk by chunk;
        both give the same result; ``-1`` picks the faster for the device
        (:data:`FD_DENSE_MAX_DELAY_CPU` on CPU with numba, else :data:`FD_DENSE_MAX_DELAY`).
    """
    length = x.shape[-1]
    b0 = gain * (1 - damping)
    if dense_max_delay < 0:
        # TorchScript: 16 = FD_DENSE_MAX_DELAY (a global int is not visible to the compiler)
        if torch.jit.is_scripting():
            dense_max_delay = 16
        else:
            dense_max_delay = _dense_max_delay(x, gain.shape[-1] > 1 or damping.shape[-1] > 1)
    if delay <= dense_max_delay:
        v = _fd_dense(x, damping, b0, hist, delay)
    else:
        v = _fd_chunks(x, damping, b0, hist, delay)
    line = torch.cat([hist, v], dim=-1)  # index M + n holds v[n]
    y = -b0 * v - damping * line[..., 1:1 + length] + line[..., :length]
    return y, line[..., length:]


def _audio_rate(value: Tensor, n_samples: int) -> Tensor:
    """``(B, T, S)`` -> ``(B, S, n_samples)`` (linear between frame centres); ``(B, S)`` ->
    ``(B, S, 1)``."""
    if value.dim() == 3:
        return upsample_linear(value, n_samples).transpose(1, 2)
    return value[:, :, None]


class SchroederAllpass(Processor):
    """A cascade of Schroeder allpass sections ``(-g + z^-M) / (1 - g z^-M)``:
    ``forward(x (B, C, L), gain[, damping])``.

    Args:
        sample_rate: Hz (kept for graphs; the delays are in samples).
        delays: ``M`` of each section in samples (``>= 1``), e.g. ``[347, 113, 37]``.
        time_varying: ``gain`` (and ``damping``) per frame ``(B, T, S)`` or static
            ``(B, S)`` (default).
        max_gain: ``|g| <= max_gain < 1``; ``gain`` is scaled into ``(-max_gain, max_gain)``.
        frequency_dependent: add a per-section ``damping`` ``p`` in ``[0, max_damping)``: the
            feedback gain becomes the one-pole lowpass ``g (1 - p) / (1 - p z^-1)`` and the
            section stays exactly allpass (:func:`fd_schroeder_coefficients`).
        max_damping: upper end of ``damping``'s range (< 1).

    With static parameters the magnitude response is exactly 1 (the phase and the echo
    pattern are shaped); under a time-varying gain each section stays bounded. Block
    rendering carries each section's delay line (``M`` samples); time-varying gains are
    interpolated towards the next frame (latency one frame).
    """

    n_inputs = 1

    def __init__(
        self,
        sample_rate: float = 16000,
        delays: Sequence[int] = (347, 113, 37),
        time_varying: bool = False,
        max_gain: float = 0.95,
        frequency_dependent: bool = False,
        max_damping: float = 0.95,
    ):
        super().__init__()
        delays = [int(m) for m in delays]
        if not delays or min(delays) < 1:
            raise ValueError(f"delays must be a non-empty list of positive integers, got {delays}")
        if not 0 < max_gain < 1:
            raise ValueError(f"max_gain must lie in (0, 1), got {max_gain}")
        if not 0 < max_damping < 1:
            raise ValueError(f"max_damping must lie in (0, 1), got {max_damping}")
        self.sample_rate = float(sample_rate)
        self.delays: List[int] = delays
        self.n_sections = len(delays)
        self.time_varying = bool(time_varying)
        self.max_gain = float(max_gain)
        self.frequency_dependent = bool(frequency_dependent)
        self.max_damping = float(max_damping)

    @classmethod
    def examples(cls):
        return [{"delays": [5, 3]}, {"delays": [45, 7, 1], "time_varying": True},
                {"delays": [6, 2, 1], "frequency_dependent": True},
                {"delays": [40, 3], "frequency_dependent": True, "time_varying": True}]

    def param_specs(self):
        s = self.n_sections
        specs = [Param("gain", s, SigmoidRange(-self.max_gain, self.max_gain), self.time_varying,
                       unit="linear", doc="feedback gain g of each section (DC gain if damped)")]
        if self.frequency_dependent:
            specs.append(Param("damping", s, SigmoidRange(0.0, self.max_damping), self.time_varying,
                               unit="pole", doc="pole p of each section's one-pole lowpass gain"))
        return tuple(specs)

    def config(self):
        return {"sample_rate": self.sample_rate, "delays": list(self.delays),
                "time_varying": self.time_varying, "max_gain": self.max_gain,
                "frequency_dependent": self.frequency_dependent,
                "max_damping": self.max_damping}

    def _run(self, x: Tensor, gains: Tensor, damping: Tensor, line: Tensor
             ) -> Tuple[Tensor, Tensor]:
        """All sections over one block: ``gains, damping (B, S, L|1)`` (``damping`` unused
        unless frequency dependent), ``line (B, C, sum M)``."""
        y = x
        lines: List[Tensor] = []
        offset = 0
        for i, m in enumerate(self.delays):
            hist = line[..., offset:offset + m]
            g = gains[:, i:i + 1]
            if self.frequency_dependent:
                y, h = fd_schroeder_block(y, g, damping[:, i:i + 1], hist, m)
            else:
                y, h = schroeder_block(y, g, hist, m)
            lines.append(h)
            offset += m
        return y, torch.cat(lines, dim=-1)

    def forward(self, x: Tensor, gain: Tensor, damping: Tensor | None = None) -> Tensor:
        check_audio("SchroederAllpass", x)
        params = {"gain": gain}
        if self.frequency_dependent or damping is not None:
            params["damping"] = damping
        self.check_params(params)
        n = x.shape[-1]
        g = _audio_rate(gain, n).to(x.dtype)
        p = torch.zeros_like(g[..., :1])
        if damping is not None:
            p = _audio_rate(damping, n).to(x.dtype)
        line = x.new_zeros(x.shape[0], x.shape[1], sum(self.delays))
        return self._run(x, g, p, line)[0]

    # --- block rendering -------------------------------------------------------------
    def latency_frames(self, hop: int) -> int:
        return 1 if self.time_varying else 0

    def state_specs(self):
        states = [State("line", f"(B, C, {sum(self.delays)}) the last M samples of each "
                                "section's delay line, oldest first, sections in order")]
        if self.time_varying:
            states += [
                State("gain", f"(B, 1, {self.n_sections}): the last frame of gain (0 at start)"),
                State("audio", "(B, C, hop) input samples not yet output"),
            ]
            if self.frequency_dependent:
                states.append(State("damping", f"(B, 1, {self.n_sections}): the last frame of "
                                               "damping (0 at start)"))
        return tuple(states)

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        kw = dict(dtype=like.dtype, device=like.device)
        c = input_channels[0]
        state = {"line": torch.zeros(batch, c, sum(self.delays), **kw)}
        if self.time_varying:
            state["gain"] = torch.zeros(batch, 1, self.n_sections, **kw)
            if self.frequency_dependent:
                state["damping"] = torch.zeros(batch, 1, self.n_sections, **kw)
            state["audio"] = torch.zeros(batch, c, hop, **kw)
        return state

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        hop = n_samples // n_frames
        x = inputs[0]
        new: Dict[str, Tensor] = {}
        ctrl, x = controls_and_input(params, state, new, x, hop)
        g = ctrl["gain"].to(x.dtype)
        p = torch.zeros_like(g[..., :1])
        if self.frequency_dependent:
            p = ctrl["damping"].to(x.dtype)
        y, new["line"] = self._run(x, g, p, state["line"])
        return y, new
