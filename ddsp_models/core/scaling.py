"""Unit conversions and the maps from raw network outputs to physical units.

Functions here are elementwise and work on tensors of any shape, dtype and device.

The ``Scaling`` classes are the declared, serialisable form of those maps: a processor
states per parameter which one turns an unconstrained network output into the physical
value its ``forward`` expects (see :mod:`ddsp_models.processors.base`).
"""

from __future__ import annotations

import math
from dataclasses import astuple, asdict, dataclass, fields
from typing import ClassVar, List

import torch
from torch import Tensor, nn

__all__ = [
    "exp_sigmoid",
    "hz_to_midi",
    "midi_to_hz",
    "octaves_into_range",
    "amplitude_to_db",
    "db_to_amplitude",
    "power_to_db",
    "Scaling",
    "Identity",
    "ExpSigmoid",
    "SigmoidRange",
    "LogSigmoidRange",
    "Softmax",
    "scaling_from_dict",
    "apply_scaling",
    "ScalingModule",
]


def exp_sigmoid(
    x: Tensor, exponent: float = 10.0, max_value: float = 2.0, threshold: float = 1e-7
) -> Tensor:
    """DDSP's exponentiated sigmoid: ``max_value * sigmoid(x) ** log(exponent) + threshold``.

    Maps any real ``x`` to ``(threshold, max_value + threshold)``. Its slope is gentle for
    amplitudes, which lets a network reach values near zero (silence) easily. With the
    defaults, ``exp_sigmoid(0) ≈ 0.0437``.
    """
    return max_value * torch.sigmoid(x) ** math.log(exponent) + threshold


def hz_to_midi(frequency_hz: Tensor) -> Tensor:
    """Frequency in Hz to (fractional) MIDI note number; 440 Hz → 69. 0 Hz maps to -inf-free 0."""
    f = torch.as_tensor(frequency_hz)
    midi = 12.0 * torch.log2(f.clamp_min(1e-10) / 440.0) + 69.0
    return torch.where(f > 0, midi, torch.zeros_like(midi))


def midi_to_hz(midi: Tensor) -> Tensor:
    """MIDI note number to frequency in Hz; 69 → 440 Hz."""
    return 440.0 * torch.pow(2.0, (torch.as_tensor(midi) - 69.0) / 12.0)


def octaves_into_range(pitch_midi: float, low: float, high: float) -> int:
    """The fewest whole octaves to add to ``pitch_midi`` (MIDI) to land it in ``[low, high]``.

    0 when it is already inside. When no octave lands inside (a range narrower than an octave
    with the pitch in the gap), the shift that leaves it nearest to the range. Plain floats, so
    TorchScript compiles it (the live path calls it per frame). With the range ``mean ± 6``
    this is DDSP's rule (the octaves nearest to the mean)."""
    if low <= pitch_midi <= high:
        return 0
    if pitch_midi < low:
        k = int(math.ceil((low - pitch_midi) / 12.0))
        if pitch_midi + 12.0 * k > high and (pitch_midi + 12.0 * k - high) >= (
                low - (pitch_midi + 12.0 * (k - 1))):
            k -= 1
        return k
    k = -int(math.ceil((pitch_midi - high) / 12.0))
    if pitch_midi + 12.0 * k < low and (low - (pitch_midi + 12.0 * k)) >= (
            pitch_midi + 12.0 * (k + 1) - high):
        k += 1
    return k


def amplitude_to_db(amplitude: Tensor, min_db: float = -120.0) -> Tensor:
    """Linear amplitude to dB (``20 log10``), floored at ``min_db`` so silence is finite."""
    a = torch.as_tensor(amplitude).abs()
    floor = 10.0 ** (min_db / 20.0)
    return 20.0 * torch.log10(a.clamp_min(floor))


def db_to_amplitude(db: Tensor) -> Tensor:
    """dB to linear amplitude (``10 ** (db / 20)``)."""
    return torch.pow(10.0, torch.as_tensor(db) / 20.0)


def power_to_db(power: Tensor, min_db: float = -120.0) -> Tensor:
    """Power to dB (``10 log10``), floored at ``min_db``."""
    floor = 10.0 ** (min_db / 10.0)
    return 10.0 * torch.log10(torch.as_tensor(power).clamp_min(floor))


# --------------------------------------------------------------------------------------
# Declared scalings: raw network output -> physical units.
# --------------------------------------------------------------------------------------

_SCALINGS: dict[str, type["Scaling"]] = {}


