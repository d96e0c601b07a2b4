"""Make GRAFX importable for the benchmarks, and say exactly how.

GRAFX imports ``torchaudio`` at import time (whose wheels do not load with CPU torch or any
torch newer than the one they were built for) and its graph renderer imports
``torch_geometric`` (not installed). For the benchmark process only, this module puts
stand-ins into ``sys.modules``:

* ``torchaudio``: a fake with ``__version__ = "2.4.0"``; ``functional.lfilter`` and
  ``functional.melscale_fbanks`` raise if called, so nothing that needs real torchaudio is
  ever timed (GRAFX's own ``ssm``/``fsm`` filter backends and ballistics do not use it);
* ``torch_geometric.utils.scatter`` / ``sort_edge_index``: short torch re-implementations,
  enough for ``grafx.render``.

Never import this from the package or the tests.
"""

from __future__ import annotations

import sys
import types

import torch


def _fake_torchaudio() -> str:
    ta = types.ModuleType("torchaudio")
    ta.__version__ = "2.4.0"  # GRAFX warns below 2.4; no torchaudio code runs
    fn = types.ModuleType("torchaudio.functional")

    def not_available(*args, **kwargs):
        raise NotImplementedError("fake torchaudio (benchmarks/_grafx_shim.py): not available")

    fn.lfilter = not_available
    fn.melscale_fbanks = not_available
    ta.functional = fn
    sys.modules["torchaudio"] = ta
    sys.modules["torchaudio.functional"] = fn
    return ("torchaudio: fake module (__version__ '2.4.0'; functional.lfilter and "
            "melscale_fbanks raise if called)")


def _scatter(src, index, dim=-1, dim_size=None, reduce="sum"):
    dim = dim % src.dim()
    if dim_size is None:
        dim_size = int(index.max()) + 1 if index.numel() else 0
    shape = list(src.shape)
    shape[dim] = dim_size
    view = [1] * src.dim()
    view[dim] = -1
    idx = index.view(view).expand_as(src)
    is_bool = src.dtype == torch.bool
    s = src.to(torch.uint8) if is_bool else src
    op = {"sum": "sum", "add": "sum", "mul": "prod", "min": "amin", "max": "amax",
          "mean": "mean"}[reduce]
    init = torch.ones if op == "prod" else torch.zeros
    out = init(shape, dtype=s.dtype, device=s.device)
    out = out.scatter_reduce(dim, idx, s, reduce=op, include_self=(op == "prod"))
    return out.bool() if is_bool else out


def _sort_edge_index(edge_index, edge_attr=None, num_nodes=None, sort_by_row=True):
    n = int(edge_index.max()) + 1 if num_nodes is None else num_nodes
    first, second = (edge_index[0], edge_index[1]) if sort_by_row else (edge_index[1], edge_index[0])
    perm = torch.argsort(first * n + second, stable=True)
    if edge_attr is None:
        return edge_index[:, perm]
    return edge_index[:, perm], edge_attr[perm]


def _fake_torch_geometric() -> str:
    pyg = types.ModuleType("torch_geometric")
    utils = types.ModuleType("torch_geometric.utils")
    utils.scatter, utils.sort_edge_index = _scatter, _sort_edge_index
    pyg.utils = utils
    sys.modules["torch_geometric"] = pyg
    sys.modules["torch_geometric.utils"] = utils
    return "torch_geometric.utils.scatter/sort_edge_index: torch re-implementations"


def shim_grafx() -> list[str]:
    """Install the stand-ins that are needed; return one line per stand-in installed."""
    shimmed = []
    if "torchaudio" not in sys.modules:
        shimmed.append(_fake_torchaudio())
    try:
        import torch_geometric  # noqa: F401  (only whether it imports)
    except ImportError:
        shimmed.append(_fake_torch_geometric())
    return shimmed
