"""Prepare a training set: resample, slice, compute f0/loudness, write shards + manifest + stats."""

from __future__ import annotations

import argparse
import sys

from ..errors import InvalidInputError


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "prepare",
        help="turn a folder of recordings into training shards",
        description=(
            "Read every wav/flac/ogg/mp3 under AUDIO_DIR (any channels and rate), mix to mono, "
            "resample, compute f0 (with confidence) and loudness once per file, cut examples "
            "and write safetensors shards, manifest.json and stats.json to DATA_DIR. Unreadable "
            "and silent files are skipped and reported by name."
        ),
    )
    p.add_argument("audio_dir", metavar="AUDIO_DIR", help="folder of recordings (searched recursively)")
    p.add_argument("-o", "--output", required=True, metavar="DATA_DIR", help="output folder")
    p.add_argument("--sample-rate", type=int, default=16000, help="audio rate in Hz (default 16000)")
    p.add_argument("--frame-rate", type=int, default=250, help="feature frames per second (default 250)")
    p.add_argument("--f0", default="crepe-full", choices=["crepe-full", "crepe-tiny", "yin", "causal-yin"],
                   help="pitch tracker (default crepe-full); causal-yin: the live model's causal "
                        "tracker, for models that will be played live (ddsp export --format "
                        "nn-tilde/neutone)")
    p.add_argument("--no-viterbi", action="store_true", help="no Viterbi smoothing of the f0 track")
    p.add_argument("--example-seconds", type=float, default=4.0, help="example length (default 4)")
    p.add_argument("--hop-seconds", type=float, default=1.0, help="hop between examples (default 1)")
    p.add_argument("--shard-size", type=int, default=256, help="examples per shard (default 256)")
    p.add_argument("--silence-db", type=float, default=-60.0,
                   help="skip files whose peak is below this level in dBFS (default -60)")
    p.add_argument("--workers", type=int, default=0,
                   help="processes analysing files in parallel (default 0: in this process)")
    p.add_argument("--features-from", metavar="DIR", default=None,
                   help="compute f0 and loudness from the files of the same relative names under "
                        "DIR, and take the audio targets from AUDIO_DIR (the pairs aligned sample "
                        "for sample). Input-side augmentation: DIR an augmented copy (room and EQ, "
                        "level unchanged; render_fluidsynth.py --augment eq,reverb --dry-copy "
                        "AUDIO_DIR makes both), so the model learns to play the dry instrument "
                        "from any room")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _terminate_as_interrupt(signum, frame):
    """``SIGTERM`` ends the run like Ctrl-C: workers stopped, temporaries removed, the previous
    dataset kept, one line (``ddsp prepare: interrupted``)."""
    raise KeyboardInterrupt


def run(args) -> int:
    """User errors (missing or empty folder, bad rates, an unwritable output, no usable file)
    follow the CLI policy of :mod:`ddsp_models.cli`: one line, status 2, checked before any
    file is analysed. Notes on skipped files are printed once the dataset is written (a failed
    run's one line names them itself). Ctrl-C and ``SIGTERM`` end the run within a couple of
    seconds (status 130) and leave the previous dataset in place."""
    import math
    import signal

    for name in ("example_seconds", "hop_seconds", "silence_db"):
        value = getattr(args, name)
        if not math.isfinite(value):
            raise InvalidInputError(f"--{name.replace('_', '-')} must be a finite number, got "
                                    f"{value}")
    if args.workers < 0:
        raise InvalidInputError(f"--workers must be >= 0 (0: analyse in this process), got "
                                f"{args.workers}")
    from ..data.prepare import PrepareConfig, prepare_dataset  # here: a fast `--help`

    cfg = PrepareConfig(
        sample_rate=args.sample_rate, frame_rate=args.frame_rate, f0_method=args.f0,
        viterbi=not args.no_viterbi, example_seconds=args.example_seconds,
        hop_seconds=args.hop_seconds, shard_size=args.shard_size, silence_db=args.silence_db,
    )
    notes: list[str] = []
    previous = signal.getsignal(signal.SIGTERM)
    in_main = _is_main_thread()
    if in_main:
        signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        manifest = prepare_dataset(args.audio_dir, args.output, cfg, workers=args.workers,
                                   progress=not args.quiet, log=notes.append,
                                   features_dir=args.features_from)
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    for note in notes:
        print(f"ddsp prepare: {note}", file=sys.stderr)
    return 0 if manifest["n_examples"] else 1


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
