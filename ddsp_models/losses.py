"""Public home of the training losses (implemented in :mod:`ddsp_models.nn.losses`)."""

from .nn.losses import MultiResolutionSpectralLoss, magnitude_spectrogram

__all__ = ["MultiResolutionSpectralLoss", "magnitude_spectrogram"]
