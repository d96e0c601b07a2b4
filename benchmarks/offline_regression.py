"""Offline speed before/after a change: the same forward+backward cases timed on two source trees.

    git worktree add /tmp/before <old commit>
    python benchmarks/offline_regression.py --before /tmp/before [--rounds 3] [--threads 2]

Each round runs every case in a fresh interpreter per tree, alternating before/after (so a
noisy spell of the shared machine hits both), and the figures are medians over rounds of the
per-case medians. Cases (B=16, 4 s at 16 kHz, 250 frames/s unless stated) cover what
``benchmarks/synths.py``, ``iir.py`` and ``graph.py`` time: Harmonic (100 harmonics),
FilteredNoise (65 bands), Reverb (1 s), a time-varying Biquad, a 6-band ParametricEQ, a
Compressor, and the ``delay_iir`` graph rendered batched. A ratio above 1.05 is a regression
beyond the 5 % budget (check it again: the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CASES = r'''
import json, statistics, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
repeats = int(sys.argv[2])
from ddsp_models.processors import load_processor_class as P
from ddsp_models.graph import presets
torch.manual_seed(0)
B, T, SR = 16, 1000, 16000
L = T * 64
f0 = torch.full((B, T, 1), 220.0)
x = torch.randn(B, 1, L)

def case_harmonic():
    h = P("Harmonic")(SR, n_harmonics=100)
    p = {k: v.requires_grad_() for k, v in h.random_params(B, T).items() if k != "f0_hz"}
    return lambda: h(f0, n_samples=L, **p).square().mean().backward()

def case_noise():
    n = P("FilteredNoise")(SR, n_bands=65)
    p = {k: v.requires_grad_() for k, v in n.random_params(B, T).items()}
    return lambda: n(n_samples=L, **p).square().mean().backward()

def case_reverb():
    r = P("Reverb")(SR, length=16000)
    xi = x.clone().requires_grad_()
    return lambda: r(xi).square().mean().backward()

def effect(name, **cfg):
    e = P(name)(SR, **cfg)
    p = {k: v.requires_grad_() for k, v in e.random_params(B, T).items()}
    xi = x.clone().requires_grad_()
    return lambda: e(xi, **p).square().mean().backward()

def case_graph():
    g = presets.delay_iir(SR)
    raw = torch.randn(B, T, g.parameter_layout().n_params, requires_grad=True)
    return lambda: g.render(g.split_params(raw), n_samples=L,
                            controls={"f0_hz": f0}).square().mean().backward()

cases = {
    "Harmonic 100": case_harmonic,
    "FilteredNoise 65": case_noise,
    "Reverb 1 s": case_reverb,
    "Biquad time-varying": lambda: effect("Biquad", kind="lowpass", time_varying=True),
    "ParametricEQ 6 bands": lambda: effect("ParametricEQ", n_peaks=4),
    "Compressor": lambda: effect("Compressor"),
    "graph delay_iir": case_graph,
}
out = {}
for name, make in cases.items():
    fn = make()
    fn()  # warm-up (numba compilation, caches)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    out[name] = statistics.median(ts)
print(json.dumps(out))
'''


def run(tree: Path, threads: int, repeats: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    res = subprocess.run([sys.executable, "-c", CASES, str(threads), str(repeats)],
                         env=env, capture_output=True, text=True, cwd=tree)
    if res.returncode:
        raise SystemExit(f"{tree}: {res.stderr.strip().splitlines()[-1]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="source tree of the old version")
    ap.add_argument("--after", default=str(Path(__file__).resolve().parents[1]),
                    help="source tree of the new version (default: this checkout)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    trees = {"before": Path(args.before).resolve(), "after": Path(args.after).resolve()}
    figures: dict = {"before": [], "after": []}
    for r in range(args.rounds):
        for label in (("before", "after") if r % 2 == 0 else ("after", "before")):
            figures[label].append(run(trees[label], args.threads, args.repeats))
            print(f"round {r + 1}: {label} done", file=sys.stderr)
    print(f"# offline forward+backward, {args.threads} threads, median of {args.rounds} rounds "
          f"x {args.repeats} runs (ms); shared machine: noisy")
    print(f"{'case':24s} {'before':>9s} {'after':>9s} {'after/before':>13s}  (range over rounds)")
    for case in figures["before"][0]:
        b = [f[case] * 1e3 for f in figures["before"]]
        a = [f[case] * 1e3 for f in figures["after"]]
        ratios = [x / y for x, y in zip(a, b)]
        print(f"{case:24s} {statistics.median(b):9.1f} {statistics.median(a):9.1f} "
              f"{statistics.median(a) / statistics.median(b):13.2f}  "
              f"({min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
