"""One place that imports numba for the CPU kernels (IIR, ballistics, dynamics).

numba's OpenMP thread pool busy-waits after each parallel call by default; on a machine where
torch's own threads need the same cores, that made every later torch op several times slower
(measured 2.4x on a mixed numba/torch loop, ~10x in the graph benchmark). Asking OpenMP for a
passive wait before numba loads its pool removes that. torch's bundled OpenMP runtime is a
separate library that has read its settings already, so torch is unaffected. A value the user
set in ``OMP_WAIT_POLICY`` is respected.
"""

from __future__ import annotations

import os


def import_numba():
    """``numba``, imported with a passive OpenMP wait policy; raises ImportError without it."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import numba

    return numba
