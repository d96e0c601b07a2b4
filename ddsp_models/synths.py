"""Synthesizers: processors with no audio input. ``from ddsp_models.synths import Harmonic``.

The names are found without importing anything (see :func:`ddsp_models.processors.discover`):
every public :class:`~ddsp_models.processors.Processor` subclass of the processors package
with ``n_inputs == 0``. A class's module is imported when the name is first used.
"""

from ._lazy import lazy_exports
from .processors import _exports


def _synths():
    return _exports(synths=True)


__getattr__, __dir__ = lazy_exports(__name__, _synths)
