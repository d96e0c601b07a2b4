"""FMSynth (and NoiseBandSynth) timings at batch 128, 4 s at 16 kHz, 250 frames/s (issue #16).

Rows: forward (no grad) and forward+backward of FMSynth with 2 operators ("stack") and 6
operators ("dx7_1", without and with feedback on operator 5), NoiseBandSynth with 128 bands,
and a floor: a bare ``torch.sin`` over ``B × n_operators × L`` (forward+backward), the least
any sum of sines over all samples and operators costs in PyTorch. Each row gives the median
and the range (min..max) over ``--runs`` repeats.

When torchsynth imports (a side environment: it needs torchaudio; never a dependency of this
package), its 2-operator FM (``FmVCO`` modulated by a ``SineVCO``, bare and with per-frame
operator levels as ours takes) is timed beside our 2-operator ``FMSynth`` (f0 220 Hz, per-frame
``amplitudes`` and ``mod_indices``), alternating the two one repeat at a time, with the
per-repeat ratio ours / torchsynth (``_torchsynth_ref.py`` says what is matched). Without
torchsynth the script prints a one-line note and our figures only.

    python benchmarks/fm.py [--runs 2] [--threads 2] [--device cpu|cuda] [--batch 128]
                            [--clock wall|cpu] [--compare-runs 5] [--compare-only]

Figures on a shared machine are noisy; the script prints what it measured.
"""

from __future__ import annotations

import argparse
import functools

import torch
from _timing import clock_named
from _timing import timed as timed_clock
from _torchsynth_ref import config as ts_config
from _torchsynth_ref import fm_pair
from _torchsynth_ref import load as load_torchsynth
from _torchsynth_ref import paired, print_comparison

from ddsp_models.processors.fm import FMSynth, NoiseBandSynth

SR, FR, SECONDS = 16000, 250, 4.0



def row(name, stats):
    med, lo, hi = stats
    print(f"| {name} | {med * 1e3:.0f} | {lo * 1e3:.0f} .. {hi * 1e3:.0f} |")


def torchsynth_rows(args, generator) -> None:
    """Our 2-operator FMSynth beside torchsynth's SineVCO -> FmVCO, if torchsynth imports."""
    ts, why = load_torchsynth()
    if ts is None:
        print(f"torchsynth is not importable ({why}): our figures only")
        return
    dev, b, runs = args.device, args.batch, args.compare_runs
    frames = int(SECONDS * FR)
    n = frames * (SR // FR)
    fm = FMSynth(SR).to(dev)
    f0 = torch.full((b, frames, 1), 220.0, device=dev)
    p = {k: (v * (1 + 0.1 * torch.rand(b, frames, 1, generator=generator))).to(dev)
         .requires_grad_() for k, v in (("amplitudes", 0.5), ("mod_indices", 2.0))}
    ours = (lambda: fm(f0_hz=f0, n_samples=n, **p)[:, 0], list(p.values()))
    cfg = ts_config(ts, b, SR, SECONDS, FR, dev)
    theirs = {"`SineVCO` -> `FmVCO`": fm_pair(ts, cfg, b, dev, 57.0),
              "`SineVCO` -> `VCA` -> `FmVCO` -> `VCA`, per-frame levels upsampled":
              fm_pair(ts, cfg, b, dev, 57.0, frames, generator)}
    rows = []
    for name, fn in theirs.items():
        for backward in (False, True):
            rows.append(("`FMSynth` 2 ops (stack), per-frame levels", name,
                         "fwd+bwd" if backward else "fwd",
                         paired(ours, fn, runs, dev, backward, args.clock)))
    print_comparison(rows, f"torchsynth {ts.version} beside ours (torch {torch.__version__}): "
                     f"batch {b}, {SECONDS:g} s at {SR} Hz, float32, device {dev}, "
                     f"{args.threads} threads, {args.clock} clock; median (min..max) of "
                     f"{runs} paired repeats, ms\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: process CPU time over all threads (steadier on a busy machine)")
    ap.add_argument("--compare-runs", type=int, default=5,
                    help="paired repeats of the ours-vs-torchsynth comparison")
    ap.add_argument("--compare-only", action="store_true",
                    help="only the torchsynth comparison (or its one-line note)")
    a = ap.parse_args()
    timed = functools.partial(timed_clock, clock=clock_named(a.clock))
    torch.set_num_threads(a.threads)
    dev, b = a.device, a.batch
    frames = int(SECONDS * FR)
    n = frames * (SR // FR)
    g = torch.Generator().manual_seed(0)
    if a.compare_only:
        torchsynth_rows(a, g)
        return
    print(f"batch {b}, {SECONDS:g} s at {SR} Hz ({n} samples), {frames} frames, float32, "
          f"device {dev}, {a.threads} threads, {a.clock} clock, {a.runs} runs (median, range)\n")
    print("| what | median ms | range ms |\n|---|---|---|")
    for n_ops, routing, fb in ((2, "stack", []), (6, "dx7_1", []), (6, "dx7_1", [5])):
        fm = FMSynth(SR, n_operators=n_ops, routing=routing, feedback=fb).to(dev)
        params = {k: v.to(dev) for k, v in fm.random_params(b, frames, generator=g).items()}
        leaves = [v.requires_grad_() for k, v in params.items() if k != "f0_hz"]
        fn = lambda fm=fm, params=params: fm(**params, n_samples=n)  # noqa: E731
        what = f"FMSynth {n_ops} ops ({routing}{', feedback on op 5' if fb else ''})"
        if not fb:
            row(f"{what}, forward", timed(fn, a.runs, dev, False))
        row(f"{what}, forward+backward", timed(fn, a.runs, dev, True, leaves))
        if fb:
            continue
        x = torch.rand(b, n_ops, n, device=dev, requires_grad=True)
        row(f"floor: torch.sin over {b}x{n_ops}x{n}, forward+backward",
            timed(lambda x=x: torch.sin(x), a.runs, dev, True, [x]))
    nb = NoiseBandSynth(SR, n_bands=128).to(dev)
    amps = nb.random_params(b, frames, generator=g)["amplitudes"].to(dev).requires_grad_()
    fn = lambda: nb(amps, n_samples=n)  # noqa: E731
    row("NoiseBandSynth 128 bands, forward", timed(fn, a.runs, dev, False))
    row("NoiseBandSynth 128 bands, forward+backward", timed(fn, a.runs, dev, True, [amps]))
    print()
    torchsynth_rows(a, g)


if __name__ == "__main__":
    main()
