"""Public home of the training losses (implemented in :mod:`ddsp_models.nn.losses`)."""

from .nn.losses import (
    LOSS_TYPES,
    CrepeEmbeddingLoss,
    MultiResolutionSpectralLoss,
    fourier_resample,
    magnitude_spectrogram,
    mean_difference,
)

__all__ = [
    "MultiResolutionSpectralLoss",
    "CrepeEmbeddingLoss",
    "magnitude_spectrogram",
    "mean_difference",
    "fourier_resample",
    "LOSS_TYPES",
]
