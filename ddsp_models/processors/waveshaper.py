"""``Waveshaper``: drive, a static nonlinearity (Chebyshev sum, power law, piecewise tanh),
output gain; optionally oversampled 2x or 4x against aliasing.

``y = output_gain · D(f(U(drive · x)))`` where ``U`` / ``D`` are the linear-phase polyphase
FIR up- and down-samplers of :mod:`ddsp_models.core.waveshaping` (identity without
oversampling) and ``f`` is the shape:

* ``"chebyshev"``: ``sum_{k=1..K} w_k T_k(clamp(u, -1, 1))``. On a full-scale sine ``T_k``
  gives exactly the k-th harmonic (``T_k(cos θ) = cos kθ``): ``weights`` (``K = order``)
  set the harmonic spectrum directly (softmax weights, or linear ones of any sign). Even
  orders give a DC term (``T_2(0) = -1``).
* ``"power"``: ``sign(u) min(|u|, 1) ** exponent``.
* ``"tanh_piecewise"``: linear up to a knee, then a tanh saturating at ±1; separate knees for
  the positive and negative half-waves (``knee`` = ``(positive, negative)``).

Oversampling (``oversample`` 2 or 4) upsamples by zero stuffing and a Kaiser-windowed sinc
(``2 F m + 1`` taps at the high rate, ``m = half_length``), shapes at the high rate, and
filters again before decimating: harmonics above the low Nyquist are removed before they
fold back, except those within the filter's transition band (about ``0.40 .. 0.60`` of the
sample rate for ``m = 16``). The two filters are centred: the offline output has no delay.

Block rendering: the filters run causally with carried histories; together they delay by
``2m`` samples, the controls (when time-varying, interpolated towards the next frame) by one
hop; the total is padded to whole frames: ``latency_frames(hop) = ceil((tv·hop + 2m) / hop)``.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch
from torch import Tensor

from ..core.scaling import Identity, SigmoidRange, Softmax, db_to_amplitude
from ..core.upsample import upsample_linear
from ..core.waveshaping import (
    chebyshev_sum,
    downsample_block,
    lowpass_fir,
    piecewise_tanh,
    power_shape,
    upsample_block,
)
from .base import Param, Processor, State, check_audio
from .blocks import control_block, push_samples

__all__ = ["Waveshaper", "SHAPES"]

SHAPES = ("chebyshev", "power", "tanh_piecewise")
_BIG = 1 << 40  # frames; times any hop stays far inside int64


class Waveshaper(Processor):
    """Drive → shape → output gain, with optional oversampling.

    Args:
        sample_rate: Hz (only recorded; the filters are defined relative to it).
        shape: ``"chebyshev"``, ``"power"`` or ``"tanh_piecewise"`` (module docstring).
        order: number of Chebyshev polynomials ``T_1 .. T_order`` (chebyshev only).
        weighting: ``"softmax"`` (non-negative weights summing to one) or ``"linear"``
            (raw weights of any sign) for the Chebyshev ``weights``.
        oversample: 1, 2 or 4.
        half_length: ``m``: each FIR spans ``2m + 1`` low-rate samples and delays by ``m``.
        attenuation_db: Kaiser design stop-band attenuation of the FIRs.
        time_varying: all parameters per frame ``(B, T, size)`` instead of static ``(B, size)``.

    Parameters: ``drive_db`` (1), ``output_db`` (1), and ``weights`` (order) | ``exponent``
    (1) | ``knee`` (2, positive and negative half-wave).

    ``forward(x (B, C, L), **params) -> (B, C, L)``.
    """

    n_inputs = 1

    def __init__(
        self,
        sample_rate: float = 16000,
        shape: str = "chebyshev",
        order: int = 5,
        weighting: str = "softmax",
        oversample: int = 2,
        half_length: int = 16,
        attenuation_db: float = 100.0,
        time_varying: bool = False,
    ):
        super().__init__()
        if shape not in SHAPES:
            raise ValueError(f"Waveshaper shape must be one of {SHAPES}, got {shape!r}")
        if weighting not in ("softmax", "linear"):
            raise ValueError(f"weighting must be 'softmax' or 'linear', got {weighting!r}")
        if oversample not in (1, 2, 4):
            raise ValueError(f"oversample must be 1, 2 or 4, got {oversample!r}")
        if int(order) < 1 or int(half_length) < 1:
            raise ValueError("order and half_length must be >= 1")
        self.sample_rate = float(sample_rate)
        self.shape = shape
        self.order = int(order)
        self.weighting = weighting
        self.oversample = int(oversample)
        self.half_length = int(half_length)
        self.attenuation_db = float(attenuation_db)
        self.time_varying = bool(time_varying)
        #: low-rate delay of each FIR (0 without oversampling)
        self.m = self.half_length if self.oversample > 1 else 0
        fir = torch.from_numpy(lowpass_fir(self.oversample, self.half_length, self.attenuation_db)
                               if self.oversample > 1 else lowpass_fir(1, 0))
        self.register_buffer("fir", fir.to(torch.get_default_dtype()), persistent=False)
        self.shape_params: List[str] = (["weights"] if shape == "chebyshev" else
                                        ["exponent"] if shape == "power" else ["knee"])

    def config(self):
        return {"sample_rate": self.sample_rate, "shape": self.shape, "order": self.order,
                "weighting": self.weighting, "oversample": self.oversample,
                "half_length": self.half_length, "attenuation_db": self.attenuation_db,
                "time_varying": self.time_varying}

    @classmethod
    def examples(cls):
        return [
            {"shape": "chebyshev", "order": 4, "oversample": 1},
            {"shape": "chebyshev", "order": 3, "weighting": "linear", "oversample": 2,
             "half_length": 8, "time_varying": True},
            {"shape": "power", "oversample": 2, "half_length": 20, "time_varying": True},
            {"shape": "tanh_piecewise", "oversample": 4, "half_length": 8},
        ]

    def param_specs(self):
        tv = self.time_varying
        specs = [Param("drive_db", 1, SigmoidRange(-24.0, 24.0), tv, unit="dB",
                       doc="gain before the shape")]
        if self.shape == "chebyshev":
            scaling = Softmax() if self.weighting == "softmax" else Identity()
            specs.append(Param("weights", self.order, scaling, tv, unit="linear",
                               doc="weight of T_1 .. T_order (harmonic amplitudes on a full-scale sine)"))
        elif self.shape == "power":
            specs.append(Param("exponent", 1, SigmoidRange(0.5, 4.0), tv, unit="power",
                               doc="y = sign(u) min(|u|, 1) ** exponent"))
        else:
            specs.append(Param("knee", 2, SigmoidRange(0.0, 0.95), tv, unit="linear",
                               doc="end of the linear part, positive and negative half-wave"))
        specs.append(Param("output_db", 1, SigmoidRange(-24.0, 24.0), tv, unit="dB",
                           doc="gain after the shape"))
        return tuple(specs)

    # --- the shape ----------------------------------------------------------------------
    def apply_shape(self, u: Tensor, ctrl: Dict[str, Tensor]) -> Tensor:
        """``f(u)`` with the shape controls ``(B, size, M | 1)`` at ``u``'s rate."""
        if self.shape == "chebyshev":
            return chebyshev_sum(u, ctrl["weights"])
        if self.shape == "power":
            return power_shape(u, ctrl["exponent"])
        k = ctrl["knee"]
        return piecewise_tanh(u, k[:, 0:1], k[:, 1:2])

    def _high(self, ctrl: Dict[str, Tensor]) -> Dict[str, Tensor]:
        out: Dict[str, Tensor] = {}
        for name in self.shape_params:
            v = ctrl[name]
            out[name] = v if v.shape[-1] == 1 else torch.repeat_interleave(v, self.oversample, -1)
        return out

    def forward(self, x: Tensor, **params: Tensor) -> Tensor:
        check_audio("Waveshaper", x)
        self.check_params(params)
        n = x.shape[-1]
        ctrl = {k: (upsample_linear(v, n).transpose(1, 2) if v.dim() == 3 else v[:, :, None])
                .to(x.dtype) for k, v in params.items()}
        u = x * db_to_amplitude(ctrl["drive_db"])
        gain = db_to_amplitude(ctrl["output_db"])
        if self.oversample == 1:
            return self.apply_shape(u, ctrl) * gain
        b, c, _ = x.shape
        m, f = self.m, self.oversample
        fir = self.fir.to(x.dtype)
        zeros = x.new_zeros(b, c, 2 * m)
        up, _ = upsample_block(zeros, torch.cat([u, zeros], dim=-1), fir, f)  # low -m .. n+m
        shaped: Dict[str, Tensor] = {}
        for name in self.shape_params:
            v = ctrl[name]
            if v.shape[-1] > 1:  # edge values for the (masked) samples outside the signal
                v = torch.cat([v[..., :1].expand(-1, -1, m), v, v[..., -1:].expand(-1, -1, m)], -1)
            shaped[name] = v
        mask = torch.zeros(n + 2 * m, dtype=x.dtype, device=x.device)
        mask[m:m + n] = 1.0
        v = self.apply_shape(up, self._high(shaped)) * torch.repeat_interleave(mask, f)
        y, _ = downsample_block(x.new_zeros(b, c, 2 * m * f), v, fir, f)  # low -2m .. n
        return y[..., 2 * m:] * gain

    # --- block rendering -----------------------------------------------------------------
    def latency_frames(self, hop: int) -> int:
        c = hop if self.time_varying else 0
        return (c + 2 * self.m + hop - 1) // hop

    def state_specs(self):
        states = []
        if self.time_varying:
            states += [State(p.name, f"(B, 1, {p.size}) {p.unit}: the last frame of {p.name}")
                       for p in self.param_specs()]
            states.append(State("audio", "(B, C, hop) input samples not yet used (control lag)"))
            states += [State(name + "_line", f"(B, size, {self.m}) {name} at audio rate, "
                             "delayed to line up with the upsampler's output")
                       for name in self.shape_params]
            states.append(State("gain_line", f"(B, 1, {2 * self.m}) output gain at audio rate, "
                                "delayed to line up with the downsampler's output"))
        if self.oversample > 1:
            states += [
                State("up", f"(B, C, {2 * self.m}) last low-rate inputs of the upsampling FIR"),
                State("down", f"(B, C, {2 * self.m * self.oversample}) last high-rate shaped "
                      "samples of the downsampling FIR"),
            ]
        states += [
            State("delay", "(B, C, latency * hop - lags) output waiting to fill whole frames"),
            State("position", "() int64: frames received so far"),
            State("end", "() int64: frames of the signal (set by the first flushing call; "
                  "2**40 before): shaped samples past it are zero, as offline"),
        ]
        return tuple(states)

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        kw = {"dtype": like.dtype, "device": like.device}
        c = input_channels[0]
        lag = (hop if self.time_varying else 0) + 2 * self.m
        state: Dict[str, Tensor] = {}
        if self.time_varying:
            for p in self.param_specs():
                state[p.name] = torch.zeros(batch, 1, p.size, **kw)
            state["audio"] = torch.zeros(batch, c, hop, **kw)
            for p in self.param_specs():
                if p.name in self.shape_params:
                    state[p.name + "_line"] = torch.zeros(batch, p.size, self.m, **kw)
            state["gain_line"] = torch.zeros(batch, 1, 2 * self.m, **kw)
        if self.oversample > 1:
            state["up"] = torch.zeros(batch, c, 2 * self.m, **kw)
            state["down"] = torch.zeros(batch, c, 2 * self.m * self.oversample, **kw)
        state["delay"] = torch.zeros(batch, c, self.latency_frames(hop) * hop - lag, **kw)
        state["position"] = torch.zeros((), dtype=torch.int64, device=like.device)
        state["end"] = torch.full((), _BIG, dtype=torch.int64, device=like.device)
        return state

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        hop = n_samples // n_frames
        x = inputs[0]
        new: Dict[str, Tensor] = {}
        ctrl: Dict[str, Tensor] = {}
        lag = 0
        for name, value in params.items():
            if self.time_varying:
                ctrl[name], new[name] = control_block(value, state[name], hop)
            else:
                ctrl[name] = value[:, :, None]
            ctrl[name] = ctrl[name].to(x.dtype)
        if self.time_varying:
            x, new["audio"] = push_samples(state["audio"], x)
            lag = hop
        end = state["end"]
        if flushing:
            end = torch.minimum(end, state["position"])
        m, f = self.m, self.oversample
        first = state["position"] * hop - lag  # offline index of this block's first sample of u
        u = x * db_to_amplitude(ctrl["drive_db"])
        gain = db_to_amplitude(ctrl["output_db"])
        shaped: Dict[str, Tensor] = {}
        for name in self.shape_params:
            v = ctrl[name]
            if self.time_varying:
                v, new[name + "_line"] = push_samples(state[name + "_line"], v)
            shaped[name] = v
        if self.time_varying:
            gain, new["gain_line"] = push_samples(state["gain_line"], gain)
        idx = torch.arange(n_samples, device=x.device, dtype=torch.int64) + first - m
        inside = ((idx >= 0) & (idx < end * hop)).to(x.dtype)
        if f > 1:
            fir = self.fir.to(x.dtype)
            up, new["up"] = upsample_block(state["up"], u, fir, f)
            v = self.apply_shape(up, self._high(shaped)) * torch.repeat_interleave(inside, f)
            y, new["down"] = downsample_block(state["down"], v, fir, f)
        else:
            y = self.apply_shape(u, shaped) * inside
        y = y * gain * (idx - m >= 0).to(x.dtype)
        out, new["delay"] = push_samples(state["delay"], y)
        new["position"] = state["position"] + n_frames
        new["end"] = end
        return out, new
