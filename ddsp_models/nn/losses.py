"""Multi-resolution spectral loss with DDSP's ``SpectralLoss`` semantics.

For each FFT size ``n`` in ``fft_sizes`` (DDSP: 2048, 1024, 512, 256, 128, 64) the audio is cut
into Hann-windowed frames of ``n`` samples with hop ``n * (1 - overlap)`` (75 % overlap), the end
zero-padded so every sample is covered (TensorFlow's ``pad_end=True``; ``center=True`` gives
``torch.stft``'s centred, reflect-padded framing instead, which is what auraloss uses). With
``M = |STFT|`` of the output and ``M*`` of the target, one resolution contributes::

    mag_weight    * mean |M - M*|
  + logmag_weight * mean |log max(M, eps) - log max(M*, eps)|

and the loss is the **sum** over resolutions (as in DDSP; auraloss averages instead). An optional
``loudness_weight`` adds the mean absolute difference of A-weighted loudness in dB.

Relation to auraloss: ``auraloss.freq.MultiResolutionSTFTLoss(fft_sizes, hop_sizes=n//4,
win_lengths=n, w_sc=0, w_log_mag=1, w_lin_mag=1, eps=eps**2)`` multiplied by the number of
resolutions computes the same number in ``center=True`` mode (tests check this). We compute it
ourselves because the training step is dominated by this loss and the straightforward auraloss
call also computes phases and a gradient path through the target, which we skip.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

__all__ = ["MultiResolutionSpectralLoss", "magnitude_spectrogram"]

DDSP_FFT_SIZES = (2048, 1024, 512, 256, 128, 64)


def magnitude_spectrogram(
    audio: Tensor, fft_size: int, overlap: float = 0.75, center: bool = False,
    window: Tensor | None = None,
) -> Tensor:
    """``|STFT|`` of ``audio (..., L)`` → ``(..., fft_size // 2 + 1, frames)``.

    ``center=False``: frames start at ``0, hop, 2 hop, ...``; the end is zero-padded so that
    ``frames = ceil(L / hop)`` (DDSP / ``tf.signal.stft(pad_end=True)``). ``center=True``:
    ``torch.stft``'s default centred framing with reflect padding.
    """
    hop = max(1, int(fft_size * (1.0 - overlap)))
    if window is None:
        window = torch.hann_window(fft_size, dtype=audio.dtype, device=audio.device)
    lead = audio.shape[:-1]
    x = audio.reshape(-1, audio.shape[-1])
    n = x.shape[-1]
    if not center:
        frames = -(-n // hop)
        pad = (frames - 1) * hop + fft_size - n
        x = nn.functional.pad(x, (0, pad))
    spec = torch.stft(
        x, fft_size, hop, fft_size, window, center=center, pad_mode="reflect",
        return_complex=True,
    )
    mag = spec.abs()
    return mag.reshape(*lead, *mag.shape[-2:])


class MultiResolutionSpectralLoss(nn.Module):
    """DDSP's multi-scale spectral loss (see the module docstring for the formula).

    Args:
        fft_sizes: FFT (and window) sizes in samples.
        overlap: fraction of overlap between frames; hop = ``fft_size * (1 - overlap)``.
        mag_weight: weight of the L1 distance of linear magnitudes.
        logmag_weight: weight of the L1 distance of log magnitudes.
        loudness_weight: weight of the L1 distance of A-weighted loudness (dB); needs
            ``sample_rate`` and ``frame_rate``.
        eps: floor of magnitudes before the log (DDSP's ``safe_log``: 1e-5).
        center: framing, see :func:`magnitude_spectrogram`.
        sample_rate, frame_rate: only for the loudness term.

    ``forward(output, target)`` takes audio ``(B, C, L)`` or ``(B, L)`` (same shape) and returns
    a scalar. The target is treated as a constant (no gradient flows into it).
    """

    def __init__(
        self,
        fft_sizes: Sequence[int] = DDSP_FFT_SIZES,
        overlap: float = 0.75,
        mag_weight: float = 1.0,
        logmag_weight: float = 1.0,
        loudness_weight: float = 0.0,
        eps: float = 1e-5,
        center: bool = False,
        sample_rate: int | None = None,
        frame_rate: int | None = None,
    ):
        super().__init__()
        fft_sizes = tuple(int(n) for n in fft_sizes)
        if not fft_sizes or any(n < 2 for n in fft_sizes):
            raise ValueError(f"fft_sizes must be a non-empty list of sizes >= 2, got {fft_sizes}")
        if not 0.0 <= overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        if min(mag_weight, logmag_weight, loudness_weight) < 0:
            raise ValueError("loss weights must be non-negative")
        if loudness_weight > 0 and (sample_rate is None or frame_rate is None):
            raise ValueError(
                "loudness_weight > 0 needs sample_rate and frame_rate "
                "(e.g. sample_rate=16000, frame_rate=250)"
            )
        self.fft_sizes = fft_sizes
        self.overlap = float(overlap)
        self.mag_weight = float(mag_weight)
        self.logmag_weight = float(logmag_weight)
        self.loudness_weight = float(loudness_weight)
        self.eps = float(eps)
        self.center = bool(center)
        self.sample_rate = sample_rate
        self.frame_rate = frame_rate
        self._windows: dict[tuple, Tensor] = {}

    def _window(self, n: int, like: Tensor) -> Tensor:
        key = (n, like.dtype, like.device)
        w = self._windows.get(key)
        if w is None:
            w = torch.hann_window(n, dtype=like.dtype, device=like.device)
            self._windows[key] = w
        return w

    def extra_repr(self) -> str:
        return (
            f"fft_sizes={self.fft_sizes}, overlap={self.overlap}, mag_weight={self.mag_weight}, "
            f"logmag_weight={self.logmag_weight}, loudness_weight={self.loudness_weight}"
        )

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        if output.shape != target.shape:
            raise ValueError(
                f"output and target must have the same shape, got {tuple(output.shape)} and "
                f"{tuple(target.shape)}; crop both to the same number of samples"
            )
        if output.dim() not in (2, 3):
            raise ValueError(f"audio must be (batch, channels, samples) or (batch, samples), "
                             f"got shape {tuple(output.shape)}")
        target = target.detach()
        loss = output.new_zeros(())
        for n in self.fft_sizes:
            w = self._window(n, output)
            m_out = magnitude_spectrogram(output, n, self.overlap, self.center, w)
            with torch.no_grad():
                m_tgt = magnitude_spectrogram(target, n, self.overlap, self.center, w)
            if self.mag_weight:
                loss = loss + self.mag_weight * (m_out - m_tgt).abs().mean()
            if self.logmag_weight:
                lo = torch.log(m_out.clamp_min(self.eps))
                lt = torch.log(m_tgt.clamp_min(self.eps))
                loss = loss + self.logmag_weight * (lo - lt).abs().mean()
        if self.loudness_weight:
            from ..features import compute_loudness

            flat_o = output.reshape(-1, output.shape[-1])
            flat_t = target.reshape(-1, target.shape[-1])
            ld_o = compute_loudness(flat_o, self.sample_rate, self.frame_rate)
            with torch.no_grad():
                ld_t = compute_loudness(flat_t, self.sample_rate, self.frame_rate)
            loss = loss + self.loudness_weight * (ld_o - ld_t).abs().mean()
        return loss
