"""ADSR, LFO and an ADSR-modulated FM graph at batch 128, 4 s at 16 kHz, 250 frames/s (issue #16).

Rows (forward without gradients, and forward+backward to every parameter):

* ``ADSR`` linear and exponential, one note per row (gate on for 3 s, then released), and
  ``ADSR`` with a gate that changes every 100 ms on some rows (40 closed-form stretches
  instead of 2: its offline cost grows with the number of frames where any gate changes);
* ``LFO`` sine, static rate (latency 0) and per-frame rate (interpolated);
* each ADSR note and LFO also with ``resolution="frame"`` (evaluated at the frame centres,
  linear in between: the control-rate mode);
* a graph: ``FMSynth`` (2 operators) with an ``ADSR`` modulating its amplitudes and an ``LFO``
  its modulation index, against ``FMSynth`` alone (the cost of modulation).

When torchsynth imports (a side environment: it needs torchaudio, never a dependency here),
the script also times torchsynth's ``ADSR`` and ``LFO`` beside ours with the same batch,
duration, sample rate, device and threads (ours at ``resolution="frame"`` against torchsynth
at its control rate + upsampling, ours at ``resolution="sample"`` against torchsynth at the
audio rate), alternating the two one repeat at a time, and
prints each side's median (min..max) and the per-repeat ratio ours / torchsynth
(``_torchsynth_ref.py`` says what is matched). Without torchsynth it prints a one-line note and
our figures only.

    python benchmarks/envelopes.py [--runs 3] [--threads 2] [--device cpu|cuda] [--batch 128]
                                   [--clock wall|cpu] [--compare-runs 5]

Figures on a shared machine are noisy; the script prints what it measured.
"""

from __future__ import annotations

import argparse
import functools

import torch
from _timing import clock_named
from _timing import timed as timed_clock
from _torchsynth_ref import adsr as ts_adsr
from _torchsynth_ref import config as ts_config
from _torchsynth_ref import lfo as ts_lfo
from _torchsynth_ref import load as load_torchsynth
from _torchsynth_ref import paired, print_comparison

from ddsp_models.graph import ProcessorGraph
from ddsp_models.processors.adsr import ADSR
from ddsp_models.processors.fm import FMSynth
from ddsp_models.processors.lfo import LFO

SR, FR, SECONDS = 16000, 250, 4.0




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
    ap.add_argument("--compare-runs", type=int, default=5,
                    help="paired repeats of each ours-vs-torchsynth comparison")
    ap.add_argument("--control-rate", type=int, default=FR,
                    help="torchsynth's control rate (Hz) for its upsampled rows")
    args = ap.parse_args(argv)
    timed = functools.partial(timed_clock, clock=clock_named(args.clock))
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
        env_f = ADSR(SR, shape=shape, resolution="frame").to(dev)
        row(f"ADSR {shape}, one note, resolution frame",
            lambda env=env_f, p=p: env(gate=gate, n_samples=n, **p), list(p.values()))
    env = ADSR(SR).to(dev)
    row("ADSR linear, gate changing every 100 ms", lambda: env(gate=busy, n_samples=n, **p),
        list(p.values()))
    lfo = LFO(SR).to(dev)
    q = {"rate_hz": leaf((b, 1), 5.0, dev, gen), "depth": leaf((b, 1), 0.5, dev, gen),
         "phase": leaf((b, 1), 0.1, dev, gen)}
    row("LFO sine, static rate", lambda: lfo(n_samples=n, **q), list(q.values()))
    lfo_f = LFO(SR, resolution="frame", control_rate=FR).to(dev)
    row("LFO sine, static rate, resolution frame", lambda: lfo_f(n_samples=n, **q),
        list(q.values()))
    lfo_tv = LFO(SR, time_varying=True).to(dev)
    qt = {"rate_hz": leaf((b, t, 1), 5.0, dev, gen), "depth": leaf((b, t, 1), 0.5, dev, gen),
          "phase": leaf((b, 1), 0.1, dev, gen)}
    row("LFO sine, rate per frame", lambda: lfo_tv(n_samples=n, **qt), list(qt.values()))
    lfo_tvf = LFO(SR, time_varying=True, resolution="frame").to(dev)
    row("LFO sine, rate per frame, resolution frame", lambda: lfo_tvf(n_samples=n, **qt),
        list(qt.values()))

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

    ts, why = load_torchsynth()
    if ts is None:
        print(f"torchsynth is not importable ({why}): our figures only")
    print(f"\nbatch {b}, {SECONDS:g} s at {SR} Hz ({t} frames), device {dev}, "
          f"{args.threads} threads, {args.clock} clock; median (min..max) of {args.runs} runs, "
          "ms\n")
    print("| what | forward | forward+backward |")
    print("|---|---|---|")
    for name, fwd, bwd in rows:
        cell = lambda r: f"{r[0] * 1e3:.0f} ({r[1] * 1e3:.0f}..{r[2] * 1e3:.0f})"  # noqa: E731
        print(f"| {name} | {cell(fwd)} | {cell(bwd)} |")
    if ts is not None:
        compare(ts, args, gen, n)


