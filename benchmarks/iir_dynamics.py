"""Compressors and limiters, forward + backward, beside the peer libraries.

Setting: batch 16, 4 s of mono audio at 16 kHz, float32, CPU, 2 threads (torch and numba);
each entry computes the output, a loss, and the gradients wrt the audio and every parameter.
The median of several runs is printed with its ratio to ours (ratio > 1: the peer is slower).

Peers (each skipped with the reason printed when it cannot run):

* torchcomp ``compexp_gain`` / ``limiter_gain``: exact-gradient ballistics (numba forward,
  torchlpc backward);
* GRAFX ``Compressor``: with ``energy_smoother="ballistics"`` (it calls torchcomp's core) and
  with its default ``"iir"`` (a truncated FIR approximation of one time constant). GRAFX
  imports torchaudio, which cannot be imported here, and its package ``__init__`` imports
  torch_geometric (not installed) for graph rendering; this script puts a minimal fake
  ``torchaudio`` into ``sys.modules`` and registers the ``grafx`` package without running
  its ``__init__``, *for the GRAFX import only*, and prints what it shimmed;
* dasp-pytorch ``compressor``: one time constant applied by frequency sampling (no branch).

``run()`` returns the rows (the IIR benchmark calls it); ``python benchmarks/iir_dynamics.py``
prints them. Timings on a shared machine are noisy: compare the ratios, not the absolutes.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

SR = 16000


def _timer():
    """``benchmarks/_timing.py``'s ``time_fwd_bwd`` (shared by the benchmark scripts)."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    from _timing import time_fwd_bwd

    return time_fwd_bwd


def _median_ms(entry, repeats: int, warmup: int = 2, clock: str = "wall") -> float:
    """Median ms of forward + backward; ``entry = (loss_fn, leaves)``."""
    fn, leaves = entry
    return 1e3 * _timer()(fn, leaves, runs=repeats, warmup=warmup, clock=clock)


def _leaf(v: float, batch: int) -> torch.Tensor:
    return torch.full((batch,), float(v)).requires_grad_()


