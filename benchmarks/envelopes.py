"""ADSR, LFO and an ADSR-modulated FM graph at batch 128, 4 s at 16 kHz, 250 frames/s (issue #16).

Rows (forward without gradients, and forward+backward to every parameter):

* ``ADSR`` linear and exponential, one note per row (gate on for 3 s, then released), and
  ``ADSR`` with a gate that changes every 100 ms on some rows (40 closed-form stretches
  instead of 2: its offline cost grows with the number of frames where any gate changes);
* ``LFO`` sine, static rate (latency 0) and per-frame rate (interpolated);
* a graph: ``FMSynth`` (2 operators) with an ``ADSR`` modulating its amplitudes and an ``LFO``
  its modulation index, against ``FMSynth`` alone (the cost of modulation).

torchsynth's ADSR / LFO / FM modules would be the reference (issue #16 asks "not slower than
torchsynth"), but torchsynth cannot be installed here (it needs torchaudio, which this
environment does not have), so this script prints our figures only; it times torchsynth if it
happens to import.

    python benchmarks/envelopes.py [--runs 3] [--threads 2] [--device cpu|cuda] [--batch 128]
                                   [--clock wall|cpu]

Figures on a shared machine are noisy; the script prints what it measured.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ddsp_models.graph import ProcessorGraph
from ddsp_models.processors.adsr import ADSR
from ddsp_models.processors.fm import FMSynth
from ddsp_models.processors.lfo import LFO

SR, FR, SECONDS = 16000, 250, 4.0


CLOCK = time.perf_counter


def timed(fn, runs: int, device: str, backward: bool, leaves=()):
    times = []
    for i in range(runs + 1):
        for x in leaves:
            x.grad = None
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = CLOCK()
        if backward:
            fn().square().mean().backward()
        else:
            with torch.no_grad():
                fn()
        if device == "cuda":
            torch.cuda.synchronize()
        if i:  # the first run warms up
            times.append(CLOCK() - t0)
    return statistics.median(times), min(times), max(times)


def leaf(shape, value, device, gen=None):
    x = value if gen is None else value * (1 + 0.1 * torch.rand(shape, generator=gen))
    return torch.as_tensor(x, dtype=torch.float32).expand(shape).clone().to(device) \
        .requires_grad_()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: process CPU time over all threads (steadier on a busy machine)")
    args = ap.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    dev, b = args.device, args.batch
    n = int(SR * SECONDS)
    t = int(FR * SECONDS)
    gen = torch.Generator().manual_seed(0)
    gate = torch.zeros(b, t, 1, device=dev)
    gate[:, : int(FR * 3)] = 1.0
    busy = gate.clone()
    busy[: b // 2] = ((torch.arange(t, device=dev) // 25) % 2 == 0).float()[None, :, None]
    rows = []

    def row(name, make_fn, leaves):
        fwd = timed(make_fn, args.runs, dev, False)
        bwd = timed(make_fn, args.runs, dev, True, leaves)
        rows.append((name, fwd, bwd))

    for shape in ("linear", "exponential"):
        env = ADSR(SR, shape=shape).to(dev)
        p = {"attack": leaf((b, 1), 0.05, dev, gen), "decay": leaf((b, 1), 0.2, dev, gen),
             "sustain": leaf((b, 1), 0.6, dev, gen), "release": leaf((b, 1), 0.3, dev, gen)}
        row(f"ADSR {shape}, one note", lambda env=env, p=p: env(gate=gate, n_samples=n, **p),
            list(p.values()))
    env = ADSR(SR).to(dev)
    row("ADSR linear, gate changing every 100 ms", lambda: env(gate=busy, n_samples=n, **p),
        list(p.values()))
    lfo = LFO(SR).to(dev)
    q = {"rate_hz": leaf((b, 1), 5.0, dev, gen), "depth": leaf((b, 1), 0.5, dev, gen),
         "phase": leaf((b, 1), 0.1, dev, gen)}
    row("LFO sine, static rate", lambda: lfo(n_samples=n, **q), list(q.values()))
    lfo_tv = LFO(SR, time_varying=True).to(dev)
    qt = {"rate_hz": leaf((b, t, 1), 5.0, dev, gen), "depth": leaf((b, t, 1), 0.5, dev, gen),
          "phase": leaf((b, 1), 0.1, dev, gen)}
    row("LFO sine, rate per frame", lambda: lfo_tv(n_samples=n, **qt), list(qt.values()))

    fm = FMSynth(SR).to(dev)
    f0 = torch.full((b, t, 1), 220.0, device=dev)
    fp = {"amplitudes": leaf((b, t, 1), 0.5, dev, gen), "mod_indices": leaf((b, t, 1), 2.0, dev,
                                                                             gen)}
    row("FMSynth 2 operators alone", lambda: fm(f0_hz=f0, n_samples=n, **fp), list(fp.values()))
    g = ProcessorGraph.from_dict({
        "nodes": {"fm": {"type": "FMSynth", "sample_rate": SR},
                  "env": {"type": "ADSR", "sample_rate": SR},
                  "lfo": {"type": "LFO", "sample_rate": SR}},
        "edges": ["fm -> out"],
        "modulations": [{"from": "env", "to": "fm.amplitudes", "mode": "multiply"},
                        {"from": "lfo", "to": "fm.mod_indices", "mode": "multiply",
                         "amount": 0.5}]}).to(dev)
    gp = {"fm": fp, "env": p, "lfo": q}
    row("graph: FMSynth + ADSR on amplitudes + LFO on index",
        lambda: g.render(gp, n, controls={"f0_hz": f0, "gate": gate}),
        [*fp.values(), *p.values(), *q.values()])

    try:  # torchsynth needs torchaudio; never a dependency
        import torchsynth  # noqa: F401

        print("torchsynth imports: add its ADSR/LFO/FmVCO rows here for a comparison")
    except ImportError:
        print("torchsynth is not installed (it needs torchaudio, unavailable here): "
              "our figures only")
    print(f"\nbatch {b}, {SECONDS:g} s at {SR} Hz ({t} frames), device {dev}, "
          f"{args.threads} threads, {args.clock} clock; median (min..max) of {args.runs} runs, "
          "ms\n")
    print("| what | forward | forward+backward |")
    print("|---|---|---|")
    for name, fwd, bwd in rows:
        cell = lambda r: f"{r[0] * 1e3:.0f} ({r[1] * 1e3:.0f}..{r[2] * 1e3:.0f})"  # noqa: E731
        print(f"| {name} | {cell(fwd)} | {cell(bwd)} |")


if __name__ == "__main__":
    main()
