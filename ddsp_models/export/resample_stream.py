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

Whole-number ratios (``L = 1`` or ``M = 1``, e.g. 48 kHz ↔ 16 kHz) take a fast path: the
``K``-sample windows are a strided view of the input (``unfold`` with step ``M``) multiplied by
the ``L`` phases at once, with no index gather (the same samples as the general path up to
the order of the sum, and still exactly block-invariant). Other ratios gather the windows.
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
        self.table_rev = torch.zeros(1, 2, dtype=torch.float64)
        self.whole_ratio = False
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
        # (L, K) phases over a window in time order (oldest sample first): the fast path
        self.table_rev = self.table.flip(-1).contiguous()
        self.whole_ratio = (self.up == 1 or self.down == 1) and not self.identity
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
        if self.whole_ratio:
            return self._whole_ratio(buf, total, k_end).to(dtype)
        k = torch.arange(self.k_out, k_end, device=x.device, dtype=torch.int64)
        nk = (k * self.down) // self.up
        ph = (k * self.down) % self.up
        # the window of output k ends at input n_k: it starts at buf[n_k - n_in]
        win = buf.unfold(-1, self.taps, 1).index_select(1, nk - self.n_in)  # (B, m, K)
        y = (win * self.table_rev.index_select(0, ph)).sum(-1)
        self.history = buf[:, buf.shape[-1] - (self.taps - 1):]
        self.n_in = total
        self.k_out = k_end
        q = self.k_out // self.up
        if q > 0:  # keep the counters small (k -> k - qL shifts n_k by qM)
            self.k_out -= q * self.up
            self.n_in -= q * self.down
        return y.to(dtype)

    def _whole_ratio(self, buf: Tensor, total: int, k_end: int) -> Tensor:
        """The fast path for ``L = 1`` or ``M = 1``. There the reduced counters start every
        call at ``k_out = 0`` and ``-M < n_in <= 0``, so output ``k = qL + r`` (phase ``r``)
        is the window of ``K`` samples ending at input ``qM``, which starts at ``buf[qM -
        n_in]``."""
        start = -self.n_in
        periods = (k_end + self.up - 1) // self.up
        if periods == 0:  # too few inputs for an output yet
            self.history = buf[:, buf.shape[-1] - (self.taps - 1):]
            self.n_in = total
            return buf.new_zeros(buf.shape[0], 0)
        win = buf[:, start:].unfold(-1, self.taps, self.down)[:, :periods]  # (B, Q, K)
        y = (win.unsqueeze(-2) * self.table_rev).sum(-1)  # (B, Q, L)
        y = y.reshape(buf.shape[0], periods * self.up)[:, :k_end]
        self.history = buf[:, buf.shape[-1] - (self.taps - 1):]
        self.n_in = total - k_end // self.up * self.down
        self.k_out = k_end % self.up
        return y


def resample_stream_delay(in_rate: int, out_rate: int) -> Tuple[int, float]:
    """``(delay in input samples, delay in output samples)`` of a default resampler."""
    r = StreamResampler(in_rate, out_rate)
    return r.delay_in, r.delay_out()
