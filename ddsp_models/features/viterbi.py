"""Viterbi decoding of a state posteriorgram with a banded (local) transition matrix.

Pitch moves by small steps between frames, so the transition from state ``i`` to ``j`` is
large only for ``|i - j| <= width``. Optionally every other transition ("jump", e.g. a new
note an octave away) gets one small probability; its best candidate is simply the best
previous state, so each time step still costs ``O(states * (2 * width + 1))`` instead of
``O(states ** 2)``. The loop runs over time only, vectorised over batch and states.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch import Tensor

__all__ = ["viterbi_banded", "triangular_transition", "band_from_matrix"]


def triangular_transition(
    n_states: int, width: int = 11, jump_prob: float = 0.0, dtype=torch.float64
) -> Tensor:
    """CREPE's transition matrix: ``A[i, j] ∝ max(width + 1 - |i - j|, 0)``, rows sum to one.

    With ``jump_prob > 0``, ``A = (1 - jump_prob) * A + jump_prob / n_states`` (every state
    reachable, as magenta/ddsp's CREPE HMM allows with its small transition floor).

    Returns:
        ``(n_states, n_states)`` probabilities.
    """
    i = torch.arange(n_states, dtype=dtype)
    a = (width + 1 - (i[:, None] - i[None, :]).abs()).clamp_min(0)
    a = a / a.sum(dim=1, keepdim=True)
    return (1.0 - jump_prob) * a + jump_prob / n_states


def band_from_matrix(transition: Tensor, width: int, floor: float = 0.0) -> Tensor:
    """Log of a banded transition matrix as ``(n_states, 2 * width + 1)``.

    Entry ``[j, width + d]`` is ``log A[j + d, j]`` (from state ``j + d`` to ``j``), ``-inf``
    outside the matrix or where ``A`` is zero. Entries of ``A`` outside the band must equal
    ``floor`` (pass ``log(floor)`` as ``log_jump`` to :func:`viterbi_banded`).
    """
    s = transition.shape[0]
    if transition.shape != (s, s):
        raise ValueError(f"transition must be square, got {tuple(transition.shape)}")
    i = torch.arange(s)
    off = (i[:, None] - i[None, :]).abs() > width
    if not torch.allclose(transition[off], torch.full_like(transition[off], floor), rtol=1e-9, atol=0):
        raise ValueError(
            f"transition has entries other than floor={floor} farther than width={width} from the diagonal"
        )
    d = torch.arange(-width, width + 1)
    src = i[:, None] + d[None, :]  # (S, 2w+1): state we come from
    valid = (src >= 0) & (src < s)
    vals = transition[src.clamp(0, s - 1), i[:, None].expand_as(src)]
    with torch.no_grad():
        logv = torch.log(vals)
    return torch.where(valid, logv, torch.full_like(logv, -torch.inf))


def viterbi_banded(
    log_emission: Tensor,
    log_band: Tensor,
    log_prior: Tensor | None = None,
    log_jump: float | None = None,
) -> Tensor:
    """Most likely state path.

    Args:
        log_emission: ``(batch, frames, states)`` log-likelihood of each frame in each state.
        log_band: ``(states, 2 * width + 1)`` from :func:`band_from_matrix`.
        log_prior: ``(states,)`` log initial probabilities; uniform if None.
        log_jump: log probability of each transition outside the band (None: impossible).
            It must not exceed the band's entries.

    Returns:
        ``(batch, frames)`` int64 state indices.
    """
    if log_emission.dim() != 3:
        raise ValueError(f"log_emission must be (batch, frames, states), got {tuple(log_emission.shape)}")
    b, t, s = log_emission.shape
    w = (log_band.shape[1] - 1) // 2
    if log_band.shape != (s, 2 * w + 1):
        raise ValueError(f"log_band must be ({s}, 2*width+1), got {tuple(log_band.shape)}")
    # The loop runs in numpy: thousands of tiny steps are dominated by per-op overhead, which
    # is far lower (and immune to thread-pool contention) in single-threaded numpy.
    e = log_emission.detach().to("cpu", torch.float64).numpy()
    bandn = log_band.detach().to("cpu", torch.float64).numpy()
    if log_prior is not None:
        score = e[:, 0] + log_prior.detach().to("cpu", torch.float64).numpy()
    else:
        score = e[:, 0] - np.log(s)
    back = np.empty((b, t, s), dtype=np.int16 if s < 2**15 else np.int64)
    j = np.arange(s)
    padded = np.full((b, s + 2 * w), -np.inf)
    rows = np.arange(b)[:, None]
    for k in range(1, t):
        padded[:, w : w + s] = score
        # cand[b, j, w + d] = score[b, j + d] + log A[j + d, j]
        cand = sliding_window_view(padded, 2 * w + 1, axis=1) + bandn
        arg = cand.argmax(axis=2)
        best = np.take_along_axis(cand, arg[..., None], axis=2)[..., 0]
        src = j + arg - w
        if log_jump is not None:
            top_arg = score.argmax(axis=1)
            jump = score[rows[:, 0], top_arg][:, None] + log_jump
            take = jump > best
            best = np.where(take, jump, best)
            src = np.where(take, top_arg[:, None], src)
        back[:, k] = src
        score = best + e[:, k]
    path = np.empty((b, t), dtype=np.int64)
    path[:, -1] = score.argmax(axis=1)
    for k in range(t - 1, 0, -1):
        path[:, k - 1] = back[rows[:, 0], k, path[:, k]]
    path = torch.from_numpy(path)
    return path.to(log_emission.device)
