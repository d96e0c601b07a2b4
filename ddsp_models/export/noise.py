"""A counter-based white-noise source: sample ``n`` of the noise is a hash of ``n``.

Streaming rendering (block by block) and offline rendering (the whole signal at once) must
draw the *same* noise for :class:`~ddsp_models.synths.FilteredNoise` to give the same audio.
A stateful generator cannot do that across different block sizes; a hash of the sample index
can: a streaming block only carries its position (an integer).

:func:`counter_noise` is uniform in ``[-1, 1)`` like ``FilteredNoise``'s own draw; samples at
negative positions are zero (they stand for the zero padding before the signal starts).
:func:`deterministic_noise` makes every ``FilteredNoise`` node of a graph use it for offline
rendering (for tests and for comparing against the streaming export).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import Tensor, nn

__all__ = ["counter_noise", "deterministic_noise"]

_MASK32 = 0xFFFFFFFF


def _mul32(x: Tensor, c: int) -> Tensor:
    """``(x * c) mod 2**32`` for ``0 <= x, c < 2**32`` in int64 without overflow."""
    lo = c & 0xFFFF
    hi = c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & _MASK32


def _hash32(x: Tensor) -> Tensor:
    """A 32-bit integer mixer (xor-shift / multiply, "lowbias32" constants)."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    x = x ^ (x >> 16)
    return x


def counter_noise(
    batch: int, start: int, n_samples: int, seed: int = 0, dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
) -> Tensor:
    """White noise samples ``start .. start + n_samples - 1``: ``(batch, n_samples)``.

    Row ``b`` is the stream of seed ``seed + b``. Uniform in ``[-1, 1)`` (steps of ``2**-31``);
    positions below zero give 0. The period is ``2**32`` samples (74 hours at 16 kHz).
    """
    pos = torch.arange(n_samples, dtype=torch.int64, device=device) + start
    rows = torch.arange(batch, dtype=torch.int64, device=device) + seed
    key = _hash32(_mul32(rows & _MASK32, 0x9E3779B9))  # per-row offset of the stream
    x = _hash32((pos[None, :] + key[:, None]) & _MASK32)
    u = x.to(torch.float64) * (2.0 / 4294967296.0) - 1.0
    u = torch.where(pos[None, :] >= 0, u, torch.zeros_like(u))
    return u.to(dtype)


@contextlib.contextmanager
def deterministic_noise(module: nn.Module, seed: int = 0) -> Iterator[None]:
    """Within the block, every ``FilteredNoise`` inside ``module`` draws :func:`counter_noise`
    from position 0 (unless a ``noise`` argument is passed explicitly).

    >>> with deterministic_noise(model):   # doctest: +SKIP
    ...     offline = model(f0_hz, loudness_db)
    """
    from ..processors.noise import FilteredNoise

    def hook(proc, args, kwargs):
        if kwargs.get("noise") is not None:
            return None
        mags = kwargs.get("magnitudes", args[0] if args else None)
        n = kwargs["n_samples"] if "n_samples" in kwargs else args[1]
        kwargs = dict(kwargs)
        kwargs["noise"] = counter_noise(mags.shape[0], 0, int(n), seed, mags.dtype, mags.device)
        return args, kwargs

    handles = [m.register_forward_pre_hook(hook, with_kwargs=True)
               for m in module.modules() if isinstance(m, FilteredNoise)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
