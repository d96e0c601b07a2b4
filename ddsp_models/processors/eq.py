"""Equalisers: parametric (low shelf, N peaks, high shelf) and graphic (fixed bands).

Both stream (``step``) through :func:`~ddsp_models.processors.biquad.biquad_cascade_step`,
the block path of :class:`~ddsp_models.processors.biquad.Biquad` for a cascade: static bands
carry each section's direct-form-I histories (latency 0), ``mode="freq_sampling"`` the last
``n_fft - 1`` inputs of its FIR (latency 0; equal to its own offline output), time-varying
bands the last control frame, one frame of input and each section's two SVF states
(latency 1 frame).
"""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from ..core.filter_design import biquad_coefficients
from ..core.iir import DEFAULT_N_FFT, sosfilt
from ..core.scaling import LogSigmoidRange, SigmoidRange
from .base import Param, Processor, check_audio
from .biquad import (
    biquad_cascade_step,
    biquad_init_state,
    biquad_state_specs,
    max_filter_hz,
    per_sample,
    tv_controls,
)
from .blocks import push_samples
from .svf import rbj_svf

__all__ = ["ParametricEQ", "GraphicEQ", "graphic_eq_centres"]

_SHELF_Q = 1 / math.sqrt(2)


def _sos(b: Tensor, a: Tensor) -> Tensor:
    """Stack per-band ``(b, a)`` lists ``(..., 3)`` into sections ``(..., S, 6)``; drop the
    singleton time axis of static controls so sosfilt sees a time-invariant cascade."""
    sos = torch.stack([torch.cat([bb, aa], dim=-1) for bb, aa in zip(b, a)], dim=-2)
    if sos.shape[-3] == 1:  # (B, 1, 1, S, 6) static -> (B, 1, S, 6)
        sos = sos[..., 0, :, :]
    return sos


def _check_mode(mode: str, time_varying: bool) -> None:
    if mode not in ("recursive", "freq_sampling"):
        raise ValueError(f"mode must be 'recursive' or 'freq_sampling', got {mode!r}")
    if mode == "freq_sampling" and time_varying:
        raise ValueError("mode='freq_sampling' needs static parameters (time_varying=False)")


