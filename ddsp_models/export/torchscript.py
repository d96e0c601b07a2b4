"""TorchScript export of a model's synthesis (streaming or whole-signal).

* ``streaming=True``: the scripted :class:`~ddsp_models.export.streaming.StreamingSynth`.
  ``forward(f0_hz (B, N, 1) Hz, loudness_db (B, N, 1) dB) -> (B, 1, N * hop)`` per block of
  ``N`` frames, with GRU, oscillator, noise and reverb state carried inside the module;
  ``reset()`` starts a new stream, ``flush()`` returns the final ``latency_samples``.
* ``streaming=False``: :class:`OfflineSynth`, ``forward(f0_hz (B, T, 1), loudness_db (B, T, 1))
  -> (B, 1, T * hop)``, the whole signal at once (equal to the model's offline rendering with
  the deterministic noise of :mod:`.noise`).

Both files carry ``ddsp_io.json`` (``torch.jit.load(path, _extra_files={"ddsp_io.json": ""})``)
with the rates, hop, latency and the I/O description.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor, nn

from .streaming import StreamingSynth

__all__ = ["OfflineSynth", "export_torchscript", "io_description", "IO_FILE"]

IO_FILE = "ddsp_io.json"


class OfflineSynth(nn.Module):
    """Whole-signal rendering through the streaming engine (reset, one block, flush, trim)."""

    def __init__(self, model, seed: int = 0):
        super().__init__()
        self.engine = StreamingSynth(model, seed=seed)
        self.hop = self.engine.hop
        self.latency_samples = self.engine.latency_samples

    def forward(self, f0_hz: Tensor, loudness_db: Tensor) -> Tensor:
        self.engine.reset()
        y = self.engine(f0_hz, loudness_db)
        tail = self.engine.flush()
        n = f0_hz.shape[1] * self.hop
        return torch.cat([y, tail], dim=-1)[..., self.latency_samples: self.latency_samples + n]


def io_description(engine: StreamingSynth, streaming: bool) -> dict:
    """What the exported file takes and returns (also written into it as ``ddsp_io.json``)."""
    return {
        "format": "torchscript",
        "streaming": streaming,
        "sample_rate": engine.sample_rate,
        "frame_rate": engine.frame_rate,
        "hop": engine.hop,
        "latency_samples": engine.latency_samples if streaming else 0,
        "inputs": {"f0_hz": "(batch, frames, 1) float32, Hz",
                   "loudness_db": "(batch, frames, 1) float32, dB (A-weighted, -80..0)"},
        "output": "(batch, 1, frames * hop) float32 audio",
        "methods": (["forward", "reset", "flush"] if streaming else ["forward"]),
        "noise": "counter-based (hash of the sample index), seed per batch row",
    }


def export_torchscript(model, path: str | Path, streaming: bool = True, seed: int = 0) -> Path:
    """Script the model's synthesis and save it atomically to ``path``; returns the path.

    Raises:
        UnsupportedGraphError: the model cannot stream (an MFCC encoder; the message says why).
    """
    from ..data.atomic import atomic_write

    module = StreamingSynth(model, seed) if streaming else OfflineSynth(model, seed)
    engine = module if streaming else module.engine
    scripted = torch.jit.script(module.eval())
    extra = {IO_FILE: json.dumps(io_description(engine, streaming), indent=1)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: torch.jit.save(scripted, tmp, _extra_files=extra))
    return path
