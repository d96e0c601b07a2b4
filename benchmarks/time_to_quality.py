"""Time to quality: held-out metrics of a recipe against minutes of training wall clock.

Trains each recipe for ``--minutes`` of wall clock (``ddsp train``'s own machinery: the same
LightningCLI, data module, callbacks and checkpoints) and every ``--eval-every`` minutes pauses
the clock to resynthesise a held-out set with ``ddsp evaluate``'s code
(:func:`ddsp_models.cli.evaluate.evaluate`): multi-scale spectral distance, loudness L1 (dB) and
f0 L1 (cents) of the output against the original. Prints one line per evaluation with the
machine's load (``os.getloadavg``: on a shared machine the curves are only comparable between
runs at similar load), writes ``RUN_DIR/<name>/curve.json`` and draws all curves given into one
PNG (three panels against minutes).

The data follow the data recipe (issue 14's protocol)::

    python recipes/data/render_fluidsynth.py --program 40 --minutes 10 --seed 0 -o data/violin-audio
    python recipes/data/render_fluidsynth.py --program 40 --minutes 2 --seed 1 -o data/heldout-audio
    ddsp prepare data/violin-audio -o data/violin-250                      # tiny, solo_instrument
    ddsp prepare data/heldout-audio -o data/heldout-250
    ddsp prepare data/violin-audio -o data/violin-50 --frame-rate 50 --example-seconds 2 \\
        --hop-seconds 0.5
    ddsp prepare data/heldout-audio -o data/heldout-50 --frame-rate 50     # fast
    python benchmarks/time_to_quality.py --minutes 10 --out runs/ttq --max-examples 40 \\
        --run tiny=recipes/tiny.yaml:data/violin-250:data/heldout-250 \\
        --run fast=recipes/fast.yaml:data/violin-50:data/heldout-50 --plot ttq.png

``--run NAME=RECIPE:TRAIN_DATA:HELDOUT_DATA`` may be repeated (run one after the other);
anything after ``--`` goes to ``ddsp train`` for every run (e.g. ``-- --model.loss
'{fft_sizes: [2048, 512, 128], cumsum_freq_weight: 0.01}'`` to try a loss term). ``--plot-only
A.json B.json`` redraws curves saved earlier. The goal of issue 14: spectral distance <= 4.2
within 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL_SPECTRAL = 4.2


def load() -> str:
    """The 1-, 5- and 15-minute load averages, and the CPU count, as text."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def make_clock_callback(minutes: float, eval_every: float, evaluate_fn, rows: list, log):
    """A Lightning callback that stops training after ``minutes`` of training wall clock and
    calls ``evaluate_fn(model) -> dict`` at 0, ``eval_every``, 2 ``eval_every``, ... minutes
    (evaluation time is not counted)."""
    import lightning.pytorch as pl

    class Clock(pl.Callback):
        def __init__(self):
            self.trained = 0.0  # seconds of training so far
            self.next_eval = 0.0
            self.t0 = None

        def _evaluate(self, trainer, module):
            was_training = module.training
            t = time.perf_counter()
            metrics = evaluate_fn(module)
            module.train(was_training)
            row = {"minutes": self.trained / 60, "step": int(trainer.global_step),
                   "eval_seconds": time.perf_counter() - t, "loadavg": list(os.getloadavg()),
                   **{k: metrics[k] for k in ("spectral_distance", "loudness_l1_db",
                                              "f0_l1_cents", "f0_outlier_rate")}}
            rows.append(row)
            for cb in trainer.callbacks:  # a clock-sized learning-rate cycle skips it too
                if hasattr(cb, "exclude") and hasattr(cb, "trained_seconds"):
                    cb.exclude(row["eval_seconds"])
            log(f"{row['minutes']:7.2f} min  step {row['step']:6d}  spectral "
                f"{row['spectral_distance']:7.3f}  loudness L1 {row['loudness_l1_db']:6.2f} dB  "
                f"f0 L1 {row['f0_l1_cents']:7.1f} cents  ({load()})")
            self.next_eval += eval_every * 60

        def on_train_start(self, trainer, module):
            self._evaluate(trainer, module)
            self.t0 = time.perf_counter()

        def on_train_end(self, trainer, module):
            # the run ended on trainer.max_steps before the clock ran out: evaluate the end
            if not rows or rows[-1]["step"] != int(trainer.global_step):
                self._evaluate(trainer, module)

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            now = time.perf_counter()
            self.trained += now - self.t0
            if self.trained >= self.next_eval or self.trained >= minutes * 60:
                self._evaluate(trainer, module)
            if self.trained >= minutes * 60:
                trainer.should_stop = True
            self.t0 = time.perf_counter()

    return Clock()


