"""A counter-based white-noise source: sample ``n`` of the noise is a hash of ``n``.

Block-by-block rendering and whole-signal rendering must draw the *same* noise for a noise
synth to give the same audio whatever the block sizes. A stateful generator cannot do that;
a hash of the sample index can: a stream only carries its position (an integer).

:func:`counter_noise` is uniform in ``[-1, 1)``; samples at negative positions are zero (they
stand for the zero padding before the signal starts). It is TorchScript- and ONNX-friendly
(no unsigned shifts: shifts are exact float64 divisions by powers of two).
:func:`deterministic_noise` makes every noise-drawing processor inside a module use it for
whole-signal rendering (the offline reference of a stream, and reproducible renders).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import Tensor, nn

__all__ = ["counter_noise", "counter_noise_at", "deterministic_noise", "noise_like"]


def _mul32(x: Tensor, c: int) -> Tensor:
    """``(x * c) mod 2**32`` for ``0 <= x, c < 2**32`` in int64 without overflow."""
    lo = c & 0xFFFF
    hi = c >> 16
    return torch.remainder(x * lo + torch.remainder(x * hi, 65536) * 65536, 4294967296)


def _shr(x: Tensor, k: int) -> Tensor:
    # exact: x < 2**53, and dividing by a power of two is exact in float64 (some ONNX runtimes
    # round int64 floor-division through float32)
    return torch.floor(x.to(torch.float64) / float(1 << k)).to(torch.int64)


def _hash32(x: Tensor) -> Tensor:
    """A 32-bit integer mixer (xor-shift / multiply, "lowbias32" constants)."""
    x = torch.bitwise_xor(x, _shr(x, 16))
    x = _mul32(x, 0x7FEB352D)
    x = torch.bitwise_xor(x, _shr(x, 15))
    x = _mul32(x, 0x846CA68B)
    return torch.bitwise_xor(x, _shr(x, 16))


def counter_noise(batch: int, start: int, n_samples: int, seed: int, like: Tensor) -> Tensor:
    """White noise samples ``start .. start + n_samples - 1``: ``(batch, n_samples)``.

    Row ``b`` is the stream of seed ``seed + b``. Uniform in ``[-1, 1)`` (steps of ``2**-31``);
    positions below zero give 0. The period is ``2**32`` samples (74 hours at 16 kHz). The
    result has ``like``'s dtype and device.
    """
    return counter_noise_at(batch, torch.tensor(start, device=like.device), n_samples,
                            torch.tensor(seed, device=like.device), like)


def counter_noise_at(batch: int, start: Tensor, n_samples: int, seed: Tensor, like: Tensor) -> Tensor:
    """:func:`counter_noise` with the position ``start`` and ``seed`` as 0-dim int64 tensors:
    no data-dependent Python ints, so a stream's step exports to ONNX and never syncs a GPU."""
    pos = torch.arange(n_samples, dtype=torch.int64, device=like.device) + start
    rows = torch.arange(batch, dtype=torch.int64, device=like.device) + seed
    key = _hash32(_mul32(torch.remainder(rows, 4294967296), 0x9E3779B9))  # per-row offset
    x = _hash32(torch.remainder(pos[None, :] + key[:, None], 4294967296))
    u = x.to(torch.float64) * (2.0 / 4294967296.0) - 1.0
    u = torch.where(pos[None, :] >= 0, u, torch.zeros_like(u))
    return u.to(like.dtype)


def noise_like(batch: int, n_samples: int, like: Tensor, seed: int | None = None) -> Tensor:
    """Noise for a whole-signal render: :func:`counter_noise` from position 0 when ``seed`` is
    given (or inside :func:`deterministic_noise`), else uniform ``[-1, 1)`` from torch's global
    generator, ``(batch, n_samples)`` in ``like``'s dtype and device."""
    if seed is None:
        seed = _DETERMINISTIC_SEED[0]
    if seed is None:
        return torch.rand(batch, n_samples, dtype=like.dtype, device=like.device) * 2.0 - 1.0
    return counter_noise(batch, 0, n_samples, int(seed), like)


_DETERMINISTIC_SEED: list = [None]


@contextlib.contextmanager
def deterministic_noise(module: nn.Module | None = None, seed: int = 0) -> Iterator[None]:
    """Within the block, every processor that draws noise through :func:`noise_like` draws
    :func:`counter_noise` from position 0 with ``seed`` (unless given its noise explicitly):
    the whole-signal render then equals a block-by-block render of seed ``seed``.

    ``module`` is accepted for backward compatibility and not needed.

    >>> with deterministic_noise(seed=0):   # doctest: +SKIP
    ...     offline = model(f0_hz, loudness_db)
    """
    before = _DETERMINISTIC_SEED[0]
    _DETERMINISTIC_SEED[0] = int(seed)
    try:
        yield
    finally:
        _DETERMINISTIC_SEED[0] = before
