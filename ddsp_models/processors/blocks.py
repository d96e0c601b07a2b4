"""Block-rendering helpers shared by processors, and the reference stream driver.

* :func:`render_in_blocks` drives one processor through a stream (fresh state, blocks of the
  given sizes, flush) and returns what ``forward`` returns for the whole signal: the
  reference of the block contract in :mod:`.base`, used by the contract tests.
* :func:`push_frames`, :func:`push_samples`: the two moves of almost every ``step`` — keep the
  last frames of a control (history for interpolation towards the next frame) and delay audio
  by whole frames (to line it up with the look-ahead). Both are TorchScript-compatible.
* :func:`valid_mask`: which output samples of a block stand for offline samples ``>= 0``.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Sequence, Tuple

import torch
from torch import Tensor

from ..core.upsample import interpolate_frames

__all__ = ["render_in_blocks", "push_frames", "push_samples", "control_block",
           "controls_and_input", "valid_mask", "block_slices"]


def push_frames(history: Tensor, frames: Tensor) -> Tuple[Tensor, Tensor]:
    """Append a block's frames to the carried history.

    Args:
        history: ``(B, H, K)`` the last ``H`` frames before this block.
        frames: ``(B, N, K)`` this block's frames.

    Returns:
        ``(all (B, H + N, K), new history (B, H, K))`` — the new history is the last ``H`` of
        ``all``.
    """
    both = torch.cat([history, frames], dim=1)
    h = history.shape[1]
    return both, both[:, both.shape[1] - h:]


def push_samples(line: Tensor, x: Tensor) -> Tuple[Tensor, Tensor]:
    """Delay audio by the carried line's length.

    Args:
        line: ``(..., D)`` the last ``D`` samples of the previous blocks.
        x: ``(..., M)`` this block.

    Returns:
        ``(delayed (..., M), new line (..., D))``: ``delayed`` is ``x`` shifted late by ``D``.
    """
    both = torch.cat([line, x], dim=-1)
    m = x.shape[-1]
    return both[..., :m], both[..., m:]


def control_block(value: Tensor, history: Tensor, hop: int) -> Tuple[Tensor, Tensor]:
    """A parameter value of one block at audio rate, ready to multiply audio ``(B, C, M)``.

    Time-varying ``(B, N, K)`` values are interpolated linearly from the carried last frame
    ``history`` ``(B, 1, K)`` through the block's frames, so the result lags the offline
    :func:`~ddsp_models.core.upsample.upsample_linear` by one frame (latency 1):
    ``(B, K, N * hop)``. Static ``(B, K)`` values become ``(B, K, 1)``. Returns the value and
    the new history (the block's last frame; unchanged for static values).
    """
    if value.dim() == 2:
        return value[:, :, None], history
    both, new_history = push_frames(history, value)
    return interpolate_frames(both, hop).transpose(1, 2), new_history


def controls_and_input(params: Dict[str, Tensor], state: Dict[str, Tensor],
                       new: Dict[str, Tensor], x: Tensor,
                       hop: int) -> Tuple[Dict[str, Tensor], Tensor]:
    """The block preamble of an effect whose controls are interpolated towards the next frame.

    Each parameter at audio rate: time-varying ``(B, N, F)`` values through
    :func:`control_block` (one frame late; their last frame carried in ``state[name]``, the
    new one written to ``new[name]``) as ``(B, F, N * hop)``, static ``(B, F)`` values as
    ``(B, F, 1)``. The input ``x`` is delayed to match by the carried ``state["audio"]`` (hop
    samples) when the processor declares it, i.e. when a control is time-varying.

    Returns:
        ``(controls {name: value}, delayed x)``.
    """
    controls: Dict[str, Tensor] = {}
    for name, value in params.items():
        if value.dim() == 3:
            controls[name], new[name] = control_block(value, state[name], hop)
        else:
            controls[name] = value[:, :, None]
            if name in state:  # a declared history of a static value: carried unchanged
                new[name] = state[name]
    if "audio" in state:
        x, new["audio"] = push_samples(state["audio"], x)
    return controls, x


def valid_mask(position: Tensor, latency: int, n_frames: int, hop: int, like: Tensor) -> Tensor:
    """``(n_frames * hop,)`` ones where the block's output index ``(position - latency) * hop + r``
    is ``>= 0`` and zeros before the signal's start, in ``like``'s dtype.

    ``position`` is a 0-dim int64 tensor: frames already rendered before this block.
    """
    first = (position - latency) * hop
    idx = torch.arange(n_frames * hop, device=like.device, dtype=torch.int64) + first
    return (idx >= 0).to(like.dtype)


def block_slices(n_frames: int, sizes: Sequence[int]) -> List[Tuple[int, int]]:
    """``[(t0, t1), ...]`` covering ``0 .. n_frames`` with block sizes cycling through ``sizes``."""
    out, t0, i = [], 0, 0
    sizes = [int(s) for s in sizes]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"block sizes must be >= 1 frame, got {sizes}")
    while t0 < n_frames:
        t1 = min(n_frames, t0 + sizes[i % len(sizes)])
        out.append((t0, t1))
        t0, i = t1, i + 1
    return out


def _frames_of(params: Mapping[str, Tensor], time_varying: Mapping[str, bool]) -> int | None:
    for name, v in params.items():
        if time_varying.get(name, v.dim() == 3):
            return int(v.shape[1])
    return None


def render_in_blocks(
    processor,
    params: Mapping[str, Tensor],
    hop: int,
    inputs: Sequence[Tensor] = (),
    n_frames: int | None = None,
    block_frames: Sequence[int] = (1, 4, 7, 16),
    flush: bool = True,
    step=None,
    state: Dict[str, Tensor] | None = None,
) -> Tensor:
    """Render ``processor`` block by block and return the whole-signal output.

    Args:
        processor: a :class:`~ddsp_models.processors.Processor`.
        params: physical values for the whole signal, as ``forward`` takes them
            (time-varying ``(B, T, size)``, static ``(B, size)``, externals included).
        hop: samples per frame.
        inputs: the effect's audio inputs ``(B, C, T * hop)``.
        n_frames: ``T`` (default: from the time-varying params, else the inputs' length).
        block_frames: block sizes in frames, cycled through (sizes change from call to call).
        flush: run the flush at the end (contract item 3) and return all ``T * hop`` samples;
            without it the last ``latency * hop`` samples are missing.
        step: the ``step`` callable to use (default ``processor.step``; pass a scripted
            module's ``step`` to check the TorchScript path).
        state: a starting state (default ``processor.init_state``).

    Returns:
        ``(B, C_out, T * hop)`` (or ``(T - L) * hop`` samples without ``flush``): equal to
        ``forward`` over the whole signal, up to float rounding, for a processor that keeps the
        contract.
    """
    step = processor.step if step is None else step
    spec_tv = {s.name: s.time_varying for s in processor.param_specs()}
    inputs = list(inputs)
    if n_frames is None:
        n_frames = _frames_of(params, spec_tv)
    if n_frames is None:
        if not inputs:
            raise ValueError("render_in_blocks: give n_frames (no time-varying params or inputs)")
        n_frames = inputs[0].shape[-1] // hop
    batch = next(iter([*inputs, *params.values()])).shape[0]
    like = next(iter([*inputs, *[v for v in params.values() if v.is_floating_point()]]))
    if state is None:
        state = processor.init_state(batch, [int(x.shape[1]) for x in inputs], hop, like)
    latency = int(processor.latency_frames(hop))
    outs: List[Tensor] = []

    def block(t0: int, t1: int, flushing: bool) -> None:
        nonlocal state
        n = t1 - t0
        if flushing:
            p = {k: (v[:, -1:].expand(v.shape[0], n, v.shape[2]) if spec_tv.get(k, v.dim() == 3)
                     else v) for k, v in params.items()}
            xs = [torch.zeros(x.shape[0], x.shape[1], n * hop, dtype=x.dtype, device=x.device)
                  for x in inputs]
        else:
            p = {k: (v[:, t0:t1] if spec_tv.get(k, v.dim() == 3) else v) for k, v in params.items()}
            xs = [x[..., t0 * hop:t1 * hop] for x in inputs]
        y, state = step(xs, dict(p), state, n, n * hop, flushing)
        outs.append(y)

    for t0, t1 in block_slices(n_frames, block_frames):
        block(t0, t1, False)
    if flush and latency > 0:
        for t0, t1 in block_slices(latency, block_frames):
            block(t0, t1, True)
    y = torch.cat(outs, dim=-1)
    return y[..., latency * hop:]
