"""FFT convolution and time-varying FIR filtering from frame-wise magnitude responses.

Audio is ``(..., samples)``. Impulse responses are ``(..., taps)`` (time-invariant) or
``(..., frames, taps)`` (one per control frame: one more axis than the audio). Magnitude
responses are ``(..., frames, n_bins)`` linearly spaced from 0 Hz to Nyquist, as in DDSP.

Time-varying filtering is block convolution: the audio is cut into blocks of ``hop`` samples
**centred on the frame centres** (block ``t`` spans ``[t·hop - hop//2, t·hop - hop//2 + hop)``,
the project's frame convention; DDSP starts block ``t`` at ``t·hop``), each block is convolved
with its frame's IR by FFT, and the results are overlap-added. With identical IRs in every
frame this equals one long convolution exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .shapes import broadcast_shapes

__all__ = ["fft_convolve", "causal_convolve", "fft_size", "frequency_impulse_response",
           "frequency_filter"]


def fft_size(n: int) -> int:
    """Smallest power of two ``>= n`` (fast for every FFT backend); the one such helper of the
    package (TorchScript-compatible)."""
    size = 1
    while size < n:
        size *= 2
    return size


def causal_convolve(x: Tensor, h: Tensor, n_out: int) -> Tensor:
    """The first ``n_out`` samples of the linear convolution of ``x`` ``(..., L)`` with ``h``
    ``(..., K)`` (leading axes broadcast), by FFT.

    One FFT of the whole signal when ``h`` is long; for short filters on long signals,
    overlap-add over blocks of ``K`` samples with FFTs of ``2K`` (fewer operations)."""
    length, taps = x.shape[-1], h.shape[-1]
    if length <= 4 * taps:
        n = fft_size(length + taps - 1)
        return torch.fft.irfft(torch.fft.rfft(x, n) * torch.fft.rfft(h, n), n)[..., :n_out]
    block = fft_size(taps)
    n_blocks = -(-length // block)
    xb = F.pad(x, (0, n_blocks * block - length)).reshape(*x.shape[:-1], n_blocks, block)
    spec = torch.fft.rfft(xb, 2 * block) * torch.fft.rfft(h, 2 * block)[..., None, :]
    yb = torch.fft.irfft(spec, 2 * block)  # (..., n_blocks, 2 * block)
    head = yb[..., :block].reshape(*yb.shape[:-2], n_blocks * block)
    tail = yb[..., block:].reshape(*yb.shape[:-2], n_blocks * block)
    y = F.pad(head, (0, block)) + F.pad(tail, (block, 0))  # (n_blocks + 1) * block samples
    return y[..., :n_out]


def fft_convolve(
    audio: Tensor,
    impulse_response: Tensor,
    padding: str = "same",
    delay_compensation: int = 0,
) -> Tensor:
    """Convolve audio with one impulse response, or with one per frame.

    Args:
        audio: ``(..., L)``.
        impulse_response: ``(..., N)`` for a time-invariant filter (leading axes broadcast
            against the audio's), or ``(..., frames, N)`` — one more axis than ``audio`` —
            for a time-varying filter (``hop = L // frames``, blocks centred on frames).
        padding: ``"same"`` returns ``L`` samples starting at ``delay_compensation`` of the
            full convolution; ``"full"`` returns all ``L + N - 1`` samples.
        delay_compensation: samples dropped from the front for ``"same"`` (use the IR's
            group delay, e.g. ``N // 2`` for :func:`frequency_impulse_response`; 0 for a
            causal reverb).

    Returns:
        ``(broadcast leading axes..., L)`` or ``(..., L + N - 1)``.
    """
    if padding not in ("same", "full"):
        raise ValueError(f"padding must be 'same' or 'full', got {padding!r}")
    if audio.dim() < 1 or impulse_response.dim() < 1:
        raise ValueError("audio and impulse_response need a time axis (last)")
    n_audio, n_ir = audio.shape[-1], impulse_response.shape[-1]
    if impulse_response.dim() == audio.dim() + 1:
        full = _framewise_convolve(audio, impulse_response)
    elif impulse_response.dim() <= audio.dim():
        full = causal_convolve(audio, impulse_response, n_audio + n_ir - 1)
    else:
        raise ValueError(
            f"impulse_response must have the audio's number of axes ({audio.dim()}, "
            f"time-invariant) or one more (frames, time-varying); got shapes "
            f"{tuple(audio.shape)} and {tuple(impulse_response.shape)}"
        )
    if padding == "full":
        return full
    if not 0 <= delay_compensation < n_ir:
        raise ValueError(
            f"delay_compensation must be in [0, {n_ir}) for an IR of {n_ir} taps, "
            f"got {delay_compensation}"
        )
    return full[..., delay_compensation : delay_compensation + n_audio]


def _framewise_convolve(audio: Tensor, ir: Tensor) -> Tensor:
    """Full-length (L + N - 1) block convolution with one IR per frame."""
    n_audio = audio.shape[-1]
    frames, n_ir = ir.shape[-2:]
    if n_audio < frames:
        raise ValueError(
            f"audio has {n_audio} samples but the IR has {frames} frames; need at least one "
            "sample per frame"
        )
    hop = n_audio // frames
    lead = broadcast_shapes(audio.shape[:-1], ir.shape[:-2])
    audio = audio.expand(*lead, n_audio).reshape(-1, n_audio)
    ir = ir.expand(*lead, frames, n_ir).reshape(-1, frames, n_ir)
    off = hop // 2
    n_blocks = -(-(n_audio + off) // hop)
    x = F.pad(audio, (off, n_blocks * hop - n_audio - off))  # block t starts at t*hop - off
    blocks = x.unflatten(-1, (n_blocks, hop))  # (P, n_blocks, hop)
    if n_blocks > frames:  # blocks past the last frame hold the last IR
        ir = torch.cat([ir, ir[:, -1:].expand(-1, n_blocks - frames, n_ir)], dim=1)
    n = fft_size(hop + n_ir - 1)
    y = torch.fft.irfft(torch.fft.rfft(blocks, n) * torch.fft.rfft(ir, n), n)  # (P, nb, n)
    total = (n_blocks - 1) * hop + n
    y = F.fold(
        y.transpose(1, 2), output_size=(1, total), kernel_size=(1, n), stride=(1, hop)
    )  # overlap-add: (P, 1, 1, total)
    y = y.reshape(*lead, total)
    return y[..., off : off + n_audio + n_ir - 1]


def frequency_impulse_response(magnitudes: Tensor, window_size: int = 0) -> Tensor:
    """Linear-phase FIR from a magnitude response (DDSP's ``frequency_impulse_response``).

    The magnitudes are taken as a real, zero-phase spectrum; its inverse FFT is made causal
    by a shift, windowed with a Hann window and, if ``window_size`` is smaller, trimmed.

    Args:
        magnitudes: ``(..., n_bins)`` linear gains at ``n_bins`` frequencies linearly spaced
            from 0 Hz to Nyquist inclusive.
        window_size: taps of the IR; ``0`` or anything ``>= 2 (n_bins - 1)`` keeps all
            ``2 (n_bins - 1)`` taps; smaller values give ``2 (window_size // 2) + 1`` taps
            (odd, symmetric).

    Returns:
        ``(..., taps)`` IR, symmetric about tap ``taps // 2`` (its group delay in samples).
    """
    n_bins = magnitudes.shape[-1]
    if n_bins < 2:
        raise ValueError(f"magnitudes need at least 2 frequency bins, got {n_bins}")
    n = 2 * (n_bins - 1)
    ir = torch.fft.irfft(magnitudes.to(torch.promote_types(magnitudes.dtype, torch.float32)), n)
    ir = torch.roll(ir, n // 2, dims=-1)  # zero-phase → causal, centre at tap n // 2
    if window_size <= 0 or window_size >= n:
        window = torch.hann_window(n, periodic=True, dtype=ir.dtype, device=ir.device)
        return ir * window  # periodic Hann peaks at n // 2 and zeroes tap 0
    half = window_size // 2
    taps = 2 * half + 1
    ir = ir[..., n // 2 - half : n // 2 + half + 1]
    window = torch.hann_window(taps + 2, periodic=False, dtype=ir.dtype, device=ir.device)
    return ir * window[1:-1]  # drop the zero end points


def frequency_filter(
    audio: Tensor, magnitudes: Tensor, window_size: int = 0, padding: str = "same"
) -> Tensor:
    """Filter audio by frame-wise magnitude responses (DDSP's ``frequency_filter``).

    Args:
        audio: ``(..., L)``.
        magnitudes: ``(..., frames, n_bins)`` (time-varying, one more axis than ``audio``) or
            ``(..., n_bins)`` (time-invariant); bins linearly spaced from 0 Hz to Nyquist.
        window_size: IR length, see :func:`frequency_impulse_response`.
        padding: ``"same"`` compensates the IR's linear-phase delay and returns ``L`` samples;
            ``"full"`` returns the full convolution.

    Returns:
        ``(..., L)`` filtered audio (zero-phase: no delay relative to the input).
    """
    ir = frequency_impulse_response(magnitudes, window_size)
    return fft_convolve(audio, ir, padding=padding, delay_compensation=ir.shape[-1] // 2)
