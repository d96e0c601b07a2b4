"""Neural parts: encoders, the RNN-FC decoder, the autoencoder (a plain ``nn.Module``; its
Lightning subclass for training is :class:`ddsp_models.training.module.AutoencoderModule`),
losses."""

from __future__ import annotations

from .._lazy import lazy_exports

_N = "ddsp_models.nn."
__getattr__, __dir__ = lazy_exports(__name__, {
    "RnnFcDecoder": _N + "decoder",
    "Autoencoder": _N + "autoencoder",
    "load_model": "ddsp_models.registry",  # the one loader (names, folders, .ckpt)
    "MultiResolutionSpectralLoss": _N + "losses",
    "CrepeEmbeddingLoss": _N + "losses",
    "MfccEncoder": _N + "encoders",
})
