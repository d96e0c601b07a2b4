"""MIDI performance speed: a 3-minute, 4-part score played by the shipped models (not a test).

    python benchmarks/midi.py [--minutes 3] [--parts 4] [--models violin,flute,trumpet]
                              [--threads 2] [--keep DIR]

1. Writes a score with mido: ``--parts`` monophonic lines (chorale-like, MIDI 60-80 so no note
   leaves the models' ranges) of quarter and eighth notes at 100 bpm, some of them legato,
   with velocity arcs, CC 11 swells, CC 1 and a pitch bend now and then.
2. For each model, in this process: ``synthesize_midi`` with the time split into curve
   generation, decoder (GRU + MLPs; it runs in a second thread, overlapping the synthesis) and
   synthesis (the DSP graph: oscillators, noise, reverb, mixing), and the call's total, as
   multiples of real time.
3. For each model, end to end: ``ddsp synth SCORE --model NAME -o OUT.wav`` in a fresh
   process (interpreter start, imports, model load, rendering, writing the file): wall time
   and real-time factor (the goal is >= 20x on 2 cores).

Timings on a shared machine are noisy: the CPU seconds (all threads) are printed beside the
wall seconds; report both.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def write_score(path: Path, minutes: float, parts: int, seed: int = 0) -> float:
    """A ``parts``-voice score of ``minutes``; returns its length in seconds."""
    import mido

    rng = np.random.default_rng(seed)
    tpb, bpm = 480, 100
    mid = mido.MidiFile(type=1, ticks_per_beat=tpb)
    meta = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))])
    mid.tracks.append(meta)
    beats = int(minutes * bpm)
    centres = np.linspace(76, 64, parts)
    for v in range(parts):
        tr = mido.MidiTrack([mido.MetaMessage("track_name", name=f"part {v + 1}")])
        events = []  # (tick, message)
        beat = 0.0
        pitch = int(centres[v])
        while beat < beats - 1:
            dur = float(rng.choice([0.5, 1.0, 1.0, 2.0]))
            pitch = int(np.clip(pitch + rng.integers(-3, 4), 60, 80))
            vel = int(np.clip(70 + 35 * np.sin(beat / 16 * np.pi) + rng.normal(0, 8), 20, 127))
            legato = rng.random() < 0.4
            on = int(beat * tpb)
            off = int((beat + dur * (1.0 if legato else 0.85)) * tpb)
            events.append((on, mido.Message("note_on", note=pitch, velocity=vel, channel=v)))
            if dur >= 1.0:
                for k in range(8):
                    value = int(90 + 37 * np.sin(np.pi * k / 7))
                    events.append((on + int(k * dur * tpb / 8),
                                   mido.Message("control_change", control=11, value=value,
                                                channel=v)))
            if rng.random() < 0.1:
                events.append((on, mido.Message("control_change", control=1,
                                                value=int(rng.integers(0, 128)), channel=v)))
            if rng.random() < 0.05:
                events.append((on + tpb // 4, mido.Message("pitchwheel", pitch=4096, channel=v)))
                events.append((off, mido.Message("pitchwheel", pitch=0, channel=v)))
            events.append((off, mido.Message("note_off", note=pitch, velocity=0, channel=v)))
            beat += dur
        events.sort(key=lambda e: (e[0], e[1].type == "note_on"))
        now = 0
        for tick, msg in events:
            tr.append(msg.copy(time=tick - now))
            now = tick
        mid.tracks.append(tr)
    mid.save(str(path))
    return beats * 60.0 / bpm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--parts", type=int, default=4)
    ap.add_argument("--models", default="violin,flute,trumpet")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", help="write the score and renders into this folder")
    args = ap.parse_args()
    import torch

    from ddsp_models.midi import synthesize_midi
    from ddsp_models.registry import load_model

    torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory()
    out_dir = Path(args.keep) if args.keep else Path(tmp.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    score = out_dir / "bench.mid"
    seconds = write_score(score, args.minutes, args.parts)
    print(f"# {seconds:.0f} s score, {args.parts} parts, {args.threads} threads; shared machine: "
          "noisy figures (cpu s = all threads)")
    print(f"{'model':10s} {'stage':28s} {'wall s':>8s} {'cpu s':>8s} {'x real time':>12s}")
    models = [m for m in args.models.split(",") if m]
    for name in models:
        model = load_model(name)
        c0, t0 = time.process_time(), time.perf_counter()
        res = synthesize_midi(model, score, seed=0)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        dur = res.duration
        for stage in ("curves", "decoder", "synthesis", "total"):
            s = res.timings[stage]
            print(f"{name:10s} {stage:28s} {s:8.2f} {'':>8s} {dur / max(s, 1e-9):12.1f}")
        print(f"{name:10s} {'synthesize_midi (in process)':28s} {wall:8.2f} {cpu:8.2f} "
              f"{dur / wall:12.1f}")
    code = ("import sys, ddsp_models.cli as c\n"
            "c.SUBCOMMANDS.setdefault('synth', 'synth')\n"
            "sys.exit(c.main(sys.argv[1:]))\n")
    for name in models:
        out = out_dir / f"{name}.wav"
        cmd = [sys.executable, "-c", code, "synth", str(score), "--model", name, "-o", str(out)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                              env={**__import__("os").environ, "OMP_NUM_THREADS":
                                   str(args.threads)})
        wall = time.perf_counter() - t0
        if proc.returncode:
            print(f"{name}: ddsp synth failed: {proc.stderr.strip()}")
            continue
        import soundfile as sf

        dur = sf.info(str(out)).duration
        cpu = _children_cpu()
        print(f"{name:10s} {'ddsp synth (process start..file)':28s} {wall:8.2f} {cpu:8.2f} "
              f"{dur / wall:12.1f}")
    tmp.cleanup()


_last_children = [0.0]


def _children_cpu() -> float:
    """CPU seconds of the child processes finished since the last call."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = r.ru_utime + r.ru_stime
    delta, _last_children[0] = total - _last_children[0], total
    return delta


if __name__ == "__main__":
    main()