def _signal(batch: int, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    t = torch.arange(n) / SR
    env = 10 ** ((torch.rand(batch, 1, n // 1600 + 1, generator=g) * 40 - 40) / 20)
    env = env.repeat_interleave(1600, -1)[..., :n]  # level jumps every 100 ms
    return env * torch.sin(2 * math.pi * 220 * t) + 0.01 * torch.randn(batch, 1, n, generator=g)


def _ours_compressor(x, batch, backend="auto"):
    from ddsp_models.processors.dynamics import Compressor

    comp = Compressor(SR, knee="soft")
    comp.backend = backend
    raw = {s.name: torch.zeros(batch, 1).requires_grad_() for s in comp.param_specs()}

    def loss():
        xi = x.detach().requires_grad_()
        return comp(xi, **comp.scale_params(raw)).square().mean()

    return loss, list(raw.values())


def _ours_limiter(x, batch):
    from ddsp_models.processors.dynamics import Limiter

    lim = Limiter(SR)
    raw = {s.name: torch.zeros(batch, 1).requires_grad_() for s in lim.param_specs()}

    def loss():
        xi = x.detach().requires_grad_()
        return lim(xi, **lim.scale_params(raw)).square().mean()

    return loss, list(raw.values())


def _torchcomp_compressor(x, batch):
    import torchcomp

    thr, ratio = _leaf(-30, batch), _leaf(4, batch)
    at, rt = _leaf(0.05, batch), _leaf(0.002, batch)  # torchcomp's poles are 1 - alpha

    def loss():
        xi = x.detach().requires_grad_()
        x_rms = xi[:, 0].abs().clamp_min(1e-5)
        gain = torchcomp.compexp_gain(x_rms, thr, ratio, -120.0, 0.5, at, rt)
        return (xi * gain[:, None]).square().mean()

    return loss, [thr, ratio, at, rt]


def _torchcomp_limiter(x, batch):
    import torchcomp

    thr, at, rt = _leaf(-6, batch), _leaf(0.3, batch), _leaf(0.002, batch)

    def loss():
        xi = x.detach().requires_grad_()
        gain = torchcomp.limiter_gain(xi[:, 0], thr, at, rt)
        return (xi * gain[:, None]).square().mean()

    return loss, [thr, at, rt]


def _grafx_compressor(energy_smoother):
    def make(x, batch):
        from grafx.processors.dynamics import Compressor as GrafxCompressor

        comp = GrafxCompressor(energy_smoother=energy_smoother, knee="quadratic",
                               flashfftconv=False)
        size = comp.parameter_size()
        params = {k: torch.zeros(batch, v).requires_grad_() for k, v in size.items()}

        def loss():
            xi = x.detach().requires_grad_()
            return comp(xi, **params).square().mean()

        return loss, list(params.values())

    return make


def _dasp_compressor(x, batch):
    from dasp_pytorch.functional import compressor

    p = {k: _leaf(v, batch) for k, v in dict(threshold_db=-30, ratio=4, attack_ms=5,
                                              release_ms=100, knee_db=6, makeup_gain_db=0).items()}

    def loss():
        xi = x.detach().requires_grad_()
        return compressor(xi, SR, **p).square().mean()

    return loss, list(p.values())


def run(batch: int = 16, seconds: float = 4.0, repeats: int = 7, threads: int = 2,
        clocks: tuple[str, ...] = ("wall",), verbose: bool = True) -> list[dict]:
    """Time every entry; print and return rows ``{"group", "name", "clock", "ms", "vs_ours",
    "note"}``. ``clocks``: ``"wall"`` (elapsed) and/or ``"cpu"`` (process CPU time over all
    threads, less disturbed by other jobs on a shared machine)."""
    torch.set_num_threads(threads)
    try:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass
    n = int(seconds * SR)
    x = _signal(batch, n)
    say = print if verbose else (lambda *a, **k: None)
    _timer()  # puts benchmarks/ on sys.path
    from _grafx_shim import shim_grafx

    shimmed = shim_grafx()
    if shimmed:
        say("GRAFX import shims (this script only): " + "; ".join(shimmed))

    groups = {
        "compressor": [
            ("ddsp_models Compressor (exact ballistics)", _ours_compressor, ""),
            ("torchcomp compexp_gain", _torchcomp_compressor, "exact ballistics"),
            ("GRAFX Compressor, ballistics", _grafx_compressor("ballistics"), "torchcomp core"),
            ("GRAFX Compressor, iir (default)", _grafx_compressor("iir"), "one tau, FIR approx."),
            ("dasp-pytorch compressor", _dasp_compressor, "one tau, freq. sampling"),
            ("ddsp_models Compressor, backend='torch'",
             lambda x, b: _ours_compressor(x, b, "torch"),
             "info: the per-sample torch loop (CPU), 1 run"),
        ],
        "limiter": [
            ("ddsp_models Limiter (exact ballistics)", _ours_limiter, ""),
            ("torchcomp limiter_gain", _torchcomp_limiter, "exact, two ballistics passes"),
        ],
    }
    rows = []
    say(f"\nDynamics, forward+backward: batch {batch}, {seconds:g} s at {SR} Hz, float32, "
        f"{threads} threads, median of {repeats}")
    for clock in clocks:
        for group, entries in groups.items():
            ours = None
            say(f"\n{group} ({clock} clock):")
            for name, make, note in entries:
                once = note.startswith("info:")
                if once and clock != clocks[0]:
                    continue
                row = {"group": group, "name": name, "clock": clock, "ms": None,
                       "vs_ours": None, "note": note}
                try:
                    ms = _median_ms(make(x, batch), 1 if once else repeats,
                                    0 if once else 2, clock)
                except Exception as err:  # a peer that cannot run is reported, not fatal
                    say(f"  {name:44s}  skipped: {type(err).__name__}: {err}")
                    rows.append({**row, "note": f"skipped: {err}"})
                    continue
                ours = ms if ours is None else ours
                rows.append({**row, "ms": ms, "vs_ours": ms / ours})
                say(f"  {name:44s} {ms:9.1f} ms   x{ms / ours:5.2f} of ours   {note}")
            peers = [r for r in rows if r["group"] == group and r["clock"] == clock
                     and r["ms"] is not None and not r["note"].startswith("info:")][1:]
            if peers and ours is not None:
                best = min(peers, key=lambda r: r["ms"])
                say(f"  fastest peer: {best['name']} ({best['ms']:.1f} ms); ours is "
                    f"{best['ms'] / ours:.2f}x its speed")
    return rows


if __name__ == "__main__":
    run(clocks=("wall", "cpu"))