class ParametricEQ(Processor):
    """Low shelf, ``n_peaks`` peaking bands and a high shelf, in series (RBJ biquads).

    ``forward(x (B, C, L), low_shelf_hz, low_shelf_gain_db, peak_hz, peak_q, peak_gain_db,
    high_shelf_hz, high_shelf_gain_db)``; peak parameters are ``n_peaks`` wide. Static
    ``(B, size)`` by default, ``(B, T, size)`` with ``time_varying=True``. Shelves use
    Q = 0.7071. Static bands run as second-order sections (``sosfilt``); ``mode="freq_sampling"``
    applies the product of their responses by one FFT convolution (fast, approximate tail).
    Time-varying bands run as TPT state-variable filters with the same responses, which stay
    bounded under fast modulation. Stable for any raw parameters.
    """

    n_inputs = 1

    def __init__(
        self,
        sample_rate: float = 16000,
        n_peaks: int = 3,
        max_gain_db: float = 12.0,
        min_q: float = 0.1,
        max_q: float = 10.0,
        time_varying: bool = False,
        mode: str = "recursive",
        n_fft: int | None = None,
    ):
        super().__init__()
        _check_mode(mode, time_varying)
        if n_peaks < 0:
            raise ValueError(f"n_peaks must be >= 0, got {n_peaks}")
        self.sample_rate = float(sample_rate)
        self.n_peaks = int(n_peaks)
        self.max_gain_db = float(max_gain_db)
        self.min_q, self.max_q = float(min_q), float(max_q)
        self.time_varying = bool(time_varying)
        self.mode = mode
        self.n_fft = n_fft
        self.fir_taps = int(n_fft or DEFAULT_N_FFT)  # FIR length of mode="freq_sampling"
        self.shelf_q = _SHELF_Q

    @classmethod
    def examples(cls):
        return [{}, {"time_varying": True}, {"n_peaks": 1, "mode": "freq_sampling", "n_fft": 1024}]

    # --- block rendering -----------------------------------------------------------
    def latency_frames(self, hop: int) -> int:
        return 1 if self.time_varying else 0

    def state_specs(self):
        return biquad_state_specs(self, self.n_peaks + 2)

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        return biquad_init_state(self, self.n_peaks + 2, batch, input_channels[0], hop, like)

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        x = inputs[0]
        new: Dict[str, Tensor] = {}
        if self.time_varying:  # (B, F, M) per sample
            p = tv_controls(params, state, new, n_samples // n_frames)
            x, new["audio"] = push_samples(state["audio"], x)
        else:  # (B, F)
            p = params
        shelf_q = torch.full([], self.shelf_q, dtype=x.dtype, device=x.device)
        kinds: List[str] = ["lowshelf"]
        fcs: List[Tensor] = [p["low_shelf_hz"][:, 0:1]]
        qs: List[Tensor] = [shelf_q]
        gains: List[Tensor] = [p["low_shelf_gain_db"][:, 0:1]]
        for i in range(self.n_peaks):
            kinds.append("peaking")
            fcs.append(p["peak_hz"][:, i:i + 1])
            qs.append(p["peak_q"][:, i:i + 1])
            gains.append(p["peak_gain_db"][:, i:i + 1])
        kinds.append("highshelf")
        fcs.append(p["high_shelf_hz"][:, 0:1])
        qs.append(shelf_q)
        gains.append(p["high_shelf_gain_db"][:, 0:1])
        y = biquad_cascade_step(x, kinds, fcs, qs, gains, state, new, self.time_varying,
                                self.mode, self.fir_taps, self.sample_rate)
        return y, new

    def param_specs(self):
        tv, top = self.time_varying, max_filter_hz(self.sample_rate)
        gain = SigmoidRange(-self.max_gain_db, self.max_gain_db)
        specs = [
            Param("low_shelf_hz", 1, LogSigmoidRange(20.0, min(1000.0, top / 2)), tv, unit="Hz",
                  doc="low shelf mid-point"),
            Param("low_shelf_gain_db", 1, gain, tv, unit="dB", doc="low shelf gain"),
        ]
        if self.n_peaks:
            specs += [
                Param("peak_hz", self.n_peaks, LogSigmoidRange(20.0, top), tv, unit="Hz",
                      doc="peak centre per band"),
                Param("peak_q", self.n_peaks, LogSigmoidRange(self.min_q, self.max_q), tv,
                      doc="peak quality factor per band"),
                Param("peak_gain_db", self.n_peaks, gain, tv, unit="dB", doc="peak gain per band"),
            ]
        specs += [
            Param("high_shelf_hz", 1, LogSigmoidRange(min(1000.0, top / 2), top), tv, unit="Hz",
                  doc="high shelf mid-point"),
            Param("high_shelf_gain_db", 1, gain, tv, unit="dB", doc="high shelf gain"),
        ]
        return tuple(specs)

    def config(self):
        return {
            "sample_rate": self.sample_rate,
            "n_peaks": self.n_peaks,
            "max_gain_db": self.max_gain_db,
            "min_q": self.min_q,
            "max_q": self.max_q,
            "time_varying": self.time_varying,
            "mode": self.mode,
            "n_fft": self.n_fft,
        }

    def sos(self, n_samples: int, **params: Tensor) -> Tensor:
        """Second-order sections ``(B, 1, S, 6)`` (static) or ``(B, 1, L, S, 6)``."""
        p = {k: per_sample(v, n_samples) for k, v in params.items()}
        fs = self.sample_rate
        bands = [biquad_coefficients("lowshelf", p["low_shelf_hz"][..., 0], _SHELF_Q, p["low_shelf_gain_db"][..., 0], fs)]
        for i in range(self.n_peaks):
            bands.append(biquad_coefficients("peaking", p["peak_hz"][..., i], p["peak_q"][..., i], p["peak_gain_db"][..., i], fs))
        bands.append(biquad_coefficients("highshelf", p["high_shelf_hz"][..., 0], _SHELF_Q, p["high_shelf_gain_db"][..., 0], fs))
        return _sos([b for b, _ in bands], [a for _, a in bands])

    def forward(self, x: Tensor, **params: Tensor) -> Tensor:
        check_audio("ParametricEQ", x)
        self.check_params(params)
        if self.time_varying:  # TPT state-variable bands: bounded under fast modulation
            p = {k: per_sample(v, x.shape[-1]).to(x.dtype) for k, v in params.items()}
            y = rbj_svf(x, "lowshelf", p["low_shelf_hz"][..., 0], _SHELF_Q, p["low_shelf_gain_db"][..., 0], self.sample_rate)
            for i in range(self.n_peaks):
                y = rbj_svf(y, "peaking", p["peak_hz"][..., i], p["peak_q"][..., i], p["peak_gain_db"][..., i], self.sample_rate)
            return rbj_svf(y, "highshelf", p["high_shelf_hz"][..., 0], _SHELF_Q, p["high_shelf_gain_db"][..., 0], self.sample_rate)
        sos = self.sos(x.shape[-1], **params).to(x.dtype)
        return sosfilt(x, sos, mode=self.mode, n_fft=self.n_fft)


def graphic_eq_centres(sample_rate: float, bands_per_octave: int = 1, min_hz: float = 25.0) -> list[float]:
    """Band centres ``1000 * 2 ** (k / bands_per_octave)`` between ``min_hz`` and 0.45 fs."""
    top = max_filter_hz(sample_rate)
    k_lo = math.ceil(bands_per_octave * math.log2(min_hz / 1000.0))
    k_hi = math.floor(bands_per_octave * math.log2(top / 1000.0))
    return [1000.0 * 2.0 ** (k / bands_per_octave) for k in range(k_lo, k_hi + 1)]


class GraphicEQ(Processor):
    """Peaking filters at fixed octave (or 1/N-octave) centres: ``forward(x, gains_db)``.

    ``gains_db`` is ``(B, n_bands)`` (or ``(B, T, n_bands)`` with ``time_varying=True``) in
    dB within ``+-max_gain_db``. Bands: :func:`graphic_eq_centres`; each band's Q gives a
    bandwidth of one band spacing, ``Q = sqrt(2^N) / (2^N - 1)`` with ``N = 1 / bands_per_octave``.
    """

    n_inputs = 1

    def __init__(
        self,
        sample_rate: float = 16000,
        bands_per_octave: int = 1,
        min_hz: float = 25.0,
        max_gain_db: float = 12.0,
        time_varying: bool = False,
        mode: str = "recursive",
        n_fft: int | None = None,
    ):
        super().__init__()
        _check_mode(mode, time_varying)
        self.sample_rate = float(sample_rate)
        self.bands_per_octave = int(bands_per_octave)
        self.min_hz = float(min_hz)
        self.centres_hz = graphic_eq_centres(sample_rate, self.bands_per_octave, self.min_hz)
        if not self.centres_hz:
            raise ValueError("no band centre between min_hz and 0.45 * sample_rate; lower min_hz")
        width = 1.0 / self.bands_per_octave
        self.q = math.sqrt(2.0**width) / (2.0**width - 1.0)
        self.max_gain_db = float(max_gain_db)
        self.time_varying = bool(time_varying)
        self.mode = mode
        self.n_fft = n_fft
        self.fir_taps = int(n_fft or DEFAULT_N_FFT)  # FIR length of mode="freq_sampling"

    @property
    def n_bands(self) -> int:
        return len(self.centres_hz)

    @classmethod
    def examples(cls):
        return [{}, {"time_varying": True, "bands_per_octave": 2, "min_hz": 1000.0},
                {"mode": "freq_sampling", "n_fft": 512, "min_hz": 500.0}]

    # --- block rendering -----------------------------------------------------------
    def latency_frames(self, hop: int) -> int:
        return 1 if self.time_varying else 0

    def state_specs(self):
        return biquad_state_specs(self, len(self.centres_hz))

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        return biquad_init_state(self, len(self.centres_hz), batch, input_channels[0], hop, like)

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        x = inputs[0]
        new: Dict[str, Tensor] = {}
        if self.time_varying:  # (B, n_bands, M) per sample
            g = tv_controls(params, state, new, n_samples // n_frames)["gains_db"]
            x, new["audio"] = push_samples(state["audio"], x)
        else:  # (B, n_bands)
            g = params["gains_db"]
        q = torch.full([], self.q, dtype=x.dtype, device=x.device)
        kinds: List[str] = []
        fcs: List[Tensor] = []
        qs: List[Tensor] = []
        gains: List[Tensor] = []
        for i, fc in enumerate(self.centres_hz):
            kinds.append("peaking")
            fcs.append(torch.full([], fc, dtype=x.dtype, device=x.device))
            qs.append(q)
            gains.append(g[:, i:i + 1])
        y = biquad_cascade_step(x, kinds, fcs, qs, gains, state, new, self.time_varying,
                                self.mode, self.fir_taps, self.sample_rate)
        return y, new

    def param_specs(self):
        return (
            Param("gains_db", self.n_bands, SigmoidRange(-self.max_gain_db, self.max_gain_db),
                  self.time_varying, unit="dB", doc="gain per band, low to high"),
        )

    def config(self):
        return {
            "sample_rate": self.sample_rate,
            "bands_per_octave": self.bands_per_octave,
            "min_hz": self.min_hz,
            "max_gain_db": self.max_gain_db,
            "time_varying": self.time_varying,
            "mode": self.mode,
            "n_fft": self.n_fft,
        }

    def forward(self, x: Tensor, gains_db: Tensor) -> Tensor:
        check_audio("GraphicEQ", x)
        self.check_params({"gains_db": gains_db})
        g = per_sample(gains_db, x.shape[-1]).to(x.dtype)
        if self.time_varying:  # TPT state-variable bands: bounded under fast modulation
            y = x
            for i, fc in enumerate(self.centres_hz):
                fc_t = torch.tensor(fc, dtype=x.dtype, device=x.device)
                y = rbj_svf(y, "peaking", fc_t, self.q, g[..., i], self.sample_rate)
            return y
        bands = [
            biquad_coefficients("peaking", torch.tensor(fc, dtype=x.dtype, device=x.device), self.q, g[..., i], self.sample_rate)
            for i, fc in enumerate(self.centres_hz)
        ]
        sos = _sos([b for b, _ in bands], [a for _, a in bands])
        return sosfilt(x, sos, mode=self.mode, n_fft=self.n_fft)
