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

__all__ = ["render", "render_blocks", "can_stream", "offline_engine"]


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
    return torch.cat(list(render_blocks(model, f0_hz, loudness_db, chunk_frames, audio, seed)))


def render_blocks(
    model,
    f0_hz: Tensor,
    loudness_db: Tensor,
    chunk_frames: int = 1000,
    audio: Tensor | None = None,
    seed: int = 0,
):
    """:func:`render` one chunk at a time: yields CPU float32 ``(samples,)`` blocks whose
    concatenation is ``render(...)`` (``frames * hop`` samples, the stream's latency already
    removed). Memory is one chunk; a model that cannot stream gives one block (the whole
    render)."""
    from ..export.streaming import UnsupportedGraphError

    with torch.no_grad():
        dev = next(model.parameters()).device
        f0 = f0_hz.reshape(1, -1, 1).float().to(dev)
        ld = loudness_db.reshape(1, -1, 1).float().to(dev)
        n = f0.shape[1]
        try:
            engine = offline_engine(model, seed=seed)
        except UnsupportedGraphError as err:
            if n > 120 * model.frame_rate:
                warnings.warn(f"rendering {n / model.frame_rate:.0f} s in one call ({err}); "
                              "memory grows with the file length", stacklevel=3)
            x = None if audio is None else audio.reshape(1, 1, -1).to(dev)
            engine, whole = None, model(f0, ld, x)[0].mean(0).cpu()
    if engine is None:
        yield whole
        return
    chunk_frames = max(1, int(chunk_frames))

    def steps():
        for c0 in range(0, n, chunk_frames):
            yield lambda c0=c0: engine(f0[:, c0:c0 + chunk_frames], ld[:, c0:c0 + chunk_frames])
        yield engine.flush

    skip = engine.latency_frames * engine.hop  # the stream lags by latency_frames frames
    left = n * engine.hop
    for step in steps():
        with torch.no_grad():
            y = step()[0].mean(0).cpu().to(torch.float32)
        if skip:
            k = min(skip, y.shape[0])
            y, skip = y[k:], skip - k
        y = y[:left]
        left -= y.shape[0]
        if y.shape[0]:
            yield y
