"""Rendering long feature sequences in chunks with continuous state.

:func:`render` runs :class:`~ddsp_models.export.streaming.StreamingSynth` over chunks of
``chunk_frames`` frames: the decoder's GRU state and every processor's declared state
(oscillator phases, filter states, noise position, delay lines, reverb tails) are carried from
chunk to chunk, so the joins are exact (no clicks: the output equals rendering the whole file
at once, see ``tests/test_transfer.py``) and memory is bounded by the chunk. Every graph
streams; only models with an MFCC encoder or a static predicted parameter (see
:func:`~ddsp_models.export.streaming.check_streamable`) are rendered in one offline call
(memory grows with the file length).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

__all__ = ["render", "can_stream", "offline_engine"]


def can_stream(model) -> bool:
    """Whether :func:`render` can render ``model`` chunk by chunk."""
    from ..export.streaming import UnsupportedGraphError, check_streamable

    try:
        check_streamable(model)
        return True
    except UnsupportedGraphError:
        return False


def offline_engine(model, seed: int = 0, batch: int = 1):
    """A :class:`~ddsp_models.export.streaming.StreamingSynth` for offline rendering in long
    chunks: the convolution processors (reverbs, FIR filters) get partitions as long as their
    impulse response (at most 16384 taps), so each chunk is one FFT convolution instead of one
    per hop-sized partition (the same result; only a live stream needs short partitions).

    Raises:
        UnsupportedGraphError: the model cannot stream (see ``check_streamable``).
    """
    from ..export.streaming import StreamingSynth

    saved = []
    for proc in model.graph.nodes.values():
        if hasattr(proc, "partition_size") and isinstance(getattr(proc, "length", None), int):
            saved.append((proc, proc.partition_size))
            proc.partition_size = int(min(proc.length, 16384))
    try:
        return StreamingSynth(model, seed=seed, batch=batch)
    finally:
        for proc, p in saved:
            proc.partition_size = p


@torch.no_grad()
def render(
    model,
    f0_hz: Tensor,
    loudness_db: Tensor,
    chunk_frames: int = 1000,
    audio: Tensor | None = None,
    seed: int = 0,
) -> Tensor:
    """Audio ``(frames * hop,)`` for features ``(frames,)`` (Hz, dB) at the model's rates.

    Args:
        model: an :class:`~ddsp_models.nn.Autoencoder`.
        chunk_frames: frames rendered per step (1000 frames = 4 s at 250 frames/s).
        audio: the model-rate input audio, needed only by models with an MFCC encoder.
        seed: seed of the deterministic noise source.
    """
    from ..export.streaming import UnsupportedGraphError

    dev = next(model.parameters()).device
    f0 = f0_hz.reshape(1, -1, 1).float().to(dev)
    ld = loudness_db.reshape(1, -1, 1).float().to(dev)
    n = f0.shape[1]
    try:
        engine = offline_engine(model, seed=seed)
    except UnsupportedGraphError as err:
        if n > 120 * model.frame_rate:
            warnings.warn(f"rendering {n / model.frame_rate:.0f} s in one call ({err}); memory "
                          "grows with the file length", stacklevel=2)
        x = None if audio is None else audio.reshape(1, 1, -1).to(dev)
        return model(f0, ld, x)[0].mean(0).cpu()
    chunk_frames = max(1, int(chunk_frames))
    d = engine.latency_frames
    hop = engine.hop
    out = torch.empty((n + d) * hop, dtype=f0.dtype)  # on the CPU
    for c0 in range(0, n, chunk_frames):
        y = engine(f0[:, c0:c0 + chunk_frames], ld[:, c0:c0 + chunk_frames])[0].mean(0)
        out[c0 * hop: c0 * hop + y.shape[0]] = y.cpu()
    out[n * hop:] = engine.flush()[0].mean(0).cpu()
    return out[d * hop:]  # the stream lags by d frames
