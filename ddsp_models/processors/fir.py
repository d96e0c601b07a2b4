"""FIR filter with learnable or predicted taps, applied by FFT convolution."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..core.filtering import fft_convolve
from ..core.scaling import Identity
from .base import Param, Processor
from .biquad import check_audio

__all__ = ["FIRFilter"]


class FIRFilter(Processor):
    """Causal FIR filter ``y[n] = sum_k h[k] x[n-k]`` on every channel.

    Two ways to get the taps ``h`` (``n_taps`` long):

    * ``learnable=False`` (default): predicted, ``forward(x, taps=(B, n_taps))`` — one filter
      per batch item, declared as a static parameter with identity scaling (any real taps
      give a stable filter);
    * ``learnable=True``: an ``nn.Parameter`` of the module (initialised to a unit impulse,
      i.e. a pass-through), ``forward(x)``; no declared parameters.

    The output keeps the input length (the convolution tail is dropped).
    """

    n_inputs = 1

    def __init__(self, n_taps: int = 64, learnable: bool = False):
        super().__init__()
        if n_taps < 1:
            raise ValueError(f"n_taps must be >= 1, got {n_taps}")
        self.n_taps = int(n_taps)
        self.learnable = bool(learnable)
        if self.learnable:
            taps = torch.zeros(self.n_taps)
            taps[0] = 1.0
            self.taps = nn.Parameter(taps)

    def param_specs(self):
        if self.learnable:
            return ()
        return (Param("taps", self.n_taps, Identity(), time_varying=False, unit="linear",
                      doc="impulse response, tap 0 first"),)

    def config(self):
        return {"n_taps": self.n_taps, "learnable": self.learnable}

    def forward(self, x: Tensor, taps: Tensor | None = None) -> Tensor:
        check_audio(x, "FIRFilter")
        if self.learnable:
            if taps is not None:
                raise ValueError("FIRFilter(learnable=True) owns its taps; do not pass taps")
            h = self.taps.to(x.dtype)
        else:
            if taps is None:
                raise ValueError("FIRFilter needs taps (batch, n_taps); or build it with learnable=True")
            self.check_params({"taps": taps})
            h = taps.to(x.dtype)[:, None, :]  # (B, 1, K) against (B, C, L)
        return fft_convolve(x, h, padding="same", delay_compensation=0)
