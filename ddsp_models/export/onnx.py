"""ONNX export of one streaming step, with the state as explicit inputs and outputs.

ONNX graphs have no mutable state, so the exported step is a pure function::

    audio, *state_out = step(f0_hz, loudness_db, *state_in)

with ``f0_hz``, ``loudness_db`` ``(1, N, 1)`` float32 (``N = block_frames``, fixed at export)
and the state tensors of :class:`~ddsp_models.export.streaming.StreamingSynth` in the order of
:data:`STATE_NAMES` (``position`` is the int64 count of frames already rendered). Start a
stream with :func:`initial_state` (also written into the file's metadata as shapes), feed each
step's ``state_out`` to the next step. The output equals the TorchScript streaming module's.

Needs ``onnx`` and ``onnxscript`` (``torch.onnx.export(dynamo=True)``); running it needs
``onnxruntime``. An operator the exporter cannot translate raises :class:`OnnxExportError`
naming it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor, nn

from .streaming import StreamingSynth

__all__ = ["export_onnx", "initial_state", "STATE_NAMES", "OnnxExportError", "OnnxStep"]

STATE_NAMES = ("h", "f0_hist", "amp_hist", "phase", "noise_tail", "noise_line", "reverb_tail",
               "position")


class OnnxExportError(RuntimeError):
    """The ONNX exporter could not translate the model (the message names the operator)."""


def initial_state(engine: StreamingSynth, first_f0_hz: float = 0.0) -> list[Tensor]:
    """State tensors of a fresh stream of batch 1 (as :meth:`StreamingSynth._init_state`).

    ``first_f0_hz`` is the first frame's f0 (the oscillator's history starts at it)."""
    engine.reset()
    engine._init_state(torch.full((1, 1, 1), float(first_f0_hz)))
    state = [getattr(engine, n).clone() for n in STATE_NAMES[:-1]]
    return state + [torch.zeros((), dtype=torch.int64)]


class OnnxStep(nn.Module):
    """``forward(f0_hz, loudness_db, *state) -> (audio (1, 1, N*hop), *new_state)``."""

    def __init__(self, engine: StreamingSynth):
        super().__init__()
        self.engine = engine

    def forward(self, f0_hz: Tensor, loudness_db: Tensor, h: Tensor, f0_hist: Tensor,
                amp_hist: Tensor, phase: Tensor, noise_tail: Tensor, noise_line: Tensor,
                reverb_tail: Tensor, position: Tensor):
        e = self.engine
        e.h, e.f0_hist, e.amp_hist, e.phase = h, f0_hist, amp_hist, phase
        e.noise_tail, e.noise_line, e.reverb_tail = noise_tail, noise_line, reverb_tail
        e.frames_done = position  # a tensor here: positions stay symbolic in the graph
        y = e.synthesize(f0_hz, e._decode(f0_hz, loudness_db))
        return (y, e.h, e.f0_hist, e.amp_hist, e.phase, e.noise_tail, e.noise_line,
                e.reverb_tail, position + f0_hz.shape[1])


def export_onnx(model, path: str | Path, block_frames: int = 4, seed: int = 0,
                opset: int = 18) -> tuple[Path, dict]:
    """Export one streaming step of ``block_frames`` frames to ``path``; returns the path and
    the I/O description (also stored in the model's metadata as ``ddsp_io``)."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise ImportError("ONNX export needs the onnx and onnxscript packages: "
                          "pip install onnx onnxscript (and onnxruntime to run it)") from err
    from ..data.atomic import atomic_write

    engine = StreamingSynth(model, seed=seed)
    state = initial_state(engine, 220.0)
    n = int(block_frames)
    f0 = torch.full((1, n, 1), 220.0)
    ld = torch.full((1, n, 1), -30.0)
    step = OnnxStep(engine).eval()
    names_in = ["f0_hz", "loudness_db", *STATE_NAMES]
    names_out = ["audio", *[s + "_out" for s in STATE_NAMES]]
    info = {
        "format": "onnx", "streaming": True, "block_frames": n, "sample_rate": engine.sample_rate,
        "frame_rate": engine.frame_rate, "hop": engine.hop,
        "latency_samples": engine.latency_samples,
        "inputs": {"f0_hz": f"(1, {n}, 1) float32 Hz", "loudness_db": f"(1, {n}, 1) float32 dB",
                   **{k: [list(v.shape), str(v.dtype).replace('torch.', '')]
                      for k, v in zip(STATE_NAMES, state)}},
        "outputs": ["audio (1, 1, %d) float32" % (n * engine.hop)]
                   + [s + "_out" for s in STATE_NAMES],
        "state": "feed each *_out to the next step's input of the same name; start from zeros "
                 "(f0_hist: the first f0 repeated, position: 0)",
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: str) -> None:
        import onnx

        with torch.no_grad():
            prog = torch.onnx.export(step, (f0, ld, *state), dynamo=True, opset_version=opset,
                                     input_names=names_in, output_names=names_out,
                                     verbose=False)
        proto = prog.model_proto
        meta = proto.metadata_props.add()
        meta.key, meta.value = "ddsp_io", json.dumps(info)
        onnx.save(proto, tmp)

    try:
        atomic_write(path, write)
    except Exception as err:  # the exporter raises many types; name the cause
        raise OnnxExportError(f"ONNX export failed: {' '.join(str(err).split())[:400]}") from err
    return path, info
