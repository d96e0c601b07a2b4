"""Write a short sung-like melody to a WAV file: the quickstart's input, made on the spot.

``ddsp transfer`` needs a monophonic recording; the quickstart must not depend on one the
reader does not have. This script synthesises one with numpy alone: a phrase of notes in the
shipped models' range (MIDI 60-79), each with a soft attack and release, 5.5 Hz vibrato of
±25 cents faded in after the onset, a voice-like spectrum (harmonic ``k`` at ``1/k²``) and a
little breath noise, then short pauses between phrases. The output is deterministic.

Usage::

    python recipes/data/make_melody.py voice.wav            # 8 s, 16 kHz, mono, 16-bit
    ddsp transfer voice.wav --model violin -o voice_as_violin.wav

Python: ``melody(seconds, sample_rate)`` returns ``(audio (samples,) float64, f0_hz (samples,))``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

__all__ = ["PHRASE", "melody", "main"]

#: (MIDI note, duration in beats) of the phrase, repeated; 0 is a rest.
PHRASE = ((67, 1), (69, 1), (71, 1), (72, 2), (71, 1), (69, 1), (67, 2), (0, 1),
          (64, 1), (67, 1), (72, 1.5), (74, 0.5), (76, 2), (74, 1), (72, 2), (0, 1))
BEAT_S = 0.3
N_HARMONICS = 12


def melody(seconds: float = 8.0, sample_rate: int = 16000) -> tuple[np.ndarray, np.ndarray]:
    """The melody as ``(audio, f0_hz)``, both ``(samples,)`` float64; ``f0_hz`` is 0 in rests.

    Peak level about -6 dBFS. Phase is the running sum of ``2π f0 / sample_rate`` (float64),
    so the vibrato is a true frequency modulation.
    """
    if not (seconds > 0 and math.isfinite(seconds)) or sample_rate < 8000:
        raise ValueError(f"need seconds > 0 and sample_rate >= 8000, got {seconds}, {sample_rate}")
    n = int(round(seconds * sample_rate))
    f0 = np.zeros(n)
    env = np.zeros(n)
    t0 = 0
    i = 0
    while t0 < n:
        note, beats = PHRASE[i % len(PHRASE)]
        length = min(int(beats * BEAT_S * sample_rate), n - t0)
        if note:
            t = np.arange(length) / sample_rate
            depth = 25.0 * np.clip((t - 0.15) / 0.2, 0.0, 1.0)  # cents, faded in
            cents = depth * np.sin(2 * np.pi * 5.5 * t)
            f0[t0:t0 + length] = 440.0 * 2.0 ** ((note - 69) / 12 + cents / 1200)
            attack = np.clip(t / 0.04, 0.0, 1.0)
            release = np.clip((length / sample_rate - t) / 0.06, 0.0, 1.0)
            env[t0:t0 + length] = attack * release * (0.8 + 0.2 * np.sin(np.pi * t / max(t[-1], 1.0 / sample_rate)))
        t0 += length
        i += 1
    phase = np.cumsum(2 * np.pi * f0 / sample_rate)
    audio = np.zeros(n)
    for k in range(1, N_HARMONICS + 1):
        audible = (k * f0) < 0.45 * sample_rate
        audio += audible * np.sin(k * phase) / k**2
    noise = np.random.default_rng(0).standard_normal(n) * 0.01
    audio = env * (audio + noise)
    audio *= 0.5 / max(np.abs(audio).max(), 1e-9)
    return audio, f0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("output", type=Path, help="WAV file to write, e.g. voice.wav")
    p.add_argument("--seconds", type=float, default=8.0, help="length (default 8)")
    p.add_argument("--sample-rate", type=int, default=16000, help="Hz (default 16000)")
    args = p.parse_args(argv)
    if args.output.suffix.lower() != ".wav":
        p.error(f"output must end in .wav, got {args.output}")
    from ddsp_models.audio_io import save_audio

    audio, _ = melody(args.seconds, args.sample_rate)
    save_audio(args.output, audio.astype(np.float32), args.sample_rate)
    print(f"wrote {args.output} ({args.seconds:g} s, {args.sample_rate} Hz, mono)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
