"""Add note-level statistics (``"notes"`` in ``stats.json``) to a model whose data is gone.

The shipped models were prepared before ``ddsp prepare`` measured notes. Their audio is
re-made from their data recipe: the model card (``README.md``) names the General MIDI program
and the ``render_fluidsynth.py`` arguments; the audio is rendered again, its features are
extracted at the model's rates (``--f0``, default yin for speed; crepe-tiny as the cards
prepared the data) and
:func:`ddsp_models.data.note_stats.note_statistics` summarises the notes. The result is
written into the model's ``stats.json`` under ``"notes"`` (atomically; the other keys are
kept), with a ``"source"`` entry saying how it was made.

Requirements: those of ``render_fluidsynth.py`` (fluidsynth, fluid-soundfont-gm, music21).

Usage::

    python recipes/data/note_stats.py checkpoints/violin checkpoints/flute checkpoints/trumpet
    python recipes/data/note_stats.py checkpoints/violin --audio data/violin-audio   # reuse audio
    python recipes/data/note_stats.py checkpoints/violin --dry-run                   # print only
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def recipe_arguments(card: str) -> list[str]:
    """The ``render_fluidsynth.py`` arguments a model card names (``--program P --minutes M
    --seed S``)."""
    m = re.search(r"render_fluidsynth\.py\s+([^`\n]*?--program\s+\d+[^`\n]*)", card)
    if not m:
        raise ValueError("the model card names no 'render_fluidsynth.py --program N' recipe")
    args = m.group(1).split()
    keep, i = [], 0
    while i < len(args):
        if args[i] in ("--program", "--minutes", "--seed", "--sample-rate") and i + 1 < len(args):
            keep += args[i: i + 2]
            i += 2
        elif args[i] == "--reverb":
            keep.append(args[i])
            i += 1
        else:
            i += 1
    return keep


def _render_module():
    spec = importlib.util.spec_from_file_location("render_fluidsynth", HERE / "render_fluidsynth.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def features_of(audio_dir: Path, sample_rate: int, frame_rate: int, f0_method: str):
    """Per-file ``(f0_hz, confidence, loudness_db)`` numpy arrays of every wav in a folder."""
    from ddsp_models.audio_io import load_audio
    from ddsp_models.transfer.features import extract_features

    out = []
    files = sorted(audio_dir.glob("*.wav"))
    if not files:
        raise FileNotFoundError(f"no .wav files in {audio_dir}")
    for i, wav in enumerate(files):
        x, _ = load_audio(wav, sample_rate=sample_rate)
        feats = extract_features(x, sample_rate, frame_rate, f0_method)
        out.append((feats.f0_hz.numpy(), feats.confidence.numpy(), feats.loudness_db.numpy()))
        print(f"\r  features {i + 1}/{len(files)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="model folders (holding README.md, config.yaml, "
                                               "stats.json)")
    ap.add_argument("--audio", help="reuse this folder of rendered audio (one model only)")
    ap.add_argument("--f0", default="yin", choices=["crepe-full", "crepe-tiny", "yin"],
                    help="pitch tracker (default yin: fast; crepe-tiny as the cards prepared "
                         "the data is slower)")
    ap.add_argument("--keep-audio", help="render into this folder (kept) instead of a temp one")
    ap.add_argument("--dry-run", action="store_true", help="print the statistics, write nothing")
    args = ap.parse_args(argv)
    if args.audio and len(args.models) > 1:
        ap.error("--audio serves one model")
    import yaml

    from ddsp_models.data.atomic import atomic_write_json
    from ddsp_models.data.note_stats import note_statistics

    for folder in map(Path, args.models):
        card = (folder / "README.md").read_text()
        cfg = yaml.safe_load((folder / "config.yaml").read_text())["model"]
        sr, fr = int(cfg["sample_rate"]), int(cfg["frame_rate"])
        stats_path = folder / "stats.json"
        stats = json.loads(stats_path.read_text())
        rec = recipe_arguments(card)
        print(f"{folder}: render_fluidsynth.py {' '.join(rec)}", file=sys.stderr)
        with tempfile.TemporaryDirectory() as tmp:
            if args.audio:
                audio = Path(args.audio)
            else:
                audio = Path(args.keep_audio or tmp) / folder.name
                _render_module().main(rec + ["--sample-rate", str(sr), "-o", str(audio)])
            tracks = features_of(audio, sr, fr, args.f0)
        from ddsp_models.features.f0 import F0_METHODS

        # the stats' threshold belongs to CREPE's confidence; YIN's has its own default
        thr = (float(stats.get("confidence_threshold", 0.7)) if args.f0.startswith("crepe")
               else F0_METHODS[args.f0])
        notes = note_statistics([t[0] for t in tracks], [t[1] for t in tracks],
                                [t[2] for t in tracks], fr, confidence_threshold=thr)
        notes["source"] = {"recipe": "recipes/data/render_fluidsynth.py " + " ".join(rec),
                           "f0_method": args.f0,
                           "made_by": "recipes/data/note_stats.py (the audio re-rendered)"}
        brief = {k: (v.get("median") if isinstance(v, dict) and "median" in v else v)
                 for k, v in notes.items() if k != "source"}
        print(json.dumps(brief, indent=1), file=sys.stderr)
        if not args.dry_run:
            stats["notes"] = notes
            atomic_write_json(stats_path, stats)
            print(f"wrote 'notes' into {stats_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
