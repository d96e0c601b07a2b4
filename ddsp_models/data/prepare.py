"""Turn a folder of recordings into training shards: ``ddsp prepare AUDIO_DIR -o DATA_DIR``.

Steps, per file: read (wav/flac/ogg/mp3, any channels and rate) → mix to mono and resample →
skip if unreadable or silent → compute f0, f0 confidence and loudness **once over the whole
file** → cut into examples (default 4 s, hop 1 s; the last example is aligned to the end of the
file; a file shorter than one example is zero-padded) → buffer → write shards.

Output folder:

* ``shard-00000.safetensors`` …: tensors ``audio (N, n_samples)``, ``f0_hz``,
  ``f0_confidence``, ``loudness_db`` ``(N, n_frames)`` (float32), ``source (N,)`` (index into
  the manifest's ``files``), ``start (N,)`` (first sample of the example in the file);
* ``manifest.json``: settings, shards, files, skipped files with the reason;
* ``stats.json``: pitch/loudness statistics (:mod:`ddsp_models.data.stats`).

Every file is written atomically (temporary name, then rename) and the manifest last, so an
interrupted run leaves no half-written shard and no manifest pointing at missing data.
"""

from __future__ import annotations

import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from ..core.upsample import frame_hop
from ..errors import DatasetError, InvalidInputError
from .atomic import atomic_save_safetensors, atomic_write_json
from .stats import compute_stats

__all__ = ["PrepareConfig", "prepare_dataset", "find_audio_files", "slice_starts", "AUDIO_EXTENSIONS"]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
MANIFEST = "manifest.json"
FORMAT = "ddsp-models/shards-v1"

F0Fn = Callable[..., tuple]
LoudnessFn = Callable[..., torch.Tensor]
LoadFn = Callable[..., tuple]


@dataclass
class PrepareConfig:
    """Settings of one ``prepare`` run (stored in the manifest)."""

    sample_rate: int = 16000
    frame_rate: int = 250
    f0_method: str = "crepe-full"
    viterbi: bool = True
    example_seconds: float = 4.0
    hop_seconds: float = 1.0
    shard_size: int = 256
    silence_db: float = -60.0

    def __post_init__(self):
        frame_hop(self.sample_rate, self.frame_rate)  # the one hop rule, its error
        for name in ("example_seconds", "hop_seconds"):
            n = getattr(self, name) * self.sample_rate
            if n <= 0 or abs(n - round(n)) > 1e-6 or round(n) % self.frame_hop:
                raise InvalidInputError(
                    f"{name}={getattr(self, name)} must be a positive whole number of frames "
                    f"(multiple of {self.frame_hop / self.sample_rate} s)"
                )
        if self.shard_size < 1:
            raise InvalidInputError(f"shard_size must be >= 1, got {self.shard_size}")

    @property
    def frame_hop(self) -> int:
        """Samples per frame (:func:`ddsp_models.core.upsample.frame_hop`)."""
        return frame_hop(self.sample_rate, self.frame_rate)

    @property
    def n_samples(self) -> int:
        return int(round(self.example_seconds * self.sample_rate))

    @property
    def n_frames(self) -> int:
        return self.n_samples // self.frame_hop

    @property
    def hop_samples(self) -> int:
        return int(round(self.hop_seconds * self.sample_rate))


