"""Peak memory of ``ddsp transfer`` (with and without ``--plot``) and ``ddsp prepare`` against
the length of the audio (prints a table; not a test).

    python benchmarks/memory.py [--minutes 1,10,30,60] [--f0 yin] [--model violin]
                                [--commands transfer,transfer-plot,prepare] [--keep DIR]

For every length a 16 kHz melody of that many minutes (a ``benchmarks/transfer.py`` melody
plus a little noise, written as 16-bit WAV in 10 s blocks: the generator itself stays small)
is given to each command, run as a fresh child process; the figure is the child's peak
resident memory (RSS high-water mark, ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` read by a
fresh wrapper process, so one measurement never sees another's peak), with its wall time.

* ``transfer``: ``ddsp transfer IN.wav --model MODEL -o OUT.wav --f0 F0``;
* ``transfer-plot``: the same with ``--plot OUT.png``;
* ``prepare``: ``ddsp prepare DIR -o DATA --f0 F0 --quiet`` on a folder holding the one file.

The goal (issue 18) is memory flat in the file length beyond one chunk: the ``MB/min`` column
(the growth from the shortest to each longer file, per added minute) should be near 0.
Timings and memory on a shared machine are noisy: report them as such.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SR = 16000

_WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode\n"
    "kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(rc, kb)\n"
)


def write_melody(path: Path, minutes: float, block_seconds: float = 10.0) -> None:
    """A ``minutes``-long melody (8 notes, vibrato, decaying envelopes), written block by
    block with a continuous phase."""
    import soundfile as sf

    n_total = int(minutes * 60 * SR)
    notes = 220.0 * 2 ** (np.array([0, 2, 4, 5, 7, 9, 11, 12]) / 12)
    rng = np.random.default_rng(0)
    phase = 0.0
    with sf.SoundFile(str(path), "w", SR, 1, subtype="PCM_16") as f:
        for start in range(0, n_total, int(block_seconds * SR)):
            n = min(int(block_seconds * SR), n_total - start)
            t = (start + np.arange(n)) / SR
            f0 = notes[(t * 2).astype(int) % 8] * 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5 * t))
            ph = phase + 2 * np.pi * np.cumsum(f0) / SR
            phase = float(ph[-1])
            env = np.minimum(1.0, 20 * (t * 2 % 1)) * np.exp(-1.5 * (t * 2 % 1))
            x = 0.4 * env * sum(np.sin(k * ph) / k for k in (1, 2, 3))
            f.write((x + 1e-3 * rng.standard_normal(n)).astype(np.float32))


def peak_rss_mb(argv: list[str]) -> tuple[float, float, int]:
    """``(peak RSS in MB, wall seconds, exit status)`` of ``argv`` run as a child."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _WRAPPER, *argv], capture_output=True,
                         text=True, env=env, check=True).stdout.split()
    wall = time.perf_counter() - t0
    rc, kb = int(out[0]), int(out[1])
    scale = 1024 if sys.platform != "darwin" else 1  # ru_maxrss: KiB on Linux, bytes on macOS
    return kb * scale / 2**20, wall, rc


def command(name: str, wav: Path, work: Path, args) -> list[str]:
    ddsp = [sys.executable, "-m", "ddsp_models.cli"]
    if name == "transfer":
        return ddsp + ["transfer", str(wav), "--model", args.model, "-o", str(work / "out.wav"),
                       "--f0", args.f0]
    if name == "transfer-plot":
        return ddsp + ["transfer", str(wav), "--model", args.model, "-o", str(work / "out.wav"),
                       "--f0", args.f0, "--plot", str(work / "out.png")]
    if name == "prepare":
        return ddsp + ["prepare", str(wav.parent), "-o", str(work / "data"), "--f0", args.f0,
                       "--quiet"]
    raise ValueError(f"unknown command {name!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", default="1,10,30,60",
                    help="comma-separated lengths (minutes)")
    ap.add_argument("--commands", default="transfer,transfer-plot,prepare")
    ap.add_argument("--f0", default="yin", help="pitch tracker of every command (default yin)")
    ap.add_argument("--model", default="violin")
    ap.add_argument("--keep", default=None, help="work in this folder and keep it")
    args = ap.parse_args()
    minutes = [float(m) for m in args.minutes.split(",")]
    names = args.commands.split(",")
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ddsp-memory-"))
    root.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[tuple[float, float, float, int]]] = {n: [] for n in names}
    try:
        for m in minutes:
            audio = root / f"audio_{m:g}min"
            audio.mkdir(exist_ok=True)
            wav = audio / "melody.wav"
            if not wav.is_file():
                write_melody(wav, m)
            for name in names:
                work = root / f"{name}_{m:g}min"
                shutil.rmtree(work, ignore_errors=True)
                work.mkdir()
                mb, wall, rc = peak_rss_mb(command(name, wav, work, args))
                rows[name].append((m, mb, wall, rc))
                print(f"{name:14s} {m:6g} min: peak {mb:8.0f} MB, {wall:7.1f} s, exit {rc}",
                      file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\npeak resident memory (MB) by audio length; f0 {args.f0}, model {args.model}")
    print(f"{'command':14s} {'minutes':>8s} {'peak MB':>9s} {'MB/min':>8s} {'wall s':>8s} "
          f"{'exit':>5s}")
    for name, rs in rows.items():
        base_m, base_mb = rs[0][0], rs[0][1]
        for m, mb, wall, rc in rs:
            growth = "" if m == base_m else f"{(mb - base_mb) / (m - base_m):8.1f}"
            print(f"{name:14s} {m:8g} {mb:9.0f} {growth:>8s} {wall:8.1f} {rc:5d}")


if __name__ == "__main__":
    main()
