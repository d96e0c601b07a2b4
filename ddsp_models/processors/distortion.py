"""Memoryless distortion: ``y = output_gain · f(drive · x)`` with three shapes ``f``.

* ``"tanh"``: ``tanh(u)``;
* ``"soft"``: the cubic soft clip ``1.5 u - 0.5 u³`` for ``|u| <= 1``, ``sign(u)`` beyond
  (unit output at the corner, continuous slope: it is 0 at ``|u| = 1``; slope 1.5 at 0);
* ``"hard"``: ``clamp(u, -1, 1)``.

Gradients. ``tanh`` and the cubic are smooth. The hard clip's derivative is 1 inside
``[-1, 1]`` and 0 outside (torch's ``clamp`` convention, 1 exactly at ±1), so clipped
samples pass no gradient to the input or the drive; with everything clipped the drive's
gradient is zero. Prefer ``"soft"`` or ``"tanh"`` when the drive is learned.
"""

from __future__ import annotations

from typing import Dict

import torch
from torch import Tensor

from ..core.scaling import SigmoidRange, db_to_amplitude
from .base import Param, check_audio
from ..core.upsample import control_to_audio_rate
from .gain import _LinearControls

__all__ = ["Distortion", "waveshape", "MODES"]

MODES = ("tanh", "soft", "hard")


def waveshape(u: Tensor, mode: str) -> Tensor:
    """The static nonlinearity ``f(u)`` of :class:`Distortion` (elementwise, any shape)."""
    if mode == "tanh":
        return torch.tanh(u)
    if mode == "soft":
        c = u.clamp(-1.0, 1.0)
        return 1.5 * c - 0.5 * c**3
    if mode == "hard":
        return u.clamp(-1.0, 1.0)
    # (no f-string conversion here: waveshape compiles with torch.jit.script)
    raise ValueError("distortion mode must be one of ('tanh', 'soft', 'hard'), got '"
                     + mode + "'")


class Distortion(_LinearControls):
    """Drive, waveshaper, output gain.

    Args:
        mode: ``"tanh"``, ``"soft"`` (cubic) or ``"hard"`` clip (see the module docstring).
        time_varying: ``drive_db`` and ``output_db`` per frame ``(B, T, 1)`` instead of
            static ``(B, 1)`` (default static).

    ``forward(x (B, C, L), drive_db, output_db) -> (B, C, L)``.

    Block rendering (``step``, from :class:`~ddsp_models.processors.gain._LinearControls`):
    memoryless with static controls (latency 0); with time-varying controls, which are
    interpolated towards the next frame, latency one frame and the input delayed to match.
    """

    n_inputs = 1

    def __init__(self, mode: str = "tanh", time_varying: bool = False):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"distortion mode must be one of {MODES}, got {mode!r}")
        self.mode, self.time_varying = mode, bool(time_varying)

    def config(self):
        return {"mode": self.mode, "time_varying": self.time_varying}

    def param_specs(self):
        return (
            Param("drive_db", 1, SigmoidRange(-12.0, 36.0), self.time_varying, unit="dB",
                  doc="gain before the waveshaper"),
            Param("output_db", 1, SigmoidRange(-24.0, 24.0), self.time_varying, unit="dB",
                  doc="gain after the waveshaper"),
        )

    @classmethod
    def examples(cls):
        return [{}, {"mode": "soft", "time_varying": True}, {"mode": "hard"}]

    def forward(self, x: Tensor, drive_db: Tensor, output_db: Tensor) -> Tensor:
        check_audio("Distortion", x)
        self.check_params({"drive_db": drive_db, "output_db": output_db})
        n = x.shape[-1]
        return self.apply_controls(x, {"drive_db": control_to_audio_rate(drive_db, n),
                                       "output_db": control_to_audio_rate(output_db, n)})

    def apply_controls(self, x: Tensor, controls: Dict[str, Tensor]) -> Tensor:
        """``output · f(drive · x)`` for ``x (B, C, M)`` and controls in dB ``(B, 1, M|1)``."""
        drive = db_to_amplitude(controls["drive_db"])
        out = db_to_amplitude(controls["output_db"])
        return out * waveshape(drive * x, self.mode)
