"""Frame features of long audio in chunks: f0, its confidence and loudness.

The audio is cut into chunks of ``chunk_seconds`` (aligned to the hop) and each chunk is
analysed with ``context_seconds`` of audio on both sides, whose frames are then dropped; with
a context longer than the analysis windows (CREPE: 64 ms, YIN: about 2 periods of ``fmin``,
loudness: 32 ms) the chunked features equal the whole-file ones (CREPE's Viterbi path is
decoded per chunk). Memory is bounded by the chunk size, not the file length. Unvoiced frames
get an f0 interpolated between voiced ones over the whole file at the end.

The audio is an in-memory tensor or a :class:`BlockReader` over a stream of blocks (a file
read and resampled block by block, see :func:`ddsp_models.transfer.core.transfer_file`):
only the current chunk with its context is then held, and the features are the same.

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

__all__ = ["Features", "extract_features", "BlockReader"]


@dataclass
class Features:
    """Per-frame features, each ``(frames,)`` float32: ``f0_hz`` (Hz, unvoiced frames filled),
    ``confidence`` (``[0, 1]``), ``loudness_db`` (dB, A-weighted, floor -80)."""

    f0_hz: Tensor
    confidence: Tensor
    loudness_db: Tensor


class BlockReader:
    """Sequential random access to a signal given as an iterable of ``(samples,)`` blocks,
    holding only what is still needed.

    ``read(start, stop)`` returns samples ``[start, stop)`` (clipped to ``n_samples``); the
    ``start`` of successive reads must not decrease (what lies before it is dropped). Held:
    at most the last read's span plus one block. If the stream ends early it is padded with
    zeros up to ``n_samples``; samples beyond ``n_samples`` are ignored.

    Attributes:
        n_samples: the signal's length (known beforehand, e.g. from
            :func:`~ddsp_models.audio_io.resampled_size`).
        max_held: the most samples held at once (for tests).
    """

    def __init__(self, blocks, n_samples: int):
        self.n_samples = int(n_samples)
        self._it = iter(blocks)
        self._parts: list[Tensor] = []
        self._base = 0  # sample index of the first held sample
        self._end = 0  # one past the last held sample
        self._done = False
        self.max_held = 0

    def _drop_before(self, pos: int) -> None:
        pos = min(pos, self._end)
        if pos <= self._base:
            return
        buf = self._parts[0] if len(self._parts) == 1 else torch.cat(self._parts)
        self._parts = [buf[pos - self._base:]] if pos < self._end else []
        self._base = pos

    def read(self, start: int, stop: int) -> Tensor:
        start, stop = int(start), min(int(stop), self.n_samples)
        if start < self._base:
            raise ValueError(f"BlockReader reads forward only: sample {start} was dropped "
                             f"(held from {self._base})")
        self._drop_before(start)  # what no later read needs
        while self._end < stop:
            b = None if self._done else next(self._it, None)
            if b is None:  # the stream ended early: zeros
                self._done = True
                b = torch.zeros(stop - self._end)
            b = b.reshape(-1).float()
            self._parts.append(b)
            self._end += b.shape[0]
            self.max_held = max(self.max_held, self._end - self._base)
            if self._base < start:  # skipping forward
                self._drop_before(start)
        self._drop_before(start)
        if not self._parts:
            return torch.zeros(0)
        buf = self._parts[0] if len(self._parts) == 1 else torch.cat(self._parts)
        self._parts = [buf]
        return buf[: max(0, stop - start)]


def extract_features(
    audio: Tensor | BlockReader,
    sample_rate: int,
    frame_rate: int,
    f0_method: str = "crepe-tiny",
    chunk_seconds: float = 30.0,
    context_seconds: float = 0.25,
    voicing_threshold: float | None = None,
) -> Features:
    """Features of mono ``audio (samples,)``; ``frames = samples // hop``.

    Args:
        audio: mono audio at ``sample_rate`` (the model's rate): ``(samples,)`` or a
            :class:`BlockReader` (read chunk by chunk, forward only).
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
    if isinstance(audio, BlockReader):
        n_samples, read = audio.n_samples, audio.read
    else:
        if audio.dim() != 1:
            raise InvalidInputError(f"audio must be mono (samples,), got shape "
                                    f"{tuple(audio.shape)}")
        n_samples = audio.shape[-1]

        def read(a: int, b: int) -> Tensor:
            return audio[a:b]
    hop = frame_hop(sample_rate, frame_rate)
    n_frames = n_samples // hop
    if n_frames < 1:
        raise InvalidInputError(f"audio of {n_samples} samples is shorter than one frame "
                         f"({hop} samples at {sample_rate} Hz)")
    chunk = max(1, int(round(chunk_seconds * frame_rate)))
    ctx = max(1, int(math.ceil(context_seconds * frame_rate)))
    # CREPE at its own 100 frames/s (or more), refined by YIN at every frame; chunks and
    # context are whole strides so every chunk computes the same frames as the whole file
    stride = auto_crepe_stride(frame_rate) if f0_method.startswith("crepe") else 1
    chunk = -(-chunk // stride) * stride
    ctx = -(-ctx // stride) * stride
    # the whole-file outputs are allocated once: small arrays kept across chunks would pin
    # the allocator's heap between the chunks' large temporaries (RSS then grows with the
    # file length although nothing large is kept)
    f0 = torch.empty(n_frames)
    conf = torch.empty(n_frames)
    loud = torch.empty(n_frames)
    for a in range(0, n_frames, chunk):
        b = min(n_frames, a + chunk)
        a0 = max(0, a - ctx)
        b0 = min(n_frames, b + ctx)
        s1 = n_samples if b0 == n_frames else b0 * hop
        x = read(a0 * hop, s1)
        f0_c, conf_c = compute_f0(x, sample_rate, frame_rate, method=f0_method, fill=False,
                                  crepe_stride=stride)
        ld = compute_loudness(x, sample_rate, frame_rate)
        sl = slice(a - a0, b - a0)
        f0[a:b] = f0_c[sl]
        conf[a:b] = conf_c[sl]
        loud[a:b] = ld[sl]
        del x, f0_c, conf_c, ld
    thr = F0_METHODS[f0_method] if voicing_threshold is None else voicing_threshold
    f0 = fill_unvoiced(f0[None], (conf >= thr)[None])[0]
    return Features(f0, conf, loud)
