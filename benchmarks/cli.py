"""Benchmark: start-up of the ``ddsp`` command and end-to-end ``ddsp transfer`` speed.

1. **Start-up**: ``ddsp --help`` and each ``ddsp COMMAND --help``, each in a fresh process.
   *Cold* is the first run after Python's byte-code caches of the package were removed (and
   the OS file cache holds whatever it holds); *warm* is the best of ``--repeat`` later runs.
   Goal: ≤ 1.5 s each (``train`` parses with LightningCLI and imports Lightning: it trains).
2. **Transfer**: ``ddsp transfer FILE --model MODEL -o OUT`` with the defaults on generated
   melodies of 10 s and 60 s (44.1 kHz, a harmonic tone, notes of 0.4 s), in a fresh process,
   split into *start* (process start, imports, model load, audio reading/writing and
   resampling: the total minus the two next), *features* (``extract_features``: f0,
   confidence, loudness) and *synthesis* (``render_blocks``), each as seconds and the total as a
   multiple of real time. Goal: ≥ 5× real time for 10 s on 2 cores.

Wall times on a shared machine are noisy; the CPU time (user + system) of the process is
printed beside them and is a steadier measure of the work (on an otherwise idle 2-core
machine, wall ≈ CPU / (cores used)).

    python benchmarks/cli.py [--repeat 3] [--model violin] [--seconds 10 60] [--f0 crepe-tiny]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["", "prepare", "train", "evaluate", "transfer", "export", "processors"]

# Runs ``ddsp transfer`` in-process with timers around feature extraction and synthesis;
# prints one JSON line {"features": s, "synthesis": s} on stderr at the end.
_DRIVER = r"""
import json, sys, time
T = {"features": 0.0, "synthesis": 0.0}
def timed(mod, name, key):
    fn = getattr(mod, name)
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            T[key] += time.perf_counter() - t
    setattr(mod, name, wrapper)
def timed_blocks(mod, name, key):  # a generator: time each block it yields
    fn = getattr(mod, name)
    def wrapper(*a, **k):
        it = iter(fn(*a, **k))
        while True:
            t = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                return
            finally:
                T[key] += time.perf_counter() - t
            yield item
    setattr(mod, name, wrapper)
import ddsp_models.transfer.core as core, ddsp_models.transfer.synthesis as synthesis
timed(core, "extract_features", "features")
timed_blocks(synthesis, "render_blocks", "synthesis")  # the streamed file-to-file path
from ddsp_models.cli import main
code = main(sys.argv[1:])
print(json.dumps(T), file=sys.stderr)
sys.exit(code)
"""


def _run(argv: list[str], env: dict | None = None) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall and CPU (user + sys) seconds of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out


def _clear_bytecode() -> None:
    for d in (ROOT / "ddsp_models").rglob("__pycache__"):
        for f in d.glob("*.pyc"):
            f.unlink(missing_ok=True)


def startup(repeat: int) -> None:
    print("# start-up (fresh process each; seconds: wall / CPU)")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # warm runs use the byte-code cache
    for cmd in COMMANDS:
        argv = [sys.executable, "-m", "ddsp_models.cli"] + ([cmd] if cmd else []) + ["--help"]
        _clear_bytecode()
        cold = _run(argv, env)
        warm = min((_run(argv, env) for _ in range(repeat)), key=lambda r: r[0])
        ok = "" if cold[2].returncode == 0 else f"  (exit {cold[2].returncode})"
        name = f"ddsp {cmd} --help" if cmd else "ddsp --help"
        print(f"{name:28s} cold {cold[0]:5.2f} / {cold[1]:5.2f}   warm {warm[0]:5.2f} / "
              f"{warm[1]:5.2f}{ok}")


def melody_file(path: Path, seconds: float, sr: int = 44100) -> Path:
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    n = int(seconds * sr)
    note = int(0.4 * sr)
    f0 = np.repeat(440 * 2 ** ((rng.integers(55, 76, n // note + 1) - 69) / 12), note)[:n]
    ph = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * ph) / k for k in range(1, 8))
    env = np.minimum(1.0, np.minimum(np.arange(n) % note, note - np.arange(n) % note) / 400)
    sf.write(path, (0.25 * x * env).astype(np.float32), sr)
    return path


def transfer(seconds: list[float], model: str, f0: str | None, extra: list[str]) -> None:
    print(f"# ddsp transfer --model {model}{' --f0 ' + f0 if f0 else ' (default f0)'} "
          "(seconds: wall / CPU)")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    tmp = Path(tempfile.mkdtemp(prefix="ddsp-bench-"))
    try:
        for secs in seconds:
            src = melody_file(tmp / f"in{secs:g}.wav", secs)
            argv = [sys.executable, "-c", _DRIVER, "transfer", str(src), "--model", model, "-o",
                    str(tmp / "out.wav")] + (["--f0", f0] if f0 else []) + extra
            wall, cpu, out = _run(argv, env)
            if out.returncode != 0:
                print(f"{secs:g} s: failed: {out.stderr.strip().splitlines()[-1:]}")
                continue
            t = json.loads(out.stderr.strip().splitlines()[-1])
            start = wall - t["features"] - t["synthesis"]
            print(f"{secs:5g} s file: total {wall:6.2f} s ({secs / wall:5.2f}x real time; CPU "
                  f"{cpu:6.2f} s = {secs / cpu:5.2f}x)  start {start:5.2f}  features "
                  f"{t['features']:5.2f} ({secs / max(t['features'], 1e-9):5.1f}x)  synthesis "
                  f"{t['synthesis']:5.2f} ({secs / max(t['synthesis'], 1e-9):5.1f}x)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=3, help="warm runs per command (best kept)")
    p.add_argument("--model", default="violin")
    p.add_argument("--seconds", type=float, nargs="+", default=[10.0, 60.0])
    p.add_argument("--f0", default=None, help="pitch tracker (default: the CLI's default)")
    p.add_argument("--skip-startup", action="store_true")
    p.add_argument("--skip-transfer", action="store_true")
    args, extra = p.parse_known_args()
    print(f"# {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} "
          "(shared machine: wall times are noisy)")
    if not args.skip_startup:
        startup(args.repeat)
    if not args.skip_transfer:
        transfer(args.seconds, args.model, args.f0, extra)


if __name__ == "__main__":
    main()
