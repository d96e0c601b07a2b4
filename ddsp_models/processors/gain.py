"""Gain and stereo utilities: ``Gain``, ``StereoGain`` (pan), ``StereoWidener`` (mid/side).

Parameters are time-varying ``(batch, frames, size)`` by default for the gains and pan
(linearly interpolated to audio rate) and static ``(batch, size)`` for the width; each
constructor's ``time_varying`` flag switches that.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..core.scaling import SigmoidRange, db_to_amplitude
from ..core.upsample import upsample_linear
from .base import Param, Processor

__all__ = ["Gain", "StereoGain", "StereoWidener", "control_to_audio_rate", "check_audio"]


def check_audio(owner: str, x: Tensor, channels: tuple[int, ...] | None = None) -> None:
    """Raise a clear error unless ``x`` is ``(batch, channels, samples)`` with allowed channels."""
    if not isinstance(x, Tensor) or x.dim() != 3:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{owner} expects audio (batch, channels, samples), got {got}")
    if channels is not None and x.shape[1] not in channels:
        allowed = " or ".join(map(str, channels))
        raise ValueError(f"{owner} needs {allowed} channels, got {x.shape[1]}")


def control_to_audio_rate(value: Tensor, n_samples: int) -> Tensor:
    """A parameter value as ``(batch, size, samples_or_1)``, ready to multiply audio.

    Time-varying ``(batch, frames, size)`` values are linearly interpolated to ``n_samples``;
    static ``(batch, size)`` values become ``(batch, size, 1)`` and broadcast over time.
    """
    if value.dim() == 3:
        return upsample_linear(value, n_samples).transpose(1, 2)
    return value[:, :, None]


class Gain(Processor):
    """Multiply by a gain given in dB: ``y = x * 10 ** (gain_db / 20)``.

    Args:
        min_db, max_db: range of the ``gain_db`` scaling (a raw 0 maps to the middle).
        time_varying: ``gain_db`` per frame ``(B, T, 1)`` (default) or static ``(B, 1)``.
    """

    n_inputs = 1

    def __init__(self, min_db: float = -60.0, max_db: float = 24.0, time_varying: bool = True):
        super().__init__()
        self.min_db, self.max_db = float(min_db), float(max_db)
        self.time_varying = bool(time_varying)
        SigmoidRange(self.min_db, self.max_db)  # validates the range

    def config(self):
        return {"min_db": self.min_db, "max_db": self.max_db, "time_varying": self.time_varying}

    def param_specs(self):
        return (Param("gain_db", 1, SigmoidRange(self.min_db, self.max_db), self.time_varying,
                      unit="dB", doc="gain"),)

    def forward(self, x: Tensor, gain_db: Tensor) -> Tensor:
        check_audio("Gain", x)
        self.check_params({"gain_db": gain_db})
        return x * db_to_amplitude(control_to_audio_rate(gain_db, x.shape[-1]))


def pan_gains(pan: Tensor) -> tuple[Tensor, Tensor]:
    """Constant-power pan law: ``pan`` in ``[-1, 1]`` → ``(cos θ, sin θ)``, ``θ = (pan + 1) π/4``.

    Centre (``pan = 0``) gives ``1/√2`` (-3 dB) to each side; ``left² + right² = 1``.
    """
    theta = (pan + 1) * (math.pi / 4)
    return torch.cos(theta), torch.sin(theta)


class StereoGain(Processor):
    """Gain and constant-power pan to stereo: mono or stereo in, stereo out.

    A mono input feeds both sides; a stereo input keeps its channels (``pan`` then acts as
    a balance control). ``left = g cos θ · x_L``, ``right = g sin θ · x_R`` with
    ``θ = (pan + 1) π / 4`` (:func:`pan_gains`): ``pan = -1`` hard left, ``0`` centre (-3 dB
    each side), ``1`` hard right.
    """

    n_inputs = 1

    def __init__(self, min_db: float = -60.0, max_db: float = 24.0, time_varying: bool = True):
        super().__init__()
        self.min_db, self.max_db = float(min_db), float(max_db)
        self.time_varying = bool(time_varying)
        SigmoidRange(self.min_db, self.max_db)

    def config(self):
        return {"min_db": self.min_db, "max_db": self.max_db, "time_varying": self.time_varying}

    def param_specs(self):
        return (
            Param("gain_db", 1, SigmoidRange(self.min_db, self.max_db), self.time_varying,
                  unit="dB", doc="gain before panning"),
            Param("pan", 1, SigmoidRange(-1.0, 1.0), self.time_varying, unit="position",
                  doc="-1 left, 0 centre, 1 right (constant power)"),
        )

    def n_output_channels(self, input_channels=()):
        return 2

    def forward(self, x: Tensor, gain_db: Tensor, pan: Tensor) -> Tensor:
        check_audio("StereoGain", x, (1, 2))
        self.check_params({"gain_db": gain_db, "pan": pan})
        n = x.shape[-1]
        g = db_to_amplitude(control_to_audio_rate(gain_db, n))
        left, right = pan_gains(control_to_audio_rate(pan, n))
        return x * g * torch.cat([left, right], dim=1)  # (B, 1|2, L) * (B, 2, L|1)


class StereoWidener(Processor):
    """Mid/side width: ``mid = (L + R) / 2``, ``side = width · (L - R) / 2``, out ``mid ± side``.

    ``width = 0`` folds to mono, ``1`` leaves the input unchanged, ``2`` doubles the side.
    Needs a stereo input ``(B, 2, L)``. ``width`` is static ``(B, 1)`` by default.
    """

    n_inputs = 1

    def __init__(self, max_width: float = 2.0, time_varying: bool = False):
        super().__init__()
        self.max_width, self.time_varying = float(max_width), bool(time_varying)
        SigmoidRange(0.0, self.max_width)

    def config(self):
        return {"max_width": self.max_width, "time_varying": self.time_varying}

    def param_specs(self):
        return (Param("width", 1, SigmoidRange(0.0, self.max_width), self.time_varying,
                      unit="ratio", doc="side gain: 0 mono, 1 unchanged"),)

    def n_output_channels(self, input_channels=()):
        if input_channels and input_channels[0] != 2:
            raise ValueError(
                f"StereoWidener needs a stereo input, got {input_channels[0]} channels"
            )
        return 2

    def forward(self, x: Tensor, width: Tensor) -> Tensor:
        check_audio("StereoWidener", x, (2,))
        self.check_params({"width": width})
        w = control_to_audio_rate(width, x.shape[-1])  # (B, 1, L|1)
        mid = (x[:, :1] + x[:, 1:]) / 2
        side = w * (x[:, :1] - x[:, 1:]) / 2
        return torch.cat([mid + side, mid - side], dim=1)
