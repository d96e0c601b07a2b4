"""Biquad effect: the RBJ cookbook family with fixed or time-varying cutoff, Q and gain.

Also holds the small helpers the other filter processors share (audio checks, control
upsampling, default frequency ranges).
"""

from __future__ import annotations

from torch import Tensor

from ..core.filter_design import BIQUAD_KINDS, biquad_coefficients
from ..core.iir import lfilter
from ..core.scaling import LogSigmoidRange, SigmoidRange
from ..core.upsample import upsample_linear
from .base import Param, Processor

__all__ = ["Biquad"]

_GAIN_KINDS = ("peaking", "lowshelf", "highshelf")


def check_audio(x: Tensor, owner: str) -> None:
    """Raise a clear error unless ``x`` is a real ``(batch, channels, samples)`` tensor."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{owner}: audio must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 3:
        raise ValueError(
            f"{owner}: audio must be (batch, channels, samples), got shape {tuple(x.shape)}; "
            "add a channel axis with x[:, None]"
        )
    if not x.is_floating_point():
        raise TypeError(f"{owner}: audio must be floating point, got {x.dtype}")


def per_sample(value: Tensor, n_samples: int) -> Tensor:
    """A control as one value per sample, ready to broadcast against ``(B, C, L)`` audio.

    ``(B, T, F)`` (time-varying) -> ``(B, 1, L, F)`` by linear interpolation between frame
    centres; ``(B, F)`` (static) -> ``(B, 1, 1, F)``.
    """
    if value.dim() == 3:
        return upsample_linear(value, n_samples)[:, None]
    return value[:, None, None, :]


def max_filter_hz(sample_rate: float) -> float:
    """Highest cutoff a processor's scaling allows: 0.45 * sample_rate (below Nyquist)."""
    return 0.45 * sample_rate


def filter_coefficients(b: Tensor, a: Tensor) -> tuple[Tensor, Tensor]:
    """Drop the singleton time axis of static coefficients ``(B, 1, 1, K)`` -> ``(B, 1, K)``
    so :func:`~ddsp_models.core.iir.lfilter` treats them as time-invariant."""
    if b.shape[-2] == 1:
        return b[..., 0, :], a[..., 0, :]
    return b, a


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
        check_audio(x, "Biquad")
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
