"""One place that imports numba for the CPU kernels (IIR, ballistics, dynamics), and the one
rule that picks a backend for them.

Backends (the one vocabulary of every kernel's ``backend`` argument): ``"auto"`` (numba on CPU
tensors when numba is importable, else pure torch), ``"numba"`` (insist: an error off the CPU
or without numba) and ``"torch"`` (pure torch on any device). Setting ``DDSP_MODELS_NO_NUMBA``
makes ``"auto"`` choose torch everywhere (for tests of the torch paths and for debugging).

numba's OpenMP thread pool busy-waits after each parallel call by default; on a machine where
torch's own threads need the same cores, that made every later torch op several times slower
(measured 2.4x on a mixed numba/torch loop, ~10x in the graph benchmark). Asking OpenMP for a
passive wait before numba loads its pool removes that. torch's bundled OpenMP runtime is a
separate library that has read its settings already, so torch is unaffected. A value the user
set in ``OMP_WAIT_POLICY`` is respected.
"""

from __future__ import annotations

import functools
import os

import torch

BACKENDS = ("auto", "numba", "torch")


def import_numba():
    """``numba``, imported with a passive OpenMP wait policy; raises ImportError without it."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import numba

    return numba


@functools.lru_cache(maxsize=None)
def _importable() -> bool:
    try:
        import_numba()
    except ImportError:  # pragma: no cover - numba is a declared dependency
        return False
    return True


def numba_available() -> bool:
    """Whether the numba kernels can run (numba importable and ``DDSP_MODELS_NO_NUMBA`` unset)."""
    return not os.environ.get("DDSP_MODELS_NO_NUMBA") and _importable()


def use_numba(t: torch.Tensor, backend: str) -> bool:
    """The one backend rule: whether the numba kernels serve a tensor like ``t``.

    Raises ``ValueError`` for an unknown backend name or ``backend="numba"`` off the CPU, and
    ``RuntimeError`` for ``backend="numba"`` without numba.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        return False
    if backend == "numba" and not numba_available():
        raise RuntimeError("backend='numba' needs numba: pip install numba (or use 'torch')")
    if backend == "numba" and t.device.type != "cpu":
        raise ValueError("backend='numba' runs on CPU tensors only; use backend='auto' on GPU")
    return (t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64)
            and numba_available())
