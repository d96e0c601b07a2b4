"""Effects: processors from audio to audio. ``from ddsp_models.effects import Reverb``."""

from ._lazy import lazy_exports
from .processors import EFFECTS

__all__ = sorted(EFFECTS)
__getattr__, __dir__ = lazy_exports(__name__, EFFECTS)
