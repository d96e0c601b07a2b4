"""DDSP's RNN-FC decoder: (f0, loudness[, z]) frames → raw synth controls.

Each input feature goes through its own MLP stack; the stacks are concatenated, run through a
GRU, the GRU output is concatenated with the stacks again, and an output MLP plus one linear
layer gives ``n_out`` raw values per frame — the width ``P`` of a graph's parameter layout
(``ProcessorGraph.parameter_layout().n_params``). The graph maps them to physical units.
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from ..core.scaling import hz_to_midi
from .gru import gru_sequence

__all__ = ["RnnFcDecoder", "mlp_stack", "scale_f0", "scale_loudness"]

F0_MIDI_RANGE = 127.0
LOUDNESS_DB_RANGE = 80.0


def scale_f0(f0_hz: Tensor, mode: str = "midi") -> Tensor:
    """f0 in Hz to a network input near [0, 1].

    ``"midi"``: MIDI note / 127 (DDSP); ``"log"``: ``log(f0) / log(8000)`` (0 Hz → 0).
    """
    if mode in ("midi", "log"):
        return _scale_f0(f0_hz, mode)
    raise ValueError(f"f0_scaling must be 'midi' or 'log', got {mode!r}")


def _scale_f0(f0_hz: Tensor, mode: str) -> Tensor:
    """:func:`scale_f0` without the name check (scriptable)."""
    if mode == "log":
        return torch.log(f0_hz.clamp_min(1.0)) / math.log(8000.0)
    return hz_to_midi(f0_hz) / 127.0  # F0_MIDI_RANGE (a literal: TorchScript reads no globals)


def scale_loudness(loudness_db: Tensor, db_range: float = LOUDNESS_DB_RANGE) -> Tensor:
    """Loudness in dB (≤ 0) to ``loudness_db / db_range + 1`` (DDSP: -80 dB → 0, 0 dB → 1)."""
    return loudness_db / db_range + 1.0


def mlp_stack(n_in: int, width: int, layers: int) -> nn.Sequential:
    """``layers`` × (Linear → LayerNorm → LeakyReLU), DDSP's ``fc_stack``."""
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(n_in if i == 0 else width, width), nn.LayerNorm(width), nn.LeakyReLU()]
    return nn.Sequential(*mods)


class RnnFcDecoder(nn.Module):
    """MLP per input → concat → GRU → concat(GRU, MLPs) → MLP → linear head of width ``n_out``.

    Args:
        n_out: number of raw outputs per frame (the graph's ``n_params``).
        hidden_size: GRU width (DDSP: 512).
        mlp_size: width of every MLP layer (DDSP: 512).
        mlp_layers: layers per MLP stack (DDSP: 3).
        z_dims: width of an optional latent input ``z`` (0: none).
        f0_scaling: ``"midi"`` (midi / 127) or ``"log"``; see :func:`scale_f0`.
        loudness_db_range: loudness is scaled as ``db / range + 1``.

    ``forward(f0_hz (B,T,1) Hz, loudness_db (B,T,1) dB, z (B,T,z_dims) or None) -> (B,T,n_out)``.
    """

    def __init__(
        self,
        n_out: int,
        hidden_size: int = 512,
        mlp_size: int = 512,
        mlp_layers: int = 3,
        z_dims: int = 0,
        f0_scaling: str = "midi",
        loudness_db_range: float = LOUDNESS_DB_RANGE,
    ):
        super().__init__()
        if n_out < 1:
            raise ValueError(f"n_out must be >= 1 (the graph's parameter width), got {n_out}")
        if min(hidden_size, mlp_size, mlp_layers) < 1:
            raise ValueError("hidden_size, mlp_size and mlp_layers must be >= 1")
        scale_f0(torch.ones(1), f0_scaling)  # validates the name early
        self.n_out, self.z_dims = int(n_out), int(z_dims)
        self.f0_scaling, self.loudness_db_range = f0_scaling, float(loudness_db_range)
        n_inputs = 2 + (1 if z_dims else 0)
        self.f0_mlp = mlp_stack(1, mlp_size, mlp_layers)
        self.loudness_mlp = mlp_stack(1, mlp_size, mlp_layers)
        self.z_mlp = mlp_stack(z_dims, mlp_size, mlp_layers) if z_dims else None
        self.gru = nn.GRU(n_inputs * mlp_size, hidden_size, batch_first=True)
        self.out_mlp = mlp_stack(n_inputs * mlp_size + hidden_size, mlp_size, mlp_layers)
        self.head = nn.Linear(mlp_size, n_out)

    @torch.jit.unused
    def forward(self, f0_hz: Tensor, loudness_db: Tensor, z: Tensor | None = None) -> Tensor:
        for name, x in (("f0_hz", f0_hz), ("loudness_db", loudness_db)):
            if x.dim() != 3 or x.shape[-1] != 1:
                raise ValueError(f"{name} must be (batch, frames, 1), got {tuple(x.shape)}")
        if f0_hz.shape != loudness_db.shape:
            raise ValueError(
                f"f0_hz {tuple(f0_hz.shape)} and loudness_db {tuple(loudness_db.shape)} "
                "must have the same (batch, frames, 1) shape"
            )
        stacks = [
            self.f0_mlp(scale_f0(f0_hz, self.f0_scaling)),
            self.loudness_mlp(scale_loudness(loudness_db, self.loudness_db_range)),
        ]
        if self.z_mlp is not None:
            if z is None:
                raise ValueError(f"this decoder was built with z_dims={self.z_dims}; pass z")
            if z.shape[:2] != f0_hz.shape[:2] or z.shape[-1] != self.z_dims:
                raise ValueError(
                    f"z must be (batch, frames, {self.z_dims}) = "
                    f"{(*f0_hz.shape[:2], self.z_dims)}, got {tuple(z.shape)}"
                )
            stacks.append(self.z_mlp(z))
        elif z is not None:
            raise ValueError("this decoder has z_dims=0 but z was given; build it with z_dims")
        x = torch.cat(stacks, dim=-1)
        h, _ = gru_sequence(self.gru, x)  # nn.GRU's function; faster on CPU (nn/gru.py)
        return self.head(self.out_mlp(torch.cat(stacks + [h], dim=-1)))

    def init_hidden(self, batch: int, like: Tensor) -> Tensor:
        """The GRU state of a fresh stream, ``(1, batch, hidden_size)``."""
        return torch.zeros(1, batch, self.gru.hidden_size, dtype=like.dtype, device=like.device)

    @torch.jit.export
    def step(self, f0_hz: Tensor, loudness_db: Tensor, hidden: Tensor,
             z: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """A block of frames with the GRU state carried: ``(raw (B, N, n_out), hidden)``.

        The decoder is causal (frame ``t`` sees frames ``<= t``), so running it block by block
        from :meth:`init_hidden` equals :meth:`forward` over the whole sequence. Scriptable.
        """
        stacks: List[Tensor] = [
            self.f0_mlp(_scale_f0(f0_hz, self.f0_scaling)),
            self.loudness_mlp(scale_loudness(loudness_db, self.loudness_db_range)),
        ]
        z_mlp = self.z_mlp
        if z_mlp is not None and z is not None:
            stacks.append(z_mlp(z))
        y, hidden = self.gru(torch.cat(stacks, dim=-1), hidden)
        return self.head(self.out_mlp(torch.cat(stacks + [y], dim=-1))), hidden
