"""Gain and stereo utilities: ``Gain``, ``StereoGain`` (pan), ``StereoWidener`` (mid/side).

Parameters are time-varying ``(batch, frames, size)`` by default for the gains and pan
(linearly interpolated to audio rate) and static ``(batch, size)`` for the width; each
constructor's ``time_varying`` flag switches that.
"""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from ..core.scaling import SigmoidRange, db_to_amplitude
from ..core.upsample import control_to_audio_rate
from .base import Param, Processor, State, check_audio
from .blocks import controls_and_input

__all__ = ["Gain", "StereoGain", "StereoWidener", "control_to_audio_rate", "check_audio"]


class _LinearControls(Processor):
    """Block rendering shared by the gain-like effects: controls interpolated linearly towards
    the next frame (latency one frame when any is time-varying), the input delayed to match,
    and a memoryless ``apply_controls(x, controls)``. State: the last frame of each control, and the
    input samples not yet output."""

    n_inputs = 1
    time_varying = True

    def latency_frames(self, hop: int) -> int:
        return 1 if self.time_varying else 0

    def state_specs(self):
        return (
            *[State(p.name, f"(B, 1, {p.size}) {p.unit}: the last frame of {p.name}")
              for p in self.param_specs()],
            State("audio", "(B, C, hop * latency) input samples not yet output"),
        )

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        state: Dict[str, Tensor] = {}
        for p in self.param_specs():
            state[p.name] = torch.zeros(batch, 1, p.size, dtype=like.dtype, device=like.device)
        state["audio"] = torch.zeros(batch, input_channels[0], hop * self.latency_frames(hop),
                                     dtype=like.dtype, device=like.device)
        return state

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        new: Dict[str, Tensor] = {}
        controls, x = controls_and_input(params, state, new, inputs[0], n_samples // n_frames)
        return self.apply_controls(x, controls), new

    def apply_controls(self, x: Tensor, controls: Dict[str, Tensor]) -> Tensor:
        raise NotImplementedError


class Gain(_LinearControls):
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

    @classmethod
    def examples(cls):
        return [{}, {"time_varying": False}]

    def forward(self, x: Tensor, gain_db: Tensor) -> Tensor:
        check_audio("Gain", x)
        self.check_params({"gain_db": gain_db})
        return self.apply_controls(x, {"gain_db": control_to_audio_rate(gain_db, x.shape[-1])})

    def apply_controls(self, x: Tensor, controls: Dict[str, Tensor]) -> Tensor:
        return x * db_to_amplitude(controls["gain_db"])


def pan_gains(pan: Tensor) -> tuple[Tensor, Tensor]:
    """Constant-power pan law: ``pan`` in ``[-1, 1]`` → ``(cos θ, sin θ)``, ``θ = (pan + 1) π/4``.

    Centre (``pan = 0``) gives ``1/√2`` (-3 dB) to each side; ``left² + right² = 1``.
    """
    theta = (pan + 1) * (math.pi / 4)
    return torch.cos(theta), torch.sin(theta)


class StereoGain(_LinearControls):
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
        return self.apply_controls(x, {"gain_db": control_to_audio_rate(gain_db, n),
                               "pan": control_to_audio_rate(pan, n)})

    @classmethod
    def examples(cls):
        return [{}, {"time_varying": False}]

    def apply_controls(self, x: Tensor, controls: Dict[str, Tensor]) -> Tensor:
        g = db_to_amplitude(controls["gain_db"])
        left, right = pan_gains(controls["pan"])
        return x * g * torch.cat([left, right], dim=1)  # (B, 1|2, L) * (B, 2, L|1)


class StereoWidener(_LinearControls):
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
        return self.apply_controls(x, {"width": control_to_audio_rate(width, x.shape[-1])})

    @classmethod
    def examples(cls):
        return [{}, {"time_varying": True}]

    def apply_controls(self, x: Tensor, controls: Dict[str, Tensor]) -> Tensor:
        w = controls["width"]  # (B, 1, L|1)
        mid = (x[:, :1] + x[:, 1:]) / 2
        side = w * (x[:, :1] - x[:, 1:]) / 2
        return torch.cat([mid + side, mid - side], dim=1)
