"""Velvet noise and sparse convolution.

Velvet noise (Järveläinen & Karjalainen 2007; Välimäki, Lehtonen & Takanen, "A perceptual
study on velvet noise and its variants at different pulse densities", IEEE TASLP 2013) is a sparse sequence of ``±1`` pulses: the time axis is
cut into grid periods of ``T_d = sample_rate / density_hz`` samples and each period holds
exactly one pulse, at a random position inside it and of random sign:

    ``k_m = round(m T_d + r1_m (T_d - 1))``,   ``s_m = +1 if r2_m >= 0.5 else -1``,

``r1, r2`` uniform in ``[0, 1)`` from a seeded generator (:func:`velvet_pulses`). Positions
are strictly increasing and ``k_m`` lies in ``[round(m T_d), round((m + 1) T_d) - 1]``.

A filter whose impulse response is such a sequence (with per-pulse gains ``g_m``) is applied
by **sparse convolution**: ``y[n] = Σ_m g_m x[n - k_m]`` costs ``M`` multiply-adds per output
sample for ``M`` pulses, whatever the IR's length (:func:`sparse_convolve_block`, and
:func:`sparse_convolve` for whole signals, with a memory-lean custom backward). Several gain
rows ``G[k, m]`` over the same pulses give several outputs from one gather of the input (used
for band-wise decays: one row per frequency band).

:func:`complementary_fir_bands` designs the fixed linear-phase FIR band split the reverb uses:
the bands sum to a pure delay of ``(taps - 1) / 2`` samples.

Everything but :func:`sparse_convolve` (a custom autograd function) and the design helpers is
TorchScript-compatible.
"""

from __future__ import annotations

import math
import types
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ._numba import import_numba, numba_available, use_numba

__all__ = [
    "velvet_pulses",
    "velvet_gains",
    "sparse_convolve_block",
    "sparse_convolve",
    "dense_velvet",
    "complementary_fir_bands",
]

#: Elements of one gathered chunk ``(batch, channels, pulses, samples)`` (bounds memory).
CHUNK_ELEMENTS = 1 << 20


def velvet_pulses(length: int, density_hz: float, sample_rate: float,
                  seed: int = 0) -> Tuple[Tensor, Tensor]:
    """The pulses of a velvet-noise sequence of ``length`` samples.

    Args:
        length: samples of the sequence; the pulse count is ``M = floor(length / T_d)``
            (whole grid periods only), ``T_d = sample_rate / density_hz``.
        density_hz: pulses per second (``<= sample_rate``).
        sample_rate: Hz.
        seed: seed of the generator (a CPU ``torch.Generator``: the same on every machine).

    Returns:
        ``(positions (M,) int64 samples, strictly increasing, < length; signs (M,) float64
        ±1)``.
    """
    if not 0 < density_hz <= sample_rate:
        raise ValueError(f"density_hz must lie in (0, sample_rate={sample_rate}], "
                         f"got {density_hz}")
    period = float(sample_rate) / float(density_hz)
    m = int(math.floor(int(length) / period + 1e-9))
    if m < 1:
        raise ValueError(f"no whole grid period of {period:.2f} samples fits in {length} "
                         "samples: raise density_hz or the length")
    g = torch.Generator().manual_seed(int(seed))
    r = torch.rand(m, 2, generator=g, dtype=torch.float64)
    grid = torch.arange(m, dtype=torch.float64) * period
    positions = torch.round(grid + r[:, 0] * (period - 1.0)).long()
    signs = torch.where(r[:, 1] >= 0.5, 1.0, -1.0).to(torch.float64)
    return positions, signs


def velvet_gains(signs: Tensor, time_s: Tensor, band_gains: Tensor,
                 band_decays_s: Tensor) -> Tensor:
    """Per-band pulse gains ``G[..., k, m] = gain_k · s_m · 10^(-3 t_m / T60_k)``.

    Args:
        signs: ``(M,)`` ±1.
        time_s: ``(M,)`` pulse times in seconds.
        band_gains: ``(..., K)`` linear level of each band at time 0.
        band_decays_s: ``(..., K)`` time for each band to decay by 60 dB (s).

    Returns:
        ``(..., K, M)`` in ``band_gains``' dtype.
    """
    t = time_s.to(band_gains.dtype)
    env = torch.exp((-3.0 * math.log(10.0)) * t / band_decays_s[..., None])
    return band_gains[..., None] * signs.to(band_gains.dtype) * env


