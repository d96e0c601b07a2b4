"""Draw ``docs/img/autotune.png``: a detuned melody's f0 before and after autotune.

A sung-like line in A minor (notes 20-45 cents off, vibrato, a slow drift, scoops into some
notes) is rendered at 16 kHz, its f0 extracted with YIN as ``ddsp transfer`` would, its key
detected, and autotune applied with amounts 0.5 and 1. Horizontal lines mark the notes of the
detected scale.

    python docs/img/make_autotune_plot.py   # writes docs/img/autotune.png
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def melody(sr: int = 16000, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    notes = [57, 60, 64, 62, 60, 59, 57, 64, 65, 64, 62, 60]  # A minor
    note_s = 0.35
    n = int(len(notes) * note_s * sr)
    t = np.arange(n) / sr
    idx = np.minimum((t / note_s).astype(int), len(notes) - 1)
    off = rng.uniform(-0.45, 0.45, len(notes))
    midi = np.array(notes, float)[idx] + off[idx]
    pos = (t % note_s) / note_s
    midi -= 0.6 * np.exp(-pos * 12)  # a scoop up into each note
    midi += 0.15 * np.sin(2 * np.pi * 5.5 * t) * np.clip(pos * 3 - 0.5, 0, 1)  # vibrato
    midi += 0.2 * np.sin(2 * np.pi * t / (n / sr))  # slow drift
    f0 = 440 * 2 ** ((midi - 69) / 12)
    ph = 2 * np.pi * np.cumsum(f0) / sr
    return sum(np.sin(k * ph) / k for k in range(1, 6)) * 0.3


def main(out: Path = Path(__file__).with_name("autotune.png")) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ddsp_models.features import compute_f0
    from ddsp_models.features.f0 import F0_METHODS
    from ddsp_models.transfer.autotune import autotune, hz_to_midi, resolve_scale

    sr, fr = 16000, 250
    x = torch.from_numpy(melody(sr)).float()
    f0, conf = compute_f0(x, sr, fr, method="yin")
    f0, conf = f0.double().numpy(), conf.double().numpy()
    voiced = conf >= F0_METHODS["yin"]
    scale = resolve_scale(None, f0, voiced, conf)
    t = np.arange(f0.shape[0]) / fr
    fig, ax = plt.subplots(figsize=(10, 4.2), constrained_layout=True)
    m_in = hz_to_midi(f0[voiced])
    lo, hi = np.floor(np.percentile(m_in, 1)) - 1, np.ceil(np.percentile(m_in, 99)) + 1
    for m in range(int(lo), int(hi) + 1):
        if m % 12 in scale.pitch_classes:
            ax.axhline(m, color="0.85", lw=0.8, zorder=0)
    for amount, style in ((0.0, dict(color="0.3", lw=2.5, label="input (autotune 0)")),
                          (0.5, dict(color="tab:orange", lw=1.2, label="autotune 0.5")),
                          (1.0, dict(color="tab:blue", lw=1.2, label="autotune 1"))):
        y = hz_to_midi(autotune(f0, voiced, amount, scale))
        ax.plot(t, np.where(voiced, y, np.nan), **style)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("pitch (MIDI)")
    ax.set_title(f"autotune toward {scale.name} (detected); grey lines: the scale's notes")
    ax.legend(loc="lower left")
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


if __name__ == "__main__":
    print(main())
