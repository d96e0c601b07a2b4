"""Timbre transfer: play recordings with a trained model."""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

from ..errors import InvalidInputError, one_line

PROG = "ddsp transfer"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "transfer", help="timbre transfer: play recordings with a trained model",
        description=(
            'Extract f0 and loudness of each INPUT (any format libsndfile reads, any rate and\n'
            "channel count: mixed down to mono and resampled to the model's rate), optionally\n"
            "auto-adjust them to the model's training data, render them with the model and\n"
            "write the result at the input's sample rate. Long files are processed in chunks\n"
            'with continuous state (bounded memory). A silent input gives a silent output of\n'
            'the same length (with a note on stderr).'),
        epilog=("examples:\n  ddsp transfer voice.wav --model violin -o violin.wav\n"
                "  ddsp transfer a.wav b.flac --model ./my_model --pitch-shift -12 -o out_dir/\n"
                "  ddsp transfer hum.wav --model run.ckpt --f0 yin --no-auto-adjust -o out.wav "
                "--plot out.png"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio file(s) to transfer")
    p.add_argument("--model", "-m", required=True, metavar="NAME_OR_PATH",
                   help="a shipped model name (checkpoints/NAME or $DDSP_MODELS_PATH), an "
                        "exported model folder or a Lightning .ckpt")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="output file (one INPUT) or folder (several INPUTs; files keep their "
                        "names, as .wav)")
    p.add_argument("--pitch-shift", type=float, default=0.0, metavar="SEMITONES",
                   help="semitones added to f0 after auto-adjust (12 = one octave up)")
    p.add_argument("--loudness-shift", type=float, default=0.0, metavar="DB",
                   help="dB added to the loudness after auto-adjust")
    p.add_argument("--auto-adjust", action=argparse.BooleanOptionalAction, default=True,
                   help="octave-shift toward the model's pitch range, map loudness onto its "
                        "training distribution and quiet non-note frames (default: on; needs "
                        "the model's stats.json)")
    p.add_argument("--f0", default="crepe-full", choices=["crepe-full", "crepe-tiny", "yin"],
                   help="pitch tracker (default crepe-full; yin is fastest)")
    p.add_argument("--plot", metavar="PNG",
                   help="draw input/output spectrograms with f0 curves (a folder for several "
                        "INPUTs)")
    p.add_argument("--chunk-seconds", type=float, default=30.0,
                   help="audio analysed per feature chunk (memory bound), default 30")
    return p


def _targets(inputs: list[str], output: str, plot: str | None):
    out = Path(output)
    if len(inputs) == 1 and not (out.is_dir() or output.endswith(("/", "\\"))):
        return [(Path(inputs[0]), out, Path(plot) if plot else None)]
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"{len(inputs)} inputs need -o to be a folder, but {output} is "
                                "a file; pass a folder (ending in /)")
    stems = [Path(i).stem for i in inputs]
    dup = {s for s in stems if stems.count(s) > 1}
    if dup:
        raise InvalidInputError(f"inputs share the name(s) {sorted(dup)}; their outputs would "
                                "collide in the output folder; rename or transfer them "
                                "separately")
    pdir = Path(plot) if plot else None
    return [(Path(i), out / (Path(i).stem + ".wav"),
             pdir / (Path(i).stem + ".png") if pdir else None) for i in inputs]


def _check_inputs(inputs: list[str]) -> None:
    """Every INPUT exists and is a file, before any work (the first problem is the error)."""
    for i in inputs:
        p = Path(i)
        if not p.exists():
            raise FileNotFoundError(2, "no such audio file", i)
        if p.is_dir():
            raise IsADirectoryError(21, "is a folder, not an audio file", i)


def run(args) -> int:
    """Errors follow the CLI policy (:mod:`ddsp_models.cli`): a user error before any work
    (missing input, bad option, unknown or corrupt model) ends the command with status 2. With
    several INPUTs, one that fails later (e.g. it cannot be decoded) is reported on one line
    and the others are still transferred; the status is then 2."""
    from ..audio_io import load_audio, save_audio
    from ..errors import DDSPError
    from ..registry import load_model, resolve_model
    from ..transfer.core import SilentInputWarning, transfer_with_features
    from . import USER_ERRORS, error_message, report_error

    if not (math.isfinite(args.chunk_seconds) and args.chunk_seconds > 0):
        raise InvalidInputError(f"--chunk-seconds must be a positive number of seconds, got "
                                f"{args.chunk_seconds}")
    for opt, value in (("--pitch-shift", args.pitch_shift),
                       ("--loudness-shift", args.loudness_shift)):
        if not math.isfinite(value):
            raise InvalidInputError(f"{opt} must be a finite number, got {value}")
    model_path = resolve_model(args.model)  # cheap: a wrong name is reported first
    _check_inputs(args.inputs)
    targets = _targets(args.inputs, args.output, args.plot)
    model = load_model(model_path)
    failed = 0
    for src, dst, png in targets:
        t0 = time.perf_counter()
        try:
            audio, sr = load_audio(src, mono=False)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res = transfer_with_features(
                    model, audio, sr, pitch_shift=args.pitch_shift,
                    loudness_shift=args.loudness_shift, auto_adjust=args.auto_adjust,
                    f0_method=args.f0, chunk_seconds=args.chunk_seconds)
            for w in caught:
                if issubclass(w.category, SilentInputWarning):
                    print(f"{PROG}: note: {src} is silent (peak below -80 dBFS); writing "
                          f"silence to {dst}", file=sys.stderr)
                else:
                    print(f"{PROG}: warning: {src}: {one_line(w.message)}", file=sys.stderr)
            peak = float(res.audio.abs().max())
            scale = peak > 1.0 and dst.suffix.lower() != ".wav"  # .wav is written as float
            y = res.audio / peak * 0.99 if scale else res.audio
            save_audio(dst, y, sr, subtype="FLOAT" if dst.suffix.lower() == ".wav" else None)
            if png is not None:
                from ..transfer.plot import plot_transfer

                mono = audio.mean(0) if audio.dim() == 2 else audio
                f0_in = res.features.f0_hz if res.features is not None else None
                plot_transfer(png, mono, res.audio, sr, f0_in, res.f0_hz, res.frame_rate,
                              title=src.name)
        except (*USER_ERRORS, ValueError, OSError, ImportError) as err:
            # ValueError/OSError/ImportError: problems of this input not (yet) DDSPErrors
            if len(targets) == 1:  # the policy in ddsp_models.cli.main: one line, status 2
                if isinstance(err, USER_ERRORS) and str(src) in str(err):
                    raise
                raise DDSPError(f"{src}: {error_message(err)}") from err
            report_error(PROG, err, what=None if str(src) in str(err) else str(src))
            failed += 1
            continue
        extra = f", octave shift {res.octaves:+d}" if res.octaves else ""
        if scale:
            extra += f", normalised (peak was {peak:.2f})"
        print(f"{src} -> {dst} ({time.perf_counter() - t0:.1f} s{extra})")
    return 2 if failed else 0
