"""Independent timbre check of the shipped models (not a test): are they as close to *other*
violins (flutes, ...) as the instrument they were trained on?

    python benchmarks/timbre.py [--instruments violin,flute,trumpet,cello,saxophone]
                                [--model LABEL=NAME_OR_FOLDER ...] [--minutes 2] [--seed 1]
                                [--references SF2,SF3] [--out timbre.json]
                                [--loudness-map level|quantiles] [--no-auto-adjust]

For each instrument (its General MIDI program):

1. The data recipe (``recipes/data/render_fluidsynth.py --style rich --seed S``) renders the
   same held-out melodies with the training sound font (FluidR3_GM) and with each reference
   sound font: by default TimGM6mb and csound's GM bank (Debian ``timgm6mb-soundfont``,
   ``csound-soundfont``), other sampled instruments that no model was trained or tuned on.
   (MuseScore General is not used: it is built on FluidR3's samples — its violin is 3 units
   from FluidR3's where TimGM6mb's is 80.)
2. Each model plays each reference rendering (``ddsp_models.transfer.transfer``: crepe-tiny
   f0, loudness, auto-adjust on — what ``ddsp transfer`` does with another player's audio).
3. The timbre distance (:func:`ddsp_models.metrics.timbre_distance`: Fréchet distance of the
   MFCCs 1–19 of the sounding frames; alignment- and level-free) of the model's output to the
   reference, beside the distance of the training instrument's own rendering to the same
   reference. The ratio model / training instrument is the figure: <= 1 means the model is
   at least as close to the other instrument as the one it learnt from.
4. Fidelity: the distance of the same output (the model driven by the other instrument) to
   the training instrument's own rendering of the melodies. A timbre-transfer model should
   sound like what it learnt whatever plays into it, so this is small — and then the ratio
   of step 3 is, to first order, 1 + (this error's projection away from the reference) /
   base: a faithful model of one instrument lands at or just above 1×, by chance below.

5. Transparency: each model plays the training instrument's own rendering of the held-out
   melodies; its distance to that rendering. Ideal transfer settings change nothing there, so
   this says what auto-adjust (``--loudness-map``, ``--no-auto-adjust``) does to an input that
   already sounds like the training data.

``--model LABEL=NAME_OR_FOLDER`` adds models to compare (e.g. an earlier release); they are
played on the instrument named by ``--instruments`` (one instrument then).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RENDER = ROOT / "recipes" / "data" / "render_fluidsynth.py"
PROGRAMS = {"violin": 40, "flute": 73, "trumpet": 56, "cello": 42, "saxophone": 65}
TRAINING_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
REFERENCES = ["/usr/share/sounds/sf2/TimGM6mb.sf2", "/usr/share/sounds/sf2/sf_GMbank.sf2"]
SAMPLE_RATE = 16000


def render(program: int, soundfont: str, minutes: float, seed: int, folder: Path) -> list[torch.Tensor]:
    """The rich style's melodies for ``seed`` played by ``soundfont``: a list of mono signals."""
    from ddsp_models.audio_io import load_audio

    cmd = [sys.executable, str(RENDER), "--program", str(program), "--minutes", str(minutes),
           "--style", "rich", "--seed", str(seed), "--soundfont", soundfont, "-o", str(folder)]
    subprocess.run(cmd, check=True, capture_output=True)
    return [load_audio(f, SAMPLE_RATE)[0] for f in sorted(folder.glob("*.wav"))]


def play(model, signals: list[torch.Tensor], **options) -> list[torch.Tensor]:
    """Each signal played by ``model`` through ``transfer`` (``options``: its keywords)."""
    from ddsp_models.transfer import transfer

    with torch.no_grad():
        return [transfer(model, x, SAMPLE_RATE, **options) for x in signals]


