"""Resynthesis metrics (as in the DDSP paper) and spectrogram figures.

For a model's output ``y`` and the original ``x`` (audio ``(B, L)``, same rate):

* ``spectral_distance``: the multi-scale spectral distance (DDSP's SpectralLoss: FFT sizes
  2048…64 at 16 kHz, scaled with the rate so windows keep their duration — 6144…192 at
  48 kHz —, L1 of linear + log magnitudes, summed over sizes), averaged over examples;
* ``loudness_l1_db``: mean |loudness(y) − loudness(x)| in dB over all frames;
* ``f0_l1_cents``: mean |1200 log2(f0(y) / f0(x))| over frames where the original is voiced
  (f0 confidence ≥ ``confidence_threshold``);
* ``f0_outlier_rate``: share of those frames where the difference exceeds 50 cents.

f0 and loudness of ``y`` are re-extracted from the audio, the same way as for ``x``.

Timbre, where ``y`` and ``x`` are not aligned (another instrument playing the same notes):

* ``timbre_distance``: the Fréchet distance between Gaussians fitted to the MFCCs 1–19 (no
  c0, so the level does not count) of each signal's sounding frames — the frames whose
  loudness is within ``TIMBRE_RANGE_DB`` of its 95th percentile. 0 for the same timbre;
  unchanged by a gain.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = ["f0_metrics", "loudness_l1", "spectral_distance", "spectrogram_figure",
           "metric_fft_sizes", "OUTLIER_CENTS", "frechet_distance", "timbre_frames",
           "timbre_distance", "TIMBRE_RANGE_DB"]

OUTLIER_CENTS = 50.0
TIMBRE_RANGE_DB = 30.0


def f0_metrics(f0_out: Tensor, f0_ref: Tensor, confidence_ref: Tensor,
               confidence_threshold: float = 0.85) -> dict[str, float]:
    """``f0_l1_cents``, ``f0_outlier_rate`` and ``voiced_frames`` (see module docstring).

    All inputs ``(..., T)`` in Hz / [0, 1]; frames where either f0 is ≤ 0 count as outliers
    when the reference is voiced.
    """
    f0_out, f0_ref = torch.as_tensor(f0_out).double(), torch.as_tensor(f0_ref).double()
    voiced = (torch.as_tensor(confidence_ref) >= confidence_threshold) & (f0_ref > 0)
    if f0_out.shape != f0_ref.shape:
        raise ValueError(f"f0 tracks differ in shape: {tuple(f0_out.shape)} vs {tuple(f0_ref.shape)}")
    n = int(voiced.sum())
    if n == 0:
        return {"f0_l1_cents": float("nan"), "f0_outlier_rate": float("nan"), "voiced_frames": 0}
    ok = voiced & (f0_out > 0)
    cents = torch.full_like(f0_ref, math.inf)
    cents[ok] = (1200.0 * torch.log2(f0_out[ok] / f0_ref[ok])).abs()
    c = cents[voiced]
    finite = c[torch.isfinite(c)]
    return {
        "f0_l1_cents": float(finite.mean()) if finite.numel() else float("nan"),
        "f0_outlier_rate": float((c > OUTLIER_CENTS).double().mean()),
        "voiced_frames": n,
    }


def loudness_l1(ld_out: Tensor, ld_ref: Tensor) -> float:
    """Mean absolute loudness difference in dB."""
    return float((torch.as_tensor(ld_out).double() - torch.as_tensor(ld_ref).double()).abs().mean())


#: The rate DDSP's FFT sizes (2048 ... 64) were chosen for.
REFERENCE_RATE = 16000


def metric_fft_sizes(sample_rate: int = REFERENCE_RATE) -> list[int]:
    """DDSP's FFT sizes scaled to ``sample_rate`` (Hz) so each window lasts as long as at
    16 kHz (×3 at 48 kHz: 6144 ... 192, as DDSP-VST's 48 kHz setup): spectral distances of
    models at different rates then compare the same time-frequency resolutions."""
    from .nn.losses import DDSP_FFT_SIZES

    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    return [max(16, int(round(n * sample_rate / REFERENCE_RATE))) for n in DDSP_FFT_SIZES]


def spectral_distance(out: Tensor, ref: Tensor, sample_rate: int = REFERENCE_RATE) -> float:
    """DDSP's multi-scale spectral distance between ``(B, L)`` (or ``(B, C, L)``) signals at
    ``sample_rate`` Hz (FFT sizes from :func:`metric_fft_sizes`)."""
    from .nn.losses import MultiResolutionSpectralLoss

    with torch.no_grad():
        return float(MultiResolutionSpectralLoss(fft_sizes=metric_fft_sizes(sample_rate))(out, ref))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the rows of ``a (N, D)`` and ``b (M, D)``:
    ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` (float64; sample covariances)."""
    from scipy import linalg

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need (N, D) and (M, D) arrays with N, M >= 2, got {a.shape} and {b.shape}")
    mu = a.mean(0) - b.mean(0)
    sa = np.atleast_2d(np.cov(a, rowvar=False))
    sb = np.atleast_2d(np.cov(b, rowvar=False))
    root = linalg.sqrtm(sa @ sb)
    root = np.real(root)  # sqrtm of a product of PSD matrices: imaginary parts are round-off
    return float(max(mu @ mu + np.trace(sa + sb - 2.0 * root), 0.0))


def timbre_frames(audio: Tensor, sample_rate: int, frame_rate: float = 50.0,
                  range_db: float = TIMBRE_RANGE_DB) -> np.ndarray:
    """MFCCs 1–19 ``(frames, 19)`` of the sounding frames of one signal ``(samples,)``: those
    whose A-weighted loudness is within ``range_db`` dB of the signal's 95th percentile."""
    from .features import compute_loudness
    from .features.mfcc import compute_mfcc

    x = torch.as_tensor(audio, dtype=torch.float32).reshape(-1)
    mfcc = compute_mfcc(x, sample_rate, frame_rate, n_mfcc=20)[:, 1:]
    loud = compute_loudness(x, sample_rate, frame_rate).reshape(-1)[: mfcc.shape[0]]
    keep = loud >= torch.quantile(loud, 0.95) - range_db
    return mfcc[keep].double().numpy()


def timbre_distance(out, ref, sample_rate: int, frame_rate: float = 50.0) -> float:
    """Timbre distance (see the module's docstring) between two signals, or two lists of
    signals (their sounding frames pooled), at ``sample_rate`` Hz; need not be aligned."""
    def pooled(x):
        xs = x if isinstance(x, (list, tuple)) else [x]
        return np.concatenate([timbre_frames(s, sample_rate, frame_rate) for s in xs])

    return frechet_distance(pooled(out), pooled(ref))


def spectrogram_figure(target: Tensor, output: Tensor, sample_rate: int, n_fft: int = 1024):
    """A matplotlib figure: log-magnitude spectrograms of ``target`` and ``output`` (1-D)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
    win = torch.hann_window(n_fft)
    for ax, x, title in zip(axes, (target, output), ("target", "resynthesis")):
        x = torch.as_tensor(x).detach().float().reshape(-1).cpu()
        if x.numel() < n_fft:
            x = torch.nn.functional.pad(x, (0, n_fft - x.numel()))
        s = torch.stft(x, n_fft, n_fft // 4, window=win, return_complex=True).abs()
        db = 20 * np.log10(s.numpy() + 1e-6)
        dur = x.numel() / sample_rate
        ax.imshow(db, origin="lower", aspect="auto", vmin=db.max() - 80, vmax=db.max(),
                  extent=(0, dur, 0, sample_rate / 2), cmap="magma")
        ax.set_title(title)
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (Hz)")
    fig.tight_layout()
    return fig