def apply_scaling(kind: str, args: List[float], raw: Tensor) -> Tensor:
    """The one home of every scaling's formula (scriptable): ``kind`` and the scaling's fields
    in declaration order (``args``) applied to ``raw``. The :class:`Scaling` classes and
    :class:`ScalingModule` both call it."""
    if kind == "exp_sigmoid":  # exponent, max_value, threshold, bias
        return exp_sigmoid(raw + args[3], args[0], args[1], args[2])
    if kind == "sigmoid_range":  # low, high
        return args[0] + (args[1] - args[0]) * torch.sigmoid(raw)
    if kind == "log_sigmoid_range":  # low, high
        lo, hi = math.log(args[0]), math.log(args[1])
        # The clamp only trims float rounding at the ends; the gradient is the sigmoid's.
        return torch.exp(lo + (hi - lo) * torch.sigmoid(raw)).clamp(args[0], args[1])
    if kind == "softmax":
        return torch.softmax(raw, dim=-1)
    if kind == "identity":
        return raw
    raise ValueError("unknown scaling kind " + kind)


class ScalingModule(nn.Module):
    """A :class:`Scaling` as a scriptable module (for streaming exports): ``forward(raw)``."""

    def __init__(self, scaling: "Scaling"):
        super().__init__()
        self.kind = scaling.kind
        # a trailing 0.0 keeps the list non-empty, so TorchScript infers List[float]
        self.args = [float(v) for v in astuple(scaling)] + [0.0]

    def forward(self, raw: Tensor) -> Tensor:
        return apply_scaling(self.kind, self.args, raw)


@dataclass(frozen=True)
class Scaling:
    """Base class: a named, serialisable map from an unconstrained tensor to physical units."""

    kind: ClassVar[str] = "scaling"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _SCALINGS[cls.kind] = cls

    def __call__(self, raw: Tensor) -> Tensor:
        return apply_scaling(self.kind, [float(v) for v in astuple(self)], raw)

    def module(self) -> ScalingModule:
        """This scaling as a scriptable :class:`ScalingModule`."""
        return ScalingModule(self)

    def to_dict(self) -> dict:
        return {"kind": self.kind, **asdict(self)}


def scaling_from_dict(d: dict) -> Scaling:
    """Inverse of :meth:`Scaling.to_dict`.

    Raises:
        InvalidInputError: not a ``{kind: name, **fields}`` mapping, an unknown kind, or
            fields the kind does not have (the message lists what is known).
    """
    from collections.abc import Mapping

    from ..errors import InvalidInputError

    if not isinstance(d, Mapping) or "kind" not in d:
        raise InvalidInputError(
            f"a scaling is a mapping {{kind: name, **fields}} (kinds: {sorted(_SCALINGS)}), "
            f"got {d!r:.80}")
    d = dict(d)
    kind = d.pop("kind")
    if kind not in _SCALINGS:
        raise InvalidInputError(f"unknown scaling kind {kind!r}; known: {sorted(_SCALINGS)}")
    try:
        return _SCALINGS[kind](**d)
    except TypeError as err:
        names = [f.name for f in fields(_SCALINGS[kind])]
        raise InvalidInputError(f"scaling {kind!r}: {err}; its fields: {names}") from None


@dataclass(frozen=True)
class Identity(Scaling):
    """No mapping: the raw value already is in physical units."""

    kind: ClassVar[str] = "identity"


@dataclass(frozen=True)
class ExpSigmoid(Scaling):
    """:func:`exp_sigmoid` of ``raw + bias`` (DDSP's amplitude scaling; bias -5 for noise bands)."""

    kind: ClassVar[str] = "exp_sigmoid"
    exponent: float = 10.0
    max_value: float = 2.0
    threshold: float = 1e-7
    bias: float = 0.0


@dataclass(frozen=True)
class SigmoidRange(Scaling):
    """``low + (high - low) * sigmoid(raw)``: a bounded linear range."""

    kind: ClassVar[str] = "sigmoid_range"
    low: float = 0.0
    high: float = 1.0

    def __post_init__(self):
        if not self.high > self.low:
            raise ValueError(f"SigmoidRange needs high > low, got low={self.low}, high={self.high}")


@dataclass(frozen=True)
class LogSigmoidRange(Scaling):
    """``exp(log(low) + (log(high) - log(low)) * sigmoid(raw))``: a bounded range, uniform in log.

    Use it for frequencies in Hz and times in seconds, whose useful values span decades.
    """

    kind: ClassVar[str] = "log_sigmoid_range"
    low: float = 20.0
    high: float = 8000.0

    def __post_init__(self):
        if not (self.high > self.low > 0):
            raise ValueError(
                f"LogSigmoidRange needs high > low > 0, got low={self.low}, high={self.high}"
            )


@dataclass(frozen=True)
class Softmax(Scaling):
    """Softmax over the last (feature) dimension: non-negative weights summing to one."""

    kind: ClassVar[str] = "softmax"