def find_audio_files(audio_dir: str | Path) -> list[Path]:
    """Audio files (by extension, case-insensitive) under ``audio_dir``, recursively, sorted."""
    audio_dir = Path(audio_dir)
    if not audio_dir.is_dir():
        raise NotADirectoryError(f"{audio_dir} is not a folder; pass the folder holding the recordings")
    return sorted(p for p in audio_dir.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


def slice_starts(n_samples_file: int, example: int, hop: int, align: int) -> list[int]:
    """First samples of the examples cut from a file of ``n_samples_file`` samples.

    Starts are ``0, hop, 2 hop, ...`` while an example fits, plus one aligned (to a multiple of
    ``align``, the frame hop) to the end of the file so no audio is dropped. A file shorter than
    one example gives ``[0]`` (the example is zero-padded).
    """
    if n_samples_file <= example:
        return [0]
    starts = list(range(0, n_samples_file - example + 1, hop))
    last = ((n_samples_file - example) // align) * align
    if last > starts[-1]:
        starts.append(last)
    return starts


def _default_load(path: str, sample_rate: int):
    from ..audio_io import load_audio

    return load_audio(path, sample_rate=sample_rate, mono=True)


def _default_f0(audio, sample_rate, frame_rate, method, viterbi):
    from ..features import compute_f0

    return compute_f0(audio, sample_rate, frame_rate, method=method, viterbi=viterbi)


def _default_loudness(audio, sample_rate, frame_rate):
    from ..features import compute_loudness

    return compute_loudness(audio, sample_rate, frame_rate)


def _fit_frames(x: torch.Tensor, n: int, what: str) -> np.ndarray:
    """Crop/edge-pad a (T,) feature track to ``n`` frames (tolerates ±2 frames of rounding)."""
    x = torch.as_tensor(x).detach().reshape(-1).float().cpu()
    if abs(x.numel() - n) > 2:
        raise RuntimeError(f"{what} returned {x.numel()} frames, expected {n}")
    if x.numel() < n:
        x = torch.cat([x, x[-1:].expand(n - x.numel())])
    return x[:n].numpy()


def _analyse_file(path: str, cfg: PrepareConfig, load_fn, f0_fn, loudness_fn) -> dict:
    """Load one file and compute its features; returns a dict (``skip`` holds a reason)."""
    try:
        audio, sr = load_fn(path, cfg.sample_rate)
        audio = torch.as_tensor(audio, dtype=torch.float32)
        if audio.dim() > 1:  # (C, L) or (1, L) after mono mixing
            audio = audio.reshape(-1, audio.shape[-1]).mean(0)
        if int(sr) != cfg.sample_rate:
            raise RuntimeError(f"loader returned {sr} Hz, expected {cfg.sample_rate} Hz")
    except ImportError:  # a broken installation is not a bad file
        raise
    except Exception as e:  # unreadable: report and go on
        return {"path": path, "skip": f"unreadable: {type(e).__name__}: {e}"}
    if audio.numel() == 0:
        return {"path": path, "skip": "empty: no samples"}
    if not torch.isfinite(audio).all():
        return {"path": path, "skip": "unreadable: contains NaN or infinite samples"}
    peak = float(audio.abs().max())
    peak_db = 20 * math.log10(peak) if peak > 0 else -math.inf
    if peak_db < cfg.silence_db:
        return {"path": path, "skip": f"silent: peak {peak_db:.1f} dB < {cfg.silence_db} dB"}
    n_file = audio.numel()
    hop = cfg.frame_hop
    n_padded = max(cfg.n_samples, -(-n_file // hop) * hop)
    padded = torch.nn.functional.pad(audio, (0, n_padded - n_file))
    n_frames = n_padded // hop
    with torch.no_grad():
        f0, conf = f0_fn(padded[None], cfg.sample_rate, cfg.frame_rate, cfg.f0_method, cfg.viterbi)
        ld = loudness_fn(padded[None], cfg.sample_rate, cfg.frame_rate)
    return {
        "path": path,
        "audio": padded.numpy(),
        "n_file": n_file,
        "f0_hz": _fit_frames(f0, n_frames, "f0"),
        "f0_confidence": _fit_frames(conf, n_frames, "f0 confidence"),
        "loudness_db": _fit_frames(ld, n_frames, "loudness"),
    }


def _worker_init():
    torch.set_num_threads(1)


def _analyse_all(files, cfg, workers, load_fn, f0_fn, loudness_fn) -> Iterator[dict]:
    if workers and workers > 1:
        import multiprocessing as mp

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                 initializer=_worker_init) as ex:
            futures = [ex.submit(_analyse_file, str(p), cfg, load_fn, f0_fn, loudness_fn)
                       for p in files]
            for fut in futures:  # in order, so shards are deterministic
                yield fut.result()
    else:
        for p in files:
            yield _analyse_file(str(p), cfg, load_fn, f0_fn, loudness_fn)


class _ShardWriter:
    def __init__(self, out_dir: Path, cfg: PrepareConfig):
        self.out_dir, self.cfg = out_dir, cfg
        self.buffer: dict[str, list] = {k: [] for k in
                                         ("audio", "f0_hz", "f0_confidence", "loudness_db", "source", "start")}
        self.shards: list[dict] = []

    def add(self, **example):
        for k, v in example.items():
            self.buffer[k].append(v)
        if len(self.buffer["audio"]) >= self.cfg.shard_size:
            self.flush()

    def flush(self):
        n = len(self.buffer["audio"])
        if not n:
            return
        name = f"shard-{len(self.shards):05d}.safetensors"
        tensors = {k: torch.from_numpy(np.stack(v).astype(np.float32))
                   for k, v in self.buffer.items() if k not in ("source", "start")}
        tensors["source"] = torch.tensor(self.buffer["source"], dtype=torch.int32)
        tensors["start"] = torch.tensor(self.buffer["start"], dtype=torch.int64)
        atomic_save_safetensors(self.out_dir / name, tensors, metadata={"format": FORMAT})
        self.shards.append({"file": name, "n_examples": n})
        self.buffer = {k: [] for k in self.buffer}


def _clear_previous(out_dir: Path) -> None:
    """Remove a previous run's manifest first (so no stale manifest survives a crash), then shards."""
    for name in (MANIFEST, "stats.json"):
        (out_dir / name).unlink(missing_ok=True)
    for p in out_dir.glob("shard-*.safetensors"):
        p.unlink()


def prepare_dataset(
    audio_dir: str | Path,
    out_dir: str | Path,
    config: PrepareConfig | None = None,
    workers: int = 0,
    progress: bool = True,
    load_fn: LoadFn | None = None,
    f0_fn: F0Fn | None = None,
    loudness_fn: LoudnessFn | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Prepare shards, manifest and stats in ``out_dir``; returns the manifest dict.

    ``load_fn(path, sample_rate) -> (audio, sr)``, ``f0_fn(audio (1, L), sample_rate,
    frame_rate, method, viterbi) -> (f0_hz, confidence)`` and ``loudness_fn(audio (1, L),
    sample_rate, frame_rate) -> loudness_db`` default to :mod:`ddsp_models.audio_io` and
    :mod:`ddsp_models.features`; tests inject cheap ones. With ``workers > 1`` files are
    analysed in that many processes (the functions must then be picklable).
    Unreadable, empty and silent files are skipped and reported by name.
    """
    from tqdm.auto import tqdm

    cfg = config or PrepareConfig()
    log = log or (lambda msg: print(msg, file=sys.stderr))
    files = find_audio_files(audio_dir)
    if not files:
        raise FileNotFoundError(
            f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under {audio_dir}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear_previous(out_dir)

    load_fn = load_fn or _default_load
    f0_fn = f0_fn or _default_f0
    loudness_fn = loudness_fn or _default_loudness
    writer = _ShardWriter(out_dir, cfg)
    kept, skipped = [], []
    tracks = {"f0_hz": [], "f0_confidence": [], "loudness_db": []}
    hop = cfg.frame_hop
    results = _analyse_all(files, cfg, workers, load_fn, f0_fn, loudness_fn)
    for res in tqdm(results, total=len(files), desc="prepare", unit="file", disable=not progress):
        rel = os.path.relpath(res["path"], audio_dir)
        if "skip" in res:
            skipped.append({"path": rel, "reason": res["skip"]})
            log(f"skipped {rel}: {res['skip']}")
            continue
        starts = slice_starts(res["n_file"], cfg.n_samples, cfg.hop_samples, hop)
        src = len(kept)
        for s in starts:
            f = s // hop
            writer.add(
                audio=res["audio"][s : s + cfg.n_samples],
                f0_hz=res["f0_hz"][f : f + cfg.n_frames],
                f0_confidence=res["f0_confidence"][f : f + cfg.n_frames],
                loudness_db=res["loudness_db"][f : f + cfg.n_frames],
                source=src,
                start=s,
            )
        n_real = -(-res["n_file"] // hop)  # statistics over the file's own frames only
        for k in tracks:
            tracks[k].append(res[k][:n_real])
        kept.append({"path": rel, "n_examples": len(starts),
                     "duration_s": res["n_file"] / cfg.sample_rate})
    writer.flush()
    if not kept:
        raise DatasetError(
            f"no usable audio in {audio_dir}: all {len(files)} files were skipped "
            f"({'; '.join(s['path'] + ': ' + s['reason'] for s in skipped[:3])}"
            f"{f'; and {len(skipped) - 3} more' if len(skipped) > 3 else ''}); add readable, "
            "non-silent recordings (or lower --silence-db)"
        )
    stats = compute_stats(tracks["f0_hz"], tracks["f0_confidence"], tracks["loudness_db"])
    atomic_write_json(out_dir / "stats.json", stats)
    manifest = {
        "format": FORMAT,
        **asdict(cfg),
        "n_samples": cfg.n_samples,
        "n_frames": cfg.n_frames,
        "n_examples": sum(s["n_examples"] for s in writer.shards),
        "shards": writer.shards,
        "files": kept,
        "skipped": skipped,
        "stats": "stats.json",
    }
    atomic_write_json(out_dir / MANIFEST, manifest)  # last: its presence means "complete"
    log(f"wrote {manifest['n_examples']} examples from {len(kept)} files in "
        f"{len(writer.shards)} shards to {out_dir}; skipped {len(skipped)} files")
    return manifest
