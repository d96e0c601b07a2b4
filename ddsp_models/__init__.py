"""ddsp-models: differentiable DSP autoencoders in PyTorch.

Layers, bottom to top: ``core`` (pure tensor functions) → ``processors`` (``synths``,
``effects``) → ``graph`` → ``features`` → ``nn`` → data, transfer, export and the ``ddsp`` CLI.
"""

__version__ = "0.1.0"
