"""CREPE pitch activations for whole signals, and their decoding to f0 in Hz.

:func:`crepe_activations` cuts 16 kHz audio into 1024-sample frames centred on the requested
sample positions, normalises each frame (zero mean, unit standard deviation, as the network
was trained), and runs :class:`~ddsp_models.features.crepe_net.CrepeNet` over them in batches
of ``batch_size`` frames, so memory stays bounded for long files. Frames come from
``unfold`` views (no Python loop over frames); the network runs under ``inference_mode``.
With a hop that is a multiple of 4 samples the first layer is shared between overlapping
frames (:mod:`~ddsp_models.features.crepe_shared`).

:func:`decode_activations` turns the ``(batch, frames, 360)`` activations into f0: the pitch
bin is the argmax, or the Viterbi path when ``viterbi=True``; f0 is the activation-weighted
mean of the bins' cents within ±4 bins of it ("local average"); confidence is the largest
activation of the frame.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .crepe_net import (
    CENTS_OFFSET,
    CENTS_PER_BIN,
    CREPE_FRAME_SIZE,
    CREPE_N_BINS,
    load_crepe,
)
from .crepe_shared import first_block_shared, segment_for_frames
from .framing import frame_at_centres, frame_centred
from .viterbi import band_from_matrix, triangular_transition, viterbi_banded

__all__ = [
    "crepe_activations",
    "decode_activations",
    "bins_to_cents",
    "cents_to_hz",
    "hz_to_cents",
    "SILENT_STD",
]

#: Frames whose standard deviation is below this (about -110 dBFS) are treated as silence:
#: their normalised input would be amplified rounding noise, so their confidence is set to 0.
SILENT_STD = 3e-6


def bins_to_cents(bins: Tensor) -> Tensor:
    """Pitch bin (fractional allowed) → cents above 10 Hz."""
    return CENTS_OFFSET + CENTS_PER_BIN * bins


def cents_to_hz(cents: Tensor) -> Tensor:
    """Cents above 10 Hz → Hz."""
    return 10.0 * torch.pow(2.0, cents / 1200.0)


def hz_to_cents(f0_hz: Tensor) -> Tensor:
    """Hz → cents above 10 Hz."""
    return 1200.0 * torch.log2(f0_hz / 10.0)


def _normalise(frames: Tensor) -> tuple[Tensor, Tensor]:
    """Zero mean, unit (population) standard deviation per frame; also returns the std."""
    mean = frames.mean(dim=-1, keepdim=True)
    centred = frames - mean
    std = centred.pow(2).mean(dim=-1, keepdim=True).sqrt()
    return centred / std.clamp_min(1e-8), std[..., 0]


def _run(fn, x: Tensor, std: Tensor, skip_silent: bool) -> Tensor:
    """``fn(x)`` for frames ``x (frames, ...)``; with ``skip_silent``, only for the frames
    whose ``std`` reaches :data:`SILENT_STD` (the others get zero activations)."""
    if not skip_silent:
        return fn(x)
    keep = std.reshape(-1) >= SILENT_STD
    if bool(keep.all()):
        return fn(x)
    out = torch.zeros(x.shape[0], CREPE_N_BINS, device=x.device)
    if bool(keep.any()):
        out[keep] = fn(x[keep])
    return out


def crepe_activations(
    audio_16k: Tensor,
    n_frames: int,
    hop_16k: float,
    capacity: str = "full",
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = False,
    shared_first_layer: bool = True,
    skip_silent: bool = True,
) -> tuple[Tensor, Tensor]:
    """CREPE bin activations for frames centred on ``round(t * hop_16k)``, ``t < n_frames``.

    Args:
        audio_16k: ``(batch, samples)`` at 16 kHz.
        n_frames: number of frames per batch item.
        hop_16k: frame spacing in 16 kHz samples (need not be whole; centres are rounded).
        capacity: ``"full"`` or ``"tiny"``.
        batch_size: frames per network call (default: 1024 tiny / 128 full on CPU, 2048 on
            GPU; peak memory is about 0.4 MB (tiny) / 3 MB (full) per frame of the batch).
            Few large calls matter on CPU: each conv call has a fixed cost.
        device: where the network runs (default: the audio's device).
        progress: show a tqdm progress bar.
        shared_first_layer: compute the first (strided) layer once per signal instead of once
            per frame (:mod:`~ddsp_models.features.crepe_shared`; same result up to float
            rounding) when the hop is a whole multiple of 4 samples (100, 200, 250 frames/s...).
        skip_silent: do not run the network on silent frames (standard deviation below
            :data:`SILENT_STD`, about -110 dBFS: digital silence between phrases); their
            activations are 0 (no pitch; :func:`compute_f0` gives them confidence 0 anyway).

    Returns:
        ``activations (batch, n_frames, 360)`` float32 in [0, 1], and ``frame_std
        (batch, n_frames)`` (the frames' standard deviation before normalisation) on ``device``.
    """
    device = torch.device(device) if device is not None else audio_16k.device
    net = load_crepe(capacity, device)
    if batch_size is None:
        batch_size = 2048 if device.type != "cpu" else (1024 if capacity == "tiny" else 128)
    x = audio_16k.to(device=device, dtype=torch.float32)
    b = x.shape[0]
    acts = torch.empty(b, n_frames, CREPE_N_BINS, device=device)
    stds = torch.empty(b, n_frames, device=device)
    whole = abs(hop_16k - round(hop_16k)) < 1e-9
    shared = shared_first_layer and whole and int(round(hop_16k)) % 4 == 0
    # Frames of all batch items go through the network together, ``batch_size`` at a time:
    # chunks span ``per`` frames of each of ``rows`` items.
    per = max(1, batch_size // b)
    rows = max(1, batch_size // per)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=b * n_frames, desc=f"crepe-{capacity}", unit="frame")
    with torch.inference_mode():
        for r0 in range(0, b, rows):
            xr = x[r0 : r0 + rows]
            nr = xr.shape[0]
            for t0 in range(0, n_frames, per):
                n = min(per, n_frames - t0)
                if shared:
                    hop = int(round(hop_16k))
                    h1, std = first_block_shared(net, segment_for_frames(xr, hop, t0, n), n, hop)
                    acts[r0 : r0 + nr, t0 : t0 + n] = _run(net.head, h1, std, skip_silent
                                                           ).reshape(nr, n, CREPE_N_BINS)
                    stds[r0 : r0 + nr, t0 : t0 + n] = std
                    if bar is not None:
                        bar.update(nr * n)
                    continue
                if whole:
                    frames = frame_centred(xr, CREPE_FRAME_SIZE, int(round(hop_16k)), n, t0)
                else:
                    centres = torch.round(
                        torch.arange(t0, t0 + n, device=device, dtype=torch.float64) * hop_16k
                    ).long()
                    frames = frame_at_centres(xr, centres, CREPE_FRAME_SIZE)
                normed, std = _normalise(frames.reshape(nr * n, CREPE_FRAME_SIZE))
                acts[r0 : r0 + nr, t0 : t0 + n] = _run(net, normed, std, skip_silent
                                                       ).reshape(nr, n, CREPE_N_BINS)
                stds[r0 : r0 + nr, t0 : t0 + n] = std.reshape(nr, n)
                if bar is not None:
                    bar.update(nr * n)
    if bar is not None:
        bar.close()
    return acts, stds


_BAND_CACHE: dict[tuple[int, float], Tensor] = {}

#: Total probability of a jump beyond ±11 bins between frames (a new note). Without it the
#: path could move at most 220 cents per frame and would glide for several frames after an
#: octave leap; Viterbi is global, so a real leap is taken at the right frame while an
#: isolated one-frame octave error (two jumps) is still rejected.
JUMP_PROB = 1e-3


def _crepe_log_band(width: int = 11, jump_prob: float = JUMP_PROB) -> Tensor:
    key = (width, jump_prob)
    if key not in _BAND_CACHE:
        a = triangular_transition(CREPE_N_BINS, width, jump_prob)
        _BAND_CACHE[key] = band_from_matrix(a, width, floor=jump_prob / CREPE_N_BINS)
    return _BAND_CACHE[key]


def decode_activations(activations: Tensor, viterbi: bool = True) -> tuple[Tensor, Tensor]:
    """``(batch, frames, 360)`` activations → ``f0_hz, confidence``, each ``(batch, frames)``.

    The centre bin is the argmax, or with ``viterbi=True`` the most likely path of an HMM
    whose states are the bins, whose emissions are the normalised activations and whose
    transitions allow jumps of at most 11 bins (220 cents) per frame, weighted triangularly
    (CREPE's smoothing). f0 is the activation-weighted mean cents of bins within ±4 of the
    centre bin; confidence is the frame's largest activation.
    """
    a = activations.float()
    if viterbi:
        p = a.clamp_min(1e-12)
        log_e = torch.log(p / p.sum(dim=-1, keepdim=True))
        log_jump = math.log(JUMP_PROB / CREPE_N_BINS)
        centre = viterbi_banded(log_e, _crepe_log_band(), log_jump=log_jump).to(a.device)
    else:
        centre = a.argmax(dim=-1)
    offsets = torch.arange(-4, 5, device=a.device)
    idx = centre[..., None] + offsets  # (B, T, 9)
    inside = (idx >= 0) & (idx < CREPE_N_BINS)
    w = a.gather(-1, idx.clamp(0, CREPE_N_BINS - 1)) * inside
    cents = bins_to_cents(idx.to(a.dtype))
    total = w.sum(-1)
    mean_cents = torch.where(
        total > 0, (w * cents).sum(-1) / total.clamp_min(1e-12), bins_to_cents(centre.to(a.dtype))
    )
    return cents_to_hz(mean_cents), a.amax(dim=-1)
