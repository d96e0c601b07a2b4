"""Block-by-block rendering of an :class:`~ddsp_models.nn.Autoencoder` with carried state.

:class:`StreamingSynth` takes the frame-rate features of one block (``f0_hz`` and
``loudness_db``, ``N`` frames) and returns ``N * hop`` samples. It is made of the model's own
modules, nothing copied by attribute name:

* the decoder's :meth:`~ddsp_models.nn.decoder.RnnFcDecoder.step` (GRU state carried; the
  decoder is causal);
* the graph's parameter layout, each column group mapped to physical units by its declared
  :class:`~ddsp_models.core.scaling.Scaling` (as a scriptable module);
* :class:`~ddsp_models.graph.stream.GraphStream`, which renders any graph from the processors'
  block contract (state, latency, flush).

**Latency.** The stream lags the offline rendering by the graph's latency
(``latency_frames``, from the processors' look-ahead and the wiring): output sample ``m``
equals offline sample ``m - latency_samples``. :meth:`StreamingSynth.flush` returns the last
``latency_samples`` samples (the last frame's parameters held, as offline rendering holds
them).

**External controls.** The graph's external controls (``f0_hz``, ``gate``, ``velocity``,
``note``, ``loudness_db``; :mod:`ddsp_models.graph.controls`) are derived from each block's
``f0_hz`` and ``loudness_db`` by :func:`~ddsp_models.graph.controls.derive_control` (the
TorchScript and ONNX signatures take only those two), or given explicitly with
:meth:`StreamingSynth.step_controls`. During the flush each is held at its last frame.

Every graph streams (static parameters are the model's learned constants), with one exception
refused with a reason (:class:`UnsupportedGraphError`): a model with an MFCC encoder (its
latent ``z`` comes from non-causal audio framing). The module is TorchScript-compatible
(``torch.jit.script(StreamingSynth(model))``).
"""

import copy
from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn

from ..errors import DDSPError
from ..graph.controls import check_externals, derive_control
from ..graph.stream import GraphStream

__all__ = ["StreamingSynth", "UnsupportedGraphError", "check_streamable"]


class UnsupportedGraphError(DDSPError, ValueError):
    """The model cannot be rendered block by block (the message says why and what to do)."""


def check_streamable(model) -> None:
    """Raise :class:`UnsupportedGraphError` if ``model`` cannot stream (see the module doc)."""
    if getattr(model, "encoder", None) is not None:
        raise UnsupportedGraphError(
            "models with an MFCC encoder (latent z from non-causal audio framing) cannot be "
            "rendered block by block; train without `encoder:` to stream or export it")
    layout = model.graph.parameter_layout()
    try:
        check_externals(layout.external_specs(), "the graph")
    except ValueError as err:
        raise UnsupportedGraphError(f"{err}; streaming derives its controls from f0 and "
                                    "loudness") from err


