"""Input and output spectrograms with their f0 curves (matplotlib, no display needed).

Memory is bounded by a chunk, not by the file length: the spectrogram is computed
``chunk_seconds`` at a time (numpy FFT of a few hundred frames) and each chunk is reduced at
once to the plot's columns (the maximum over the STFT frames a column covers, so short notes
stay visible); the f0 curves are decimated the same way (mean per column). A picture of
``max_columns`` columns is all that is kept, whatever the length (an hour-long transfer draws
the same 2000 columns as a ten-second one). The audio may be a :class:`FileAudio` (a file
read slice by slice, mixed to mono): nothing of the file is then held beyond a chunk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_transfer", "spectrogram_columns", "decimate_curve", "FileAudio"]


class FileAudio:
    """An audio file seen as a mono ``(samples,)`` array read on demand: ``shape`` and
    ``x[a:b]`` (float32 numpy, the mean of the channels; a slice reads only its frames)."""

    def __init__(self, path):
        import soundfile as sf

        self.path = str(path)
        with sf.SoundFile(self.path) as f:
            self.shape = (int(f.frames),)

    def __getitem__(self, item) -> np.ndarray:
        import soundfile as sf

        if not isinstance(item, slice) or item.step not in (None, 1):
            raise TypeError("FileAudio supports contiguous slices only")
        a, b, _ = item.indices(self.shape[0])
        with sf.SoundFile(self.path) as f:
            f.seek(a)
            data = f.read(max(0, b - a), dtype="float32", always_2d=True)
        return data.mean(axis=1, dtype=np.float32)


def _as_numpy(x) -> np.ndarray:
    if isinstance(x, FileAudio):
        return x  # read slice by slice
    if hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy()
    return np.asarray(x, np.float32).reshape(-1)


def spectrogram_columns(
    x,
    sample_rate: int,
    n_fft: int,
    max_columns: int = 2000,
    max_hz: float | None = None,
    chunk_seconds: float = 10.0,
) -> tuple[np.ndarray, float]:
    """Magnitude spectrogram in dB, reduced to at most ``max_columns`` time columns.

    Args:
        x: ``(samples,)`` audio (tensor, array or :class:`FileAudio`; read chunk by chunk).
        n_fft: FFT size (Hann window, hop ``n_fft // 4``); frame ``j`` starts at ``j * hop``.
        max_hz: bins above this frequency are dropped (None keeps all).
        chunk_seconds: audio transformed at a time (bounds the memory).

    Returns:
        ``(spec_db (bins, columns), seconds_per_column)``; each column is the maximum over the
        ``ceil(frames / max_columns)`` STFT frames it covers.
    """
    x = _as_numpy(x)
    hop = n_fft // 4
    n = max(x.shape[0], n_fft)
    frames = 1 + (n - n_fft) // hop
    per = max(1, -(-frames // max_columns))  # STFT frames per column
    cols = -(-frames // per)
    bins = n_fft // 2 + 1
    if max_hz is not None:
        bins = min(bins, int(np.ceil(max_hz * n_fft / sample_rate)) + 2)
    out = np.full((bins, cols), -100.0, np.float32)
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    # chunks of whole columns
    step = max(per, (max(1, int(chunk_seconds * sample_rate / hop)) // per) * per)
    for f0 in range(0, frames, step):
        f1 = min(frames, f0 + step)
        seg = x[f0 * hop: (f1 - 1) * hop + n_fft]
        if seg.shape[0] < (f1 - f0 - 1) * hop + n_fft:
            seg = np.pad(seg, (0, (f1 - f0 - 1) * hop + n_fft - seg.shape[0]))
        idx = np.arange(f1 - f0)[:, None] * hop + np.arange(n_fft)[None, :]
        mag = np.abs(np.fft.rfft(seg[idx] * window, axis=-1))[:, :bins]  # (frames, bins)
        db = 20.0 * np.log10(np.maximum(mag, 1e-5))
        c0 = f0 // per
        nc = -(-(f1 - f0) // per)
        pad = nc * per - (f1 - f0)
        if pad:
            db = np.concatenate([db, np.full((pad, bins), -100.0, np.float32)])
        out[:, c0: c0 + nc] = db.reshape(nc, per, bins).max(1).T
    return out, per * hop / sample_rate


def decimate_curve(f, frame_rate: float, max_points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """``(times_s, values)`` of a per-frame curve, averaged over groups of frames so that at
    most ``max_points`` remain."""
    f = _as_numpy(f).astype(np.float64)
    per = max(1, -(-f.shape[0] // max_points))
    n = -(-f.shape[0] // per)
    padded = np.concatenate([f, np.full(n * per - f.shape[0], np.nan)])
    vals = np.nanmean(padded.reshape(n, per), axis=1)
    times = (np.arange(n) * per + (per - 1) / 2) / frame_rate
    return times, vals


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
    max_columns: int = 2000,
) -> Path:
    """Write a PNG with two spectrograms (input above, output below), f0 curves on top.

    Args:
        input_audio, output_audio: ``(samples,)`` at ``sample_rate``.
        f0_in_hz, f0_out_hz: ``(frames,)`` at ``frame_rate`` (the extracted f0 and the f0
            that drove the model), or None.
        max_hz: upper frequency limit of the plot.
        max_columns: time columns drawn (memory does not grow with the length).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n_fft = 1 << int(np.round(np.log2(sample_rate * 0.064)))
    top = sample_rate / 2 if max_hz is None else min(max_hz, sample_rate / 2)
    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True, constrained_layout=True)
    try:
        for ax, x, f0, name in ((axes[0], input_audio, f0_in_hz, "input"),
                                (axes[1], output_audio, f0_out_hz, "output")):
            n = _as_numpy(x).shape[0]
            s, _ = spectrogram_columns(x, sample_rate, n_fft, max_columns, top)
            dur = n / sample_rate
            top_bin_hz = (s.shape[0] - 1) * sample_rate / n_fft
            ax.imshow(s, origin="lower", aspect="auto", cmap="magma",
                      extent=(0, dur, 0, top_bin_hz), vmin=s.max() - 80, vmax=s.max())
            ax.set_ylim(0, top)
            ax.set_ylabel("Hz")
            ax.set_title(f"{name}{': ' + title if title and name == 'input' else ''}")
            if f0 is not None and frame_rate:
                t, f = decimate_curve(f0, frame_rate, max_columns)
                ax.plot(t, f, color="cyan", lw=1.0, label="f0")
                ax.legend(loc="upper right")
        axes[1].set_xlabel("time (s)")
        from ..data.atomic import atomic_write

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fmt = path.suffix.lstrip(".").lower() or "png"
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format=fmt))
    finally:
        plt.close(fig)
    return path
