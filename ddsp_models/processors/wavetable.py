"""Wavetable synth: learnable single-cycle tables, cross-faded over time."""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn

from ..core.oscillators import advance_phase, angular_cumsum
from ..core.scaling import ExpSigmoid, Softmax
from ..core.upsample import (
    crossfade_frames,
    interpolate_frames,
    upsample_linear,
    upsample_with_windows,
)
from .base import Param, Processor, State
from .blocks import push_frames, valid_mask

__all__ = ["Wavetable", "initial_tables"]


def initial_tables(n_tables: int, table_size: int, kind: str = "classic") -> Tensor:
    """Starting tables ``(n_tables, table_size)``, one cycle each, peak 1.

    ``"sine"``: every table a sine. ``"classic"``: sine, triangle, sawtooth, square (cycled),
    built from harmonics below ``table_size / 4`` so that the tables are band-limited.
    """
    x = torch.arange(table_size, dtype=torch.float64) / table_size
    n_h = max(1, table_size // 4)
    k = torch.arange(1, n_h + 1, dtype=torch.float64)
    sines = torch.sin(2 * math.pi * k[:, None] * x)  # (n_h, S)
    odd = (k % 2 == 1).double()
    alternating_odd = odd * torch.where(k % 4 == 1, 1.0, -1.0)  # +1, -1 on k = 1, 3, 5, 7 ...
    shapes = {
        "sine": sines[0],
        "triangle": ((alternating_odd / k**2)[:, None] * sines).sum(0),
        "sawtooth": ((-1.0) ** (k + 1) / k)[:, None].mul(sines).sum(0),
        "square": ((odd / k)[:, None] * sines).sum(0),
    }
    if kind == "sine":
        order = ["sine"]
    elif kind == "classic":
        order = ["sine", "triangle", "sawtooth", "square"]
    else:
        raise ValueError(f"kind must be 'sine' or 'classic', got {kind!r}")
    tables = torch.stack([shapes[order[i % len(order)]] for i in range(n_tables)])
    return (tables / tables.abs().amax(-1, keepdim=True)).float()


class Wavetable(Processor):
    """Oscillator reading learnable single-cycle tables with linear interpolation.

    ``forward(f0_hz (B,T,1), amplitude (B,T,1), table_weights (B,T,n_tables), n_samples)`` →
    ``(B, 1, n_samples)`` = ``amplitude · Σ_j w_j · table_j(φ)``, with ``φ`` the f0 phase
    (float64 accumulation) and weights/amplitude cross-faded between frames with Hann
    windows. The tables are an ``nn.Parameter`` ``(n_tables, table_size)``. They are not
    band-limited per pitch: harmonics of a table above Nyquist alias.

    Block rendering (:meth:`step`): latency 1 frame (block ``j`` moves from frame ``j`` to
    ``j + 1``); the phase of f0 is carried in float64, wrapped to ``[0, 2π)``.
    """

    n_inputs = 0

    def __init__(
        self,
        sample_rate: float = 16000,
        n_tables: int = 4,
        table_size: int = 2048,
        initial: str = "classic",
    ):
        super().__init__()
        if n_tables < 1 or table_size < 4:
            raise ValueError(
                f"need n_tables >= 1 and table_size >= 4, got {n_tables}, {table_size}"
            )
        self.sample_rate = float(sample_rate)
        self.n_tables = int(n_tables)
        self.table_size = int(table_size)
        self.initial = initial
        self.tables = nn.Parameter(initial_tables(self.n_tables, self.table_size, initial))

    @classmethod
    def examples(cls):
        return [{"n_tables": 3, "table_size": 64}, {"n_tables": 1, "table_size": 16,
                                                    "initial": "sine"}]

    def param_specs(self):
        return (
            Param("f0_hz", 1, external=True, unit="Hz", doc="fundamental frequency"),
            Param("amplitude", 1, ExpSigmoid(), unit="linear", doc="overall amplitude"),
            Param("table_weights", self.n_tables, Softmax(), unit="linear",
                  doc="mix of the tables"),
        )

    def config(self):
        return {
            "sample_rate": self.sample_rate,
            "n_tables": self.n_tables,
            "table_size": self.table_size,
            "initial": self.initial,
        }

    def lookup(self, phase: Tensor) -> Tensor:
        """Tables read at ``phase`` radians ``(B, L)`` → ``(B, L, n_tables)``, linear interp."""
        pos = phase / (2 * math.pi) * self.table_size
        base = torch.floor(pos)
        frac = (pos - base)[..., None].to(self.tables.dtype)
        i0 = base.long() % self.table_size
        i1 = (i0 + 1) % self.table_size
        tables = self.tables.t()  # (S, n_tables)
        return tables[i0] * (1 - frac) + tables[i1] * frac

    def forward(
        self, f0_hz: Tensor, amplitude: Tensor, table_weights: Tensor, n_samples: int
    ) -> Tensor:
        self.check_params({"f0_hz": f0_hz, "amplitude": amplitude, "table_weights": table_weights})
        if not (f0_hz.shape[:2] == amplitude.shape[:2] == table_weights.shape[:2]):
            raise ValueError(
                "Wavetable: f0_hz, amplitude and table_weights must share (batch, frames)"
            )
        f0 = upsample_linear(f0_hz, n_samples)[..., 0]
        omega = 2 * math.pi * f0.double() / self.sample_rate  # float64: see angular_cumsum
        phase = angular_cumsum(omega, exclusive=True).to(f0.dtype)
        weights = upsample_with_windows(table_weights * amplitude, n_samples)  # (B, L, n)
        return (self.lookup(phase) * weights).sum(-1)[:, None, :]

    # --- block rendering -------------------------------------------------------------
    def latency_frames(self, hop: int) -> int:
        return 1

    def state_specs(self):
        return (
            State("f0_hz", "(B, 1, 1) Hz: the last frame's f0"),
            State("weights", f"(B, 1, {self.n_tables}) linear: the last frame's table_weights "
                  "times amplitude"),
            State("phase", "(B, 1) float64 radians in [0, 2π): phase of f0 at the next sample"),
            State("position", "() int64: frames received so far"),
        )

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        return {
            "f0_hz": torch.zeros(batch, 1, 1, dtype=like.dtype, device=like.device),
            "weights": torch.zeros(batch, 1, self.n_tables, dtype=like.dtype,
                                   device=like.device),
            "phase": torch.zeros(batch, 1, dtype=torch.float64, device=like.device),
            "position": torch.zeros((), dtype=torch.int64, device=like.device),
        }

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        """One block: frames ``t0 .. t0+N-1`` in, offline blocks ``t0-1 .. t0+N-2`` out."""
        hop = n_samples // n_frames
        ff, new_f = push_frames(state["f0_hz"], params["f0_hz"])
        ww, new_w = push_frames(state["weights"], params["table_weights"] * params["amplitude"])
        f0 = interpolate_frames(ff, hop)[..., 0]  # (B, N*hop), as upsample_linear
        weights = crossfade_frames(ww, hop)  # (B, N*hop, n_tables), as upsample_with_windows
        valid = valid_mask(state["position"], 1, n_frames, hop, weights)
        omega = (2.0 * math.pi) * f0.to(torch.float64) / self.sample_rate
        phase, new_phase = advance_phase(state["phase"], omega * valid.to(torch.float64))
        out = (self.lookup(phase.to(f0.dtype)) * weights).sum(-1) * valid
        new_state: Dict[str, Tensor] = {
            "f0_hz": new_f,
            "weights": new_w,
            "phase": new_phase,
            "position": state["position"] + n_frames,
        }
        return out[:, None, :], new_state