def sparse_convolve_block(line: Tensor, delays: Tensor, gains: Tensor, n: int,
                          chunk_elements: int = 1048576) -> Tensor:
    """Sparse convolution of the last ``n`` samples of ``line``.

    Args:
        line: ``(B, C, D + n)``: the ``D >= max(delays)`` input samples before the block (zeros
            before a signal's start), then the block's ``n`` samples.
        delays: ``(M,)`` int64 pulse delays in samples, in ``[0, D]``.
        gains: ``(B | 1, K, M)`` gain of each pulse in each of ``K`` outputs.
        n: samples of the block.
        chunk_elements: elements of one gathered chunk ``(B, C, pulses, n)`` (bounds memory;
            default :data:`CHUNK_ELEMENTS`).

    Returns:
        ``(B, C, K, n)``:
        ``out[b, c, k, i] = Σ_m gains[b, k, m] · line[b, c, D + i - delays[m]]``.
        Cost ``O(M n)`` gathers and ``O(K M n)`` multiply-adds per channel; memory is bounded by
        working on chunks of pulses.
    """
    b, c, total = line.shape
    d = total - n
    k = gains.shape[1]
    m = delays.shape[0]
    windows = line.unfold(2, n, 1)  # (B, C, D + 1, n): windows[..., j, i] = line[j + i]
    offsets = d - delays
    chunk = max(1, min(m, chunk_elements // max(1, b * c * n)))
    out = torch.zeros(b, c, k, n, dtype=line.dtype, device=line.device)
    start = 0
    while start < m:
        stop = min(m, start + chunk)
        sel = windows.index_select(2, offsets[start:stop])  # (B, C, P, n)
        out = out + torch.matmul(gains[:, None, :, start:stop], sel)  # (B|1,1,K,P) @ (B,C,P,n)
        start = stop
    return out


def _forward(x: Tensor, delays: Tensor, gains: Tensor, d: int) -> Tensor:
    return sparse_convolve_block(F.pad(x, (d, 0)), delays, gains, x.shape[-1])


# --- numba kernels (CPU): the same sums as loops over pulses with a contiguous inner loop ---
_KERNELS = None  # {name: (serial, parallel)} once compiled, False without numba

#: rows * pulses * samples above which the kernels use several threads (see :func:`_run`).
PARALLEL_MIN_WORK = 1 << 27


def _kernels():
    global _KERNELS
    if _KERNELS is not None:
        return _KERNELS
    if not numba_available():
        _KERNELS = False
        return _KERNELS
    numba = import_numba()

    def forward_kernel(x, delays, g, channels, out):
        # x (R, L), delays (M,), g (B, K, M), out (R, K, L) zeroed; row r is batch r // channels
        n_rows, length = x.shape
        n_bands, n_pulses = g.shape[1], g.shape[2]
        for r in numba.prange(n_rows):
            b = r // channels
            for m in range(n_pulses):
                d = delays[m]
                valid = length - d
                if valid <= 0:  # a delay past the signal's end adds nothing
                    continue
                src = x[r, 0:valid]
                for k in range(n_bands):
                    gain = g[b, k, m]
                    dst = out[r, k, d:length]  # views: non-negative indices, loop vectorises
                    for n in range(valid):
                        dst[n] += gain * src[n]

    def grad_x_kernel(dy, delays, g, channels, gx):
        # gx[r, n] = sum_{k, m} g[b, k, m] dy[r, k, n + d_m]; gx (R, L) zeroed
        n_rows, n_bands, length = dy.shape
        n_pulses = g.shape[2]
        for r in numba.prange(n_rows):
            b = r // channels
            for m in range(n_pulses):
                d = delays[m]
                valid = length - d
                if valid <= 0:
                    continue
                dst = gx[r, 0:valid]
                for k in range(n_bands):
                    gain = g[b, k, m]
                    src = dy[r, k, d:length]
                    for n in range(valid):
                        dst[n] += gain * src[n]

    def grad_g_kernel(dy, x, delays, channels, gg):
        # gg[b, k, m] = sum_{c, n} dy[b C + c, k, n] x[b C + c, n - d_m]; gg (B, K, M)
        n_rows, n_bands, length = dy.shape
        n_batch, n_pulses = gg.shape[0], gg.shape[2]
        for i in numba.prange(n_batch * n_pulses):
            b = i // n_pulses
            m = i % n_pulses
            d = delays[m]
            valid = length - d
            for k in range(n_bands):
                acc = 0.0
                for c in range(channels):
                    if valid <= 0:
                        break
                    r = b * channels + c
                    a = dy[r, k, d:length]
                    xs = x[r, 0:valid]
                    for n in range(valid):
                        acc += a[n] * xs[n]
                gg[b, k, m] = acc

    def twins(fn, fastmath=False):
        # the parallel twin gets its own name so that both live in numba's on-disk cache
        code = fn.__code__
        kw = {"co_name": code.co_name + "_parallel"}
        if hasattr(code, "co_qualname"):
            kw["co_qualname"] = code.co_qualname + "_parallel"
        twin = types.FunctionType(code.replace(**kw), fn.__globals__, kw["co_name"], None,
                                  fn.__closure__)
        return (numba.njit(cache=True, fastmath=fastmath)(fn),
                numba.njit(parallel=True, cache=True, fastmath=fastmath)(twin))

    _KERNELS = {"forward": twins(forward_kernel), "grad_x": twins(grad_x_kernel),
                "grad_g": twins(grad_g_kernel, fastmath=True)}
    return _KERNELS


def _run(name: str, work: int, *args) -> None:
    """The serial kernel, or its numba-parallel twin for big work when torch itself may use
    several threads (``torch.get_num_threads() > 1``): numba's thread pool competes with
    torch's, and after a parallel call torch ops were measured several times slower on a
    busy 2-core machine."""
    serial, parallel = _kernels()[name]
    big = work >= PARALLEL_MIN_WORK and torch.get_num_threads() > 1
    (parallel if big else serial)(*args)


def _numba_forward(x: Tensor, delays: Tensor, gains: Tensor) -> Tensor:
    b, c, n = x.shape
    k, m = gains.shape[1], gains.shape[2]
    g = gains.detach().expand(b, k, m).contiguous().numpy()
    out = torch.zeros(b, c, k, n, dtype=x.dtype)
    _run("forward", b * c * m * n, x.detach().reshape(b * c, n).contiguous().numpy(),
         delays.numpy(), g, c, out.view(b * c, k, n).numpy())
    return out


def _numba_backward(grad: Tensor, x: Tensor, delays: Tensor, gains: Tensor, need_x: bool,
                    need_g: bool) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    b, c, k, n = grad.shape
    m = delays.shape[0]
    dy = grad.detach().reshape(b * c, k, n).contiguous().numpy()
    d = delays.numpy()
    grad_x = grad_g = None
    if need_x:
        g = gains.detach().expand(b, k, m).contiguous().numpy()
        grad_x = torch.zeros(b, c, n, dtype=grad.dtype)
        _run("grad_x", b * c * m * n, dy, d, g, c, grad_x.view(b * c, n).numpy())
    if need_g:
        grad_g = torch.zeros(b, k, m, dtype=grad.dtype)
        _run("grad_g", b * c * m * n, dy, x.detach().reshape(b * c, n).contiguous().numpy(),
             d, c, grad_g.numpy())
    return grad_x, grad_g


class _SparseConvolve(torch.autograd.Function):
    """``y[b, c, k, n] = Σ_m G[b, k, m] x[b, c, n - d_m]`` with a backward that gathers again
    instead of saving the gathered input (memory ``O(B C K L)``, not ``O(B C M L)``)."""

    @staticmethod
    def forward(ctx, x: Tensor, delays: Tensor, gains: Tensor, d: int, fast: bool) -> Tensor:
        ctx.save_for_backward(x, delays, gains)
        ctx.d, ctx.fast = d, fast
        if fast:
            return _numba_forward(x, delays, gains)
        return _forward(x, delays, gains, d)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        x, delays, gains = ctx.saved_tensors
        d = ctx.d
        need_x, need_g = ctx.needs_input_grad[0], ctx.needs_input_grad[2]
        b, c, k, n = grad.shape
        if ctx.fast:
            grad_x, grad_g = _numba_backward(grad, x, delays, gains, need_x, need_g)
        else:
            grad_x = grad_g = None
            if need_x:
                # dx[n] = Σ_{k,m} G[k,m] dy_k[n + d_m]: the same sparse convolution of the
                # time-reversed output gradient, one band row at a time.
                rev = grad.flip(-1)
                acc = torch.zeros(b, c, n, dtype=grad.dtype, device=grad.device)
                for j in range(k):
                    acc = acc + _forward(rev[:, :, j], delays, gains[:, j:j + 1], d)[:, :, 0]
                grad_x = acc.flip(-1)
            if need_g:
                # dG[b,k,m] = Σ_{c,n} dy[b,c,k,n] x[b,c,n - d_m]
                windows = F.pad(x, (d, 0)).unfold(2, n, 1)  # (B, C, D + 1, L)
                offsets = d - delays
                m = delays.shape[0]
                chunk = max(1, min(m, CHUNK_ELEMENTS // max(1, b * c * n)))
                parts: List[Tensor] = []
                for start in range(0, m, chunk):
                    sel = windows.index_select(2, offsets[start:start + chunk])  # (B, C, P, L)
                    parts.append(torch.einsum("bckl,bcpl->bkp", grad, sel))
                grad_g = torch.cat(parts, dim=-1)
        if grad_g is not None and gains.shape[0] == 1 and b > 1:
            grad_g = grad_g.sum(0, keepdim=True)
        return grad_x, None, grad_g, None, None


def sparse_convolve(x: Tensor, delays: Tensor, gains: Tensor,
                    max_delay: Optional[int] = None, backend: str = "auto") -> Tensor:
    """Causal sparse convolution of whole signals (zeros before the start).

    Args:
        x: ``(B, C, L)``.
        delays: ``(M,)`` int64 pulse delays in samples (``>= 0``).
        gains: ``(B | 1, K, M)`` gain of each pulse in each of ``K`` outputs.
        max_delay: ``>= max(delays)`` (default: ``max(delays)``, after checking that no delay
            is negative: one device sync).
        backend: ``"auto"`` (numba loops on CPU, else torch gathers), ``"numba"`` or
            ``"torch"`` (:mod:`ddsp_models.core._numba`).

    Returns:
        ``(B, C, K, L)``: ``y[b, c, k, n] = Σ_m gains[b, k, m] · x[b, c, n - delays[m]]``,
        equal to ``numpy.convolve(x, dense_ir_k)[:L]``. Cost ``O(M L)`` gathers; gradients
        for ``x`` and ``gains`` (a custom backward that gathers again rather than storing the
        ``(B, C, M, L)`` gathered input). On CPU (``backend="auto"``) numba loops over the
        pulses with a contiguous inner loop over samples; elsewhere chunks of pulses are
        gathered with :func:`sparse_convolve_block`.
    """
    if x.dim() != 3:
        raise ValueError(f"sparse_convolve expects x (B, C, L), got {tuple(x.shape)}")
    if gains.dim() != 3 or gains.shape[-1] != delays.shape[0]:
        raise ValueError(f"gains must be (B | 1, K, M={delays.shape[0]}), got "
                         f"{tuple(gains.shape)}")
    if max_delay is None:  # validated once here (a device sync); callers passing it own it
        if bool((delays < 0).any()):
            raise ValueError("sparse_convolve: delays must be >= 0 (causal)")
        max_delay = int(delays.max())
    d = int(max_delay)
    delays = delays.to(device=x.device, dtype=torch.int64)
    fast = use_numba(x, backend)
    return _SparseConvolve.apply(x, delays, gains.to(x.dtype), d, fast)


def dense_velvet(delays: Tensor, gains: Tensor, length: int) -> Tensor:
    """The dense impulse responses ``(..., K, length)`` of pulses ``delays (M,)`` with gains
    ``(..., K, M)`` (for references and FFT convolution)."""
    out = torch.zeros(*gains.shape[:-1], int(length), dtype=gains.dtype, device=gains.device)
    idx = delays.to(gains.device).expand(gains.shape)
    return out.scatter_add(-1, idx, gains)


def complementary_fir_bands(crossovers_hz: List[float], sample_rate: float,
                            taps: int) -> Tensor:
    """A linear-phase FIR band split whose bands sum to a pure delay.

    Windowed-sinc (Blackman) lowpasses ``LP_i`` at each crossover, each of unit DC gain:
    band 0 = ``LP_1``, band ``i`` = ``LP_{i+1} - LP_i``, the last band = ``δ_c - LP_last``
    with ``c = (taps - 1) / 2``. Their sum is ``δ_c`` exactly (up to rounding): with equal
    decays in every band, a band-split velvet IR is the plain velvet IR delayed by ``c``.
    The Blackman window's transition is about ``5.5 · sample_rate / taps`` Hz wide.

    Args:
        crossovers_hz: ``K - 1`` increasing frequencies in ``(0, sample_rate / 2)``.
        sample_rate: Hz.
        taps: odd filter length.

    Returns:
        ``(K, taps)`` float64.
    """
    taps = int(taps)
    if taps < 1 or taps % 2 == 0:
        raise ValueError(f"filter_taps must be odd and >= 1, got {taps}")
    f = [float(v) for v in crossovers_hz]
    if any(not 0 < v < sample_rate / 2 for v in f) or any(b <= a for a, b in zip(f, f[1:])):
        raise ValueError(f"crossovers_hz must increase inside (0, {sample_rate / 2}), got {f}")
    c = (taps - 1) / 2
    t = np.arange(taps) - c
    window = np.blackman(taps + 2)[1:-1]  # no zero end taps
    lows = []
    for fc in f:
        h = 2 * fc / sample_rate * np.sinc(2 * fc / sample_rate * t) * window
        lows.append(h / h.sum())
    delta = np.zeros(taps)
    delta[int(c)] = 1.0
    edges = [np.zeros(taps), *lows, delta]
    bands = [edges[i + 1] - edges[i] for i in range(len(f) + 1)]
    return torch.from_numpy(np.stack(bands)).to(torch.float64)
