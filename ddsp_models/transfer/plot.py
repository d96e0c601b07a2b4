"""Input and output spectrograms with their f0 curves (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

__all__ = ["plot_transfer"]


def _spectrogram_db(x: np.ndarray, sample_rate: int, n_fft: int) -> np.ndarray:
    hop = n_fft // 4
    xt = torch.from_numpy(np.asarray(x, np.float32))
    if xt.shape[0] < n_fft:
        xt = torch.nn.functional.pad(xt, (0, n_fft - xt.shape[0]))
    spec = torch.stft(xt, n_fft, hop, window=torch.hann_window(n_fft), return_complex=True)
    return (20.0 * torch.log10(spec.abs().clamp_min(1e-5))).numpy()


def plot_transfer(
    path: str | Path,
    input_audio,
    output_audio,
    sample_rate: int,
    f0_in_hz=None,
    f0_out_hz=None,
    frame_rate: float | None = None,
    title: str = "",
    max_hz: float | None = 4000.0,
) -> Path:
    """Write a PNG with two spectrograms (input above, output below), f0 curves on top.

    Args:
        input_audio, output_audio: ``(samples,)`` at ``sample_rate``.
        f0_in_hz, f0_out_hz: ``(frames,)`` at ``frame_rate`` (the extracted f0 and the f0
            that drove the model), or None.
        max_hz: upper frequency limit of the plot.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n_fft = 1 << int(np.round(np.log2(sample_rate * 0.064)))
    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True, constrained_layout=True)
    for ax, x, f0, name in ((axes[0], input_audio, f0_in_hz, "input"),
                            (axes[1], output_audio, f0_out_hz, "output")):
        x = np.asarray(torch.as_tensor(x).detach().cpu().float().reshape(-1))
        s = _spectrogram_db(x, sample_rate, n_fft)
        dur = x.shape[0] / sample_rate
        top = sample_rate / 2 if max_hz is None else min(max_hz, sample_rate / 2)
        ax.imshow(s, origin="lower", aspect="auto", cmap="magma",
                  extent=(0, dur, 0, sample_rate / 2), vmin=s.max() - 80, vmax=s.max())
        ax.set_ylim(0, top)
        ax.set_ylabel("Hz")
        ax.set_title(f"{name}{': ' + title if title and name == 'input' else ''}")
        if f0 is not None and frame_rate:
            f = np.asarray(torch.as_tensor(f0).detach().cpu().float().reshape(-1))
            ax.plot(np.arange(f.shape[0]) / frame_rate, f, color="cyan", lw=1.0, label="f0")
            ax.legend(loc="upper right")
    axes[1].set_xlabel("time (s)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
