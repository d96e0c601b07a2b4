"""Encoders from audio to a per-frame latent ``z`` (DDSP's "with z" autoencoder).

:class:`MfccEncoder`: MFCCs → normalisation → GRU → linear → ``z (batch, frames, z_dims)``,
frames aligned with ``compute_f0`` / ``compute_loudness`` (frame ``t`` centred on ``t * hop``,
``frames = samples // hop``).
"""

from __future__ import annotations

from torch import Tensor, nn

from ..features.checks import hop_from_rates
from ..features.mfcc import compute_mfcc
from .gru import gru_sequence

__all__ = ["MfccEncoder"]


class MfccEncoder(nn.Module):
    """MFCC → (instance | layer) norm → GRU → linear → ``z`` per frame.

    Args:
        sample_rate: audio rate in Hz. frame_rate: frames/s (``sample_rate / frame_rate``
            must be whole).
        z_dims: width of ``z``.
        n_mfcc: MFCCs per frame (DDSP: 30).
        hidden_size: GRU width (DDSP: 512).
        norm: ``"instance"``: each coefficient normalised over time per example (removes the
            recording's level and channel colouring); ``"layer"``: each frame normalised over
            its coefficients. Both with learned scale and shift.
        mfcc_kwargs: extra keyword arguments of :func:`~ddsp_models.features.compute_mfcc`.

    Shapes:
        ``forward(audio)``: audio ``(batch, samples)`` or ``(batch, 1, samples)`` →
        ``(batch, samples // hop, z_dims)``.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        frame_rate: int = 250,
        z_dims: int = 16,
        n_mfcc: int = 30,
        hidden_size: int = 512,
        norm: str = "instance",
        mfcc_kwargs: dict | None = None,
    ):
        super().__init__()
        hop_from_rates(sample_rate, frame_rate)  # clear error now, not at the first batch
        if norm not in ("instance", "layer"):
            raise ValueError(f"norm must be 'instance' or 'layer', got {norm!r}")
        if z_dims < 1 or n_mfcc < 1 or hidden_size < 1:
            raise ValueError("z_dims, n_mfcc and hidden_size must be positive")
        self.sample_rate, self.frame_rate = sample_rate, frame_rate
        self.n_mfcc, self.z_dims, self.norm_kind = n_mfcc, z_dims, norm
        self.mfcc_kwargs = dict(mfcc_kwargs or {})
        if norm == "instance":
            self.norm = nn.InstanceNorm1d(n_mfcc, affine=True)
        else:
            self.norm = nn.LayerNorm(n_mfcc)
        self.gru = nn.GRU(n_mfcc, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, z_dims)

    def mfcc(self, audio: Tensor) -> Tensor:
        """``(batch, frames, n_mfcc)`` MFCCs of ``audio``."""
        if audio.dim() == 1:
            raise ValueError("audio must be batched: (batch, samples); add the axis with audio[None]")
        return compute_mfcc(audio, self.sample_rate, self.frame_rate, n_mfcc=self.n_mfcc, **self.mfcc_kwargs)

    def forward(self, audio: Tensor) -> Tensor:
        m = self.mfcc(audio)
        if self.norm_kind == "instance":
            if m.shape[1] < 2:
                raise ValueError("instance norm needs at least 2 frames; pass longer audio or norm='layer'")
            m = self.norm(m.transpose(1, 2)).transpose(1, 2)
        else:
            m = self.norm(m)
        h, _ = gru_sequence(self.gru, m)  # nn.GRU's function; faster on CPU (nn/gru.py)
        return self.out(h)
