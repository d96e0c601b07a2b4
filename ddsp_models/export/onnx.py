"""ONNX export of one streaming step, with the state as explicit inputs and outputs.

ONNX graphs have no mutable state, so the exported step is a pure function::

    audio, *state_out = step(f0_hz, loudness_db, *state_in)

with ``f0_hz``, ``loudness_db`` ``(1, N, 1)`` float32 (``N = block_frames``, fixed at export)
and the state tensors of :class:`~ddsp_models.export.streaming.StreamingSynth` in the order of
its ``state_names`` — the decoder's GRU state, then every processor's declared state
(``node.name``) and the graph's delay lines, named from the declarations. Start a stream with
:func:`initial_state` (also described in the file's metadata ``ddsp_io``), feed each step's
``state_out`` to the next step. The output equals the TorchScript streaming module's.

Needs ``onnx`` and ``onnxscript`` (``torch.onnx.export(dynamo=True)``); running it needs
``onnxruntime``. A graph whose block path the exporter cannot trace raises
:class:`OnnxExportError` with the reason.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Dict, List

import torch
from torch import Tensor, nn

from ..errors import DDSPError
from .streaming import StreamingSynth

__all__ = ["export_onnx", "initial_state", "onnx_names", "OnnxExportError", "OnnxStep"]


class OnnxExportError(DDSPError, RuntimeError):
    """The ONNX exporter could not translate the model (the message names the cause)."""


def onnx_names(engine: StreamingSynth) -> list[str]:
    """ONNX input names of the state tensors (``node.state`` with other characters as ``_``)."""
    return [re.sub(r"[^A-Za-z0-9_.]", "_", k).strip("_") for k in engine.state_names]


def initial_state(engine: StreamingSynth) -> list[Tensor]:
    """State tensors of a fresh stream, in ``engine.state_names`` order."""
    return [engine.template[k].clone() for k in engine.state_names]


def _light_optimize(model) -> None:
    """Tidy an exported ``onnx_ir`` model in place: inline functions, fold constants, drop
    unused nodes, and give outputs that alias inputs or each other their own values (ONNX
    needs that) — the exporter's own ``optimize`` minus onnxscript's pattern rewriter, which
    finds nothing to fuse in these graphs but costs minutes on a large one (with onnx-ir 1.1
    it was 75 % of a 3.5-minute export)."""
    import onnx_ir.passes.common as common
    from onnx_ir.passes import Sequential
    from onnxscript.optimizer import fold_constants

    Sequential(common.InlinePass(), common.RemoveUnusedNodesPass())(model)
    fold_constants(model)
    Sequential(common.RemoveUnusedNodesPass(), common.RemoveUnusedFunctionsPass(),
               common.RemoveUnusedOpsetsPass(),
               common.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0),
               common.DeduplicateInitializersPass(), common.OutputFixPass(),
               common.NameFixPass())(model)


class OnnxStep(nn.Module):
    """``forward(f0_hz, loudness_db, *state) -> (audio (1, C, N*hop), *new_state)``."""

    def __init__(self, engine: StreamingSynth):
        super().__init__()
        self.engine = engine
        self.names: List[str] = list(engine.state_names)

    def forward(self, f0_hz: Tensor, loudness_db: Tensor, *state: Tensor):
        st: Dict[str, Tensor] = dict(zip(self.names, state))
        y, new = self.engine.step(f0_hz, loudness_db, st, False)
        # a state passed through unchanged must still be an output value of its own
        return (y, *[new[k].clone() if new[k] is st[k] else new[k] for k in self.names])


def export_onnx(model, path: str | Path, block_frames: int = 4, seed: int = 0,
                opset: int = 18) -> tuple[Path, dict]:
    """Export one streaming step of ``block_frames`` frames to ``path``; returns the path and
    the I/O description (also stored in the model's metadata as ``ddsp_io``)."""
    try:
        import onnx  # noqa: F401  (a clear error before any work)
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise OnnxExportError("ONNX export needs the onnx and onnxscript packages: "
                              "pip install 'ddsp-models[onnx]'") from err
    from ..data.atomic import atomic_write

    n = int(block_frames)
    engine = StreamingSynth(model, seed=seed, block_frames=n)
    state = initial_state(engine)
    names = onnx_names(engine)
    f0 = torch.full((1, n, 1), 220.0)
    ld = torch.full((1, n, 1), -30.0)
    step = OnnxStep(engine).eval()
    info = {
        "format": "onnx", "streaming": True, "block_frames": n, "sample_rate": engine.sample_rate,
        "frame_rate": engine.frame_rate, "hop": engine.hop,
        "latency_samples": engine.latency_samples,
        "inputs": {"f0_hz": f"(1, {n}, 1) float32 Hz", "loudness_db": f"(1, {n}, 1) float32 dB",
                   **{k: [list(v.shape), str(v.dtype).replace("torch.", "")]
                      for k, v in zip(names, state)}},
        "outputs": ["audio (1, C, %d) float32" % (n * engine.hop)] + [k + "_out" for k in names],
        "state": "feed each *_out to the next step's input of the same name; start from the "
                 "initial values (zeros, and each noise seed)",
        "initial_state": {k: v.flatten()[:1].tolist() if v.numel() == 1 else "zeros"
                          for k, v in zip(names, state)},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: str) -> None:
        import onnx

        with torch.no_grad():
            prog = torch.onnx.export(step, (f0, ld, *state), dynamo=True, opset_version=opset,
                                     input_names=["f0_hz", "loudness_db", *names],
                                     output_names=["audio", *[k + "_out" for k in names]],
                                     verbose=False, optimize=False)
        _light_optimize(prog.model)
        proto = prog.model_proto
        meta = proto.metadata_props.add()
        meta.key, meta.value = "ddsp_io", json.dumps(info)
        onnx.save(proto, tmp)

    try:
        atomic_write(path, write)
    except Exception as err:  # the exporter raises many types; name the cause
        raise OnnxExportError(f"ONNX export failed: {' '.join(str(err).split())[:400]}") from err
    return path, info