class StreamingSynth(nn.Module):
    """An autoencoder's decoder and graph, run block by block (see the module docstring).

    Args:
        model: an :class:`~ddsp_models.nn.Autoencoder` (its modules are copied; eval mode).
        seed: seed of the counter-based noise (row ``b`` of a batch uses ``seed + b``).
        batch: batch size of the stream (hosts stream one signal: 1).
        dtype: float dtype of the stream.
        block_frames: 0 for blocks of any size; ``N`` for blocks of exactly ``N`` frames
            without data-dependent control flow (the ONNX form; no flush), see
            :class:`~ddsp_models.graph.stream.GraphStream`.

    ``forward(f0_hz (B, N, 1) Hz, loudness_db (B, N, 1) dB) -> (B, C, N * hop)`` with any
    ``N >= 1`` per call. ``reset()`` starts a new stream; ``flush()`` returns the last
    ``latency_samples`` samples. Attributes ``sample_rate``, ``frame_rate``, ``hop``,
    ``latency_frames``, ``latency_samples``, ``state_names``.
    """

    # TorchScript reads attribute types from here (empty lists cannot be inferred)
    param_node: List[str]
    param_name: List[str]
    param_offset: List[int]
    param_size: List[int]
    static_node: List[str]
    static_name: List[str]
    static_value: List[Tensor]
    control_names: List[str]

    def __init__(self, model, seed: int = 0, batch: int = 1, dtype: torch.dtype = torch.float32,
                 block_frames: int = 0):
        super().__init__()
        check_streamable(model)
        self.sample_rate = int(model.sample_rate)
        self.frame_rate = int(model.frame_rate)
        self.hop = int(model.hop)
        self.seed = int(seed)
        self.batch = int(batch)
        device = next(model.parameters()).device
        self.decoder = copy.deepcopy(model.decoder).to(dtype).eval()
        graph = copy.deepcopy(model.graph).to(dtype).eval()
        self.stream = GraphStream(graph, self.hop, block_frames=block_frames)
        self.latency_frames = int(self.stream.latency_frames)
        self.latency_samples = self.latency_frames * self.hop
        layout = graph.parameter_layout()
        # time-varying parameters: decoder columns in layout order; static ones: the model's
        # learned constants (see Autoencoder.params_from_raw)
        varying = [e for e in layout.predicted if e.time_varying]
        static = [e for e in layout.predicted if not e.time_varying]
        self.scalings = nn.ModuleList([e.scaling.module() for e in varying])
        self.param_node = [e.node for e in varying]
        self.param_name = [e.param for e in varying]
        self.param_size = [int(e.size) for e in varying]
        self.param_offset = [int(sum(self.param_size[:i])) for i in range(len(varying))]
        self.n_params = int(model.decoder.n_out)
        with torch.no_grad():
            values = model.params_from_raw(torch.zeros(1, 1, self.n_params, dtype=dtype,
                                                       device=device))
        self.static_node = [e.node for e in static]
        self.static_name = [e.param for e in static]
        self.static_value = [values[e.node][e.param].detach().to(dtype).expand(
            self.batch, e.size).contiguous() for e in static]
        # the graph's external controls; f0_hz is an input, the others are derived or given
        self.control_names = sorted(layout.externals)
        like = torch.zeros((), dtype=dtype, device=device)
        template = {"#hidden": self.decoder.init_hidden(self.batch, like),
                    "#last_raw": like.new_zeros(self.batch, 1, self.n_params),
                    "#last_f0": like.new_zeros(self.batch, 1, 1),
                    **{f"#last_{k}": like.new_zeros(self.batch, 1, 1)
                       for k in self.control_names if k != "f0_hz"},
                    **self.stream.init_state(self.batch, like)}
        for k in template:
            if k == "seed" or k.endswith(".seed"):  # counter-noise seeds (see core.noise)
                template[k] = template[k] + self.seed
        self.state_names: List[str] = list(template)
        self.template: Dict[str, Tensor] = {k: v.clone() for k, v in template.items()}
        self.state: Dict[str, Tensor] = {k: v.clone() for k, v in template.items()}
        self.eval()

    @torch.jit.export
    def reset(self):
        """Start a new stream."""
        fresh: Dict[str, Tensor] = {}
        for k, v in self.template.items():
            fresh[k] = v.clone()
        self.state = fresh

    @torch.jit.export
    def params(self, raw: Tensor) -> Dict[str, Dict[str, Tensor]]:
        """Raw decoder outputs ``(B, N, P)`` → ``{node: {param: physical value}}``."""
        out: Dict[str, Dict[str, Tensor]] = {}
        for i, scaling in enumerate(self.scalings):
            node = self.param_node[i]
            off = self.param_offset[i]
            value = scaling(raw[..., off:off + self.param_size[i]])
            if node not in out:
                empty: Dict[str, Tensor] = {}
                out[node] = empty
            out[node][self.param_name[i]] = value
        for i in range(len(self.static_node)):
            node = self.static_node[i]
            if node not in out:
                empty2: Dict[str, Tensor] = {}
                out[node] = empty2
            out[node][self.static_name[i]] = self.static_value[i]
        return out

    @torch.jit.export
    def step(self, f0_hz: Tensor, loudness_db: Tensor, state: Dict[str, Tensor],
             flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        """One block from an explicit state: ``(audio, new_state)`` (the ONNX form); the
        graph's other external controls are derived from ``f0_hz`` and ``loudness_db``."""
        given: Dict[str, Tensor] = {}
        return self.step_controls(f0_hz, loudness_db, given, state, flushing)

    @torch.jit.export
    def step_controls(self, f0_hz: Tensor, loudness_db: Tensor, given: Dict[str, Tensor],
                      state: Dict[str, Tensor], flushing: bool
                      ) -> Tuple[Tensor, Dict[str, Tensor]]:
        """:meth:`step` with external controls ``given`` ``{name: (B, N, 1)}`` (e.g. a MIDI
        ``gate``) used instead of their derivation. While flushing, every control but
        ``f0_hz`` is held at its last frame (``given`` and ``loudness_db`` are not read)."""
        n = f0_hz.shape[1]
        b = f0_hz.shape[0]
        if flushing:
            raw = state["#last_raw"].expand(b, n, self.n_params)
            hidden = state["#hidden"]
        else:
            raw, hidden = self.decoder.step(f0_hz, loudness_db, state["#hidden"])
        controls: Dict[str, Tensor] = {"f0_hz": f0_hz}
        held: Dict[str, Tensor] = {}
        for name in self.control_names:
            if name != "f0_hz":
                if flushing:
                    value = state["#last_" + name].expand(b, n, 1)
                elif name in given:
                    value = given[name].to(f0_hz.dtype)
                else:
                    value = derive_control(name, f0_hz, loudness_db)
                controls[name] = value
                held["#last_" + name] = value[:, n - 1:]
        y, new = self.stream(self.params(raw), controls, [], state, n, flushing)
        for k, v in held.items():
            new[k] = v
        new["#hidden"] = hidden
        new["#last_raw"] = raw[:, n - 1:]
        new["#last_f0"] = f0_hz[:, n - 1:]
        return y, new

    def forward(self, f0_hz: Tensor, loudness_db: Tensor) -> Tensor:
        if f0_hz.dim() != 3 or f0_hz.shape[-1] != 1 or f0_hz.shape != loudness_db.shape:
            raise ValueError("f0_hz and loudness_db must both be (batch, frames, 1)")
        if f0_hz.shape[0] != self.batch:
            raise ValueError("this stream was built for batch " + str(self.batch)
                             + "; build StreamingSynth(model, batch=...) for another")
        y, self.state = self.step(f0_hz, loudness_db, self.state, False)
        return y

    @torch.jit.export
    def flush(self) -> Tensor:
        """The last ``latency_samples`` samples (the last frame held). Call once at the end."""
        n = self.latency_frames
        last = self.state["#last_f0"]
        if n == 0:
            return torch.zeros(self.batch, 1, 0, dtype=last.dtype, device=last.device)
        f0 = last.expand(self.batch, n, 1)
        y, self.state = self.step(f0, f0, self.state, True)
        return y
