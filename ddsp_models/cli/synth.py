"""Perform a MIDI score with a trained model: ``ddsp synth SCORE.mid --model NAME -o OUT.wav``."""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

from ..errors import InvalidInputError, one_line

PROG = "ddsp synth"
_AUDIO_OUT = (".wav", ".flac", ".ogg", ".aiff", ".aif")


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "synth", help="perform a MIDI file with a trained model",
        description=(
            "Play the notes of SCORE (a Standard MIDI File) with a trained model. Each note\n"
            "becomes f0 and loudness curves shaped by what the model's data taught it (attack,\n"
            "release, vibrato, glides, the dynamic range), with velocity, pitch bend, CC 1\n"
            "(vibrato depth), CC 7/11 (volume/expression) and tempo changes. Simultaneous\n"
            "notes are voices rendered as one batch and summed; overlapping or touching notes\n"
            "of a melody glide (legato). Drum channels are skipped. See docs/midi.md."),
        epilog=("examples:\n  ddsp synth tune.mid --model violin -o tune.wav\n"
                "  ddsp synth quartet.mid --model flute -o mix.wav --stems stems/ --plot roll.png\n"
                "  ddsp synth song.mid --model ./my_model --tracks 2,3 --transpose -12 "
                "--tempo-scale 0.8 -o out.flac"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("score", metavar="SCORE", help="MIDI file (.mid, format 0, 1 or 2)")
    p.add_argument("--model", "-m", required=True, metavar="NAME_OR_PATH",
                   help="a shipped model name (checkpoints/NAME or $DDSP_MODELS_PATH), an "
                        "exported model folder or a Lightning .ckpt")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output audio file (.wav written as 32-bit float; .flac/.ogg/.aiff)")
    p.add_argument("--tracks", metavar="LIST",
                   help="comma-separated track numbers (as in the file, 0-based) or names to "
                        "play (default: every track with notes, drums skipped)")
    p.add_argument("--transpose", type=float, default=0.0, metavar="SEMITONES",
                   help="semitones added to every note (default 0)")
    p.add_argument("--tempo-scale", type=float, default=1.0, metavar="FACTOR",
                   help="playback speed: 2 = twice as fast, 0.5 = half speed (default 1)")
    p.add_argument("--vibrato-depth", type=float, default=1.0, metavar="FACTOR",
                   help="scales the learned vibrato depth: 0 = none, 2 = twice (default 1)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the small random variations and the noise (default 0)")
    p.add_argument("--stems", metavar="DIR",
                   help="also write one file per part into DIR (they sum to the mix)")
    p.add_argument("--sample-rate", type=int, metavar="HZ",
                   help="output rate (default: the model's)")
    p.add_argument("--plot", metavar="PNG",
                   help="draw a piano roll of the score over the rendered f0 and loudness")
    p.add_argument("--max-voices", type=int, default=16, metavar="N",
                   help="most simultaneous notes per part; more steal the oldest (default 16)")
    p.add_argument("--out-of-range", choices=["transpose", "refuse"], default="transpose",
                   help="notes outside the model's pitch range: move them by octaves (default, "
                        "with a warning naming them) or refuse the score")
    return p


def _check_output(path: Path, what: str, suffixes: tuple[str, ...]) -> None:
    """Refuse an output path before any work: a folder, an unknown extension, a parent that
    is a file."""
    if path.is_dir():
        raise InvalidInputError(f"{what} {path} is a folder; pass a file name such as "
                                f"{path / ('out' + suffixes[0])}")
    if path.suffix.lower() not in suffixes:
        raise InvalidInputError(f"{what} {path} must end in {', '.join(suffixes)}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InvalidInputError(f"{what} {path}: {parent} is a file, not a folder")
            break


def _write_all(res, out: Path, stems_dir: Path | None, plot: Path | None) -> list[Path]:
    from ..audio_io import save_audio

    float_wav = out.suffix.lower() == ".wav"
    peak = float(res.audio.abs().max()) if res.audio.numel() else 0.0
    scale = 0.99 / peak if (peak > 1.0 and not float_wav) else 1.0
    written = []
    subtype = "FLOAT" if float_wav else None
    if stems_dir is not None:
        used: set[str] = set()
        for label, y in res.stems.items():
            stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in label).strip("_")
            name, k = stem or "part", 2
            while name in used:
                name, k = f"{stem}_{k}", k + 1
            used.add(name)
            written.append(save_audio(stems_dir / f"{name}{out.suffix}", y * scale,
                                      res.sample_rate, subtype=subtype))
    written.insert(0, save_audio(out, res.audio * scale, res.sample_rate, subtype=subtype))
    if plot is not None:
        from ..midi.plot import plot_performance

        written.append(plot_performance(plot, res))
    return written


def run(args) -> int:
    """Errors follow the CLI policy (:mod:`ddsp_models.cli`): every user error — a bad option,
    an unknown model, an empty, truncated or non-MIDI file, no notes, only drums, refused
    notes — is one line and status 2, and nothing is written."""
    from ..registry import load_model, resolve_model

    for opt, value in (("--transpose", args.transpose), ("--tempo-scale", args.tempo_scale),
                       ("--vibrato-depth", args.vibrato_depth)):
        if not math.isfinite(value):
            raise InvalidInputError(f"{opt} must be a finite number, got {value}")
    if args.tempo_scale <= 0:
        raise InvalidInputError(f"--tempo-scale must be > 0 (2 = twice as fast), got "
                                f"{args.tempo_scale}")
    if args.vibrato_depth < 0:
        raise InvalidInputError(f"--vibrato-depth must be >= 0, got {args.vibrato_depth}")
    if args.max_voices < 1:
        raise InvalidInputError(f"--max-voices must be >= 1, got {args.max_voices}")
    if args.sample_rate is not None and not 1000 <= args.sample_rate <= 384000:
        raise InvalidInputError(f"--sample-rate must be between 1000 and 384000 Hz, got "
                                f"{args.sample_rate}")
    out = Path(args.output)
    _check_output(out, "-o", _AUDIO_OUT)
    plot = Path(args.plot) if args.plot else None
    if plot is not None:
        _check_output(plot, "--plot", (".png", ".pdf", ".svg"))
    stems_dir = Path(args.stems) if args.stems else None
    if stems_dir is not None and stems_dir.exists() and not stems_dir.is_dir():
        raise InvalidInputError(f"--stems {stems_dir} is a file; pass a folder")
    tracks = [t for t in args.tracks.split(",") if t.strip()] if args.tracks else None
    score_path = Path(args.score)
    if not score_path.exists():
        raise FileNotFoundError(2, "no such MIDI file", str(score_path))
    if score_path.is_dir():
        raise IsADirectoryError(21, "is a folder, not a MIDI file", str(score_path))
    model_path = resolve_model(args.model)  # cheap: a wrong name is reported first
    from ..midi.score import read_score

    t0 = time.perf_counter()
    score = read_score(score_path, tempo_scale=args.tempo_scale)  # bad files: before the model
    model = load_model(model_path)
    from ..midi.render import MidiWarning, synthesize_midi

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = synthesize_midi(
            model, score, tracks=tracks, transpose=args.transpose,
            vibrato_depth=args.vibrato_depth, seed=args.seed, sample_rate=args.sample_rate,
            max_voices=args.max_voices, out_of_range=args.out_of_range,
            stems=stems_dir is not None)
    for w in caught:
        kind = "note" if issubclass(w.category, MidiWarning) else "warning"
        print(f"{PROG}: {kind}: {one_line(w.message)}", file=sys.stderr)
    written = _write_all(res, out, stems_dir, plot)
    dt = time.perf_counter() - t0
    n_notes = len(res.notes)
    print(f"{score_path} -> {written[0]} ({res.duration:.1f} s, {len(res.parts)} part(s), "
          f"{n_notes} notes, {len(res.voice_part)} voice(s); {dt:.1f} s, "
          f"{res.duration / max(dt, 1e-9):.1f}x real time)")
    for extra in written[1:]:
        print(f"  wrote {extra}")
    return 0
