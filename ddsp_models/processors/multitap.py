"""Multitap delay: a sum of delayed, scaled copies of the input (feed-forward, no feedback).

``y[n] = dry · x[n] + Σ_k gain_k · x[n - d_k]`` with ``d_k = delay_s_k · sample_rate``
samples. Fractional delays use linear interpolation between the two neighbouring samples,
so the output is differentiable with respect to each delay (a piecewise-linear function of
it) as well as the gains. Each tap is two gathers from the zero-padded input: the cost is
``O(n_taps · samples)``, whatever the delays.

Block rendering (``step``): latency 0; the state carries the delay line (the last
``ceil(max_delay_s · sample_rate) + 1`` input samples) and each block costs
``O(n_taps · block samples)`` (:func:`multitap_block`).
"""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..core.scaling import SigmoidRange
from .base import Param, Processor, State, check_audio

__all__ = ["MultitapDelay", "multitap", "multitap_block"]


def multitap(x: Tensor, delay_samples: Tensor, gains: Tensor, max_delay_samples: int) -> Tensor:
    """``Σ_k gains_k · x[n - delay_k]`` with linear interpolation; zeros before the start.

    Args:
        x: ``(batch, channels, samples)``.
        delay_samples: ``(batch, n_taps)`` fractional delays in samples, in
            ``[0, max_delay_samples]``.
        gains: ``(batch, n_taps)`` linear gains.
        max_delay_samples: the largest allowed delay (sets the zero padding).

    Returns:
        ``(batch, channels, samples)``. Cost ``O(n_taps · samples)`` per channel.
    """
    b, c, n = x.shape
    pad = int(max_delay_samples) + 1
    xp = F.pad(x, (pad, 0))  # xp[..., pad + m] = x[..., m]; x[m < 0] = 0
    d = delay_samples.clamp(0.0, float(max_delay_samples))
    whole = d.detach().floor()
    frac = (d - whole)[:, :, None, None]  # the gradient wrt the delay flows through frac
    whole = whole.long()
    t = torch.arange(n, device=x.device)
    out = torch.zeros_like(x)
    for k in range(d.shape[1]):
        idx = (pad + t[None, :] - whole[:, k, None])[:, None, :].expand(b, c, n)  # x[n - i]
        near, far = xp.gather(2, idx), xp.gather(2, idx - 1)  # x[n - i], x[n - i - 1]
        tap = near + frac[:, k] * (far - near)
        out = out + gains[:, k, None, None] * tap
    return out


def multitap_block(line: Tensor, delay_samples: Tensor, gains: Tensor,
                   max_delay_samples: int) -> Tensor:
    """The block form of :func:`multitap`: the taps of a block's last ``M`` samples.

    Args:
        line: ``(batch, channels, H + M)``: the last ``H >= max_delay_samples + 1`` input
            samples before the block (zeros before the stream), then the block's ``M``.
        delay_samples, gains, max_delay_samples: as for :func:`multitap`.

    Returns:
        ``(batch, channels, M)``, equal to :func:`multitap` of the whole signal at the block's
        samples. Cost ``O(n_taps · M)`` per channel.
    """
    b, c, total = line.shape
    m = total - (int(max_delay_samples) + 1)
    h = total - m
    d = delay_samples.clamp(0.0, float(max_delay_samples))
    whole = d.detach().floor()
    frac = (d - whole)[:, :, None, None]
    whole_i = whole.long()
    t = torch.arange(m, device=line.device) + h
    out = torch.zeros(b, c, m, dtype=line.dtype, device=line.device)
    for k in range(d.shape[1]):
        idx = (t[None, :] - whole_i[:, k, None])[:, None, :].expand(b, c, m)  # x[n - i]
        near, far = line.gather(2, idx), line.gather(2, idx - 1)
        tap = near + frac[:, k] * (far - near)
        out = out + gains[:, k, None, None] * tap
    return out


class MultitapDelay(Processor):
    """``n_taps`` delayed copies with static delays (seconds) and gains; no feedback.

    Args:
        sample_rate: Hz.
        n_taps: number of taps.
        max_delay_s: longest delay; ``delay_s`` is scaled to ``[0, max_delay_s]``.
        dry: include the input itself (``y = x + Σ taps``) or only the taps.

    Parameters (static): ``delay_s (B, n_taps)`` seconds, ``gains (B, n_taps)`` linear in
    ``[-1, 1]``. ``forward(x (B, C, L), delay_s, gains) -> (B, C, L)``.
    """

    n_inputs = 1

    def __init__(self, sample_rate: float = 16000, n_taps: int = 4, max_delay_s: float = 1.0,
                 dry: bool = True):
        super().__init__()
        if n_taps < 1:
            raise ValueError(f"n_taps must be >= 1, got {n_taps}")
        if not max_delay_s > 0 or not sample_rate > 0:
            raise ValueError(f"sample_rate and max_delay_s must be positive, got "
                             f"{sample_rate} and {max_delay_s}")
        self.sample_rate, self.n_taps = float(sample_rate), int(n_taps)
        self.max_delay_s, self.dry = float(max_delay_s), bool(dry)
        self._max_delay = math.ceil(self.max_delay_s * self.sample_rate)  # samples

    def config(self):
        return {"sample_rate": self.sample_rate, "n_taps": self.n_taps,
                "max_delay_s": self.max_delay_s, "dry": self.dry}

    def param_specs(self):
        return (
            Param("delay_s", self.n_taps, SigmoidRange(0.0, self.max_delay_s), False, unit="s",
                  doc="delay of each tap"),
            Param("gains", self.n_taps, SigmoidRange(-1.0, 1.0), False, unit="linear",
                  doc="gain of each tap"),
        )

    def forward(self, x: Tensor, delay_s: Tensor, gains: Tensor) -> Tensor:
        check_audio("MultitapDelay", x)
        self.check_params({"delay_s": delay_s, "gains": gains})
        if bool((delay_s < 0).any()) or bool((delay_s > self.max_delay_s).any()):
            raise ValueError(
                f"MultitapDelay.delay_s must lie in [0, max_delay_s={self.max_delay_s}]"
            )
        max_delay = math.ceil(self.max_delay_s * self.sample_rate)
        wet = multitap(x, (delay_s * self.sample_rate).to(x.dtype), gains.to(x.dtype), max_delay)
        return x + wet if self.dry else wet

    @classmethod
    def examples(cls):
        return [{"max_delay_s": 0.05}, {"n_taps": 2, "max_delay_s": 0.01, "dry": False}]

    # --- block rendering ----------------------------------------------------------------
    def latency_frames(self, hop: int) -> int:
        return 0

    def state_specs(self):
        return (State("line", "(B, C, ceil(max_delay_s * sample_rate) + 1) the last input "
                              "samples (the delay line)"),)

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        n = self._max_delay + 1
        return {"line": torch.zeros(batch, int(input_channels[0]), n, dtype=like.dtype,
                                    device=like.device)}

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        x = inputs[0]
        line = torch.cat([state["line"], x], dim=-1)
        delay = (params["delay_s"] * self.sample_rate).to(x.dtype)
        wet = multitap_block(line, delay, params["gains"].to(x.dtype), self._max_delay)
        new: Dict[str, Tensor] = {"line": line[..., line.shape[-1] - self._max_delay - 1:]}
        return (x + wet if self.dry else wet), new
