"""ddsp-models: differentiable DSP autoencoders in PyTorch.

Layers, bottom to top: ``core`` (pure tensor functions) → ``processors`` (``synths``,
``effects``) → ``graph`` → ``features`` → ``nn`` → data, transfer, export and the ``ddsp`` CLI.
"""

__version__ = "0.1.0"


def load_model(name_or_path, map_location: str = "cpu"):
    """A trained :class:`~ddsp_models.nn.Autoencoder` from a shipped name (``"violin"``: see
    :mod:`ddsp_models.registry`), an exported folder or a ``.ckpt`` file."""
    from .registry import load_model as _load

    return _load(name_or_path, map_location=map_location)