def frames(signals: list[torch.Tensor]) -> np.ndarray:
    """The sounding frames' MFCCs of several signals, pooled (computed once per signal set)."""
    from ddsp_models.metrics import timbre_frames

    return np.concatenate([timbre_frames(x, SAMPLE_RATE) for x in signals])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instruments", default=",".join(PROGRAMS),
                    help=f"shipped names, comma-separated (known programs: {PROGRAMS})")
    ap.add_argument("--model", action="append", default=[], metavar="LABEL=NAME_OR_FOLDER",
                    help="another model to compare on the (single) instrument; repeatable")
    ap.add_argument("--minutes", type=float, default=2.0,
                    help="audio per rendering (under 2 min the 19-D covariances get noisy)")
    ap.add_argument("--seed", type=int, default=1, help="melodies (1: the held-out pieces)")
    ap.add_argument("--references", default=",".join(REFERENCES),
                    help="comma-separated sound fonts (.sf2/.sf3) played as the other instruments")
    ap.add_argument("--loudness-map", choices=["level", "quantiles"], default="level",
                    help="auto-adjust's loudness rule in the transfers (default level, as "
                         "ddsp transfer)")
    ap.add_argument("--auto-adjust", action=argparse.BooleanOptionalAction, default=True,
                    help="auto-adjust in the transfers (default on, as ddsp transfer)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="JSON of the figures")
    args = ap.parse_args(argv)

    from ddsp_models import load_model
    from ddsp_models.metrics import frechet_distance

    torch.set_num_threads(args.threads)
    names = [n for n in args.instruments.split(",") if n]
    unknown = [n for n in names if n not in PROGRAMS]
    if unknown:
        ap.error(f"unknown instrument(s) {unknown}: choose from {sorted(PROGRAMS)}")
    extra = [m.split("=", 1) for m in args.model]
    if extra and len(names) != 1:
        ap.error("--model compares models on one instrument: give --instruments NAME")
    if any(len(m) != 2 for m in extra):
        ap.error("--model takes LABEL=NAME_OR_FOLDER")
    if shutil.which("fluidsynth") is None:
        ap.error("fluidsynth is not installed: apt-get install -y fluidsynth")
    refs = [r for r in args.references.split(",") if r]
    missing = [r for r in refs + [TRAINING_SOUNDFONT] if not Path(r).is_file()]
    if missing:
        ap.error(f"no sound font at {missing}: apt-get install -y fluid-soundfont-gm "
                 "timgm6mb-soundfont csound-soundfont (or pass --references)")

    rows = []
    transparency = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            program = PROGRAMS[name]
            models = [(name, load_model(name))] + [(label, load_model(p)) for label, p in extra]
            options = {"auto_adjust": args.auto_adjust, "loudness_map": args.loudness_map}
            own_signals = render(program, TRAINING_SOUNDFONT, args.minutes, args.seed,
                                 Path(tmp) / f"{name}-train")
            own = frames(own_signals)
            for label, model in models:
                transparency[(name, label)] = frechet_distance(
                    frames(play(model, own_signals, **options)), own)
            for ref_path in refs:
                ref = render(program, ref_path, args.minutes, args.seed,
                             Path(tmp) / f"{name}-{Path(ref_path).stem}")
                ref_frames = frames(ref)
                base = frechet_distance(own, ref_frames)
                row = {"instrument": name, "reference": Path(ref_path).name,
                       "training_instrument": base, "models": {}}
                for label, model in models:
                    out = frames(play(model, ref, **options))
                    d = frechet_distance(out, ref_frames)
                    row["models"][label] = {"distance": d, "ratio": d / base,
                                            "to_training_instrument": frechet_distance(out, own)}
                rows.append(row)
                cells = "  ".join(f"{label} {v['distance']:7.1f} ({v['ratio']:.2f}x; "
                                  f"{v['to_training_instrument']:.1f} from the training one)"
                                  for label, v in row["models"].items())
                print(f"{name:10s} {row['reference']:24s} training instrument {base:7.1f}  "
                      f"{cells}", flush=True)
    print("\nratio model / training instrument, mean over the references:")
    for name in names:
        mine = [r for r in rows if r["instrument"] == name]
        for label in mine[0]["models"]:
            ratios = [r["models"][label]["ratio"] for r in mine]
            fidelity = [r["models"][label]["to_training_instrument"] for r in mine]
            print(f"  {name:10s} {label:12s} {np.mean(ratios):.2f}x "
                  f"(range {min(ratios):.2f}-{max(ratios):.2f}); "
                  f"{np.mean(fidelity):.1f} from the training instrument, whose distance to "
                  f"the others is {np.mean([r['training_instrument'] for r in mine]):.1f}; "
                  f"resynthesis of its own rendering {transparency[(name, label)]:.1f}")
    if args.out:
        Path(args.out).write_text(json.dumps({
            "minutes": args.minutes, "seed": args.seed, "auto_adjust": args.auto_adjust,
            "loudness_map": args.loudness_map, "rows": rows,
            "transparency": [{"instrument": n, "model": lb, "distance": d}
                             for (n, lb), d in transparency.items()]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
