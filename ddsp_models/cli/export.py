"""Export a model's synthesis (streaming TorchScript, whole-signal TorchScript, ONNX)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

PROG = "ddsp export"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "export", help="export a model as TorchScript (streaming or whole-signal) or ONNX",
        description=(
            "Write the model's decoder + synth graph as a self-contained file. --streaming:\n"
            'forward(f0_hz (B,N,1) Hz, loudness_db (B,N,1) dB) -> (B,C,N*hop) per block of N\n'
            'frames (block = N*hop samples, e.g. 64..1024), with the GRU state and every\n'
            "processor's declared state carried inside; reset() starts a stream, flush() ends\n"
            'it. Without --streaming: the same call renders a whole signal. Every graph\n'
            'exports (models with an MFCC encoder are refused: their latent is not causal).\n'
            'The output lags by the latency printed (the graph\'s look-ahead).'),
        epilog=("example:\n"
                "  ddsp export --model violin --format torchscript --streaming -o violin.pt"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", "-m", required=True, metavar="NAME_OR_PATH",
                   help="a shipped model name, an exported model folder or a .ckpt")
    p.add_argument("--format", default="torchscript", choices=["torchscript", "onnx"],
                   help="torchscript (default) or onnx (streaming step with explicit state)")
    p.add_argument("--streaming", action="store_true",
                   help="block-by-block module with carried state (torchscript); onnx is "
                        "always a streaming step")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write")
    p.add_argument("--seed", type=int, default=0, help="seed of the deterministic noise")
    p.add_argument("--block-frames", type=int, default=4,
                   help="onnx only: frames per block the graph is exported for (default 4)")
    return p


def run(args) -> int:
    """User errors (unknown or corrupt model, missing output folder, a graph the format
    cannot hold: all DDSPErrors) follow the CLI policy of :mod:`ddsp_models.cli`: one line,
    status 2."""
    from ..registry import load_model

    out_dir = Path(args.output).resolve().parent
    if not out_dir.is_dir():
        raise FileNotFoundError(2, "no such folder for -o", str(out_dir))
    model = load_model(args.model)
    if args.format == "torchscript":
        from ..export.streaming import StreamingSynth
        from ..export.torchscript import export_torchscript, io_description

        path = export_torchscript(model, args.output, streaming=args.streaming, seed=args.seed)
        info = io_description(StreamingSynth(model, args.seed), args.streaming)
    else:
        from ..export.onnx import export_onnx

        path, info = export_onnx(model, args.output, block_frames=args.block_frames,
                                 seed=args.seed)
    print(f"wrote {path}")
    print(json.dumps(info, indent=1))
    return 0
