"""Containers: processors made of processors.

* :class:`SerialChain` — ``p_n(... p_2(p_1(x)))``;
* :class:`ParallelMix` — ``Σ_i p_i(x)`` (channel counts broadcast: mono + stereo → stereo);
* :class:`DryWet` — ``(1 - mix) · x + mix · p(x)``.

A container's parameters are its children's, each name prefixed with the child's name and a
dot (``"0.gain_db"``, ``"comp.threshold_db"``; :class:`DryWet` uses ``"wet."``), in child
order. ``config()`` holds each child as ``{"type": ClassName, **child.config()}``, so
``processor_from_dict({"type": "SerialChain", **chain.config()})`` rebuilds the whole tree.
Children must be effects (``n_inputs == 1``).

Block rendering
---------------
A container keeps the block contract of :mod:`.base` whenever its children do. Its latency
follows from theirs:

* :class:`SerialChain`: the sum. Child ``i`` receives audio that lags the offline signal by
  ``d_i`` (the sum of the earlier children's latencies), so its time-varying parameters are
  delayed by ``d_i`` frames (a carried frame history), and it is not stepped before its own
  time 0: during the stream's first ``d_i`` frames its output is zeros, and a block straddling
  its time 0 is split. While the container flushes, each child first receives its remaining
  real frames (the upstream child's flushed tail) as normal calls, then its own flush of
  exactly its latency, and is not called after that.
* :class:`ParallelMix`: the maximum; a shorter branch's output is delayed by whole frames with
  a carried audio line, and it is not called after its own flush.
* :class:`DryWet`: the wet child's latency, at least one frame for a time-varying ``mix``
  (interpolated towards the next frame); the dry signal, the ``mix`` control and (where the
  wet child's latency is shorter) the wet signal are delayed to match.

State keys: each child's keys prefixed with its name and a dot (``"0.audio"``, ``"wet.gain_db"``),
plus the container's own keys, which hold no dot (so they never clash with a child's):
``frames``/``flushed`` counters, ``channels``, ``history:<child>:<param>`` frame histories
(:class:`SerialChain`), ``line:<child>`` audio lines (:class:`ParallelMix`), ``dry``, ``wet``,
``mix`` (:class:`DryWet`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import torch
from torch import Tensor, nn

from ..core.scaling import SigmoidRange
from ..core.upsample import control_to_audio_rate, interpolate_frames
from . import processor_from_dict
from .base import Param, Processor, State, check_audio
from .blocks import push_samples

__all__ = ["SerialChain", "ParallelMix", "DryWet", "processor_to_dict"]


def processor_to_dict(p: Processor) -> dict[str, Any]:
    """``{"type": ClassName, **config}``: the inverse of :func:`processor_from_dict`."""
    return {"type": type(p).__name__, **p.config()}


def _as_processor(p: Processor | Mapping[str, Any], owner: str) -> Processor:
    if isinstance(p, Mapping):
        p = processor_from_dict(p)
    if not isinstance(p, Processor):
        raise TypeError(f"{owner} children must be Processors or dicts, got {type(p).__name__}")
    if p.n_inputs != 1:
        raise ValueError(
            f"{owner} children must be effects with one audio input; "
            f"{type(p).__name__} has n_inputs={p.n_inputs}"
        )
    return p


def _prefixed(prefix: str, specs: Sequence[Param]) -> list[Param]:
    return [dataclasses.replace(s, name=f"{prefix}.{s.name}") for s in specs]


def _split(prefix: str, params: Mapping[str, Tensor]) -> dict[str, Tensor]:
    head = prefix + "."
    return {k[len(head):]: v for k, v in params.items() if k.startswith(head)}


def _broadcast_channels(owner: str, channels: Sequence[int]) -> int:
    """The channel count of a sum of signals with these channel counts (1 broadcasts)."""
    others = {c for c in channels if c != 1}
    if len(others) > 1:
        raise ValueError(f"{owner}: cannot mix signals with {sorted(set(channels))} channels")
    return others.pop() if others else 1


# --- block rendering helpers (TorchScript-compatible) -----------------------------------

def _with_prefix(d: Dict[str, Tensor], prefix: str) -> Dict[str, Tensor]:
    """The entries of ``d`` whose key starts with ``prefix``, with the prefix removed."""
    out: Dict[str, Tensor] = {}
    n = len(prefix)
    for k, v in d.items():
        if k.startswith(prefix):
            out[k[n:]] = v
    return out


def _frame_slice(params: Dict[str, Tensor], a: int, b: int) -> Dict[str, Tensor]:
    """Frames ``a .. b-1`` of the time-varying ``(B, N, K)`` values; static ones unchanged."""
    out: Dict[str, Tensor] = {}
    for k, v in params.items():
        out[k] = v[:, a:b] if v.dim() == 3 else v
    return out


def _history_key(name: str, param: str) -> str:
    """State key of the frame history of child ``name``'s parameter ``param`` (no dot)."""
    return "history:" + name + ":" + param.replace(".", ":")