def run_one(name: str, recipe: str, train_data: str, heldout: str, args, extra: list[str]) -> dict:
    import torch

    from ddsp_models.cli.evaluate import evaluate
    from ddsp_models.cli.train import AtomicCheckpointIO, _make_cli, use_clock

    run_dir = Path(args.out) / name
    argv = ["--config", recipe, "--data.path", train_data, "--trainer.default_root_dir",
            str(run_dir), "--trainer.enable_progress_bar", "false",
            "--trainer.limit_val_batches", "0", *extra]  # the clock callback evaluates
    cli = _make_cli(argv)
    trainer = cli.trainer
    trainer.strategy.checkpoint_io = AtomicCheckpointIO()
    if args.cycle == "clock":  # ddsp train --minutes: the one-cycle schedule over the clock
        use_clock(trainer, args.minutes)
    for cb in trainer.checkpoint_callbacks:
        cb.dirpath = str(run_dir / "checkpoints")
    rows: list[dict] = []

    def evaluate_fn(module):
        with torch.no_grad():
            return evaluate(module, heldout, f0_method=args.f0, batch_size=8,
                            max_examples=args.max_examples)

    def log(msg):
        print(f"[{name}] {msg}", flush=True)

    log(f"{recipe} on {train_data}, held out {heldout}; torch threads {torch.get_num_threads()}; "
        f"{load()}")
    trainer.callbacks.append(make_clock_callback(args.minutes, args.eval_every, evaluate_fn,
                                                 rows, log))
    t = time.perf_counter()
    trainer.fit(cli.model, datamodule=cli.datamodule)
    result = {"name": name, "recipe": recipe, "train_data": train_data, "heldout": heldout,
              "minutes": args.minutes, "wall_seconds": time.perf_counter() - t,
              "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "extra_args": extra,
              "cycle": args.cycle,
              "curve": rows}
    reached = [r["minutes"] for r in rows if r["spectral_distance"] <= GOAL_SPECTRAL]
    result["minutes_to_goal"] = reached[0] if reached else None
    log(f"final spectral distance {rows[-1]['spectral_distance']:.3f} after "
        f"{rows[-1]['minutes']:.2f} min ({rows[-1]['step']} steps); goal {GOAL_SPECTRAL} "
        + (f"reached at {reached[0]:.2f} min" if reached else "not reached") + f"; {load()}")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "curve.json").write_text(json.dumps(result, indent=2))
    if args.export:  # the trained model as a shipped-model folder (ddsp train --export's)
        folder = Path(args.export) / name
        cli.model.save_pretrained(folder)
        log(f"exported the model to {folder}")
    return result


def plot(results: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    keys = [("spectral_distance", "held-out spectral distance"),
            ("loudness_l1_db", "loudness L1 (dB)"), ("f0_l1_cents", "f0 L1 (cents)")]
    for res in results:
        mins = [r["minutes"] for r in res["curve"]]
        load1 = [r["loadavg"][0] for r in res["curve"]]
        label = f"{res['name']} (load {min(load1):.1f}-{max(load1):.1f})"
        for ax, (k, _) in zip(axes, keys):
            ax.plot(mins, [r[k] for r in res["curve"]], marker="o", ms=3, label=label)
    for ax, (k, title) in zip(axes, keys):
        ax.set_xlabel("training wall clock (minutes)")
        ax.set_title(title)
        ax.set_yscale("log")  # the untrained point at 0 min is 5-40x the trained ones
        ax.grid(alpha=0.3, which="both")
    axes[0].axhline(GOAL_SPECTRAL, color="k", ls="--", lw=0.8, label=f"goal {GOAL_SPECTRAL}")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        k = argv.index("--")
        argv, extra = argv[:k], argv[k + 1:]
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--run", action="append", default=[],
                    metavar="NAME=RECIPE:TRAIN_DATA:HELDOUT_DATA")
    ap.add_argument("--minutes", type=float, default=10.0, help="training wall clock per run")
    ap.add_argument("--eval-every", type=float, default=1.0, help="minutes between evaluations")
    ap.add_argument("--max-examples", type=int, default=40, help="held-out examples evaluated")
    ap.add_argument("--f0", choices=["crepe-full", "crepe-tiny", "yin"], default=None,
                    help="pitch tracker for the outputs (default: the held-out data's)")
    ap.add_argument("--cycle", choices=["steps", "clock"], default="steps",
                    help="steps: the recipe's learning-rate cycle over trainer.max_steps; "
                         "clock: the cycle over --minutes of training clock, as 'ddsp train "
                         "--minutes' does (annealed at the end however many steps are made)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--out", default="runs/time_to_quality", help="folder of the runs")
    ap.add_argument("--plot", default=None, help="PNG of the curves")
    ap.add_argument("--export", default=None, metavar="DIR",
                    help="write each trained model to DIR/NAME (a model folder, as ddsp train "
                         "--export does): how the shipped models are trained with their curves")
    ap.add_argument("--plot-only", nargs="*", default=None, metavar="CURVE_JSON")
    args = ap.parse_args(argv)
    if args.plot_only is not None:
        plot([json.loads(Path(p).read_text()) for p in args.plot_only], args.plot or "ttq.png")
        return 0
    if not args.run:
        ap.error("give at least one --run NAME=RECIPE:TRAIN_DATA:HELDOUT_DATA")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    results = []
    for spec in args.run:
        name, _, rest = spec.partition("=")
        parts = rest.split(":")
        if not name or len(parts) != 3:
            ap.error(f"--run {spec!r}: expected NAME=RECIPE:TRAIN_DATA:HELDOUT_DATA")
        results.append(run_one(name, *parts, args, extra))
    print("\nname          minutes-to-goal  final spectral  loudness L1  f0 L1  steps  load(1 min)")
    for r in results:
        last = r["curve"][-1]
        goal = f"{r['minutes_to_goal']:.2f}" if r["minutes_to_goal"] is not None else "-"
        print(f"{r['name']:13s} {goal:>15s} {last['spectral_distance']:15.3f} "
              f"{last['loudness_l1_db']:12.2f} {last['f0_l1_cents']:6.1f} {last['step']:6d} "
              f"{last['loadavg'][0]:10.2f}")
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