def compare(ts, args, gen, n) -> None:
    """Ours beside torchsynth's ``ADSR`` and ``LFO`` (see ``_torchsynth_ref.py``)."""
    dev, b, runs = args.device, args.batch, args.compare_runs
    cr = args.control_rate
    ctrl, audio = ts_config(ts, b, SR, SECONDS, cr, dev), ts_config(ts, b, SR, SECONDS, SR, dev)
    t = int(FR * SECONDS)
    gate = torch.zeros(b, t, 1, device=dev)
    gate[:, : int(FR * 3)] = 1.0
    times = {"attack": 0.05, "decay": 0.2, "sustain": 0.6, "release": 0.3}
    pairs = []
    for shape, alpha in (("linear", 1.0), ("exponential", 3.0)):
        p = {k: leaf((b, 1), v, dev, gen) for k, v in times.items()}
        for res in ("frame", "sample"):
            env = ADSR(SR, shape=shape, resolution=res).to(dev)
            ours = (lambda env=env, p=p: env(gate=gate, n_samples=n, **p)[:, 0],
                    list(p.values()))
            if res == "frame":
                their = (f"`ADSR` alpha {alpha:g}, {cr} Hz + `ControlRateUpsample`",
                         ts_adsr(ts, ctrl, b, dev, 3.0, True, alpha=alpha, **times))
            elif shape == "linear":
                their = (f"`ADSR` alpha {alpha:g}, at {SR} Hz",
                         ts_adsr(ts, audio, b, dev, 3.0, False, alpha=alpha, **times))
            else:
                continue
            pairs.append((f"`ADSR` {shape}, one note (3 s), resolution {res}", their[0], ours,
                          their[1]))
    q = {"rate_hz": leaf((b, 1), 5.0, dev, gen), "depth": leaf((b, 1), 0.5, dev, gen),
         "phase": leaf((b, 1), 0.1, dev, gen)}
    for res, name, cfg, up in (("frame", f"{cr} Hz + `ControlRateUpsample`", ctrl, True),
                               ("sample", f"at {SR} Hz", audio, False)):
        osc = LFO(SR, resolution=res, control_rate=float(cr)).to(dev)
        ours = (lambda osc=osc: osc(n_samples=n, **q)[:, 0], list(q.values()))
        pairs.append((f"`LFO` sine, static rate, resolution {res}",
                      f"`LFO` (sine weight 1), {name}", ours,
                      ts_lfo(ts, cfg, b, dev, up, frequency=5.0, phase=0.1)))
    rows = []
    for ours_name, ts_name, ours, theirs in pairs:
        for backward in (False, True):
            r = paired(ours, theirs, runs, dev, backward, args.clock)
            rows.append((ours_name, ts_name, "fwd+bwd" if backward else "fwd", r))
    print_comparison(rows, f"\ntorchsynth {ts.version} beside ours (torch {torch.__version__}): "
                     f"batch {b}, {SECONDS:g} s at {SR} Hz, device {dev}, {args.threads} "
                     f"threads, {args.clock} clock; median (min..max) of {runs} paired "
                     "repeats, ms\n")


if __name__ == "__main__":
    main()