def _segments(t0: int, delay: int, frames: int, latency: int, n: int,
              flushing: bool) -> Tuple[int, int, int]:
    """Where in a block a child runs: ``(s0, s1, s2)`` block-relative frames.

    The child starts ``delay`` frames into the container's stream and has ``latency``; the
    block covers container frames ``t0 .. t0+n-1``; ``frames`` is the stream's length ``T``
    (known once flushing). Frames ``[0, s0)`` come before the child's time 0 and ``[s2, n)``
    after its own flush (it is not called: zeros); ``[s0, s1)`` are normal calls and
    ``[s1, s2)`` its flush.
    """
    s0 = min(max(delay - t0, 0), n)
    if not flushing:
        return s0, n, n
    s1 = min(max(frames + delay - t0, s0), n)
    s2 = min(max(frames + delay + latency - t0, s1), n)
    return s0, s1, s2


def _counter(like: Tensor) -> Tensor:
    return torch.zeros((), dtype=torch.int64, device=like.device)


def _prefixed_states(prefix: str, specs: Sequence[State]) -> list[State]:
    return [State(f"{prefix}.{s.name}", s.doc) for s in specs]


def _counter_states() -> list[State]:
    return [State("frames", "() int64: frames of the stream so far (not counting the flush)"),
            State("flushed", "() int64: frames flushed so far")]


class _Container(Processor):
    """Children in an ``nn.ModuleList`` with names used as parameter prefixes."""

    n_inputs = 1

    def __init__(self, processors: Sequence[Processor | Mapping[str, Any]],
                 names: Sequence[str] | None = None):
        super().__init__()
        owner = type(self).__name__
        if isinstance(processors, (Processor, Mapping)) or len(processors) == 0:
            raise ValueError(f"{owner} needs a non-empty list of processors")
        children = [_as_processor(p, owner) for p in processors]
        names = [str(i) for i in range(len(children))] if names is None else [str(n) for n in names]
        if len(names) != len(children):
            raise ValueError(f"{owner}: {len(names)} names for {len(children)} processors")
        if len(set(names)) != len(names) or any("." in n or not n for n in names):
            raise ValueError(
                f"{owner}: names must be unique, non-empty and without dots, got {names}"
            )
        self.processors = nn.ModuleList(children)
        self.names = names
        #: > 0 in a fixed-block stream (see use_fixed_blocks): children aligned by whole blocks
        self.block_frames = 0

    def use_fixed_blocks(self, n_frames: int) -> None:
        self.block_frames = int(n_frames)
        for p in self.processors:
            p.use_fixed_blocks(n_frames)

    def child_latencies(self, hop: int) -> List[int]:
        """Each child's latency in frames at this hop."""
        out: List[int] = []
        for p in self.processors:
            out.append(p.latency_frames(hop))
        return out

    def _step_branches(self, branches: List[Tensor], params: Dict[str, Tensor],
                       state: Dict[str, Tensor], new: Dict[str, Tensor], n_frames: int,
                       hop: int, flushing: bool) -> Tensor:
        """One block of children side by side, child ``i`` on ``branches[i]``: each runs its
        real frames, then its own flush, then nothing; outputs lined up to the longest latency
        by the carried ``line:<child>`` audio and summed (ParallelMix, Multiband). Writes the
        children's states, the lines and the counters into ``new``."""
        frames = int(state["frames"])
        t0 = frames + int(state["flushed"])
        outs: List[Tensor] = []
        latencies = self.child_latencies(hop)
        for i, p in enumerate(self.processors):
            name = self.names[i]
            prefix = name + "."
            x = branches[i]
            line = state["line:" + name]
            sub = _with_prefix(params, prefix)
            cs = _with_prefix(state, prefix)
            _, s1, s2 = _segments(t0, 0, frames, latencies[i], n_frames, flushing)
            pieces: List[Tensor] = []
            if s1 > 0:
                y, cs = p.step([x[..., :s1 * hop]], _frame_slice(sub, 0, s1), cs, s1,
                               s1 * hop, False)
                pieces.append(y)
            if s2 > s1:
                y, cs = p.step([torch.zeros_like(x[..., s1 * hop:s2 * hop])],
                               _frame_slice(sub, s1, s2), cs, s2 - s1, (s2 - s1) * hop, True)
                pieces.append(y)
            if s2 < n_frames:  # after its own flush (only a shorter branch: the line is there)
                pieces.append(torch.zeros(x.shape[0], line.shape[1], (n_frames - s2) * hop,
                                          dtype=x.dtype, device=x.device))
            y = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=-1)
            y, new["line:" + name] = push_samples(line, y)
            outs.append(y)
            for k, v in cs.items():
                new[prefix + k] = v
        total = outs[0]
        for o in outs[1:]:
            total = total + o
        new["frames"] = state["frames"] if flushing else state["frames"] + n_frames
        new["flushed"] = state["flushed"] + n_frames if flushing else state["flushed"]
        return total

    def _check_state_keys(self) -> None:
        keys = [s.name for s in self.state_specs()]
        if len(set(keys)) != len(keys):
            dup = sorted({k for k in keys if keys.count(k) > 1})
            raise ValueError(f"{type(self).__name__}: state keys clash: {dup}; rename children")

    def _children_state_specs(self) -> list[State]:
        return [s for n, p in zip(self.names, self.processors)
                for s in _prefixed_states(n, p.state_specs())]

    def config(self):
        return {"processors": [processor_to_dict(p) for p in self.processors],
                "names": list(self.names)}

    def param_specs(self):
        return tuple(s for n, p in zip(self.names, self.processors)
                     for s in _prefixed(n, p.param_specs()))

    def _children(self, params: Mapping[str, Tensor]):
        self.check_params(params)
        for n, p in zip(self.names, self.processors):
            yield p, _split(n, params)

    def extra_repr(self) -> str:
        return f"names={self.names}"


