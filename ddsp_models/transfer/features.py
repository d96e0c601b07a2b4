"""Frame features of long audio in chunks: f0, its confidence and loudness.

The audio is cut into chunks of ``chunk_seconds`` (aligned to the hop) and each chunk is
analysed with ``context_seconds`` of audio on both sides, whose frames are then dropped; with
a context longer than the analysis windows (CREPE: 64 ms, YIN: about 2 periods of ``fmin``,
loudness: 32 ms) the chunked features equal the whole-file ones (CREPE's Viterbi path is
decoded per chunk). Memory is bounded by the chunk size, not the file length. Unvoiced frames
get an f0 interpolated between voiced ones over the whole file at the end.

CREPE runs at its training rate of 100 frames/s or more (every second frame at the usual
250 frames/s, :func:`~ddsp_models.features.f0.auto_crepe_stride`); its activations are
interpolated to every frame and the YIN refinement then sharpens each frame's f0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..core.upsample import frame_hop
from ..errors import InvalidInputError

__all__ = ["Features", "extract_features"]


@dataclass
class Features:
    """Per-frame features, each ``(frames,)`` float32: ``f0_hz`` (Hz, unvoiced frames filled),
    ``confidence`` (``[0, 1]``), ``loudness_db`` (dB, A-weighted, floor -80)."""

    f0_hz: Tensor
    confidence: Tensor
    loudness_db: Tensor


def extract_features(
    audio: Tensor,
    sample_rate: int,
    frame_rate: int,
    f0_method: str = "crepe-tiny",
    chunk_seconds: float = 30.0,
    context_seconds: float = 0.25,
    voicing_threshold: float | None = None,
) -> Features:
    """Features of mono ``audio (samples,)``; ``frames = samples // hop``.

    Args:
        audio: mono audio at ``sample_rate`` (the model's rate).
        frame_rate: frames per second (the model's).
        f0_method: ``"crepe-full"``, ``"crepe-tiny"`` or ``"yin"`` (see
            :func:`ddsp_models.features.compute_f0`).
        chunk_seconds: audio analysed per call (bounds memory).
        context_seconds: extra audio each side of a chunk (dropped from the result).
        voicing_threshold: confidence below which f0 is filled from the neighbours.
    """
    from ..features import compute_f0, compute_loudness, fill_unvoiced
    from ..features.f0 import F0_METHODS, auto_crepe_stride

    if f0_method not in F0_METHODS:
        raise InvalidInputError(f"f0 method must be one of {sorted(F0_METHODS)}, got {f0_method!r}")
    if audio.dim() != 1:
        raise InvalidInputError(f"audio must be mono (samples,), got shape {tuple(audio.shape)}")
    hop = frame_hop(sample_rate, frame_rate)
    n_frames = audio.shape[-1] // hop
    if n_frames < 1:
        raise InvalidInputError(f"audio of {audio.shape[-1]} samples is shorter than one frame "
                         f"({hop} samples at {sample_rate} Hz)")
    chunk = max(1, int(round(chunk_seconds * frame_rate)))
    ctx = max(1, int(math.ceil(context_seconds * frame_rate)))
    # CREPE at its own 100 frames/s (or more), refined by YIN at every frame; chunks and
    # context are whole strides so every chunk computes the same frames as the whole file
    stride = auto_crepe_stride(frame_rate) if f0_method.startswith("crepe") else 1
    chunk = -(-chunk // stride) * stride
    ctx = -(-ctx // stride) * stride
    f0s, confs, louds = [], [], []
    for a in range(0, n_frames, chunk):
        b = min(n_frames, a + chunk)
        a0 = max(0, a - ctx)
        b0 = min(n_frames, b + ctx)
        s1 = audio.shape[-1] if b0 == n_frames else b0 * hop
        x = audio[a0 * hop: s1]
        f0, conf = compute_f0(x, sample_rate, frame_rate, method=f0_method, fill=False,
                              crepe_stride=stride)
        ld = compute_loudness(x, sample_rate, frame_rate)
        sl = slice(a - a0, b - a0)
        f0s.append(f0[sl].float())
        confs.append(conf[sl].float())
        louds.append(ld[sl].float())
    f0 = torch.cat(f0s)
    conf = torch.cat(confs)
    thr = F0_METHODS[f0_method] if voicing_threshold is None else voicing_threshold
    f0 = fill_unvoiced(f0[None], (conf >= thr)[None])[0]
    return Features(f0, conf, torch.cat(louds))
