"""Filtered noise synth: white noise through a time-varying FIR filter (DDSP's FilteredNoise)."""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..core.filtering import fft_size, frequency_filter, frequency_impulse_response
from ..core.noise import counter_noise_at, noise_like
from ..core.scaling import ExpSigmoid
from ..core.upsample import hop_size
from .base import Param, Processor, State
from .blocks import push_samples, valid_mask

__all__ = ["FilteredNoise"]


class FilteredNoise(Processor):
    """Uniform white noise in ``[-1, 1)`` shaped by frame-wise magnitude responses.

    ``forward(magnitudes (B, T, n_bands), n_samples, noise=None)`` → ``(B, 1, n_samples)``.
    ``magnitudes`` are linear gains at ``n_bands`` frequencies spaced linearly from 0 Hz to
    Nyquist; each frame becomes a linear-phase FIR of ``2 (n_bands - 1)`` taps (Hann-windowed,
    or ``window_size`` taps), applied to the block of noise centred on the frame, delay
    compensated (see :func:`ddsp_models.core.frequency_filter`). Pass ``noise`` ``(B,
    n_samples)`` for reproducible output (tests, gradient checks); otherwise it is drawn from
    torch's global generator in the magnitudes' dtype and device (or, inside
    :func:`~ddsp_models.core.noise.deterministic_noise`, counter noise from position 0).

    Block rendering (:meth:`step`): the noise is :func:`~ddsp_models.core.noise.counter_noise`
    of the carried position and seed (state ``seed``, 0 by default: the offline reference is
    ``forward`` under ``deterministic_noise(seed=0)``). The centred FIR of ``taps`` taps needs
    ``taps // 2 + hop // 2`` samples of look-ahead, so the latency depends on the hop:
    ``ceil((taps // 2 + hop // 2) / hop)`` frames (:meth:`latency_frames` takes the hop).
    """

    n_inputs = 0

    def __init__(self, sample_rate: float = 16000, n_bands: int = 65, window_size: int = 0):
        super().__init__()
        if n_bands < 2:
            raise ValueError(f"n_bands must be >= 2, got {n_bands}")
        self.sample_rate = float(sample_rate)
        self.n_bands = int(n_bands)
        self.window_size = int(window_size)
        n = 2 * (self.n_bands - 1)
        ws = self.window_size
        #: taps of each frame's FIR (see frequency_impulse_response)
        self.n_taps = n if ws <= 0 or ws >= n else 2 * (ws // 2) + 1

    @classmethod
    def examples(cls):
        # with the tests' hop of 32: latency 1 and no delay line (32 taps), 3 (128 taps),
        # 1 (odd 15 taps)
        return [{"n_bands": 17}, {}, {"n_bands": 33, "window_size": 15}]

    def param_specs(self):
        return (
            Param(
                "magnitudes",
                self.n_bands,
                ExpSigmoid(bias=-5.0),
                unit="linear",
                doc="filter gain per band, 0 Hz .. Nyquist",
            ),
        )

    def config(self):
        return {
            "sample_rate": self.sample_rate,
            "n_bands": self.n_bands,
            "window_size": self.window_size,
        }

    def forward(self, magnitudes: Tensor, n_samples: int, noise: Tensor | None = None) -> Tensor:
        self.check_params({"magnitudes": magnitudes})
        b, t, _ = magnitudes.shape
        hop_size(t, n_samples)  # clear error if n_samples < frames
        if noise is None:
            noise = noise_like(b, n_samples, magnitudes)
        elif noise.shape != (b, n_samples):
            raise ValueError(
                f"FilteredNoise: noise must be (batch, n_samples) = {(b, n_samples)}, "
                f"got {tuple(noise.shape)}"
            )
        return frequency_filter(noise, magnitudes, window_size=self.window_size)[:, None, :]

    # --- block rendering -------------------------------------------------------------
    def latency_frames(self, hop: int) -> int:
        """Look-ahead in frames, ``ceil((taps // 2 + hop // 2) / hop)``: the last noise sample
        under the centred FIR of an output sample belongs to a later frame's block."""
        return (self.n_taps // 2 + hop // 2 + hop - 1) // hop

    def state_specs(self):
        return (
            State("noise", "(B, hop // 2) the noise samples drawn for the next frame's block "
                  "(blocks are centred on their frame)"),
            State("tail", f"(B, {self.n_taps - 1}) filtered noise still to be overlap-added"),
            State("delay", "(B, latency * hop - hop // 2 - taps // 2) filtered samples waiting "
                  "to line up with the latency"),
            State("position", "() int64: frames received so far (noise position / hop)"),
            State("seed", "() int64: seed of the counter noise (row b draws seed + b)"),
        )

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        delay = self.latency_frames(hop) * hop - hop // 2 - self.n_taps // 2
        kw = {"dtype": like.dtype, "device": like.device}
        return {
            "noise": torch.zeros(batch, hop // 2, **kw),
            "tail": torch.zeros(batch, self.n_taps - 1, **kw),
            "delay": torch.zeros(batch, delay, **kw),
            "position": torch.zeros((), dtype=torch.int64, device=like.device),
            "seed": torch.zeros((), dtype=torch.int64, device=like.device),
        }

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        """One block: frames ``t0 .. t0+N-1`` in, offline samples from ``(t0 - L) hop`` out.

        Frame ``t`` filters the noise block ``[t hop - hop // 2, t hop - hop // 2 + hop)``
        with its FIR; the overlap-added result is complete up to sample ``(t0 + N) hop`` of
        the full convolution, which is ``taps // 2 + hop // 2`` ahead of the centred output.
        """
        hop = n_samples // n_frames
        mags = params["magnitudes"]
        b = mags.shape[0]
        n = n_frames
        taps = self.n_taps
        ir = frequency_impulse_response(mags, self.window_size)  # (B, N, taps)
        if flushing:  # offline has no noise past the end
            fresh = torch.zeros(b, n * hop, dtype=mags.dtype, device=mags.device)
        else:
            fresh = counter_noise_at(b, state["position"] * hop, n * hop, state["seed"], mags)
        noise = torch.cat([state["noise"], fresh], dim=-1)
        blocks = noise[:, :n * hop].reshape(b, n, hop)
        nfft = fft_size(hop + taps - 1)  # the FFT size frequency_filter uses
        width = hop + taps - 1
        y = torch.fft.irfft(torch.fft.rfft(blocks, nfft) * torch.fft.rfft(ir, nfft), nfft)
        y = y[..., :width]  # (B, N, width): one block convolved with its frame's FIR
        total = (n - 1) * hop + width
        acc = F.fold(y.transpose(1, 2), output_size=(1, total), kernel_size=(1, width),
                     stride=(1, hop)).reshape(b, total)  # overlap-add
        acc = torch.cat([acc[:, :taps - 1] + state["tail"], acc[:, taps - 1:]], dim=-1)
        out, delay = push_samples(state["delay"], acc[:, :n * hop])
        latency = (state["delay"].shape[-1] + hop // 2 + taps // 2) // hop
        out = out * valid_mask(state["position"], latency, n, hop, out)
        new_state: Dict[str, Tensor] = {
            "noise": noise[:, n * hop:],
            "tail": acc[:, n * hop:],
            "delay": delay,
            "position": state["position"] + n,
            "seed": state["seed"],
        }
        return out[:, None, :], new_state