class SerialChain(_Container):
    """Children applied one after the other: ``p_n(... p_1(x))``.

    Args:
        processors: effects (instances or ``{"type": ..., **config}`` dicts), in order.
        names: parameter prefixes, default ``"0", "1", ...``.
    """

    def __init__(self, processors: Sequence[Processor | Mapping[str, Any]],
                 names: Sequence[str] | None = None):
        super().__init__(processors, names)
        self._check_state_keys()

    def child_delays(self, hop: int) -> List[int]:
        """``d_i``: how many frames child ``i``'s input lags the offline signal (the earlier
        children's latencies; in a fixed-block stream rounded up to whole blocks, the extra
        frames taken up by a carried audio line before the child)."""
        out: List[int] = []
        total = 0
        for lat in self.child_latencies(hop):
            n = self.block_frames
            if n > 0:
                total = (total + n - 1) // n * n
            out.append(total)
            total += lat
        return out

    def _line_frames(self, hop: int) -> List[int]:
        """Frames of the audio line before each child (non-zero only with fixed blocks)."""
        delays = self.child_delays(hop)
        lats = self.child_latencies(hop)
        out: List[int] = [0]
        for i in range(1, len(delays)):
            out.append(delays[i] - delays[i - 1] - lats[i - 1])
        return out

    @classmethod
    def examples(cls):
        gain, static = {"type": "Gain"}, {"type": "Gain", "time_varying": False}
        return [
            {"processors": [gain, gain], "names": ["pre", "post"]},
            {"processors": [static, gain, {"type": "StereoGain"}, gain]},
        ]

    def n_output_channels(self, input_channels=()):
        ch = tuple(input_channels)
        for p in self.processors:
            ch = (p.n_output_channels(ch),)
        return ch[0] if ch else 1

    def latency_frames(self, hop: int) -> int:
        return self.child_delays(hop)[-1] + self.child_latencies(hop)[-1]

    def state_specs(self):
        own = [State(_history_key(n, s.name),
                     f"(B, d, {s.size}) {s.unit}: the last d frames of {n}.{s.name}, d the "
                     "sum of the earlier children's latencies")
               for i, (n, p) in enumerate(zip(self.names, self.processors)) if i > 0
               for s in p.param_specs() if s.time_varying]
        own += [State(f"line:{n}", "(B, C, e * hop) audio before the child, e > 0 only in a "
                      "fixed-block stream (delays rounded up to whole blocks)")
                for i, n in enumerate(self.names) if i > 0]
        return (*self._children_state_specs(), *own, *_counter_states(),
                State("channels", f"({len(self.names) + 1},) int64: channels of the input and "
                      "of each child's output"))

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        state: Dict[str, Tensor] = {}
        channels = [int(input_channels[0])]
        lines = self._line_frames(hop)
        for i, (n, p, d) in enumerate(zip(self.names, self.processors, self.child_delays(hop))):
            for k, v in p.init_state(batch, channels[-1:], hop, like).items():
                state[f"{n}.{k}"] = v
            if i > 0:
                state[f"line:{n}"] = torch.zeros(batch, channels[-1], lines[i] * hop,
                                                 dtype=like.dtype, device=like.device)
                for spec in p.param_specs():
                    if spec.time_varying:
                        state[_history_key(n, spec.name)] = torch.zeros(
                            batch, d, spec.size, dtype=like.dtype, device=like.device)
            channels.append(int(p.n_output_channels((channels[-1],))))
        state["frames"], state["flushed"] = _counter(like), _counter(like)
        state["channels"] = torch.tensor(channels, dtype=torch.int64, device=like.device)
        return state

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        hop = n_samples // n_frames
        if self.block_frames > 0:
            return self._fixed_step(inputs[0], params, state, n_frames, hop)
        x = inputs[0]
        batch = x.shape[0]
        frames = int(state["frames"])
        t0 = frames + int(state["flushed"])
        new: Dict[str, Tensor] = {}
        latencies = self.child_latencies(hop)
        delays = self.child_delays(hop)
        for i, p in enumerate(self.processors):
            name = self.names[i]
            delay = delays[i]
            prefix = name + "."
            sub = self._child_params(name, delay, params, state, new, n_frames)
            cs = _with_prefix(state, prefix)
            s0, s1, s2 = _segments(t0, delay, frames, latencies[i], n_frames, flushing)
            channels = int(state["channels"][i + 1])
            pieces: List[Tensor] = []
            if s0 > 0:  # before the child's time 0
                pieces.append(torch.zeros(batch, channels, s0 * hop, dtype=x.dtype,
                                          device=x.device))
            if s1 > s0:  # its real frames (during the container's flush: the upstream tail)
                y, cs = p.step([x[..., s0 * hop:s1 * hop]], _frame_slice(sub, s0, s1), cs,
                               s1 - s0, (s1 - s0) * hop, False)
                pieces.append(y)
            if s2 > s1:  # its own flush
                y, cs = p.step([torch.zeros_like(x[..., s1 * hop:s2 * hop])],
                               _frame_slice(sub, s1, s2), cs, s2 - s1, (s2 - s1) * hop, True)
                pieces.append(y)
            if s2 < n_frames:  # after its flush
                pieces.append(torch.zeros(batch, channels, (n_frames - s2) * hop,
                                          dtype=x.dtype, device=x.device))
            x = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=-1)
            for k, v in cs.items():
                new[prefix + k] = v
        new["frames"] = state["frames"] if flushing else state["frames"] + n_frames
        new["flushed"] = state["flushed"] + n_frames if flushing else state["flushed"]
        for k, v in state.items():  # anything not touched (e.g. a history whose param is absent)
            if k not in new:
                new[k] = v
        return x, new

    def _child_params(self, name: str, delay: int, params: Dict[str, Tensor],
                      state: Dict[str, Tensor], new: Dict[str, Tensor],
                      n_frames: int) -> Dict[str, Tensor]:
        """Child ``name``'s parameters for this block, time-varying ones delayed by ``delay``
        frames (its input's lag) through the carried histories, written into ``new``."""
        prefix = name + "."
        sub: Dict[str, Tensor] = {}
        for k, v in params.items():
            if k.startswith(prefix):
                pk = k[len(prefix):]
                if delay > 0 and v.dim() == 3:
                    hk = _history_key(name, pk)
                    both = torch.cat([state[hk], v], dim=1)
                    sub[pk] = both[:, :n_frames]
                    new[hk] = both[:, n_frames:]
                else:
                    sub[pk] = v
        return sub

    def _fixed_step(self, x: Tensor, params: Dict[str, Tensor], state: Dict[str, Tensor],
                    n_frames: int, hop: int) -> Tuple[Tensor, Dict[str, Tensor]]:
        """A block of a fixed-block stream, without data-dependent control flow: every child
        is stepped on every block; before its own time 0 (a whole number of blocks) its output
        is zeroed and its state kept."""
        frames = state["frames"]
        new: Dict[str, Tensor] = {}
        delays = self.child_delays(hop)
        for i, p in enumerate(self.processors):
            name = self.names[i]
            delay = delays[i]
            prefix = name + "."
            if i > 0:
                x, new["line:" + name] = push_samples(state["line:" + name], x)
            sub = self._child_params(name, delay, params, state, new, n_frames)
            cs = _with_prefix(state, prefix)
            y, stepped = p.step([x], sub, cs, n_frames, n_frames * hop, False)
            if delay > 0:
                before = frames < delay
                y = torch.where(before, torch.zeros_like(y), y)
                for k, v in stepped.items():
                    stepped[k] = torch.where(before, cs[k], v)
            x = y
            for k, v in stepped.items():
                new[prefix + k] = v
        new["frames"] = frames + n_frames
        for k, v in state.items():
            if k not in new:
                new[k] = v
        return x, new

    def forward(self, x: Tensor, **params: Tensor) -> Tensor:
        check_audio("SerialChain", x)
        for p, sub in self._children(params):
            x = p(x, **sub)
        return x


