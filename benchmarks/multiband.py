"""Multiband (three LR4 bands, a compressor per band): what the crossovers cost.

Setting: batch 16, 2 s of mono audio at 16 kHz, float32, CPU, 2 threads. Rows:

* ``split``: the LR4 crossover tree alone (9 biquads: 4 per crossover, 1 allpass);
* ``3 x Compressor``: three compressors on the unsplit input (the bands' effects alone);
* ``Multiband``: the whole container (split, three compressors, sum);

each forward, and forward + backward (gradients wrt the audio and every parameter). Then the
block path: ``step`` in Python and scripted, batch 1, hop 64, blocks of 4 frames (256 samples),
as a real-time factor (seconds of audio per second of compute). Each figure is from ``RUNS``
runs: the best (the least disturbed by other jobs), the median and the range. No peer library ships a differentiable
multiband container, so none is compared. Timings on a shared machine are noisy.
"""

from __future__ import annotations

import statistics
import time

import torch

from ddsp_models.processors.blocks import render_in_blocks
from ddsp_models.processors.dynamics import Compressor
from ddsp_models.processors.multiband import Multiband

SR, BATCH, SECONDS, HOP, RUNS = 16000, 16, 2.0, 64, 7
STREAM_SECONDS = 1.0


def timed(fn, runs=RUNS, warmup=1):
    out = []
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        fn()
        if i >= warmup:
            out.append(time.perf_counter() - t0)
    return statistics.median(out), min(out), max(out)


def fwd_bwd(fn, leaves):
    def run():
        for t in leaves:
            t.grad = None
        fn().square().mean().backward()
    return run


def row(name, t, extra=""):
    med, lo, hi = t
    print(f"  {name:<30} best {lo * 1e3:8.1f} ms  median {med * 1e3:8.1f} ms  "
          f"(range {lo * 1e3:.1f} - {hi * 1e3:.1f}){extra}")


def main():
    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(0)
    n = int(SR * SECONDS)
    x = 0.5 * torch.randn(BATCH, 1, n, generator=g)
    mb = Multiband(SR)
    params = mb.random_params(BATCH, n // HOP, generator=g)
    comps = [Compressor(SR) for _ in range(3)]
    subs = [{k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(f"{i}.")}
            for i in range(3)]
    print(f"Multiband, batch {BATCH}, {SECONDS:g} s at {SR} Hz, float32, CPU, 2 threads "
          f"({RUNS} runs)")
    print("forward")
    with torch.no_grad():
        t_split = timed(lambda: mb.split(x))
        t_comp = timed(lambda: [c(x, **s) for c, s in zip(comps, subs)])
        t_mb = timed(lambda: mb(x, **params))
    row("split (LR4 tree)", t_split)
    row("3 x Compressor (no split)", t_comp)
    row("Multiband", t_mb, f"   split/Multiband (best) {t_split[1] / t_mb[1]:.0%}")
    print("forward + backward")
    xg = x.clone().requires_grad_()
    pg = {k: v.clone().requires_grad_() for k, v in params.items()}
    leaves = [xg, *pg.values()]
    t_split = timed(fwd_bwd(lambda: torch.stack(mb.split(xg)), [xg]))
    t_comp = timed(fwd_bwd(lambda: sum(c(xg, **{k.split(".", 1)[1]: v for k, v in pg.items()
                                                   if k.startswith(f"{i}.")})
                                       for i, c in enumerate(comps)), leaves))
    t_mb = timed(fwd_bwd(lambda: mb(xg, **pg), leaves))
    row("split (LR4 tree)", t_split)
    row("3 x Compressor (no split)", t_comp)
    row("Multiband", t_mb, f"   split/Multiband (best) {t_split[1] / t_mb[1]:.0%}")
    print(f"block path: batch 1, hop {HOP}, blocks of 4 frames ({4 * HOP} samples), "
          f"{STREAM_SECONDS:g} s")
    m = int(SR * STREAM_SECONDS)
    x1 = x[:1, :, :m]
    p1 = {k: v[:1] for k, v in params.items()}  # static parameters
    scripted = torch.jit.script(mb)
    with torch.no_grad():
        for name, step in (("step (Python)", None), ("step (scripted)", scripted.step)):
            t = timed(lambda: render_in_blocks(mb, p1, HOP, [x1], n_frames=m // HOP,
                                               block_frames=(4,), step=step), runs=3)
            s = STREAM_SECONDS
            row(name, t, f"   real-time x{s / t[1]:.2f} best, x{s / t[0]:.2f} median")
        hist = torch.zeros(1, 1, mb.n_sections, 4)
        blocks = [x1[..., a:a + 4 * HOP] for a in range(0, m, 4 * HOP)]

        def split_only():
            h = hist
            for blk in blocks:
                _, h = mb._split_block(blk, h)

        t = timed(split_only, runs=3)
        row("split only (Python)", t, f"   real-time x{STREAM_SECONDS / t[1]:.2f} best")


if __name__ == "__main__":
    main()
