"""The graph's leaf types: reserved node names, :class:`Edge`, :class:`GraphError`, arity.

They live apart from :class:`~ddsp_models.graph.graph.ProcessorGraph` so that every module of
the package (layout, schedule, render, serialise, draw) can use them without importing the
graph class, whose methods import those modules: the package has no import cycle.
:mod:`.graph` re-exports all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import DDSPError

if TYPE_CHECKING:  # pragma: no cover
    from ..processors import Processor

__all__ = ["Edge", "Modulation", "MOD_MODES", "GraphError", "IN", "OUT", "n_outputs"]

#: Reserved node names: the external audio input(s) and the graph output.
IN = "in"
OUT = "out"


class GraphError(DDSPError, ValueError):
    """An invalid graph or render call; the message names the offending node."""


@dataclass(frozen=True)
class Edge:
    """Output ``outlet`` of node ``src`` feeds audio input ``inlet`` of node ``dst``."""

    src: str
    dst: str
    inlet: int = 0
    outlet: int = 0

    def __str__(self) -> str:
        s = self.src if self.outlet == 0 else f"{self.src}[{self.outlet}]"
        d = self.dst if self.inlet == 0 else f"{self.dst}:{self.inlet}"
        return f"{s} -> {d}"


#: How a modulation combines the source's value ``m`` with the parameter's value ``p``.
MOD_MODES = ("add", "multiply", "octaves")


@dataclass(frozen=True)
class Modulation:
    """The output of node ``src``, read at frame rate, modulates parameter ``param`` of ``dst``.

    With ``m`` the source's output at each frame's centre sample and ``a = amount``:
    ``"add"``: ``p + a·m``; ``"multiply"``: ``p·(1 - a + a·m)`` (``a = 1``: ``p·m``, ``a = 0``:
    ``p``); ``"octaves"``: ``p·2^(a·m)`` (for frequencies). See :mod:`.modulation`.
    """

    src: str
    dst: str
    param: str
    amount: float = 1.0
    mode: str = "add"

    def __str__(self) -> str:
        return f"{self.src} ~> {self.dst}.{self.param} ({self.mode} {self.amount:g})"


def n_outputs(processor: "Processor") -> int:
    """Number of audio outputs of a processor (``n_outputs`` class attribute, default 1).

    A processor with ``n_outputs > 1`` returns a tuple of ``(batch, channels, samples)``
    tensors from ``forward``; edges pick one with ``outlet``.
    """
    return int(getattr(processor, "n_outputs", 1))
