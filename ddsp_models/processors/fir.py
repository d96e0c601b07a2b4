"""FIR filter with learnable or predicted taps, applied by FFT convolution.

Block rendering (``step``): latency 0, the zero-latency uniformly partitioned FFT convolution
of :mod:`ddsp_models.core.convolution`; the taps' partition spectra are carried in the state
and recomputed only when the taps change (new taps act on the whole carried input history:
at once for the first partition, fully two partitions later). The partition size is
``partition_size`` (``0``, the default: the hop, or its largest divisor up to 1024).
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn

from ..core.convolution import (IR_STREAM_STATES, convolve_with_cached_ir, default_partition_size,
                                init_ir_stream_state, ir_unchanged, partition_ir)
from ..core.filtering import fft_convolve
from ..core.scaling import Identity
from .base import Param, Processor, State, check_audio

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
        #: samples per partition of the block convolution; 0: chosen from the hop at init_state
        self.partition_size = 0
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
        check_audio("FIRFilter", x)
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

    @classmethod
    def examples(cls):
        return [{}, {"n_taps": 200, "learnable": True}, {"n_taps": 5}]

    # --- block rendering ----------------------------------------------------------------
    def latency_frames(self, hop: int) -> int:
        return 0

    def state_specs(self):
        return tuple(State(name, doc) for name, doc in IR_STREAM_STATES)

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        p = int(self.partition_size) or default_partition_size(hop)
        return init_ir_stream_state(batch, int(input_channels[0]), self.n_taps, self.n_taps,
                                    self.learnable, p, like)

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        x = inputs[0]
        if hasattr(self, "taps"):
            taps = self.taps.to(x.dtype)[None, :]
        else:
            taps = params["taps"].to(x.dtype)
        if ir_unchanged(taps, state["ir_key"], state["conv_position"]):
            head, spectra = state["ir_head"], state["ir_spectra"]
        else:  # first block, or new taps: one transform of the taps, then carried
            head, spectra = partition_ir(taps[:, None, :], state["ir_head"].shape[-1])
        return convolve_with_cached_ir(x, taps, head, spectra, state, n_samples // n_frames)
