"""Benchmark: speed (× real time) and accuracy (cents) of the f0 methods, and loudness speed.

A harmonic melody with vibrato (notes from 82 to 1050 Hz, 5.5 Hz vibrato of ±25 cents,
1/k harmonics, short gaps between notes, a little noise) is rendered at 16 kHz, so the true
f0 of every frame is known. Then, with 2 threads:

* ``compute_loudness`` on the whole clip;
* ``compute_f0`` with ``yin``, ``crepe-tiny`` and ``crepe-full`` (100 frames/s), raw
  (``refine=False``) and refined (the default);
* a straightforward frame-by-frame CREPE (a Python loop over frames, one network call per
  frame, as simple torchcrepe-style code would do) on a few seconds, to give the speed-up of
  our batched implementation.

Accuracy is over voiced frames at least 40 ms from a note boundary: median |error|, and the
share of frames within 10 and 50 cents.

With ``--phrases`` (needs ``fluidsynth`` and the FluidR3_GM sound font, see
``recipes/data/render_fluidsynth.py``), real sampled instruments (violin, flute, trumpet,
clarinet, cello, alto sax) play random phrases without vibrato, so the true f0 is the MIDI
note's; frames from 80 ms after an onset to 50 ms before the note's end are scored. Each
tracker is timed on the same audio (model-rate 16 kHz, 250 frames/s as in ``ddsp transfer``).

    python benchmarks/features.py [--seconds 60] [--full-seconds 60] [--naive-seconds 3]
    python benchmarks/features.py --phrases [--phrase-seconds 20]

Timings on a shared machine are noisy; the script prints them, it asserts nothing.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

SR, FR = 16000, 100
HOP = SR // FR


def melody(seconds: float, seed: int = 0) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Audio (samples,), true f0 per frame (frames,), and a mask of frames to score."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    note_len = int(0.4 * SR)
    f0 = np.zeros(n)
    gate = np.zeros(n)
    score = np.zeros(n // HOP, dtype=bool)
    for start in range(0, n, note_len):
        midi = rng.integers(40, 85)  # E2 .. C#6: 82 .. 1109 Hz
        end = min(n, start + note_len)
        f0[start:end] = 440.0 * 2 ** ((midi - 69) / 12)
        on = start + int(0.03 * SR)  # 30 ms gap before each note
        gate[on:end] = 1.0
        t0, t1 = (on + int(0.04 * SR)) // HOP + 1, (end - int(0.04 * SR)) // HOP
        score[t0:t1] = True
    t = np.arange(n) / SR
    f0 = f0 * 2 ** (25 / 1200 * np.sin(2 * np.pi * 5.5 * t))  # vibrato
    phase = 2 * np.pi * np.cumsum(f0) / SR  # float64 accumulation
    x = np.zeros(n)
    for k in range(1, 11):
        x += np.where(k * f0 < SR / 2 - 500, np.sin(k * phase) / k, 0.0)
    env = np.convolve(gate, np.hanning(int(0.01 * SR)), mode="same")
    env /= env.max()
    x = 0.4 * x * env / np.abs(x).max() + 1e-3 * rng.standard_normal(n)
    true_f0 = f0[np.arange(n // HOP) * HOP]
    return torch.from_numpy(x).float(), true_f0, score


def cents_stats(est: torch.Tensor, true: np.ndarray, mask: np.ndarray) -> str:
    err = np.abs(1200 * np.log2(est.double().numpy()[mask] / true[mask]))
    return (
        f"median {np.median(err):5.1f} c, within 10 c {100 * np.mean(err < 10):5.1f} %, "
        f"within 50 c {100 * np.mean(err < 50):5.1f} %"
    )


PHRASE_PROGRAMS = {"violin": (40, 55, 88), "flute": (73, 62, 91), "trumpet": (56, 55, 80),
                   "clarinet": (71, 52, 84), "cello": (42, 36, 67), "alto sax": (65, 49, 78)}


def phrases(program: int, low: int, high: int, seconds: float, seed: int = 0,
            sample_rate: int = 16000, frame_rate: int = 250):
    """A FluidSynth rendering of random stepwise phrases: ``(audio, true_f0, score)`` with
    ``true_f0``/``score`` per frame at ``frame_rate``; None without fluidsynth."""
    import random
    import shutil
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    import soundfile as sf

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "recipes" / "data"))
    try:
        from render_fluidsynth import SOUNDFONT, Note, midi_file_bytes, perform
    finally:
        sys.path.pop(0)
    if shutil.which("fluidsynth") is None or not Path(SOUNDFONT).exists():
        return None
    rng = random.Random(seed)
    notes, beat, pitch = [], 0.0, (low + high) // 2
    tempo = 100.0
    while beat * 60 / tempo < seconds - 1.0:
        pitch = min(high, max(low, pitch + rng.choice([-4, -3, -2, -1, 1, 2, 3, 5, 7])))
        dur = rng.choice([0.5, 1.0, 1.0, 1.5, 2.0])
        notes.append(Note(pitch, beat, dur))
        beat += dur + rng.choice([0.0, 0.0, 0.25])
    events = perform(notes, tempo, rng, vibrato=False)
    with tempfile.TemporaryDirectory() as tmp:
        mid, wav = Path(tmp) / "p.mid", Path(tmp) / "p.wav"
        mid.write_bytes(midi_file_bytes(events, program, tempo))
        subprocess.run(["fluidsynth", "-ni", "-g", "0.6", "-R", "0", "-C", "0", "-r",
                        str(sample_rate), "-F", str(wav), SOUNDFONT, str(mid)],
                       check=True, capture_output=True)
        x, _ = sf.read(wav, dtype="float32", always_2d=True)
    x = x.mean(1)[: int(seconds * sample_rate)]
    n_frames = x.shape[0] * frame_rate // sample_rate
    true_f0 = np.zeros(n_frames)
    score = np.zeros(n_frames, dtype=bool)
    spb = 60.0 / tempo
    for nt in notes:
        t0 = int((nt.start * spb + 0.08) * frame_rate)
        t1 = int((nt.start * spb + 0.9 * nt.duration * spb - 0.05) * frame_rate)
        true_f0[max(0, t0 - 20): max(0, t1 + 20)] = 440.0 * 2 ** ((nt.pitch - 69) / 12)
        score[max(0, t0): max(0, t1)] = True
    score &= true_f0 > 0
    return torch.from_numpy(np.ascontiguousarray(x)), true_f0, score[:n_frames]


def run_phrases(seconds: float, methods: list[str]) -> None:
    """``methods``: f0 method names, optionally ``NAME/STRIDE`` (CREPE every STRIDE-th frame,
    as ``ddsp transfer`` runs it at 250 frames/s)."""
    """Accuracy and speed of each f0 method on FluidSynth phrases (see the module docstring)."""
    from ddsp_models.features import compute_f0

    sr, fr = 16000, 250
    totals = {m: [] for m in methods}
    times = {m: 0.0 for m in methods}
    dur = 0.0
    for name, (program, low, high) in PHRASE_PROGRAMS.items():
        got = phrases(program, low, high, seconds, seed=program, sample_rate=sr, frame_rate=fr)
        if got is None:
            print("fluidsynth or its sound font is missing: --phrases skipped")
            return
        x, tf, mk = got
        dur += x.shape[0] / sr
        line = []
        for m in methods:
            meth, _, stride = m.partition("/")
            kw = {"crepe_stride": int(stride)} if stride else {}
            compute_f0(x[: sr // 2], sr, fr, method=meth, **kw)  # warm-up
            dt, (f0, _) = timed(lambda: compute_f0(x, sr, fr, method=meth, **kw))
            times[m] += dt
            err = np.abs(1200 * np.log2(f0.double().numpy()[mk] / tf[mk]))
            totals[m].append(err)
            line.append(f"{m} {100 * np.mean(err < 50):5.1f}%<50c {100 * np.mean(err < 20):5.1f}%<20c")
        print(f"{name:9s} " + " | ".join(line))
    for m in methods:
        err = np.concatenate(totals[m])
        print(f"ALL {m:11s} median {np.median(err):4.1f} c, within 20 c {100 * np.mean(err < 20):5.1f} %, "
              f"within 50 c {100 * np.mean(err < 50):5.1f} %, {dur / times[m]:6.2f}x real time")


def timed(fn, repeat: int = 1):
    best, out = math.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def naive_crepe(audio_16k: torch.Tensor, n_frames: int, capacity: str) -> torch.Tensor:
    """Straightforward CREPE: loop over frames, normalise, one network call per frame."""
    from ddsp_models.features.crepe_net import load_crepe

    net = load_crepe(capacity)
    x = torch.nn.functional.pad(audio_16k, (512, 512))
    out = []
    with torch.no_grad():
        for t in range(n_frames):
            frame = x[t * HOP : t * HOP + 1024]
            frame = frame - frame.mean()
            frame = frame / frame.std().clamp_min(1e-10)
            out.append(net(frame[None])[0])
    return torch.stack(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=60.0, help="clip length for loudness, yin, crepe-tiny")
    p.add_argument("--full-seconds", type=float, default=60.0, help="clip length for crepe-full")
    p.add_argument("--naive-seconds", type=float, default=3.0, help="clip for the frame-by-frame baseline")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--phrases", action="store_true",
                   help="score the trackers on FluidSynth-rendered instrument phrases instead")
    p.add_argument("--phrase-seconds", type=float, default=20.0)
    p.add_argument("--methods", nargs="+", default=["yin", "crepe-tiny", "crepe-tiny/2",
                                                    "crepe-full", "crepe-full/2"],
                   help="for --phrases: methods, NAME/STRIDE for CREPE every STRIDE-th frame")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.phrases:
        run_phrases(args.phrase_seconds, args.methods)
        return

    from ddsp_models.features import compute_f0, compute_loudness
    from ddsp_models.features.crepe import crepe_activations
    from ddsp_models.features.crepe_net import crepe_weights_available

    audio, true_f0, mask = melody(args.seconds)
    print(f"# features benchmark: {args.seconds:g} s melody at {SR} Hz, {FR} frames/s, "
          f"{args.threads} threads (shared machine: timings are noisy)")

    compute_loudness(audio[: SR], SR, FR)  # warm-up
    dt, _ = timed(lambda: compute_loudness(audio, SR, FR), repeat=3)
    print(f"loudness            {args.seconds / dt:9.0f}x real time   ({dt * 1e3:.1f} ms)")

    methods = ["yin"] + [m for m in ("crepe-tiny", "crepe-full") if crepe_weights_available(m[6:])]
    for method in methods:
        secs = args.full_seconds if method == "crepe-full" else args.seconds
        a, tf, mk = (audio, true_f0, mask) if secs == args.seconds else melody(secs)
        compute_f0(a[: SR // 2], SR, FR, method=method)  # warm-up (weights, kernels)
        dt_raw, (f_raw, _) = timed(lambda: compute_f0(a, SR, FR, method=method, refine=False))
        print(f"{method:11s} raw     {secs / dt_raw:7.2f}x real time   {cents_stats(f_raw, tf, mk)}")
        if method != "yin":  # refine only applies to CREPE
            dt_ref, (f_ref, _) = timed(lambda: compute_f0(a, SR, FR, method=method))
            print(f"{method:11s} refined {secs / dt_ref:7.2f}x real time   {cents_stats(f_ref, tf, mk)}")

    for capacity in ("tiny", "full"):
        if not crepe_weights_available(capacity):
            continue
        n = int(args.naive_seconds * FR)
        seg = audio[: n * HOP]
        dt_naive, slow = timed(lambda: naive_crepe(seg, n, capacity))
        dt_ours, (fast, _) = timed(lambda: crepe_activations(seg[None], n, float(HOP), capacity))
        diff = (slow - fast[0]).abs().max().item()
        print(
            f"crepe-{capacity} network, {args.naive_seconds:g} s: frame-by-frame "
            f"{args.naive_seconds / dt_naive:6.2f}x real time, ours {args.naive_seconds / dt_ours:6.2f}x "
            f"-> {dt_naive / dt_ours:5.1f}x faster (max activation difference {diff:.1e})"
        )


if __name__ == "__main__":
    main()
