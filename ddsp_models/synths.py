"""Synthesizers: processors with no audio input. ``from ddsp_models.synths import Harmonic``."""

from ._lazy import lazy_exports
from .processors import SYNTHS

__all__ = sorted(SYNTHS)
__getattr__, __dir__ = lazy_exports(__name__, SYNTHS)
