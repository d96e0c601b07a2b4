"""Timbre transfer: play recordings with a trained model."""

from __future__ import annotations

import argparse
import os
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
                "--plot out.png\n"
                "  ddsp transfer sing.wav --model flute --autotune 0.8 --scale Bbmajor -o out.wav\n"
                "\nNo INPUT is ever overwritten: an output that is one of the inputs is refused "
                "before any work."),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio file(s) to transfer")
    p.add_argument("--model", "-m", required=True, metavar="NAME_OR_PATH",
                   help="a shipped model name (checkpoints/NAME or $DDSP_MODELS_PATH), an "
                        "exported model folder or a Lightning .ckpt")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="output file (one INPUT) or folder (several INPUTs; files keep their "
                        "names, as .wav)")
    p.add_argument("--pitch-shift", type=float, default=0.0, metavar="SEMITONES",
                   help="semitones added to f0 after auto-adjust (12 = one octave up; -48..48)")
    p.add_argument("--loudness-shift", type=float, default=0.0, metavar="DB",
                   help="dB added to the loudness after auto-adjust (-60..60)")
    p.add_argument("--autotune", type=float, default=0.0, metavar="AMOUNT",
                   help="move each voiced frame's pitch toward the nearest note of --scale: "
                        "0 = off (default), 1 = snapped to the scale")
    p.add_argument("--scale", default=None, metavar="SCALE",
                   help="scale for --autotune: chromatic, major, minor or a key such as "
                        "C#minor, Bbmajor (default: key detected from the input)")
    p.add_argument("--note-threshold", type=float, default=1.0, metavar="RATIO",
                   help="auto-adjust's note/silence decision: a frame is a note when its "
                        "confidence-weighted loudness reaches RATIO times the file's typical "
                        "note (default 1.0; higher = fewer frames played as notes; 0..10)")
    p.add_argument("--quiet-db", type=float, default=20.0, metavar="DB",
                   help="dB taken off frames auto-adjust finds are not notes (default 20; "
                        "0..120)")
    p.add_argument("--loudness-map", choices=["level", "quantiles"], default="level",
                   help="how auto-adjust fits your loudness to the model's training data: "
                        "level = one dB shift of your median onto its median, keeping your "
                        "dynamics (default); quantiles = DDSP's mapping of your whole "
                        "distribution onto its (every file then spans the training dynamics)")
    p.add_argument("--auto-adjust", action=argparse.BooleanOptionalAction, default=True,
                   help="octave-shift into the model's pitch range (only an input outside "
                        "it), fit the loudness to its training data (--loudness-map) and quiet "
                        "non-note frames (default: on; needs the model's stats.json)")
    p.add_argument("--f0", default="crepe-tiny", choices=["crepe-tiny", "crepe-full", "yin"],
                   help="pitch tracker (default crepe-tiny with YIN refinement: as accurate as "
                        "crepe-full on our benchmarks, several times faster; yin is fastest)")
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


#: Plot formats (matplotlib writes each without extra packages).
PLOT_EXTENSIONS = (".png", ".pdf", ".svg")


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _writable_folder(path: Path, what: str) -> None:
    """The folder that will hold ``path`` exists (created if missing) and can be written,
    proved with a real temporary file (the policy of :mod:`ddsp_models.data.atomic`)."""
    from ..data.atomic import check_writable_folder

    try:
        check_writable_folder(path.parent)
    except (FileExistsError, NotADirectoryError) as err:
        raise InvalidInputError(f"cannot write {what} {path}: {err.filename or path.parent} "
                                "is a file, not a folder") from None


def _check_outputs(targets, inputs: list[str]) -> None:
    """Every output (audio and plot) is valid before any work: a known extension, a writable
    folder, not a folder itself and never one of the INPUTs (nothing is overwritten)."""
    from ..audio_io import supported_extensions

    exts = supported_extensions()
    srcs = [Path(i) for i in inputs]
    for _, dst, png in targets:
        for path, what, allowed in ((dst, "output", exts), (png, "plot", PLOT_EXTENSIONS)):
            if path is None:
                continue
            if path.suffix.lower() not in allowed:
                raise InvalidInputError(f"cannot write {what} {path}: unknown extension "
                                        f"{path.suffix or '(none)'!r}; use one of "
                                        f"{', '.join(allowed)}")
            for src in srcs:
                if _same_file(path, src):
                    raise InvalidInputError(
                        f"{what} {path} is the input file {src}: transfer never overwrites its "
                        "inputs; choose another output name or folder")
            if path.is_dir():
                raise IsADirectoryError(21, f"{what} is a folder, not a file", str(path))
            _writable_folder(path, what)
        if png is not None and _same_file(png, dst):
            raise InvalidInputError(f"--plot {png} is the audio output too; give it another name")


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
    from ..errors import DDSPError
    from ..registry import load_model, resolve_model
    from ..transfer.autotune import parse_scale
    from ..transfer.core import SilentInputWarning, check_options, transfer_file
    from . import USER_ERRORS, error_message, report_error

    flags = {"pitch_shift": "--pitch-shift", "loudness_shift": "--loudness-shift",
             "autotune": "--autotune", "note_threshold": "--note-threshold",
             "quiet_db": "--quiet-db", "chunk_seconds": "--chunk-seconds"}
    check_options(flags, **{k: getattr(args, k) for k in flags})
    if args.autotune > 0:
        parse_scale(args.scale)
    elif args.scale is not None:
        print(f"{PROG}: note: --scale is used by --autotune, which is off", file=sys.stderr)
    model_path = resolve_model(args.model)  # cheap: a wrong name is reported first
    _check_inputs(args.inputs)
    targets = _targets(args.inputs, args.output, args.plot)
    _check_outputs(targets, args.inputs)
    model = load_model(model_path)
    failed = 0
    for src, dst, png in targets:
        t0 = time.perf_counter()
        try:
            wav = dst.suffix.lower() == ".wav"  # .wav is written as float: no clipping
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res = transfer_file(  # memory bounded by a chunk, whatever the length
                    model, src, dst, pitch_shift=args.pitch_shift,
                    loudness_shift=args.loudness_shift, auto_adjust=args.auto_adjust,
                    f0_method=args.f0, chunk_seconds=args.chunk_seconds,
                    autotune=args.autotune, scale=args.scale,
                    note_threshold=args.note_threshold, quiet_db=args.quiet_db,
                    loudness_map=args.loudness_map,
                    subtype="FLOAT" if wav else None, normalize=not wav)
            for w in caught:
                if issubclass(w.category, SilentInputWarning):
                    print(f"{PROG}: note: {src} is silent (peak below -80 dBFS); writing "
                          f"silence to {dst}", file=sys.stderr)
                else:
                    print(f"{PROG}: warning: {src}: {one_line(w.message)}", file=sys.stderr)
            if png is not None:
                from ..transfer.plot import FileAudio, plot_transfer

                f0_in = res.features.f0_hz if res.features is not None else None
                plot_transfer(png, FileAudio(src), FileAudio(dst), res.sample_rate, f0_in,
                              res.f0_hz, res.frame_rate, title=src.name)
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
        if res.scale:
            extra += f", autotune {args.autotune:g} to {res.scale}"
        if res.normalized:
            extra += f", normalised (peak was {res.peak:.2f})"
        print(f"{src} -> {dst} ({time.perf_counter() - t0:.1f} s{extra})")
    return 2 if failed else 0
