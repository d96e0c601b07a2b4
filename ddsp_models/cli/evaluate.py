"""Resynthesis metrics of a model on a prepared dataset (spectral distance, loudness L1, f0 L1 and outliers)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from ..errors import DatasetError, InvalidInputError


def evaluate(model, data_dir: str | Path, f0_method: str | None = None, batch_size: int = 8,
             max_examples: int | None = None, confidence_threshold: float = 0.85,
             f0_fn: Callable | None = None, loudness_fn: Callable | None = None,
             progress: bool = False) -> dict:
    """Resynthesise the examples of ``data_dir`` from their features and compare (see
    :mod:`ddsp_models.metrics`). f0 and loudness of the output are re-extracted with
    ``f0_fn(audio (B, L), sample_rate, frame_rate, method)`` / ``loudness_fn(audio, sr, fr)``
    (default: :mod:`ddsp_models.features`, the f0 method the data was prepared with)."""
    import torch  # here, not at import: `ddsp --help` must start fast

    from tqdm.auto import tqdm

    from ..data.dataset import ShardDataset
    from ..metrics import f0_metrics, loudness_l1
    from ..nn.losses import MultiResolutionSpectralLoss

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"--batch-size must be a whole number >= 1, got {batch_size!r}")
    if max_examples is not None and max_examples < 1:
        raise InvalidInputError(f"--max-examples must be >= 1 (or left out for all), got "
                                f"{max_examples}")
    ds = ShardDataset(data_dir)
    if len(ds) == 0:
        raise DatasetError(f"{data_dir} holds no examples; prepare it again with 'ddsp prepare'")
    if ds.sample_rate != model.sample_rate or ds.frame_rate != model.frame_rate:
        raise DatasetError(
            f"the data ({ds.sample_rate} Hz, {ds.frame_rate} frames/s) does not match the model "
            f"({model.sample_rate} Hz, {model.frame_rate} frames/s); prepare it with "
            f"--sample-rate {model.sample_rate} --frame-rate {model.frame_rate}")
    method = f0_method or ds.manifest.get("f0_method", "crepe-full")
    if f0_fn is None:
        from ..features import compute_f0

        def f0_fn(a, sr, fr, m):
            return compute_f0(a, sr, fr, method=m)
    if loudness_fn is None:
        from ..features import compute_loudness as loudness_fn
    n = len(ds) if max_examples is None else min(len(ds), max_examples)
    from ..metrics import metric_fft_sizes

    spectral = MultiResolutionSpectralLoss(fft_sizes=metric_fft_sizes(model.sample_rate))
    sums = {"spectral": 0.0, "loudness": 0.0}
    f0_out, f0_ref, conf_ref = [], [], []
    model.eval()
    with torch.no_grad():
        for start in tqdm(range(0, n, batch_size), disable=not progress, desc="evaluate"):
            items = [ds[i] for i in range(start, min(n, start + batch_size))]
            target = torch.stack([it["audio"] for it in items])
            f0 = torch.stack([it["f0_hz"] for it in items])
            ld = torch.stack([it["loudness_db"] for it in items])
            out = model(f0, ld, target).mean(1, keepdim=True)[..., : target.shape[-1]]
            b = target.shape[0]
            for i in range(b):  # per example, so the mean does not depend on batch size
                sums["spectral"] += float(spectral(out[i : i + 1], target[i : i + 1]))
            flat = out[:, 0]
            f0_o, _ = f0_fn(flat, model.sample_rate, model.frame_rate, method)
            ld_o = loudness_fn(flat, model.sample_rate, model.frame_rate)
            t = f0.shape[1]
            sums["loudness"] += loudness_l1(ld_o[:, :t], ld[..., 0]) * b
            f0_out.append(f0_o[:, :t])
            f0_ref.append(f0[..., 0])
            conf_ref.append(torch.stack([it["f0_confidence"][:, 0] for it in items]))
    f0m = f0_metrics(torch.cat(f0_out), torch.cat(f0_ref), torch.cat(conf_ref), confidence_threshold)
    return {
        "spectral_distance": sums["spectral"] / n,
        "loudness_l1_db": sums["loudness"] / n,
        **f0m,
        "n_examples": n,
        "f0_method": method,
        "confidence_threshold": confidence_threshold,
        "data": str(data_dir),
    }


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("evaluate", help="resynthesis metrics of a model on a prepared dataset",
                       description=(__doc__ or "").strip())
    p.add_argument("data_dir", metavar="DATA_DIR", help="a folder written by 'ddsp prepare'")
    p.add_argument("--model", "-m", required=True, metavar="NAME_OR_PATH",
                   help="a shipped model name (checkpoints/NAME or $DDSP_MODELS_PATH), an "
                        "exported model folder or a Lightning .ckpt")
    p.add_argument("-o", "--output", help="also write the metrics to this JSON file")
    p.add_argument("--f0", choices=["crepe-full", "crepe-tiny", "yin"], default=None,
                   help="pitch tracker for the output (default: the one the data was prepared with)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-examples", type=int, default=None)
    p.add_argument("--confidence-threshold", type=float, default=0.85,
                   help="frames of the original with f0 confidence below this are unvoiced")
    return p


def run(args) -> int:
    from ..data.atomic import atomic_write_json, check_writable_folder
    from ..data.dataset import load_manifest
    from ..registry import load_model, resolve_model

    # cheap checks first: a wrong option, model name or data folder fails before any work
    if args.batch_size < 1:
        raise InvalidInputError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.max_examples is not None and args.max_examples < 1:
        raise InvalidInputError(f"--max-examples must be >= 1 (or left out for all), got "
                                f"{args.max_examples}")
    model_path = resolve_model(args.model)
    load_manifest(args.data_dir)
    if args.output:
        out = Path(args.output)
        if out.is_dir():
            raise IsADirectoryError(21, "-o is a folder; give a .json file name", str(out))
        if out.suffix.lower() != ".json":
            raise InvalidInputError(f"-o {args.output}: the metrics are written as JSON; give "
                                    "a file name ending in .json")
        out_dir = out.resolve().parent
        if not out_dir.is_dir():
            raise FileNotFoundError(2, "no such folder for -o", str(out_dir))
        check_writable_folder(out_dir)  # a read-only folder fails now, not after the work
        if out.resolve() == (Path(args.data_dir) / "manifest.json").resolve() or \
                out.resolve() == (Path(args.data_dir) / "stats.json").resolve():
            raise InvalidInputError(f"-o {args.output} would overwrite the dataset's own file; "
                                    "choose another name")
    model = load_model(model_path)
    metrics = evaluate(model, args.data_dir, args.f0, args.batch_size, args.max_examples,
                       args.confidence_threshold, progress=True)
    metrics["model"] = str(args.model)
    print(json.dumps(metrics, indent=2))
    if args.output:
        atomic_write_json(args.output, metrics)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0
