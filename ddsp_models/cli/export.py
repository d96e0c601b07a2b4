"""Export a model's synthesis (streaming TorchScript, whole-signal TorchScript, ONNX) or the
audio-in live model for nn~ (Max, Pure Data) and Neutone (DAWs)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

PROG = "ddsp export"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "export", help="export a model as TorchScript (streaming or whole-signal), ONNX, or a "
                       "live audio-in plugin model for nn~ or Neutone",
        description=(
            "Write the model's decoder + synth graph as a self-contained file. --streaming:\n"
            'forward(f0_hz (B,N,1) Hz, loudness_db (B,N,1) dB) -> (B,C,N*hop) per block of N\n'
            'frames (block = N*hop samples, e.g. 64..1024), with the GRU state and every\n'
            "processor's declared state carried inside; reset() starts a stream, flush() ends\n"
            'it. Without --streaming: the same call renders a whole signal. Every graph\n'
            'exports (models with an MFCC encoder are refused: their latent is not causal).\n'
            'The output lags by the latency printed (the graph\'s look-ahead).\n\n'
            '--format nn-tilde / neutone: the live model (audio in -> causal pitch and loudness\n'
            '-> the instrument -> audio out, at any host rate and block size) for nn~ in\n'
            'Max / Pure Data (methods forward, encode, decode; attributes pitch_shift,\n'
            'gain_db, gate_db, auto_adjust, harmonic_mix, reverb_wet) or for the Neutone\n'
            'plugin in a DAW (.nm, four knobs). See docs/live.md.'),
        epilog=("example:\n"
                "  ddsp export --model violin --format torchscript --streaming -o violin.pt\n"
                "  ddsp export --model violin --format nn-tilde -o violin.ts\n"
                "  ddsp export --model violin --format neutone -o violin.nm"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", "-m", required=True, metavar="NAME_OR_PATH",
                   help="a shipped model name, an exported model folder or a .ckpt")
    p.add_argument("--format", default="torchscript",
                   choices=["torchscript", "onnx", "nn-tilde", "neutone"],
                   help="torchscript (default), onnx (streaming step with explicit state), "
                        "nn-tilde (live model for nn~) or neutone (live model for a DAW)")
    p.add_argument("--streaming", action="store_true",
                   help="block-by-block module with carried state (torchscript); onnx is "
                        "always a streaming step")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write")
    p.add_argument("--seed", type=int, default=0, help="seed of the deterministic noise")
    p.add_argument("--block-frames", type=int, default=4,
                   help="onnx only: frames per block the graph is exported for (default 4)")
    p.add_argument("--sample-rate", type=int, default=48000, metavar="HZ",
                   help="nn-tilde / neutone: host rate before the host sets its own "
                        "(default 48000; any rate works at run time)")
    p.add_argument("--control-ratio", type=int, default=128, metavar="N",
                   help="nn-tilde only: host samples per f0/loudness value of encode and "
                        "decode (a power of two, default 128)")
    p.add_argument("--frames-per-step", type=int, default=1, metavar="K",
                   help="nn-tilde / neutone: render the model K frames at a time (1..16, "
                        "default 1): less CPU per buffer on average, K-1 frames more latency")
    return p


def run(args) -> int:
    """User errors (unknown or corrupt model, missing output folder, a graph the format
    cannot hold: all DDSPErrors) follow the CLI policy of :mod:`ddsp_models.cli`: one line,
    status 2."""
    from ..registry import load_model

    out_dir = Path(args.output).resolve().parent
    if not out_dir.is_dir():
        raise FileNotFoundError(2, "no such folder for -o", str(out_dir))
    if args.format == "nn-tilde":
        r = args.control_ratio
        if r < 1 or r & (r - 1):
            from ..errors import InvalidInputError

            raise InvalidInputError(f"--control-ratio must be a power of two (nn~ buffers are), "
                                    f"got {r}; use e.g. 128 or 256")
    if args.format in ("nn-tilde", "neutone") and not 1 <= args.frames_per_step <= 16:
        from ..errors import InvalidInputError

        raise InvalidInputError(f"--frames-per-step must be within 1..16, got "
                                f"{args.frames_per_step}")
    if args.format in ("nn-tilde", "neutone") and not 8000 <= args.sample_rate <= 384000:
        from ..errors import InvalidInputError

        raise InvalidInputError(f"--sample-rate must be within 8000..384000 Hz, got "
                                f"{args.sample_rate}")
    model = load_model(args.model)
    if args.format == "torchscript":
        from ..export.streaming import StreamingSynth
        from ..export.torchscript import export_torchscript, io_description

        path = export_torchscript(model, args.output, streaming=args.streaming, seed=args.seed)
        info = io_description(StreamingSynth(model, args.seed), args.streaming)
    elif args.format == "nn-tilde":
        from ..export.nn_tilde import export_nn_tilde

        r = args.control_ratio
        path, info = export_nn_tilde(model, args.output, sample_rate=args.sample_rate,
                                     control_ratio=r, seed=args.seed,
                                     frames_per_step=args.frames_per_step)
    elif args.format == "neutone":
        from ..export.neutone import export_neutone
        from ..registry import resolve_model

        folder = resolve_model(args.model)
        folder = folder if Path(folder).is_dir() else None
        name = Path(str(args.model)).name if folder is None else Path(folder).name
        path, meta = export_neutone(model, args.output, model_folder=folder, name=name,
                                    sample_rate=args.sample_rate, seed=args.seed,
                                    frames_per_step=args.frames_per_step)
        info = {"format": "neutone", "model_name": meta["model_name"],
                "knobs": [p["name"] for p in meta["neutone_parameters"].values() if p["used"]],
                "sample_rate": args.sample_rate,
                "latency_samples": meta["latency_samples"],
                "latency_ms": round(1000.0 * meta["latency_samples"] / args.sample_rate, 2)}
    else:
        from ..export.onnx import export_onnx

        path, info = export_onnx(model, args.output, block_frames=args.block_frames,
                                 seed=args.seed)
    print(f"wrote {path}")
    print(json.dumps(info, indent=1))
    return 0
