"""Containers: processors made of processors.

* :class:`SerialChain` — ``p_n(... p_2(p_1(x)))``;
* :class:`ParallelMix` — ``Σ_i p_i(x)`` (channel counts broadcast: mono + stereo → stereo);
* :class:`DryWet` — ``(1 - mix) · x + mix · p(x)``.

A container's parameters are its children's, each name prefixed with the child's name and a
dot (``"0.gain_db"``, ``"comp.threshold_db"``; :class:`DryWet` uses ``"wet."``), in child
order. ``config()`` holds each child as ``{"type": ClassName, **child.config()}``, so
``processor_from_dict({"type": "SerialChain", **chain.config()})`` rebuilds the whole tree.
Children must be effects (``n_inputs == 1``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

from torch import Tensor, nn

from ..core.scaling import SigmoidRange
from .base import Param, Processor, processor_from_dict
from .gain import check_audio, control_to_audio_rate

__all__ = ["SerialChain", "ParallelMix", "DryWet", "processor_to_dict"]


def processor_to_dict(p: Processor) -> dict[str, Any]:
    """``{"type": ClassName, **config}``: the inverse of :func:`processor_from_dict`."""
    return {"type": type(p).__name__, **p.config()}


def _as_processor(p: Processor | Mapping[str, Any], owner: str) -> Processor:
    if isinstance(p, Mapping):
        p = processor_from_dict(p)
    if not isinstance(p, Processor):
        raise TypeError(f"{owner} children must be Processors or dicts, got {type(p).__name__}")
    if p.n_inputs != 1:
        raise ValueError(
            f"{owner} children must be effects with one audio input; "
            f"{type(p).__name__} has n_inputs={p.n_inputs}"
        )
    return p


def _prefixed(prefix: str, specs: Sequence[Param]) -> list[Param]:
    return [dataclasses.replace(s, name=f"{prefix}.{s.name}") for s in specs]


def _split(prefix: str, params: Mapping[str, Tensor]) -> dict[str, Tensor]:
    head = prefix + "."
    return {k[len(head):]: v for k, v in params.items() if k.startswith(head)}


def _broadcast_channels(owner: str, channels: Sequence[int]) -> int:
    """The channel count of a sum of signals with these channel counts (1 broadcasts)."""
    others = {c for c in channels if c != 1}
    if len(others) > 1:
        raise ValueError(f"{owner}: cannot mix signals with {sorted(set(channels))} channels")
    return others.pop() if others else 1


class _Container(Processor):
    """Children in an ``nn.ModuleList`` with names used as parameter prefixes."""

    n_inputs = 1

    def __init__(self, processors: Sequence[Processor | Mapping[str, Any]],
                 names: Sequence[str] | None = None):
        super().__init__()
        owner = type(self).__name__
        if isinstance(processors, (Processor, Mapping)) or len(processors) == 0:
            raise ValueError(f"{owner} needs a non-empty list of processors")
        children = [_as_processor(p, owner) for p in processors]
        names = [str(i) for i in range(len(children))] if names is None else [str(n) for n in names]
        if len(names) != len(children):
            raise ValueError(f"{owner}: {len(names)} names for {len(children)} processors")
        if len(set(names)) != len(names) or any("." in n or not n for n in names):
            raise ValueError(
                f"{owner}: names must be unique, non-empty and without dots, got {names}"
            )
        self.processors = nn.ModuleList(children)
        self.names = names

    def config(self):
        return {"processors": [processor_to_dict(p) for p in self.processors],
                "names": list(self.names)}

    def param_specs(self):
        return tuple(s for n, p in zip(self.names, self.processors)
                     for s in _prefixed(n, p.param_specs()))

    def _children(self, params: Mapping[str, Tensor]):
        self.check_params(params)
        for n, p in zip(self.names, self.processors):
            yield p, _split(n, params)

    def extra_repr(self) -> str:
        return f"names={self.names}"


class SerialChain(_Container):
    """Children applied one after the other: ``p_n(... p_1(x))``.

    Args:
        processors: effects (instances or ``{"type": ..., **config}`` dicts), in order.
        names: parameter prefixes, default ``"0", "1", ...``.
    """

    def n_output_channels(self, input_channels=()):
        ch = tuple(input_channels)
        for p in self.processors:
            ch = (p.n_output_channels(ch),)
        return ch[0] if ch else 1

    def forward(self, x: Tensor, **params: Tensor) -> Tensor:
        check_audio("SerialChain", x)
        for p, sub in self._children(params):
            x = p(x, **sub)
        return x


class ParallelMix(_Container):
    """Children applied to the same input, outputs summed (channel counts broadcast).

    Args:
        processors: effects (instances or dicts).
        names: parameter prefixes, default ``"0", "1", ...``.
    """

    def n_output_channels(self, input_channels=()):
        return _broadcast_channels(
            "ParallelMix", [p.n_output_channels(tuple(input_channels)) for p in self.processors]
        )

    def forward(self, x: Tensor, **params: Tensor) -> Tensor:
        check_audio("ParallelMix", x)
        outs = [p(x, **sub) for p, sub in self._children(params)]
        _broadcast_channels("ParallelMix", [o.shape[1] for o in outs])
        total = outs[0]
        for o in outs[1:]:
            total = total + o
        return total


class DryWet(Processor):
    """Linear crossfade between the input and a wrapped effect: ``(1 - mix) x + mix p(x)``.

    Args:
        processor: the wet effect (instance or dict); its parameters appear as ``"wet.<name>"``.
        time_varying: ``mix`` per frame ``(B, T, 1)`` instead of static ``(B, 1)``.

    A mono input mixed with a stereo wet signal is broadcast to stereo.
    """

    n_inputs = 1

    def __init__(self, processor: Processor | Mapping[str, Any], time_varying: bool = False):
        super().__init__()
        self.processor = _as_processor(processor, "DryWet")
        self.time_varying = bool(time_varying)

    def config(self):
        return {"processor": processor_to_dict(self.processor), "time_varying": self.time_varying}

    def param_specs(self):
        mix = Param("mix", 1, SigmoidRange(0.0, 1.0), self.time_varying, unit="ratio",
                    doc="0 dry only, 1 wet only")
        return (mix, *_prefixed("wet", self.processor.param_specs()))

    def n_output_channels(self, input_channels=()):
        wet = self.processor.n_output_channels(tuple(input_channels))
        return _broadcast_channels("DryWet", [*input_channels[:1], wet])

    def forward(self, x: Tensor, **params: Tensor) -> Tensor:
        check_audio("DryWet", x)
        self.check_params(params)
        wet = self.processor(x, **_split("wet", params))
        _broadcast_channels("DryWet", [x.shape[1], wet.shape[1]])
        mix = control_to_audio_rate(params["mix"], x.shape[-1])
        return (1 - mix) * x + mix * wet

    def extra_repr(self) -> str:
        return f"time_varying={self.time_varying}"
