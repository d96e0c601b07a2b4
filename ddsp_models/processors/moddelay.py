"""Modulated delay: chorus, flanger and vibrato from one time-varying fractional delay line."""

from __future__ import annotations

import math
from typing import Any, Dict, List, Tuple

import torch
from torch import Tensor

from ..core.delay import delay_line_read, variable_delay
from ..core.scaling import SigmoidRange
from ..core.upsample import upsample_linear
from .base import Param, Processor, State, check_audio
from .blocks import control_block, push_samples

__all__ = ["ModDelay"]


class ModDelay(Processor):
    """A delay line whose length and dry/wet mix vary over time, with optional feedback.

    ``forward(audio (B, C, L), delay_s (B, T, 1), mix (B, T, 1)[, feedback (B, 1)])`` →
    ``(B, C, L)``, ``out = (1 - mix) · audio + mix · wet``. The delay (seconds) and mix are
    upsampled linearly; the line is read with linear interpolation
    (:func:`ddsp_models.core.variable_delay`).

    Feedback (``max_feedback > 0``) feeds the line's output back to its input with gain ``g``:
    ``wet = D(audio + g · wet)``. Since the delay operator ``D`` is linear, this is computed
    without a sample loop as the truncated series ``wet = Σ_{k=1..feedback_taps} g^{k-1} D^k
    audio`` — exact up to the neglected ``g^feedback_taps`` term, also for time-varying delays.

    With ``wet_only=True`` there is no ``mix`` parameter and the output is the wet signal
    (vibrato). Presets: :meth:`chorus`, :meth:`flanger`, :meth:`vibrato`.

    Block rendering (``step``): latency one frame (the delay and mix are interpolated
    towards the next frame). The state carries the last frame of ``delay_s`` and ``mix``
    (the LFO / control state), the input not yet output, and one delay line per term of the
    feedback series (``feedback_taps`` lines with feedback, else one), each the last
    ``ceil(max_delay_s · sample_rate) + 2`` samples of its input: ``D^k audio`` for line ``k``.
    Delays beyond ``max_delay_s`` are clamped to the line in ``step`` (``forward`` does not
    clamp; the declared scaling keeps ``delay_s`` in range).
    """

    n_inputs = 1

    def __init__(
        self,
        sample_rate: float = 16000,
        min_delay_s: float = 0.005,
        max_delay_s: float = 0.030,
        max_feedback: float = 0.0,
        feedback_taps: int = 16,
        wet_only: bool = False,
    ):
        super().__init__()
        if not 0 <= min_delay_s < max_delay_s:
            raise ValueError(
                f"need 0 <= min_delay_s < max_delay_s, got {min_delay_s}, {max_delay_s}"
            )
        if not 0 <= max_feedback < 1:
            raise ValueError(f"max_feedback must be in [0, 1) for stability, got {max_feedback}")
        self.sample_rate = float(sample_rate)
        self.min_delay_s = float(min_delay_s)
        self.max_delay_s = float(max_delay_s)
        self.max_feedback = float(max_feedback)
        self.feedback_taps = int(feedback_taps)
        self.wet_only = bool(wet_only)
        # block rendering: samples per delay line, and lines (terms of the feedback series)
        self._line_length = math.ceil(self.max_delay_s * self.sample_rate) + 2
        self._n_lines = max(1, self.feedback_taps) if self.max_feedback > 0 else 1

    # --- presets ----------------------------------------------------------------------
    @classmethod
    def chorus(cls, sample_rate: float = 16000, **overrides: Any) -> "ModDelay":
        """Chorus: 5–30 ms delay, no feedback, dry/wet mix."""
        return cls(**{"sample_rate": sample_rate, "min_delay_s": 0.005, "max_delay_s": 0.030,
                      "max_feedback": 0.0, **overrides})

    @classmethod
    def flanger(cls, sample_rate: float = 16000, **overrides: Any) -> "ModDelay":
        """Flanger: 0.5–5 ms delay, feedback up to 0.7, dry/wet mix."""
        return cls(**{"sample_rate": sample_rate, "min_delay_s": 0.0005, "max_delay_s": 0.005,
                      "max_feedback": 0.7, "feedback_taps": 20, **overrides})

    @classmethod
    def vibrato(cls, sample_rate: float = 16000, **overrides: Any) -> "ModDelay":
        """Vibrato: 0–8 ms delay, wet only (pitch modulation from the moving delay)."""
        return cls(**{"sample_rate": sample_rate, "min_delay_s": 0.0, "max_delay_s": 0.008,
                      "wet_only": True, **overrides})

    # --- declaration ------------------------------------------------------------------
    def param_specs(self):
        delay = SigmoidRange(self.min_delay_s, self.max_delay_s)
        specs = [Param("delay_s", 1, delay, unit="s", doc="delay line length")]
        if not self.wet_only:
            specs.append(Param("mix", 1, SigmoidRange(0.0, 1.0), unit="linear", doc="0 dry, 1 wet"))
        if self.max_feedback > 0:
            specs.append(
                Param("feedback", 1, SigmoidRange(0.0, self.max_feedback), time_varying=False,
                      unit="linear", doc="gain fed back into the line")
            )
        return tuple(specs)

    def config(self):
        return {
            "sample_rate": self.sample_rate,
            "min_delay_s": self.min_delay_s,
            "max_delay_s": self.max_delay_s,
            "max_feedback": self.max_feedback,
            "feedback_taps": self.feedback_taps,
            "wet_only": self.wet_only,
        }

    def forward(
        self,
        audio: Tensor,
        delay_s: Tensor,
        mix: Tensor | None = None,
        feedback: Tensor | None = None,
    ) -> Tensor:
        given = {"delay_s": delay_s, "mix": mix, "feedback": feedback}
        self.check_params({k: v for k, v in given.items() if v is not None})
        check_audio("ModDelay", audio)
        for name, value in given.items():
            if value is not None and value.shape[0] != audio.shape[0]:
                raise ValueError(
                    f"ModDelay.{name} has batch {value.shape[0]} but audio has batch "
                    f"{audio.shape[0]}"
                )
        n = audio.shape[-1]
        delay = upsample_linear(delay_s, n)[..., 0][:, None, :] * self.sample_rate  # (B, 1, L)
        wet = variable_delay(audio, delay)
        if self.max_feedback > 0:
            g = feedback[:, :, None]  # (B, 1, 1)
            line, gain = wet, torch.ones_like(g)
            for _ in range(self.feedback_taps - 1):
                line = variable_delay(line, delay)
                gain = gain * g
                wet = wet + gain * line
        if self.wet_only:
            return wet
        m = upsample_linear(mix, n)[..., 0][:, None, :]
        return (1 - m) * audio + m * wet

    @classmethod
    def examples(cls):
        return [
            {},  # chorus
            {"min_delay_s": 0.0005, "max_delay_s": 0.005, "max_feedback": 0.7,
             "feedback_taps": 6},  # flanger
            {"min_delay_s": 0.0, "max_delay_s": 0.008, "wet_only": True},  # vibrato
        ]

    # --- block rendering ----------------------------------------------------------------
    def latency_frames(self, hop: int) -> int:
        return 1

    def state_specs(self):
        specs = [State("delay_s", "(B, 1, 1) s: the last frame of delay_s")]
        if not self.wet_only:
            specs.append(State("mix", "(B, 1, 1) linear: the last frame of mix"))
        specs += [
            State("audio", "(B, C, hop) input samples not yet output (latency one frame)"),
            State("lines", f"(B, C, {self._n_lines}, {self._line_length}) the last samples of "
                           "each delay line's input (line k reads D^k audio)"),
        ]
        return tuple(specs)

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        z = dict(dtype=like.dtype, device=like.device)
        c = int(input_channels[0])
        state = {"delay_s": torch.zeros(batch, 1, 1, **z),
                 "audio": torch.zeros(batch, c, hop, **z),
                 "lines": torch.zeros(batch, c, self._n_lines, self._line_length, **z)}
        if not self.wet_only:
            state["mix"] = torch.zeros(batch, 1, 1, **z)
        return state

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        hop = n_samples // n_frames
        new: Dict[str, Tensor] = {}
        d, new["delay_s"] = control_block(params["delay_s"], state["delay_s"], hop)  # (B, 1, M)
        delay = (d * self.sample_rate).clamp(0.0, float(self._line_length - 1))
        x, new["audio"] = push_samples(state["audio"], inputs[0])  # offline samples of the block
        lines = state["lines"]
        h = self._line_length
        kept: List[Tensor] = []
        line = x
        wet = x
        gain = torch.ones(1, dtype=x.dtype, device=x.device)
        for k in range(self._n_lines):  # wet = Σ_k g^k D^(k+1) audio, as forward
            buf = torch.cat([lines[:, :, k], line], dim=-1)
            kept.append(buf[..., buf.shape[-1] - h:])
            line = delay_line_read(buf, delay)
            if k == 0:
                wet = line
            else:
                gain = gain * params["feedback"][:, :, None]
                wet = wet + gain * line
        new["lines"] = torch.stack(kept, dim=2)
        if self.wet_only:
            return wet, new
        m, new["mix"] = control_block(params["mix"], state["mix"], hop)
        return (1 - m) * x + m * wet, new
