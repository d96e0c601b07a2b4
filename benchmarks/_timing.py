"""Tiny shared timing helper for the benchmark scripts (not a test).

    from _timing import set_threads, time_fwd_bwd, print_table
    set_threads(2)
    t = time_fwd_bwd(lambda: model(x), [x, *model.parameters()])
    print_table("title", [("name", t, {"vs floor": t / floor})])

``time_fwd_bwd`` runs ``warmup`` untimed calls, then ``runs`` timed calls of forward and
backward (``out.sum().backward()``, or the callable's own loss if it returns a scalar) and
returns the median seconds. Timings on a shared machine are noisy: report them as such.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Iterable, Mapping, Sequence

import torch

__all__ = ["set_threads", "time_fwd_bwd", "time_fwd", "print_table", "clock_named", "call_once",
           "timed"]


def set_threads(n: int = 2) -> None:
    """Fix torch's intra-op thread count so runs are comparable (default 2)."""
    torch.set_num_threads(n)


def _clear(tensors: Iterable[torch.Tensor]) -> None:
    for t in tensors:
        t.grad = None


_CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def time_fwd_bwd(
    fn: Callable[[], torch.Tensor],
    grad_tensors: Sequence[torch.Tensor] = (),
    runs: int = 5,
    warmup: int = 1,
    clock: str = "wall",
) -> float:
    """Median time (s) of ``fn()`` forward plus backward.

    ``clock="wall"`` (default) measures elapsed time; ``clock="cpu"`` the process CPU time
    summed over threads, which is less disturbed by other jobs on a shared machine.
    """
    if clock not in _CLOCKS:
        raise ValueError(f"clock must be one of {sorted(_CLOCKS)}, got {clock!r}")
    now = _CLOCKS[clock]
    grad_tensors = list(grad_tensors)
    times = []
    for i in range(warmup + runs):
        _clear(grad_tensors)
        t0 = now()
        out = fn()
        (out if out.dim() == 0 else out.sum()).backward()
        dt = now() - t0
        del out
        if i >= warmup:
            times.append(dt)
    _clear(grad_tensors)
    return statistics.median(times)


def time_fwd(fn: Callable[[], object], runs: int = 5, warmup: int = 1) -> float:
    """Median wall time (s) of ``fn()`` under ``torch.no_grad()``."""
    times = []
    with torch.no_grad():
        for i in range(warmup + runs):
            t0 = time.perf_counter()
            fn()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return statistics.median(times)


def print_table(title: str, rows: Sequence[tuple[str, float, Mapping[str, float]]]) -> None:
    """Print ``name | ms | ratio columns`` as a Markdown table."""
    cols = []
    for _, _, ratios in rows:
        cols += [c for c in ratios if c not in cols]
    print(f"\n### {title}\n")
    print("| " + " | ".join(["what", "ms"] + cols) + " |")
    print("|" + "---|" * (2 + len(cols)))
    for name, seconds, ratios in rows:
        cells = [name, f"{seconds * 1e3:.0f}"]
        cells += [f"{ratios[c]:.2f}" if c in ratios else "" for c in cols]
        print("| " + " | ".join(cells) + " |")


def clock_named(name: str) -> Callable[[], float]:
    """``"cpu"``: process CPU time over all threads (steadier on a busy machine); else wall."""
    return time.process_time if name == "cpu" else time.perf_counter


def call_once(fn: Callable[[], torch.Tensor], leaves: Sequence[torch.Tensor], backward: bool,
              device: str, clock: Callable[[], float]) -> float:
    """Seconds of one call of ``fn`` (``backward``: and of ``fn().square().mean().backward()``,
    with the gradients of ``leaves`` cleared first), synchronised on CUDA."""
    for x in leaves:
        x.grad = None
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = clock()
    if backward:
        fn().square().mean().backward()
    else:
        with torch.no_grad():
            fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return clock() - t0


def timed(fn: Callable[[], torch.Tensor], runs: int, device: str, backward: bool,
          leaves: Sequence[torch.Tensor] = (), clock: Callable[[], float] = time.perf_counter
          ) -> tuple[float, float, float]:
    """``(median, min, max)`` seconds of ``runs`` calls after one warm-up call."""
    times = [call_once(fn, leaves, backward, device, clock) for _ in range(runs + 1)][1:]
    return statistics.median(times), min(times), max(times)

