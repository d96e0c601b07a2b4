"""A stateful, scriptable sample-rate converter for live streams (polyphase windowed sinc).

For rates ``in_rate`` and ``out_rate`` with ``out_rate / in_rate = L / M`` (reduced), output
sample ``k`` is the band-limited input evaluated at input time ``k * M / L - delay``:

``y[k] = sum_{j<K} x[n_k - j] * h(K/2 - j - frac_k)``, ``n_k = floor(k M / L)``,
``frac_k = (k M mod L) / L``,

with ``h`` a Kaiser-windowed sinc of half-width ``K / 2`` input samples and cut-off at
``rolloff`` times the lower Nyquist frequency; each of the ``L`` phases is normalised to unit
DC gain. The filter is causal: output ``k`` needs inputs up to ``n_k`` only, so it lags by
``delay = K / 2`` input samples. After ``n`` input samples in total exactly
``ceil(n L / M)`` outputs have been produced, whatever the block sizes (blocks of any size
give the same samples as one call). Equal rates pass the audio through (no delay).

State: the last ``K - 1`` input samples and two counters (reduced modulo ``L`` / ``M`` so they
stay small). :meth:`StreamResampler.set_rates` rebuilds the filter and resets the state.
"""

from __future__ import annotations

import math
from typing import Tuple

import torch
from torch import Tensor, nn

__all__ = ["StreamResampler", "resample_stream_delay"]


def _gcd(a: int, b: int) -> int:
    while b != 0:
        a, b = b, a % b
    return a


def _i0(x: Tensor) -> Tensor:
    return torch.special.i0(x)


class StreamResampler(nn.Module):
    """Polyphase windowed-sinc resampler with carried state (see the module docstring).

    Args:
        in_rate, out_rate: Hz (integers).
        zero_crossings: half-width of the sinc in zero crossings at the lower rate.
        rolloff: cut-off as a fraction of the lower Nyquist frequency.
        beta: Kaiser window parameter (8.6: about -90 dB side lobes).

    ``forward(x (B, n)) -> (B, m)`` float32/float64 as the input (computed in float64).
    Attributes ``delay_in`` (input samples) and ``delay_out`` (the same in output samples,
    a float).
    """

    def __init__(self, in_rate: int, out_rate: int, zero_crossings: int = 12,
                 rolloff: float = 0.92, beta: float = 8.6, batch: int = 1):
        super().__init__()
        self.zero_crossings = int(zero_crossings)
        self.rolloff = float(rolloff)
        self.beta = float(beta)
        self.batch = int(batch)
        self.in_rate = 0
        self.out_rate = 0
        self.up = 1
        self.down = 1
        self.taps = 2
        self.identity = True
        self.delay_in = 0
        self.table = torch.zeros(1, 2, dtype=torch.float64)
        self.history = torch.zeros(self.batch, 1, dtype=torch.float64)
        self.n_in = 0
        self.k_out = 0
        self.set_rates(int(in_rate), int(out_rate))

    @torch.jit.export
    def set_rates(self, in_rate: int, out_rate: int):
        """Rebuild the filter for new rates and start a new stream."""
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError("sample rates must be positive")
        g = _gcd(in_rate, out_rate)
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.up = out_rate // g
        self.down = in_rate // g
        self.identity = self.up == self.down
        ratio = min(1.0, float(self.up) / float(self.down))
        fc = 0.5 * ratio * self.rolloff  # cycles per input sample
        half = int(math.ceil(self.zero_crossings / (2.0 * fc)))
        self.taps = 2 * half if not self.identity else 2
        self.delay_in = half if not self.identity else 0
        p = torch.arange(self.up, dtype=torch.float64).unsqueeze(1) / float(self.up)
        j = torch.arange(self.taps, dtype=torch.float64).unsqueeze(0)
        t = float(half) - j - p  # (L, K) input-sample offsets of the taps
        arg = 2.0 * fc * t
        sinc = torch.where(arg == 0, torch.ones_like(arg),
                           torch.sin(math.pi * arg) / (math.pi * arg).masked_fill(arg == 0, 1.0))
        u = (t / float(half)).clamp(-1.0, 1.0)
        win = _i0(self.beta * torch.sqrt((1.0 - u * u).clamp_min(0.0))) / _i0(
            torch.tensor(self.beta, dtype=torch.float64))
        h = sinc * win
        self.table = h / h.sum(-1, keepdim=True)
        self.reset()

    @torch.jit.export
    def reset(self):
        """Start a new stream (silence before it)."""
        self.history = torch.zeros(self.batch, self.taps - 1, dtype=torch.float64,
                                   device=self.table.device)
        self.n_in = 0
        self.k_out = 0

    @torch.jit.export
    def n_outputs(self, n: int) -> int:
        """How many samples the next call with ``n`` input samples returns."""
        if self.identity:
            return n
        total = self.n_in + n
        return (total * self.up + self.down - 1) // self.down - self.k_out

    @torch.jit.export
    def delay_out(self) -> float:
        """The filter delay in output samples."""
        return float(self.delay_in) * float(self.up) / float(self.down)

    def forward(self, x: Tensor) -> Tensor:
        if self.identity:
            return x
        dtype = x.dtype
        n = x.shape[-1]
        buf = torch.cat([self.history, x.to(torch.float64)], -1)
        total = self.n_in + n
        k_end = (total * self.up + self.down - 1) // self.down
        k = torch.arange(self.k_out, k_end, device=x.device, dtype=torch.int64)
        nk = (k * self.down) // self.up
        ph = (k * self.down) % self.up
        base = self.n_in - (self.taps - 1)  # absolute index of buf[0]
        idx = (nk - base).unsqueeze(1) - torch.arange(self.taps, device=x.device).unsqueeze(0)
        y = (buf[:, idx] * self.table[ph]).sum(-1)
        self.history = buf[:, buf.shape[-1] - (self.taps - 1):]
        self.n_in = total
        self.k_out = k_end
        q = self.k_out // self.up
        if q > 0:  # keep the counters small (k -> k - qL shifts n_k by qM)
            self.k_out -= q * self.up
            self.n_in -= q * self.down
        return y.to(dtype)


def resample_stream_delay(in_rate: int, out_rate: int) -> Tuple[int, float]:
    """``(delay in input samples, delay in output samples)`` of a default resampler."""
    r = StreamResampler(in_rate, out_rate)
    return r.delay_in, r.delay_out()
