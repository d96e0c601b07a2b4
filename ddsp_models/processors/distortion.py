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

import torch
from torch import Tensor

from ..core.scaling import SigmoidRange, db_to_amplitude
from .base import Param, Processor
from .gain import check_audio, control_to_audio_rate

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
    raise ValueError(f"distortion mode must be one of {MODES}, got {mode!r}")


class Distortion(Processor):
    """Drive, waveshaper, output gain.

    Args:
        mode: ``"tanh"``, ``"soft"`` (cubic) or ``"hard"`` clip (see the module docstring).
        time_varying: ``drive_db`` and ``output_db`` per frame ``(B, T, 1)`` instead of
            static ``(B, 1)`` (default static).

    ``forward(x (B, C, L), drive_db, output_db) -> (B, C, L)``.
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

    def forward(self, x: Tensor, drive_db: Tensor, output_db: Tensor) -> Tensor:
        check_audio("Distortion", x)
        self.check_params({"drive_db": drive_db, "output_db": output_db})
        n = x.shape[-1]
        drive = db_to_amplitude(control_to_audio_rate(drive_db, n))
        out = db_to_amplitude(control_to_audio_rate(output_db, n))
        return out * waveshape(drive * x, self.mode)