class ParallelMix(_Container):
    """Children applied to the same input, outputs summed (channel counts broadcast).

    Args:
        processors: effects (instances or dicts).
        names: parameter prefixes, default ``"0", "1", ...``.
    """

    def __init__(self, processors: Sequence[Processor | Mapping[str, Any]],
                 names: Sequence[str] | None = None):
        super().__init__(processors, names)
        self._check_state_keys()

    @classmethod
    def examples(cls):
        return [
            {"processors": [{"type": "Gain"}, {"type": "Gain", "time_varying": False}],
             "names": ["moving", "fixed"]},
            {"processors": [{"type": "Gain", "time_varying": False},
                            {"type": "StereoGain"}]},
        ]

    def n_output_channels(self, input_channels=()):
        return _broadcast_channels(
            "ParallelMix", [p.n_output_channels(tuple(input_channels)) for p in self.processors]
        )

    def latency_frames(self, hop: int) -> int:
        return max(self.child_latencies(hop))

    def state_specs(self):
        own = [State(f"line:{n}", f"(B, C, (L - L_{n}) * hop) output of {n} not yet mixed "
                     "(lines up a shorter latency)") for n in self.names]
        return (*self._children_state_specs(), *own, *_counter_states())

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        state: Dict[str, Tensor] = {}
        total = self.latency_frames(hop)
        for n, p, lat in zip(self.names, self.processors, self.child_latencies(hop)):
            for k, v in p.init_state(batch, list(input_channels), hop, like).items():
                state[f"{n}.{k}"] = v
            c = int(p.n_output_channels(tuple(input_channels)))
            state[f"line:{n}"] = torch.zeros(batch, c, (total - lat) * hop,
                                             dtype=like.dtype, device=like.device)
        state["frames"], state["flushed"] = _counter(like), _counter(like)
        return state

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        hop = n_samples // n_frames
        x = inputs[0]
        new: Dict[str, Tensor] = {}
        branches: List[Tensor] = [x for _ in range(len(self.names))]
        return self._step_branches(branches, params, state, new, n_frames, hop, flushing), new

    def forward(self, x: Tensor, **params: Tensor) -> Tensor:
        check_audio("ParallelMix", x)
        outs = [p(x, **sub) for p, sub in self._children(params)]
        _broadcast_channels("ParallelMix", [o.shape[1] for o in outs])
        total = outs[0]
        for o in outs[1:]:
            total = total + o
        return total


