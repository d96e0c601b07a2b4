"""``ProcessorGraph``: processors wired as a DAG — the output layer a decoder drives.

* :mod:`.graph` — structure (``add``, ``connect``) and validation;
* :mod:`.layout` — the flat parameter layout a decoder predicts, and its split;
* :mod:`.schedule`, :mod:`.render` — type-batched (GRAFX-style) and one-by-one rendering;
* :mod:`.modulation` — modulation edges (an LFO on a cutoff), :mod:`.controls` — the
  external controls (``f0_hz``, ``gate``, ...);
* :mod:`.draw` — a matplotlib picture; :mod:`.serialise` — dict / YAML;
* :mod:`.presets` — ready-made graphs.
"""

from . import presets
from .graph import IN, OUT, Edge, GraphError, Modulation, ProcessorGraph
from .layout import LayoutEntry, ParameterLayout

__all__ = [
    "ProcessorGraph",
    "Edge",
    "Modulation",
    "GraphError",
    "LayoutEntry",
    "ParameterLayout",
    "IN",
    "OUT",
    "presets",
]
