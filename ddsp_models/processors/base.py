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

Block rendering (streaming)
---------------------------
Every processor can also render a signal block by block with carried state, and rendering in
blocks of any size (down to one frame, sizes changing from call to call) equals rendering
whole. The processor declares

* :meth:`Processor.state_specs` — what is carried from one block to the next (phases, filter
  and envelope state, delay lines, convolution tails, noise position, frame history);
* :meth:`Processor.latency_frames` ``(hop)`` — its look-ahead ``L`` in frames (e.g. 1 for
  controls interpolated towards the next frame);
* :meth:`Processor.init_state` ``(batch, input_channels, hop, like) -> {name: tensor}`` — the
  state of a fresh stream (``like`` gives dtype and device);
* :meth:`Processor.step` ``(inputs, params, state, n_frames, n_samples, flushing) -> (audio,
  new_state)`` — one block.

The block contract (checked for every registered processor by ``tests/test_contract.py``):

1. A stream is a sequence of ``step`` calls with ``n_frames = N >= 1`` frames each (``N`` may
   change from call to call) and ``n_samples = N * hop`` (``hop`` fixed for the stream).
   ``params`` holds this block's values: time-varying ``(B, N, size)``, static ``(B, size)``,
   externals such as ``f0_hz`` included. ``inputs`` are the effect's audio inputs for the
   block, ``(B, C, N * hop)`` each (empty for synths).
2. The call that covers frames ``t0 .. t0+N-1`` returns ``(B, C_out, N * hop)`` = the offline
   output (``forward`` over the whole signal) at samples ``(t0 - L) * hop .. (t0 + N - L) *
   hop - 1``, zero where that index is negative. ``step`` never changes ``state`` in place: it
   returns the new state.
3. At the end of a stream of ``T`` frames the driver *flushes*: it calls ``step`` with
   ``flushing=True`` for ``L`` more frames in total (in one or more calls), the last frame's
   values repeated for time-varying params, static params unchanged, inputs zero. These calls
   return the offline output's last ``L * hop`` samples. Sources of noise draw no new noise
   while flushing (offline has none past the end).
4. Noise is counter based (:func:`ddsp_models.core.noise.counter_noise`): the offline
   reference of a stream is ``forward`` under
   :func:`ddsp_models.core.noise.deterministic_noise`.
5. ``step`` and what it calls compile with ``torch.jit.script`` (``forward`` is left out of
   scripting automatically; ``init_state`` runs in Python, exports store its result).
   Python-only fast paths (numba) sit behind a ``@torch.jit.unused`` function chosen with
   ``torch.jit.is_scripting()``. ``step`` never calls ``param_specs`` (not scriptable): it
   reads names from ``params`` and sizes from attributes set in ``__init__``.

:func:`ddsp_models.processors.blocks.render_in_blocks` is the reference driver.

Validation at the boundary
--------------------------
* **Constructor arguments.** ``__init_subclass__`` wraps every processor constructor so that,
  before it runs, its arguments are bound to its signature and checked against their simple
  annotations (:func:`~ddsp_models.core.arguments.check_arguments`: ``int``, ``float``,
  ``bool``, ``str``, lists, mappings, ``| None``), and a ``sample_rate`` argument (given or
  default) by :func:`check_sample_rate`: a positive, finite number of Hz. Failures raise
  :class:`~ddsp_models.errors.InvalidInputError` (an ``ArgumentError``, also a ``TypeError``,
  for names and types) naming the processor, the argument and the value. A new processor
  gets the checks without writing them.
* **Half precision.** Calling a processor (``processor(...)``, which the graph does) with
  float16 or bfloat16 tensors follows the class attribute :attr:`Processor.half_precision`:

  - ``"float32"`` (the default): the call computes in float32 (half inputs, weights and
    buffers are cast up; gradients flow back to them) and the output is cast back to the
    inputs' dtype. Oscillator phases, recursive filters and FFT convolutions need the
    precision, and numba kernels have no half types;
  - ``"native"``: the processor computes in the half dtype itself (declare it only when
    ``tests/test_half_precision.py`` shows it finite and close to float32);
  - ``"refuse"``: an :class:`~ddsp_models.errors.InvalidInputError` naming the processor
    and asking for float32.

  The output dtype is the promoted dtype of the floating inputs (float16 in, float16 out).
  ``step`` (the block path) is not affected: streams run in the dtype of their state.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Mapping, Tuple

