"""The processor contract.

A processor is an ``nn.Module`` that

* declares its parameters once, in :meth:`Processor.param_specs` — name, size, the
  :class:`~ddsp_models.core.scaling.Scaling` from a raw network output to physical units,
  whether it varies over time, and whether it is an *external* control (such as ``f0_hz``,
  supplied by the encoder rather than predicted by the decoder);
* implements ``forward(*audio_inputs, n_samples=None, **params)`` in physical units and returns
  audio ``(batch, channels, samples)``. Synths have ``n_inputs = 0`` and need ``n_samples``;
  effects take ``n_inputs`` audio tensors ``(batch, channels, samples)``.

Shapes of parameter values:

* time-varying: ``(batch, frames, size)`` at the control frame rate; processors upsample them;
* static: ``(batch, size)``.

Everything that needs to know parameter shapes — decoder heads, the graph renderer,
random-parameter tests, the docs — reads ``param_specs()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

import torch
from torch import Tensor, nn

from ..core.scaling import Identity, Scaling, scaling_from_dict

__all__ = ["Param", "Processor", "PROCESSORS", "processor_from_dict"]

#: Every concrete processor class by name (filled by ``Processor.__init_subclass__``).
PROCESSORS: dict[str, type["Processor"]] = {}


@dataclass(frozen=True)
class Param:
    """Declaration of one processor parameter.

    Attributes:
        name: keyword of ``forward`` that receives the value.
        size: number of features (last axis).
        scaling: map from a raw, unconstrained network output to physical units.
        time_varying: ``(batch, frames, size)`` if True, ``(batch, size)`` if False.
        external: supplied by the caller's controls (``f0_hz`` from the encoder), not predicted.
        unit: physical unit of the scaled value ("Hz", "s", "linear", "dB", ...).
        doc: one line for the docs.
    """

    name: str
    size: int = 1
    scaling: Scaling = field(default_factory=Identity)
    time_varying: bool = True
    external: bool = False
    unit: str = ""
    doc: str = ""

    def shape(self, batch: int, frames: int) -> tuple[int, ...]:
        """The expected shape of a value of this parameter."""
        return (batch, frames, self.size) if self.time_varying else (batch, self.size)


class Processor(nn.Module):
    """Base class of all synths and effects. See the module docstring for the contract."""

    #: number of audio inputs ``(batch, channels, samples)`` that ``forward`` takes.
    n_inputs: ClassVar[int] = 0

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            PROCESSORS[cls.__name__] = cls

    # --- declaration ----------------------------------------------------------------
    def param_specs(self) -> tuple[Param, ...]:
        """The declared parameters, in the order a decoder lays them out."""
        return ()

    def config(self) -> dict[str, Any]:
        """Constructor keyword arguments that rebuild this processor (for graphs and recipes)."""
        return {}

    def n_output_channels(self, input_channels: tuple[int, ...] = ()) -> int:
        """Channels of the output given the inputs' channels (default: mono synth / as input)."""
        return input_channels[0] if input_channels else 1

    # --- helpers shared by all processors --------------------------------------------
    def specs_by_name(self) -> dict[str, Param]:
        return {p.name: p for p in self.param_specs()}

    def scale_params(self, raw: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Apply each declared scaling to the raw network outputs in ``raw``.

        External parameters (e.g. ``f0_hz``) are passed through unchanged if present.
        """
        specs = self.specs_by_name()
        unknown = set(raw) - set(specs)
        if unknown:
            raise ValueError(
                f"{type(self).__name__} has no parameters {sorted(unknown)}; "
                f"declared: {sorted(specs)}"
            )
        return {
            name: (value if specs[name].external else specs[name].scaling(value))
            for name, value in raw.items()
        }

    def check_params(self, params: Mapping[str, Tensor]) -> None:
        """Raise a clear error for missing, unknown or wrongly shaped parameter values."""
        name = type(self).__name__
        specs = self.specs_by_name()
        missing = [p for p in specs if p not in params]
        if missing:
            raise ValueError(f"{name}: missing parameters {missing}; declared: {list(specs)}")
        unknown = [p for p in params if p not in specs]
        if unknown:
            raise ValueError(f"{name}: unknown parameters {unknown}; declared: {list(specs)}")
        for p, spec in specs.items():
            v = params[p]
            if not isinstance(v, Tensor):
                raise TypeError(f"{name}.{p} must be a torch.Tensor, got {type(v).__name__}")
            want = 3 if spec.time_varying else 2
            if v.dim() != want or v.shape[-1] != spec.size:
                layout = "(batch, frames, %d)" if spec.time_varying else "(batch, %d)"
                raise ValueError(
                    f"{name}.{p} must be {layout % spec.size}, got shape {tuple(v.shape)}"
                )

    def random_params(
        self,
        batch: int,
        frames: int,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        externals: Mapping[str, Tensor] | None = None,
    ) -> dict[str, Tensor]:
        """Physical parameter values from standard-normal raw outputs (for tests and demos).

        External parameters take their value from ``externals`` if given, else a plausible
        default: ``f0_hz`` a random pitch between 100 and 800 Hz, others the scaled normal draw.
        """
        out: dict[str, Tensor] = {}
        externals = dict(externals or {})
        for spec in self.param_specs():
            shape = spec.shape(batch, frames)
            if spec.external and spec.name in externals:
                out[spec.name] = externals[spec.name]
                continue
            raw = torch.randn(shape, generator=generator, dtype=dtype, device=device)
            if spec.external and spec.name == "f0_hz":
                out[spec.name] = 100.0 * 8.0 ** torch.rand(
                    shape, generator=generator, dtype=dtype, device=device
                )
            else:
                out[spec.name] = spec.scaling(raw)
        return out

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config().items())


def processor_from_dict(d: Mapping[str, Any]) -> Processor:
    """Build a processor from ``{"type": ClassName, **config}`` (the inverse of ``to_dict``)."""
    d = dict(d)
    kind = d.pop("type", None)
    from . import load_processor_class  # late import: the registry lives in the package

    return load_processor_class(kind)(**d)


def param_to_dict(p: Param) -> dict[str, Any]:
    """A JSON/YAML-friendly view of a parameter declaration (for docs and graph layouts)."""
    return {
        "name": p.name,
        "size": p.size,
        "scaling": p.scaling.to_dict(),
        "time_varying": p.time_varying,
        "external": p.external,
        "unit": p.unit,
    }


def param_from_dict(d: Mapping[str, Any]) -> Param:
    d = dict(d)
    d["scaling"] = scaling_from_dict(d["scaling"])
    return Param(**d)