class DryWet(Processor):
    """Linear crossfade between the input and a wrapped effect: ``(1 - mix) x + mix p(x)``.

    Args:
        processor: the wet effect (instance or dict); its parameters appear as ``"wet.<name>"``.
        time_varying: ``mix`` per frame ``(B, T, 1)`` instead of static ``(B, 1)``.

    A mono input mixed with a stereo wet signal is broadcast to stereo.
    """

    n_inputs = 1

    def __init__(self, processor: Processor | Mapping[str, Any], time_varying: bool = False):
        super().__init__()
        self.processor = _as_processor(processor, "DryWet")
        self.time_varying = bool(time_varying)
        keys = [s.name for s in self.state_specs()]
        if len(set(keys)) != len(keys):
            raise ValueError(f"DryWet: state keys clash: {keys}")

    @classmethod
    def examples(cls):
        gain, static = {"type": "Gain"}, {"type": "Gain", "time_varying": False}
        return [
            {"processor": gain},
            {"processor": gain, "time_varying": True},
            {"processor": static, "time_varying": True},
            {"processor": {"type": "StereoGain", "time_varying": False}},
        ]

    def use_fixed_blocks(self, n_frames: int) -> None:
        self.processor.use_fixed_blocks(n_frames)

    def latency_frames(self, hop: int) -> int:
        # A time-varying mix is interpolated towards the next frame: one frame of look-ahead.
        return max(self.processor.latency_frames(hop), 1 if self.time_varying else 0)

    def state_specs(self):
        own = [State("dry", "(B, C, L * hop) input not yet mixed"),
               State("wet", "(B, C_wet, (L - L_wet) * hop) wet output not yet mixed")]
        if self.time_varying:
            own.append(State("mix", "(B, L, 1) ratio: the last L frames of mix"))
        return (*_prefixed_states("wet", self.processor.state_specs()), *own,
                *_counter_states())

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        state = {f"wet.{k}": v for k, v in
                 self.processor.init_state(batch, list(input_channels), hop, like).items()}
        kw = {"dtype": like.dtype, "device": like.device}
        wet_channels = int(self.processor.n_output_channels(tuple(input_channels)))
        total, wet_latency = self.latency_frames(hop), self.processor.latency_frames(hop)
        state["dry"] = torch.zeros(batch, input_channels[0], total * hop, **kw)
        state["wet"] = torch.zeros(batch, wet_channels, (total - wet_latency) * hop, **kw)
        if self.time_varying:
            state["mix"] = torch.zeros(batch, total, 1, **kw)
        state["frames"], state["flushed"] = _counter(like), _counter(like)
        return state

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        hop = n_samples // n_frames
        x = inputs[0]
        frames = int(state["frames"])
        t0 = frames + int(state["flushed"])
        new: Dict[str, Tensor] = {}
        sub = _with_prefix(params, "wet.")
        cs = _with_prefix(state, "wet.")
        _, s1, s2 = _segments(t0, 0, frames, self.processor.latency_frames(hop), n_frames,
                              flushing)
        pieces: List[Tensor] = []
        if s1 > 0:
            y, cs = self.processor.step([x[..., :s1 * hop]], _frame_slice(sub, 0, s1), cs, s1,
                                        s1 * hop, False)
            pieces.append(y)
        if s2 > s1:
            y, cs = self.processor.step([torch.zeros_like(x[..., s1 * hop:s2 * hop])],
                                        _frame_slice(sub, s1, s2), cs, s2 - s1,
                                        (s2 - s1) * hop, True)
            pieces.append(y)
        if s2 < n_frames:  # after the wet child's flush (its latency is shorter: "wet" is there)
            pieces.append(torch.zeros(x.shape[0], state["wet"].shape[1], (n_frames - s2) * hop,
                                      dtype=x.dtype, device=x.device))
        wet = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=-1)
        wet, new["wet"] = push_samples(state["wet"], wet)
        dry, new["dry"] = push_samples(state["dry"], x)
        mix = params["mix"]
        if mix.dim() == 3:  # frames t0-L .. t0-L+N, interpolated: lags the offline mix by L
            both = torch.cat([state["mix"], mix], dim=1)
            m = interpolate_frames(both[:, :n_frames + 1], hop).transpose(1, 2)
            new["mix"] = both[:, n_frames:]
        else:
            m = mix[:, :, None]
        for k, v in cs.items():
            new["wet." + k] = v
        new["frames"] = state["frames"] if flushing else state["frames"] + n_frames
        new["flushed"] = state["flushed"] + n_frames if flushing else state["flushed"]
        return (1 - m) * dry + m * wet, new

    def config(self):
        return {"processor": processor_to_dict(self.processor), "time_varying": self.time_varying}

    def param_specs(self):
        mix = Param("mix", 1, SigmoidRange(0.0, 1.0), self.time_varying, unit="ratio",
                    doc="0 dry only, 1 wet only")
        return (mix, *_prefixed("wet", self.processor.param_specs()))

    def n_output_channels(self, input_channels=()):
        wet = self.processor.n_output_channels(tuple(input_channels))
        return _broadcast_channels("DryWet", [*input_channels[:1], wet])

    def forward(self, x: Tensor, **params: Tensor) -> Tensor:
        check_audio("DryWet", x)
        self.check_params(params)
        wet = self.processor(x, **_split("wet", params))
        _broadcast_channels("DryWet", [x.shape[1], wet.shape[1]])
        mix = control_to_audio_rate(params["mix"], x.shape[-1])
        return (1 - mix) * x + mix * wet

    def extra_repr(self) -> str:
        return f"time_varying={self.time_varying}"