import torch
from torch import Tensor, nn

from ..core.arguments import check_arguments
from ..core.scaling import Identity, Scaling, scaling_from_dict
from ..errors import InvalidInputError

__all__ = ["Param", "State", "Processor", "PROCESSORS", "check_audio", "check_sample_rate",
           "HALF_PRECISION_POLICIES"]

#: Every concrete processor class by name (filled by ``Processor.__init_subclass__``).
PROCESSORS: dict[str, type["Processor"]] = {}


def check_audio(owner: str, x: Tensor, channels: tuple[int, ...] | None = None) -> None:
    """The one audio check of the processors: raise a clear error unless ``x`` is a floating
    point ``(batch, channels, samples)`` tensor, with ``channels`` among the allowed counts."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{owner}: audio must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 3:
        raise ValueError(
            f"{owner} expects audio (batch, channels, samples), got shape {tuple(x.shape)}; "
            "add a channel axis with x[:, None]"
        )
    if not x.is_floating_point():
        raise TypeError(f"{owner}: audio must be floating point, got {x.dtype}")
    if channels is not None and x.shape[1] not in channels:
        allowed = " or ".join(map(str, channels))
        raise ValueError(f"{owner} needs {allowed} channels, got {x.shape[1]}")


def check_sample_rate(owner: str, sample_rate: Any) -> float:
    """The one check of a processor's sample rate: a positive, finite number of Hz.

    Returns it as a float. Raises :class:`~ddsp_models.errors.InvalidInputError` naming
    ``owner`` otherwise (0, negative, NaN, infinite, a string or a bool): a rate of 0 or NaN
    would give NaN audio, not an error, further down.
    """
    ok = isinstance(sample_rate, numbers.Real) and not isinstance(sample_rate, bool)
    if not ok or not math.isfinite(sample_rate) or sample_rate <= 0:
        raise InvalidInputError(
            f"{owner}: sample_rate must be a positive, finite number of Hz (e.g. 16000), got "
            f"{sample_rate!r}")
    return float(sample_rate)


def _checked_init(init):
    """``init`` (a processor constructor) preceded by the boundary checks of its arguments:
    :func:`~ddsp_models.core.arguments.check_arguments` (names and simple annotated types) and
    :func:`check_sample_rate` of a ``sample_rate`` argument (given or default)."""
    sig = inspect.signature(init)
    rate = sig.parameters.get("sample_rate")

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        owner = type(self).__name__
        check_arguments(owner, init, (self, *args), kwargs, signature=sig)
        if rate is not None:
            value = sig.bind_partial(self, *args, **kwargs).arguments.get("sample_rate",
                                                                          rate.default)
            if value is not inspect.Parameter.empty:
                check_sample_rate(owner, value)
        init(self, *args, **kwargs)

    return __init__


#: Values of :attr:`Processor.half_precision` (see the module docstring).
HALF_PRECISION_POLICIES = ("float32", "native", "refuse")
_HALF = (torch.float16, torch.bfloat16)


def _map_tensors(x: Any, fn) -> Any:
    """``fn`` applied to every tensor in ``x`` (tensors, lists, tuples and dicts of them)."""
    if isinstance(x, Tensor):
        return fn(x)
    if isinstance(x, (list, tuple)):
        return type(x)(_map_tensors(v, fn) for v in x)
    if isinstance(x, dict):
        return {k: _map_tensors(v, fn) for k, v in x.items()}
    return x


def _floating_dtypes(x: Any, out: list) -> list:
    if isinstance(x, Tensor):
        if x.is_floating_point():
            out.append(x.dtype)
    elif isinstance(x, (list, tuple)):
        for v in x:
            _floating_dtypes(v, out)
    elif isinstance(x, dict):
        for v in x.values():
            _floating_dtypes(v, out)
    return out


def _up(t: Tensor) -> Tensor:
    return t.float() if t.dtype in _HALF else t


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


@dataclass(frozen=True)
class State:
    """Declaration of one tensor a processor carries from one block to the next.

    Attributes:
        name: key in the state dict returned by ``init_state`` and ``step``.
        doc: one line for the docs: what it holds, its shape and unit.
    """

    name: str
    doc: str = ""


class Processor(nn.Module):
    """Base class of all synths and effects. See the module docstring for the contract."""

    #: number of audio inputs ``(batch, channels, samples)`` that ``forward`` takes.
    n_inputs: ClassVar[int] = 0

    #: what a call with float16/bfloat16 tensors does: ``"float32"`` (compute in float32,
    #: cast the output back), ``"native"`` or ``"refuse"`` (see the module docstring).
    half_precision = "float32"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.half_precision not in HALF_PRECISION_POLICIES:
            raise TypeError(f"{cls.__name__}.half_precision must be one of "
                            f"{HALF_PRECISION_POLICIES}, got {cls.half_precision!r}")
        if "__init__" in cls.__dict__:
            cls.__init__ = _checked_init(cls.__dict__["__init__"])
        # The block path is what scripting compiles; forward (often numba / custom autograd)
        # is left out, so torch.jit.script(processor) gives a module whose step() streams.
        if "forward" in cls.__dict__:
            cls.forward = torch.jit.unused(cls.forward)
        for name in ("step", "latency_frames"):
            if name in cls.__dict__:
                setattr(cls, name, torch.jit.export(cls.__dict__[name]))
        if not cls.__name__.startswith("_"):
            PROCESSORS[cls.__name__] = cls

    # --- the call: half precision policy -------------------------------------------------
    def __call__(self, *args, **kwargs):
        """``forward`` through ``nn.Module.__call__``; float16/bfloat16 tensors among the
        arguments follow :attr:`half_precision` (see the module docstring)."""
        dtypes = _floating_dtypes(kwargs, _floating_dtypes(args, []))
        if not any(d in _HALF for d in dtypes) or self.half_precision == "native":
            return super().__call__(*args, **kwargs)
        half = next(d for d in dtypes if d in _HALF)
        if self.half_precision == "refuse":
            raise InvalidInputError(
                f"{type(self).__name__} does not compute in {str(half).replace('torch.', '')}: "
                "use float32 (x.float() for the inputs and parameters, processor.float())")
        out_dtype = functools.reduce(torch.promote_types, dtypes)
        args, kwargs = _map_tensors(args, _up), _map_tensors(kwargs, _up)
        weights = {name: t.float() for name, t in (*self.named_parameters(),
                                                    *self.named_buffers()) if t.dtype in _HALF}
        if weights:
            from torch.func import functional_call

            out = functional_call(self, weights, args, kwargs)
        else:
            out = super().__call__(*args, **kwargs)
        return _map_tensors(out, lambda t: t.to(out_dtype) if t.is_floating_point() else t)

    # --- examples for the contract tests and docs ---------------------------------------
    @classmethod
    def examples(cls) -> list[dict[str, Any]]:
        """Constructor keyword sets the registry-driven contract tests build and check.

        Default: the defaults alone. Override to cover modes (filter kinds, static or
        time-varying parameters) or to give containers their children.
        """
        return [{}]

    # --- block rendering (streaming) ---------------------------------------------------
    def state_specs(self) -> tuple[State, ...]:
        """What is carried from one block to the next (see the module docstring)."""
        return ()

    def use_fixed_blocks(self, n_frames: int) -> None:
        """Prepare for a stream of blocks of exactly ``n_frames`` frames with no data-dependent
        control flow in ``step`` (what ``torch.export`` / ONNX need; see
        :class:`~ddsp_models.graph.stream.GraphStream`). Leaf processors need nothing;
        containers align their children by whole blocks. Called before ``latency_frames`` and
        ``init_state``."""

    def latency_frames(self, hop: int) -> int:
        """Look-ahead in frames at ``hop`` samples per frame: a block's output lags the offline
        output by this many (a centred FIR of fixed taps needs more frames at a smaller hop).
        Scriptable (containers call their children's from ``step``)."""
        return 0

    def init_state(
        self, batch: int, input_channels: List[int], hop: int, like: Tensor
    ) -> Dict[str, Tensor]:
        """The state of a fresh stream, one tensor per :meth:`state_specs` entry.

        Args:
            batch: batch size of the stream.
            input_channels: channel count of each audio input (empty for synths).
            hop: samples per frame of the stream.
            like: a tensor of the stream's dtype and device.
        """
        return {}

    @torch.jit.export
    def step(
        self,
        inputs: List[Tensor],
        params: Dict[str, Tensor],
        state: Dict[str, Tensor],
        n_frames: int,
        n_samples: int,
        flushing: bool,
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        """Render one block (see the module docstring for the contract).

        Returns:
            ``(audio (B, C_out, n_samples), new_state)``.
        """
        raise NotImplementedError("this processor does not render block by block yet")

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
