"""A piano roll of the score drawn over the rendered f0 and loudness (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_performance"]


def plot_performance(path: str | Path, result, title: str = "") -> Path:
    """Write a figure of a :class:`~ddsp_models.midi.render.MidiResult`.

    Top: the notes played (rectangles, one colour per part, at their MIDI pitch after
    transposition) under each voice's f0 curve (in MIDI pitch, drawn where the voice sounds).
    Bottom: each voice's loudness curve (dB). Time in seconds on both.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    f0 = np.asarray(result.f0_hz, np.float64)
    ld = np.asarray(result.loudness_db, np.float64)
    fr = float(result.frame_rate)
    t = np.arange(f0.shape[-1]) / fr
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colour = {p: colours[i % len(colours)] for i, p in enumerate(result.parts)}
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(12, 6), sharex=True, constrained_layout=True,
                                  gridspec_kw={"height_ratios": [3, 1]})
    pitches = []
    for label, _, n in result.notes:
        ax.add_patch(Rectangle((n.start, n.pitch - 0.4), n.end - n.start, 0.8,
                               color=colour[label], alpha=0.3, lw=0))
        pitches.append(n.pitch)
    floor = float(np.min(ld)) if ld.size else -80.0
    for v in range(f0.shape[0]):
        midi = 69.0 + 12.0 * np.log2(np.maximum(f0[v], 1e-3) / 440.0)
        sounding = ld[v] > floor + 20.0
        ax.plot(t, np.where(sounding, midi, np.nan), color=colour[result.voice_part[v]], lw=0.8)
        ax2.plot(t, ld[v], color=colour[result.voice_part[v]], lw=0.8)
    if pitches:
        ax.set_ylim(min(pitches) - 3, max(pitches) + 3)
    ax.set_ylabel("MIDI pitch")
    ax.set_title(title or "notes (boxes) and rendered f0 (lines)")
    for label in result.parts:
        ax.plot([], [], color=colour[label], label=label)
    ax.legend(loc="upper right", fontsize="small")
    ax2.set_ylabel("loudness dB")
    ax2.set_xlabel("time (s)")
    ax2.set_xlim(0, t[-1] if t.size else 1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from ..data.atomic import atomic_write

    suffix = path.suffix.lstrip(".") or "png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format=suffix))
    plt.close(fig)
    return path
