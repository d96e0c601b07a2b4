"""Dynamics processors: compressor, noise gate, limiter (feed-forward, log domain).

All three follow the same chain (Giannoulis, Massberg & Reiss 2012, "log-domain, decoupled"):

1. **detector** — ``level_db = 20 log10 |x|`` per sample (floored at -120 dB); with
   ``stereo_link=True`` the level of the loudest channel, so every channel gets the same gain;
2. **gain computer** — the static curve (:func:`compressor_gain_db`,
   :func:`expander_gain_db`) maps the level to a target gain in dB;
3. **ballistics** — :func:`~ddsp_models.core.ballistics.attack_release` smooths the target with
   an attack and a release time constant; its gradients are exact (seed 003), wrt the audio
   and wrt both time constants;
4. the smoothed gain (plus makeup) is applied to every sample.

Time constants follow ``alpha = exp(-1 / (tau * sample_rate))``: after a level step the
gain in dB covers ``1 - 1/e`` of its change in ``tau`` seconds. "Attack" is the direction in
which a processor reacts to a *louder* input: for the compressor and limiter, gain reduction
growing; for the gate, the gate opening. All parameters are static, ``(batch, 1)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..core.ballistics import attack_release, time_constant_to_alpha
from ..core.scaling import LogSigmoidRange, SigmoidRange, amplitude_to_db, db_to_amplitude
from .base import Param, Processor
from .gain import check_audio

__all__ = [
    "Compressor",
    "NoiseGate",
    "Limiter",
    "compressor_gain_db",
    "expander_gain_db",
    "soft_knee_ramp",
    "detect_level_db",
]


def soft_knee_ramp(overshoot_db: Tensor, knee_db: Tensor | float = 0.0) -> Tensor:
    """``max(0, o)`` with its corner rounded by a parabola over ``|o| < knee_db / 2``.

    ``0`` for ``o <= -W/2``, ``(o + W/2)^2 / (2W)`` inside the knee, ``o`` for ``o >= W/2``;
    continuous with a continuous slope. ``knee_db = 0`` is the hard corner ``relu(o)``.
    """
    o = torch.as_tensor(overshoot_db)
    w = torch.as_tensor(knee_db, dtype=o.dtype, device=o.device).clamp_min(0.0)
    half = w / 2
    inside = (o.clamp(-half, half) + half) ** 2 / (2 * w.clamp_min(1e-6))
    return torch.where(o >= half, o, torch.where(o <= -half, torch.zeros_like(o), inside))


def compressor_gain_db(
    level_db: Tensor, threshold_db: Tensor | float, ratio: Tensor | float, knee_db=0.0
) -> Tensor:
    """Static curve of a downward compressor: the gain in dB (``<= 0``) at ``level_db``.

    Above the threshold each dB of input gives ``1 / ratio`` dB of output:
    ``gain = -(1 - 1/ratio) * soft_knee_ramp(level - threshold, knee)``. All arguments
    broadcast; ``ratio >= 1`` (``inf`` is a limiter).
    """
    ratio = torch.as_tensor(ratio, dtype=level_db.dtype, device=level_db.device)
    return -(1 - 1 / ratio) * soft_knee_ramp(level_db - threshold_db, knee_db)


def expander_gain_db(
    level_db: Tensor,
    threshold_db: Tensor | float,
    ratio: Tensor | float,
    knee_db=0.0,
    max_attenuation_db: float | None = None,
) -> Tensor:
    """Static curve of a downward expander (a gate for large ratios): gain in dB, ``<= 0``.

    Below the threshold each dB of input gives ``ratio`` dB of output:
    ``gain = -(ratio - 1) * soft_knee_ramp(threshold - level, knee)``, floored at
    ``-max_attenuation_db`` if given (no gradient once the floor is reached).
    """
    ratio = torch.as_tensor(ratio, dtype=level_db.dtype, device=level_db.device)
    gain = -(ratio - 1) * soft_knee_ramp(threshold_db - level_db, knee_db)
    if max_attenuation_db is not None:
        gain = gain.clamp_min(-float(max_attenuation_db))
    return gain


def detect_level_db(x: Tensor, stereo_link: bool = True, min_db: float = -120.0) -> Tensor:
    """Peak level in dB of ``x (B, C, L)`` per sample: ``(B, 1, L)`` if linked, else ``(B, C, L)``."""
    level = x.abs()
    if stereo_link and x.shape[1] > 1:
        level = level.amax(dim=1, keepdim=True)
    return amplitude_to_db(level, min_db=min_db)


def _check_knee(name: str, knee: str) -> None:
    if knee not in ("hard", "soft"):
        raise ValueError(f"{name}: knee must be 'hard' or 'soft', got {knee!r}")


class _Dynamics(Processor):
    """Shared constructor and smoothing of the three dynamics processors."""

    n_inputs = 1

    def __init__(self, sample_rate: float = 16000, knee: str = "soft", stereo_link: bool = True):
        super().__init__()
        _check_knee(type(self).__name__, knee)
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        self.sample_rate = float(sample_rate)
        self.knee = knee
        self.stereo_link = bool(stereo_link)

    def config(self):
        return {"sample_rate": self.sample_rate, "knee": self.knee, "stereo_link": self.stereo_link}

    def _smooth(self, target: Tensor, attack_s: Tensor, release_s: Tensor) -> Tensor:
        """Ballistics on ``target (B, C, L)`` with ``(B, 1)`` time constants in seconds."""
        att = time_constant_to_alpha(attack_s, self.sample_rate)[:, :, None]
        rel = time_constant_to_alpha(release_s, self.sample_rate)[:, :, None]
        return attack_release(target, att, rel, initial=0.0)


class Compressor(_Dynamics):
    """Feed-forward downward compressor with exact-gradient attack/release ballistics.

    Gain reduction (dB, ``>= 0``) from :func:`compressor_gain_db` is smoothed with the attack
    pole while it grows and the release pole while it shrinks, starting from no reduction.

    Args:
        sample_rate: Hz.
        knee: ``"soft"`` (a ``knee_db`` parameter, quadratic knee) or ``"hard"``.
        stereo_link: one gain for all channels, from the loudest channel's level.

    ``forward(x (B, C, L), threshold_db, ratio, [knee_db], attack_s, release_s, makeup_db)``
    with static ``(B, 1)`` parameters returns ``(B, C, L)``.
    """

    def param_specs(self):
        specs = [
            Param("threshold_db", 1, SigmoidRange(-60.0, 0.0), False, unit="dB",
                  doc="level above which gain is reduced"),
            Param("ratio", 1, LogSigmoidRange(1.0, 20.0), False, unit="ratio",
                  doc="input dB per output dB above the threshold"),
        ]
        if self.knee == "soft":
            specs.append(Param("knee_db", 1, SigmoidRange(0.0, 24.0), False, unit="dB",
                               doc="width of the quadratic knee"))
        specs += [
            Param("attack_s", 1, LogSigmoidRange(1e-4, 0.1), False, unit="s",
                  doc="time constant while the gain reduction grows"),
            Param("release_s", 1, LogSigmoidRange(5e-3, 2.0), False, unit="s",
                  doc="time constant while the gain reduction shrinks"),
            Param("makeup_db", 1, SigmoidRange(-24.0, 24.0), False, unit="dB",
                  doc="gain after compression"),
        ]
        return tuple(specs)

    def gain_db(self, x: Tensor, **params: Tensor) -> Tensor:
        """The smoothed gain in dB (makeup included) that ``forward`` applies: ``(B, 1|C, L)``."""
        check_audio(type(self).__name__, x)
        self.check_params(params)
        p = {k: v[:, :, None] for k, v in params.items()}  # (B, 1, 1)
        level = detect_level_db(x, self.stereo_link)
        knee = p.get("knee_db", 0.0)
        reduction = -compressor_gain_db(level, p["threshold_db"], p["ratio"], knee)
        smoothed = self._smooth(reduction, params["attack_s"], params["release_s"])
        return p["makeup_db"] - smoothed

    def forward(self, x: Tensor, **params: Tensor) -> Tensor:
        return x * db_to_amplitude(self.gain_db(x, **params))


class NoiseGate(_Dynamics):
    """Downward expander / noise gate: attenuates the signal below a threshold.

    Below ``threshold_db`` each dB of level drop becomes ``ratio`` dB at the output
    (:func:`expander_gain_db`), down to ``-max_attenuation_db``. The gain (dB, ``<= 0``) is
    smoothed with the attack pole while the gate opens and the release pole while it closes;
    it starts open (0 dB).

    Args:
        sample_rate: Hz.
        knee: ``"soft"`` (a ``knee_db`` parameter) or ``"hard"``.
        stereo_link: one gain for all channels.
        max_attenuation_db: the gate's range (attenuation when fully closed).
    """

    def __init__(
        self,
        sample_rate: float = 16000,
        knee: str = "hard",
        stereo_link: bool = True,
        max_attenuation_db: float = 80.0,
    ):
        super().__init__(sample_rate, knee, stereo_link)
        if max_attenuation_db <= 0:
            raise ValueError(f"max_attenuation_db must be positive, got {max_attenuation_db}")
        self.max_attenuation_db = float(max_attenuation_db)

    def config(self):
        return {**super().config(), "max_attenuation_db": self.max_attenuation_db}

    def param_specs(self):
        specs = [
            Param("threshold_db", 1, SigmoidRange(-90.0, -10.0), False, unit="dB",
                  doc="level below which the gate attenuates"),
            Param("ratio", 1, LogSigmoidRange(1.0, 50.0), False, unit="ratio",
                  doc="output dB per input dB below the threshold"),
        ]
        if self.knee == "soft":
            specs.append(Param("knee_db", 1, SigmoidRange(0.0, 24.0), False, unit="dB",
                               doc="width of the quadratic knee"))
        specs += [
            Param("attack_s", 1, LogSigmoidRange(1e-4, 0.1), False, unit="s",
                  doc="time constant while the gate opens"),
            Param("release_s", 1, LogSigmoidRange(5e-3, 2.0), False, unit="s",
                  doc="time constant while the gate closes"),
        ]
        return tuple(specs)

    def gain_db(self, x: Tensor, **params: Tensor) -> Tensor:
        """The smoothed gain in dB (``<= 0``) that ``forward`` applies: ``(B, 1|C, L)``."""
        check_audio(type(self).__name__, x)
        self.check_params(params)
        p = {k: v[:, :, None] for k, v in params.items()}
        level = detect_level_db(x, self.stereo_link)
        target = expander_gain_db(
            level, p["threshold_db"], p["ratio"], p.get("knee_db", 0.0), self.max_attenuation_db
        )
        # Opening = the gain rising = the "attack" branch of the ballistics.
        return self._smooth(target, params["attack_s"], params["release_s"])

    def forward(self, x: Tensor, **params: Tensor) -> Tensor:
        return x * db_to_amplitude(self.gain_db(x, **params))


class Limiter(_Dynamics):
    """Peak limiter: a hard-knee compressor of infinite ratio with fast attack.

    The target reduction is ``relu(level_db - threshold_db)``; once the attack has caught
    up, output peaks stay at the threshold (the ceiling). A short ``attack_s`` (the lower
    end, 10 µs, is nearly instantaneous) keeps the overshoot at onsets small.
    Parameters: ``threshold_db``, ``attack_s``, ``release_s``, static ``(B, 1)``.
    """

    def __init__(self, sample_rate: float = 16000, stereo_link: bool = True):
        super().__init__(sample_rate, "hard", stereo_link)

    def config(self):
        return {"sample_rate": self.sample_rate, "stereo_link": self.stereo_link}

    def param_specs(self):
        return (
            Param("threshold_db", 1, SigmoidRange(-24.0, 0.0), False, unit="dB",
                  doc="ceiling of the output peaks"),
            Param("attack_s", 1, LogSigmoidRange(1e-5, 1e-2), False, unit="s",
                  doc="time constant while the gain reduction grows"),
            Param("release_s", 1, LogSigmoidRange(5e-3, 1.0), False, unit="s",
                  doc="time constant while the gain reduction shrinks"),
        )

    def gain_db(self, x: Tensor, **params: Tensor) -> Tensor:
        """The smoothed gain in dB (``<= 0``) that ``forward`` applies: ``(B, 1|C, L)``."""
        check_audio(type(self).__name__, x)
        self.check_params(params)
        level = detect_level_db(x, self.stereo_link)
        reduction = torch.relu(level - params["threshold_db"][:, :, None])
        return -self._smooth(reduction, params["attack_s"], params["release_s"])

    def forward(self, x: Tensor, **params: Tensor) -> Tensor:
        return x * db_to_amplitude(self.gain_db(x, **params))
