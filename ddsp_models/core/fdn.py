"""Feedback delay networks (FDN): exact block recursion and the frequency-sampled response.

The network (Jot and Chaigne 1991; Schlecht and Habets 2017 for the matrices) has ``N`` delay
lines of ``m_i`` samples, a lossless (orthogonal) feedback matrix ``A`` and a first-order
absorption filter ``H_i(z)`` at the output of each line::

    s_i[n] = v_i[n - m_i]                       (delay line output)
    a_i[n] = (H_i s_i)[n]                       (absorption)
    v[n]   = b u[n] + A a[n]                    (line inputs: input gains b, feedback)
    y[n]   = C a[n]                             (outputs: C is (channels, N))

Its transfer function is ``C (I - P(z) A)^{-1} P(z) b`` with ``P(z) = diag(H_i(z) z^{-m_i})``.

**Block recursion.** Feedback reaches a line's input no sooner than ``min_i m_i`` samples after
it left: the outputs of all lines over the next ``min(m)`` samples are already stored in the
lines. :func:`fdn_block` therefore advances all lines ``min(m)`` samples at a time: read the
block of line outputs (one gather), run the absorption filters over it (a first-order
recursion with exact gradients, :func:`~ddsp_models.core.iir.lfilter_block`), mix with
``A`` (one matrix product), write the block of line inputs. The result equals the per-sample
loop exactly (same operations per sample); gradients are exact (autograd through the block
loop and the all-pole adjoint).

**Absorption.** A line of ``m`` samples must attenuate by ``g(f) = 10^(-3 m / (fs T60(f)))``
per pass for every mode near ``f`` to decay by 60 dB in ``T60(f)`` seconds
(:func:`absorption_filters`): ``"shelf"`` is the bilinear transform of the first-order shelf
``(g_pi s + g_0 w) / (s + w)`` (``w`` pre-warped at the crossover), exact at DC (``T60_low``)
and Nyquist (``T60_high``), with the transition centred on the crossover; ``"one_pole"``
(Jot's) is ``g_0 (1 - p) / (1 - p z^-1)`` with ``p = (g_0 - g_pi) / (g_0 + g_pi)``: exact at DC
and Nyquist, transition set by the gains.

**Frequency sampling.** :func:`fdn_frequency_response` evaluates the transfer function on the
``n_fft``-point FFT grid (an ``N x N`` solve per bin); its inverse FFT
(:func:`fdn_impulse_response`) is the impulse response time-aliased modulo ``n_fft``
(``h_fs[n] = sum_k h[n + k n_fft]``): close to the exact one when the tail has decayed by
``n_fft``.

Everything here is TorchScript-compatible (the absorption recursion runs the compiled kernel in
Python and a loop when scripted).
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from .iir import lfilter_block

__all__ = [
    "FEEDBACK_MATRICES",
    "ABSORPTIONS",
    "prime_delays",
    "matrix_factor",
    "feedback_matrix",
    "absorption_filters",
    "fdn_block",
    "fdn_frequency_response",
    "fdn_impulse_response",
]

FEEDBACK_MATRICES = ("householder", "hadamard", "orthogonal")
ABSORPTIONS = ("shelf", "one_pole", "none")



def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    k = 3
    while k * k <= n:
        if n % k == 0:
            return False
        k += 2
    return True


def prime_delays(n_lines: int, sample_rate: float, min_ms: float, max_ms: float) -> List[int]:
    """``n_lines`` distinct prime delays (samples), near geometrically spaced targets from
    ``min_ms`` to ``max_ms`` (mutually prime lengths spread the modes evenly).

    Each target is rounded to the nearest prime not taken yet (ties to the smaller)."""
    if n_lines < 1:
        raise ValueError(f"n_lines must be >= 1, got {n_lines}")
    if not 0 < min_ms <= max_ms:
        raise ValueError(f"need 0 < min_ms <= max_ms, got {min_ms}, {max_ms}")
    lo, hi = min_ms * 1e-3 * sample_rate, max_ms * 1e-3 * sample_rate
    targets = [lo] if n_lines == 1 else list(np.geomspace(lo, hi, n_lines))
    out: List[int] = []
    for t in targets:
        c = max(2, int(round(t)))
        for d in range(0, 10 * c + 10):
            hit = [k for k in (c - d, c + d) if _is_prime(k) and k not in out]
            if hit:
                out.append(hit[0])
                break
    return out


def _hadamard_signs(n: int) -> np.ndarray:
    if n < 1 or n & (n - 1):
        raise ValueError(f"a Hadamard matrix needs a power of two lines, got {n}")
    h = np.ones((1, 1))
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def matrix_factor(kind: str, n: int, seed: int = 0) -> Tensor:
    """What :func:`feedback_matrix` builds the ``(n, n)`` orthogonal matrix from, as a float32
    tensor (its values are exact in float32, so casting a module to float64 and back never
    changes them, and the matrix built in any dtype is orthogonal to that dtype's rounding).

    * ``"householder"``: ``(1, n)`` ones: the reflection ``I - (2 / n) 1 1^T``;
    * ``"hadamard"``: ``(n, n)`` Sylvester's +-1 Hadamard matrix (``n`` a power of two), scaled
      by ``1 / sqrt(n)``: the densest mixing;
    * ``"orthogonal"``: ``(n, n)`` Gaussian vectors from ``seed`` (rounded to float32): the
      product of the ``n`` reflections ``I - 2 v v^T / |v|^2``, a random orthogonal matrix.
    """
    if kind == "householder":
        return torch.ones(1, n)
    if kind == "hadamard":
        return torch.from_numpy(_hadamard_signs(n)).float()
    if kind == "orthogonal":
        g = torch.Generator().manual_seed(int(seed))
        return torch.randn(n, n, generator=g)
    raise ValueError(f"unknown feedback matrix {kind!r}; choose one of {FEEDBACK_MATRICES}")


def feedback_matrix(kind: str, factor: Tensor) -> Tensor:
    """The orthogonal ``(n, n)`` feedback matrix from :func:`matrix_factor`'s ``factor``, in
    ``factor``'s dtype (cast it first: the values are exact in any float dtype)."""
    n = factor.shape[-1]
    if kind == "hadamard":
        return factor / math.sqrt(n)
    eye = torch.eye(n, dtype=factor.dtype, device=factor.device)
    out = eye
    for k in range(factor.shape[0]):  # out <- (I - 2 v v^T / v^T v) out
        v = factor[k]
        out = out - (2.0 / (v * v).sum()) * v[:, None] * (v[None, :] @ out)
    return out


def absorption_filters(
    kind: str,
    delays: Tensor,
    sample_rate: float,
    t60_low_s: Tensor,
    t60_high_s: Tensor,
    crossover_hz: Tensor,
) -> Tuple[Tensor, Tensor]:
    """First-order absorption filters ``(b0 + b1 z^-1) / (1 + a1 z^-1)`` per line.

    Args:
        kind: ``"shelf"`` or ``"one_pole"`` (see the module docstring; ``"none"`` gives unit
            filters ``b = [1, 0]``, ``a = [1, 0]``).
        delays: ``(N,)`` line lengths in samples (floating point).
        sample_rate: Hz.
        t60_low_s, t60_high_s: ``(..., 1)`` reverberation time at DC and at Nyquist, seconds.
        crossover_hz: ``(..., 1)`` the shelf's transition frequency, Hz (unused by
            ``"one_pole"``).

    Returns:
        ``(b (..., N, 2), a (..., N, 2))``, ``a[..., 0] = 1``; the DC gain of line ``i`` is
        ``10^(-3 m_i / (fs t60_low))``, the Nyquist gain ``10^(-3 m_i / (fs t60_high))``.
    """
    m = delays.to(t60_low_s.dtype)
    log_g0 = (-6.907755278982137 / sample_rate) * m / t60_low_s  # (..., N)
    log_gp = (-6.907755278982137 / sample_rate) * m / t60_high_s
    g0, gp = torch.exp(log_g0), torch.exp(log_gp)
    if kind == "shelf":
        w = torch.tan(math.pi * crossover_hz / sample_rate)  # (..., 1)
        b0 = (gp + g0 * w) / (1 + w)
        b1 = (g0 * w - gp) / (1 + w)
        a1 = ((w - 1) / (1 + w)).expand(b0.shape)
    elif kind == "one_pole":
        p = (g0 - gp) / (g0 + gp)
        b0 = g0 * (1 - p)
        b1 = torch.zeros_like(b0)
        a1 = -p
    elif kind == "none":
        b0 = torch.ones_like(g0)
        b1 = torch.zeros_like(g0)
        a1 = torch.zeros_like(g0)
    else:
        raise ValueError("unknown absorption " + kind)
    return torch.stack([b0, b1], -1), torch.stack([torch.ones_like(a1), a1], -1)


def fdn_block(
    u: Tensor,
    input_gains: Tensor,
    output_gains: Tensor,
    matrix: Tensor,
    delays: List[int],
    filter_b: Tensor,
    filter_a: Tensor,
    lines: Tensor,
    filter_x: Tensor,
    filter_y: Tensor,
    absorb: bool = True,
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Run the FDN over one block from a carried state (exact; see the module docstring).

    Args:
        u: ``(B, L)`` input, any ``L >= 0``.
        input_gains: ``(B, N)`` ``b``.
        output_gains: ``(B, C, N)`` ``C``.
        matrix: ``(N, N)`` or ``(B, N, N)`` feedback matrix ``A``.
        delays: the ``N`` line lengths ``m_i >= 1``, samples.
        filter_b, filter_a: ``(B, N, 2)`` absorption filters (:func:`absorption_filters`).
        lines: ``(B, N, max(m))`` the last line inputs ``v``, oldest first (zeros: silence).
        filter_x, filter_y: ``(B, N, 1)`` the absorption filters' last input and output.
        absorb: False skips the filters (unit absorption: a lossless loop with an orthogonal
            ``A``); ``filter_x, filter_y`` are then returned unchanged.

    Returns:
        ``(y (B, C, L), lines, filter_x, filter_y)``: the output and the new state. Running
        blocks one after another, each from the state the previous one returned, equals
        running the whole signal at once.
    """
    n_lines = len(delays)
    longest = lines.shape[-1]
    step = min(delays)
    length = u.shape[-1]
    offsets = torch.tensor(delays, dtype=torch.long, device=u.device)
    start = (longest - offsets)[:, None]  # (N, 1): where each line's output block starts
    outs: List[Tensor] = []
    pos = 0
    while pos < length:
        take = min(step, length - pos)
        idx = start + torch.arange(take, dtype=torch.long, device=u.device)[None, :]
        s = torch.gather(lines, 2, idx[None].expand(lines.shape[0], n_lines, take))
        if absorb:
            s, filter_x, filter_y = lfilter_block(s, filter_b, filter_a, filter_x, filter_y)
        outs.append(torch.matmul(output_gains, s))  # (B, C, take)
        v = input_gains[:, :, None] * u[:, None, pos:pos + take] + torch.matmul(matrix, s)
        lines = torch.cat([lines, v], dim=-1)[..., take:]
        pos += take
    if len(outs) == 0:
        y = u.new_zeros(u.shape[0], output_gains.shape[1], 0)
    else:
        y = torch.cat(outs, dim=-1)
    return y, lines, filter_x, filter_y


def fdn_frequency_response(
    input_gains: Tensor,
    output_gains: Tensor,
    matrix: Tensor,
    delays: List[int],
    filter_b: Tensor,
    filter_a: Tensor,
    n_fft: int,
    reflection: Optional[Tensor] = None,
) -> Tensor:
    """``C (I - P A)^{-1} P b`` on the ``n_fft // 2 + 1`` bins ``f_k = k fs / n_fft``.

    Shapes as in :func:`fdn_block`. Returns ``(B, C, n_fft // 2 + 1)`` complex. The delay
    phases are computed from ``k m_i mod n_fft`` in integers (exact in float32 too).

    ``reflection``: a vector ``v`` ``(N,)`` when ``A`` is the single reflection
    ``I - 2 v v^T / v^T v`` (the Householder matrix: ``v = 1``); ``matrix`` is then not read
    and each bin costs ``O(N)`` (Sherman-Morrison: ``(I - P) x + 2 P w (w^T x) = P b`` with
    ``w = v / |v|``; ``1 - p_i != 0`` since absorbing lines have ``|p_i| < 1``) instead of an
    ``N x N`` solve.
    """
    n_bins = n_fft // 2 + 1
    device = input_gains.device
    k = torch.arange(n_bins, dtype=torch.long, device=device)
    m = torch.tensor(delays, dtype=torch.long, device=device)
    turns = torch.remainder(k[:, None] * m[None, :], n_fft).to(input_gains.dtype) / n_fft
    delay = torch.polar(torch.ones_like(turns), (-2.0 * math.pi) * turns)  # (K, N) z^-m
    zk = torch.polar(torch.ones(n_bins, dtype=input_gains.dtype, device=device),
                     (-2.0 * math.pi / n_fft) * k.to(input_gains.dtype))  # (K,) z^-1
    num = filter_b[..., None, :, 0] + filter_b[..., None, :, 1] * zk[:, None]  # (B, K, N)
    den = filter_a[..., None, :, 0] + filter_a[..., None, :, 1] * zk[:, None]
    p = num / den * delay  # (B, K, N)
    if reflection is not None:
        w = (reflection / torch.sqrt((reflection * reflection).sum())).to(p.dtype)  # (N,)
        q = p / (1 - p)  # D^-1 P, D = I - P
        s = (q * input_gains[:, None, :] * w).sum(-1) / (1 + 2 * (q * w * w).sum(-1))
        a = q * (input_gains[:, None, :] - 2 * w * s[..., None])  # (B, K, N)
    else:
        eye = torch.eye(len(delays), dtype=input_gains.dtype, device=device)
        system = eye - p[..., :, None] * matrix.to(p.dtype)[..., None, :, :]  # (B, K, N, N)
        rhs = p * input_gains[:, None, :]
        a = torch.linalg.solve(system, rhs[..., None])[..., 0]  # (B, K, N)
    return torch.matmul(output_gains.to(a.dtype), a.transpose(1, 2))  # (B, C, K)


def fdn_impulse_response(
    input_gains: Tensor,
    output_gains: Tensor,
    matrix: Tensor,
    delays: List[int],
    filter_b: Tensor,
    filter_a: Tensor,
    n_fft: int,
    reflection: Optional[Tensor] = None,
) -> Tensor:
    """The frequency-sampled impulse response ``(B, C, n_fft)``: the inverse FFT of
    :func:`fdn_frequency_response` (same arguments), i.e. the exact impulse response
    time-aliased modulo ``n_fft``."""
    resp = fdn_frequency_response(input_gains, output_gains, matrix, delays, filter_b,
                                  filter_a, n_fft, reflection)
    return torch.fft.irfft(resp, n_fft)
