"""Two synths for sounds beyond harmonic instruments:

* ``FMSynth``: DDX7-style frequency modulation — 2 to 6 sine operators at fixed (or learned)
  ratios of ``f0``, routed by a named algorithm or an explicit modulator → carrier edge list,
  with modulation indices and carrier amplitudes over time (Caspe, Reiss & McPherson, "DDX7:
  Differentiable FM Synthesis of Musical Instrument Sounds", ISMIR 2022).
* ``NoiseBandSynth``: NoiseBandNet-style — a bank of band-passed noises (log-spaced bands),
  precomputed once as a looped buffer, mixed by frame-rate amplitudes per band (Barahona-Ríos
  & Collins, "NoiseBandNet: Controllable Time-Varying Neural Synthesis of Sound Effects Using
  Filterbanks", 2023).

Both have latency one frame when streamed (controls interpolated towards the next frame).
"""

from __future__ import annotations

import math
from typing import Dict, List, Sequence, Tuple

import torch
from torch import Tensor, nn

from ..core.fm_feedback import feedback_sine, feedback_sine_loop
from ..core.noise import counter_noise
from ..core.oscillators import advance_phase
from ..core.scaling import ExpSigmoid, LogSigmoidRange, SigmoidRange
from ..core.upsample import hop_size, interpolate_frames, upsample_linear
from .base import Param, Processor, State
from .blocks import control_block, push_frames, valid_mask

__all__ = ["FMSynth", "NoiseBandSynth", "ALGORITHMS", "fm_routing"]

#: Samples per chunk of the operators' float64 phase in ``FMSynth.forward`` without gradients
#: to ``f0`` or the ratios (a chunk's few float64 rows stay in cache).
_PHASE_CHUNK = 2048

#: Named routings: ``(n_operators, modulator -> carrier edges)``, operators numbered from 0
#: (operator ``i`` here is the DX7's operator ``i + 1``). ``n_operators`` None: any count.
#: Carriers are the operators that modulate nothing. The DX7 algorithms are drawn from its
#: algorithm chart without the feedback loop.
ALGORITHMS: Dict[str, Tuple[int | None, List[Tuple[int, int]]]] = {
    "stack": (None, []),  # n-1 -> ... -> 1 -> 0 (filled in by fm_routing)
    "parallel": (None, []),  # every operator a carrier (additive)
    "pairs": (None, []),  # 1 -> 0, 3 -> 2, 5 -> 4
    "dx7_1": (6, [(1, 0), (5, 4), (4, 3), (3, 2)]),  # 2->1, 6->5->4->3
    "dx7_5": (6, [(1, 0), (3, 2), (5, 4)]),  # three pairs
    "dx7_16": (6, [(1, 0), (2, 0), (3, 2), (4, 0), (5, 4)]),  # 2, 4->3, 6->5 all into 1
    "dx7_22": (6, [(1, 0), (5, 2), (5, 3), (5, 4)]),  # 2->1, 6 into 3, 4 and 5
    "dx7_32": (6, []),  # six carriers
}


def fm_routing(routing: str | Sequence[Sequence[int]], n_operators: int
               ) -> Tuple[List[Tuple[int, int]], List[int], List[int], List[int]]:
    """Resolve a routing: ``(edges, carriers, modulators, order)``.

    ``routing`` is a name of :data:`ALGORITHMS` or a list of ``[modulator, carrier]`` pairs.
    ``order`` lists every operator after all operators that modulate it (a topological
    order); a cycle or a self-loop raises ``ValueError``.
    """
    n = int(n_operators)
    if not 2 <= n <= 6:
        raise ValueError(f"FMSynth needs 2 to 6 operators, got {n}")
    if isinstance(routing, str):
        if routing not in ALGORITHMS:
            raise ValueError(f"unknown FM routing {routing!r}; known: {sorted(ALGORITHMS)} "
                             "or a list of [modulator, carrier] pairs")
        need, edges = ALGORITHMS[routing]
        if need is not None and need != n:
            raise ValueError(f"routing {routing!r} needs n_operators={need}, got {n}")
        if routing == "stack":
            edges = [(i + 1, i) for i in range(n - 1)]
        elif routing == "pairs":
            if n % 2:
                raise ValueError(f"routing 'pairs' needs an even n_operators, got {n}")
            edges = [(i + 1, i) for i in range(0, n, 2)]
    else:
        edges = [(int(a), int(b)) for a, b in routing]
    edges = sorted(set(edges))
    for a, b in edges:
        if not (0 <= a < n and 0 <= b < n) or a == b:
            raise ValueError(f"FM edge {a} -> {b} is not between two of the {n} operators "
                             "(numbered from 0; self-feedback is not supported)")
    modulators = sorted({a for a, _ in edges})
    carriers = [i for i in range(n) if i not in modulators]
    order: List[int] = []
    pending = set(range(n))
    while pending:
        ready = sorted(i for i in pending if all(a not in pending for a, b in edges if b == i))
        if not ready:
            raise ValueError(f"FM routing {edges} has a cycle")
        order += ready
        pending -= set(ready)
    return edges, carriers, modulators, order


class FMSynth(Processor):
    """Sine operators in a modulation graph: ``forward(f0_hz, amplitudes, mod_indices,
    [ratios], n_samples) -> (B, 1, n_samples)``.

    Operator ``i`` runs at ``ratio_i · f0`` with the phase ``φ_i`` accumulated in float64
    (exclusive sum from 0), and outputs ``y_i = level_i · sin(φ_i + sum_{j -> i} y_j)``: a
    modulator's level is its modulation index (radians), a carrier's its amplitude; the output
    is the sum of the carriers. A 2-operator ``"stack"`` with constant ``f0`` is exactly
    ``A sin(ω_c n + I sin(ω_m n))``.

    Args:
        sample_rate: Hz.
        n_operators: 2 .. 6.
        routing: a name of :data:`ALGORITHMS` (``"stack"``, ``"parallel"``, ``"pairs"``,
            ``"dx7_1"``, ``"dx7_5"``, ``"dx7_16"``, ``"dx7_22"``, ``"dx7_32"``) or a list of
            ``[modulator, carrier]`` operator pairs (from 0). Carriers: the operators that
            modulate nothing. No feedback loops.
        ratios: frequency ratio of each operator to ``f0`` (default ``1, 1, 2, 3, ...``).
        learn_ratios: declare ``ratios`` as a static parameter ``(B, n_operators)`` in
            ``[0.25, 16]`` (log scale) instead of using the fixed ones.
        max_index: largest modulation index (radians) of the ``mod_indices`` scaling.
        feedback: operators that feed their own sine back into their phase:
            ``s[n] = sin(φ[n] + mods[n] + β s[n-1])``, ``y = level · s``, with a static
            ``feedback`` parameter ``β`` in ``[0, max_feedback]`` per listed operator (a
            contraction for ``β < 1``). A per-sample recursion (numba on CPU, exact adjoint
            gradients; a TorchScript loop in ``step``).
        max_feedback: top of the ``feedback`` scaling (< 1).

    Parameters: ``f0_hz`` (external, ``(B, T, 1)``), ``amplitudes`` ``(B, T, n_carriers)``,
    ``mod_indices`` ``(B, T, n_modulators)`` (absent without modulators), ``ratios`` (if
    learned), ``feedback`` ``(B, n_feedback)`` (if any operator has feedback). Controls are interpolated linearly to audio rate. Sidebands above Nyquist fold
    back (no band limiting, as DDX7).
    """

    n_inputs = 0

    def __init__(
        self,
        sample_rate: float = 16000,
        n_operators: int = 2,
        routing: str | List[List[int]] = "stack",
        ratios: List[float] | None = None,
        learn_ratios: bool = False,
        max_index: float = 4 * math.pi,
        feedback: List[int] | None = None,
        max_feedback: float = 0.95,
    ):
        super().__init__()
        edges, carriers, modulators, order = fm_routing(routing, n_operators)
        self.sample_rate = float(sample_rate)
        self.n_operators = int(n_operators)
        self.routing = routing if isinstance(routing, str) else [[a, b] for a, b in edges]
        if ratios is None:
            ratios = [1.0] + [float(max(1, i)) for i in range(1, self.n_operators)]
        if len(ratios) != self.n_operators or min(ratios) <= 0:
            raise ValueError(f"ratios must be {self.n_operators} positive numbers, got {ratios}")
        self.ratios = [float(r) for r in ratios]
        self.learn_ratios = bool(learn_ratios)
        self.max_index = float(max_index)
        self.register_buffer("ratio_values", torch.tensor(self.ratios, dtype=torch.float64),
                             persistent=False)
        # a leading (-1, -1) never matches an operator: it keeps the lists non-empty, so
        # TorchScript infers List[int] for a routing without edges
        self.edge_from: List[int] = [-1] + [a for a, _ in edges]
        self.edge_to: List[int] = [-1] + [b for _, b in edges]
        self.order: List[int] = order
        self.carrier_of: List[int] = [carriers.index(i) if i in carriers else -1
                                      for i in range(self.n_operators)]
        self.modulator_of: List[int] = [modulators.index(i) if i in modulators else -1
                                        for i in range(self.n_operators)]
        self.n_carriers = len(carriers)
        self.n_modulators = len(modulators)
        self.feedback = sorted({int(i) for i in (feedback or [])})
        if any(not 0 <= i < self.n_operators for i in self.feedback):
            raise ValueError(f"feedback operators must be among 0 .. {self.n_operators - 1}, "
                             f"got {feedback}")
        if not 0 < max_feedback < 1:
            raise ValueError(f"max_feedback must lie in (0, 1), got {max_feedback}")
        self.max_feedback = float(max_feedback)
        self.n_feedback = len(self.feedback)
        self.feedback_of: List[int] = [self.feedback.index(i) if i in self.feedback else -1
                                       for i in range(self.n_operators)]

    def config(self):
        return {"sample_rate": self.sample_rate, "n_operators": self.n_operators,
                "routing": self.routing, "ratios": self.ratios,
                "learn_ratios": self.learn_ratios, "max_index": self.max_index,
                "feedback": self.feedback, "max_feedback": self.max_feedback}

    @classmethod
    def examples(cls):
        return [
            {},
            {"n_operators": 4, "routing": "pairs", "ratios": [1.0, 2.0, 3.0, 0.5]},
            {"n_operators": 6, "routing": "dx7_16", "learn_ratios": True, "max_index": 3.0},
            {"n_operators": 3, "routing": [[2, 0], [2, 1]]},
            {"n_operators": 3, "routing": "parallel"},
            {"n_operators": 3, "routing": "stack", "feedback": [2, 0]},
        ]

    def param_specs(self):
        specs = [
            Param("f0_hz", 1, external=True, unit="Hz", doc="fundamental frequency"),
            Param("amplitudes", self.n_carriers, ExpSigmoid(), unit="linear",
                  doc="amplitude of each carrier"),
        ]
        if self.n_modulators:
            specs.append(Param("mod_indices", self.n_modulators,
                               ExpSigmoid(max_value=self.max_index), unit="rad",
                               doc="modulation index (output level) of each modulator"))
        if self.learn_ratios:
            specs.append(Param("ratios", self.n_operators, LogSigmoidRange(0.25, 16.0),
                               time_varying=False, unit="ratio",
                               doc="frequency of each operator / f0"))
        if self.n_feedback:
            specs.append(Param("feedback", self.n_feedback, SigmoidRange(0.0, self.max_feedback),
                               time_varying=False, unit="rad",
                               doc="own sine fed back into the phase, per feedback operator"))
        return tuple(specs)

    @torch.jit.unused
    def _feedback_sine(self, p: Tensor, beta: Tensor, s0: Tensor) -> Tensor:
        return feedback_sine(p, beta, s0)

    def operators(self, phase: List[Tensor], amplitudes: Tensor, mod_indices: Tensor,
                  feedback: Tensor, feedback_sine: Tensor) -> Tuple[Tensor, Tensor]:
        """The operator graph: ``phase`` one ``(B, M)`` row of radians per operator,
        ``amplitudes`` ``(B, n_carriers, M | 1)``, ``mod_indices`` ``(B, n_modulators, M | 1)``,
        ``feedback`` ``β`` and ``feedback_sine`` (the sine before the first sample), both ``(B,
        n_feedback)`` → ``(output (B, M), the feedback operators' last sines)``."""
        outs: List[Tensor] = [phase[0]] * self.n_operators
        last: List[Tensor] = [feedback_sine[:, f:f + 1] for f in range(self.n_feedback)]
        y = torch.zeros_like(phase[0])
        for op in self.order:
            arg = phase[op]
            for e in range(len(self.edge_to)):
                if self.edge_to[e] == op:
                    arg = arg + outs[self.edge_from[e]]
            f = self.feedback_of[op]
            if f >= 0:
                beta, s0 = feedback[:, f].to(arg.dtype), feedback_sine[:, f].to(arg.dtype)
                if torch.jit.is_scripting():
                    s, _ = feedback_sine_loop(arg, beta, s0)
                else:
                    s = self._feedback_sine(arg, beta, s0)
                last[f] = s[:, -1:]
            else:
                s = torch.sin(arg)
            c = self.carrier_of[op]
            if c >= 0:
                y = y + amplitudes[:, c] * s
            else:
                outs[op] = mod_indices[:, self.modulator_of[op]] * s
        return y, (torch.cat(last, dim=1) if self.n_feedback else feedback_sine)

    def _ratios(self, params: Dict[str, Tensor], batch: int) -> Tensor:
        if self.learn_ratios:
            return params["ratios"].to(torch.float64)
        return self.ratio_values.to(torch.float64)[None, :].expand(batch, self.n_operators)

    def forward(self, f0_hz: Tensor, amplitudes: Tensor, n_samples: int,
                mod_indices: Tensor | None = None, ratios: Tensor | None = None,
                feedback: Tensor | None = None) -> Tensor:
        params = {"f0_hz": f0_hz, "amplitudes": amplitudes}
        if mod_indices is not None:
            params["mod_indices"] = mod_indices
        if ratios is not None:
            params["ratios"] = ratios
        if feedback is not None:
            params["feedback"] = feedback
        self.check_params(params)
        b, t, _ = f0_hz.shape
        hop_size(t, n_samples)
        dtype = amplitudes.dtype
        ratios = self._ratios(params, b)[:, :, None]
        fb = feedback if feedback is not None else amplitudes.new_zeros(b, 0)
        if self.n_feedback or (torch.is_grad_enabled()
                               and (f0_hz.requires_grad or ratios.requires_grad)):
            f0 = upsample_linear(f0_hz.to(torch.float64), n_samples)[..., 0]  # (B, n)
            omega = (2.0 * math.pi / self.sample_rate) * f0
            # the unwrapped exclusive phase of f0, once; operator i's is ratio_i times it
            base = torch.cumsum(omega, dim=-1) - omega
            phase = [torch.remainder(base * ratios[:, i], 2.0 * math.pi).to(dtype)
                     for i in range(self.n_operators)]
            amps = _rows_to_audio_rate(amplitudes, n_samples)
            idx = (_rows_to_audio_rate(mod_indices, n_samples) if mod_indices is not None
                   else amps[:, :0])
            y, _ = self.operators(phase, amps, idx, fb, torch.zeros_like(fb))
            return y[:, None, :]
        return self._forward_chunks(f0_hz, amplitudes, mod_indices, ratios, n_samples)[:, None]

    @torch.jit.unused
    def _forward_chunks(self, f0_hz: Tensor, amplitudes: Tensor, mod_indices: Tensor | None,
                        ratios: Tensor, n_samples: int) -> Tensor:
        """``forward`` without feedback and without gradients to ``f0`` or the ratios,
        ``_PHASE_CHUNK`` samples at a time, every intermediate a chunk that stays in cache:
        only the output ``(B, n_samples)`` is allocated at full length (large fresh arrays cost
        page faults, more than the arithmetic). Gradients reach the amplitudes and modulation
        indices through the chunks.

        The same phase as the differentiable path, in float64 cycles: ``f0 / sample_rate`` is
        linear over each frame (``w_u`` at its centre, slope ``d_u / hop`` to the next), so its
        exclusive sum at sample ``u·hop + r`` is ``P_u + w_u r + d_u r (r - 1) / (2 hop)`` with
        ``P_u`` the sum of the frames before (a closed form: no per-sample cumulative sum).
        Each operator's is ``ratio_i`` times it, reduced to its fraction, cast, times ``2π``.

        ``f0_hz`` ``(B, T, 1)`` Hz, ``ratios`` ``(B, n_operators, 1)`` float64 → ``(B,
        n_samples)``."""
        b, t, _ = f0_hz.shape
        hop = hop_size(t, n_samples)
        n_frames = -(-n_samples // hop)
        dtype = amplitudes.dtype

        def held(x: Tensor) -> Tensor:  # (B, T, K) -> (B·K, n_frames + 1, 1), last frame held
            k = x.shape[-1]
            x = torch.cat([x, x[:, -1:].expand(b, n_frames + 1 - t, k)], dim=1)
            return x.transpose(1, 2).reshape(b * k, n_frames + 1, 1)

        w = held(f0_hz.to(torch.float64)) / self.sample_rate  # cycles per sample, (B, F + 1, 1)
        d = w[:, 1:] - w[:, :-1]
        w = w[:, :-1]
        inc = hop * w + d * (0.5 * (hop - 1))  # cycles over each frame
        start = torch.cumsum(inc, dim=1) - inc  # P_u, (B, F, 1)
        r = torch.arange(hop, dtype=torch.float64, device=w.device)
        q = r * (r - 1) / (2 * hop)
        amps = held(amplitudes)
        idx = held(mod_indices) if mod_indices is not None else None
        empty = amplitudes.new_zeros(b, 0)
        per = max(1, _PHASE_CHUNK // hop)
        pieces: List[Tensor] = []
        for f in range(0, n_frames, per):
            g = min(per, n_frames - f)
            m = g * hop
            sl = slice(f, f + g)
            base = torch.addcmul(torch.addcmul(start[:, sl], w[:, sl], r), d[:, sl], q)
            base = base.reshape(b, m)
            phase = [(base * ratios[:, i]).frac_().to(dtype).mul_(2.0 * math.pi)
                     for i in range(self.n_operators)]
            a = interpolate_frames(amps[:, f:f + g + 1], hop).reshape(b, -1, m)
            i = (interpolate_frames(idx[:, f:f + g + 1], hop).reshape(b, -1, m)
                 if idx is not None else a[:, :0])
            y, _ = self.operators(phase, a, i, empty, empty)
            pieces.append(y)
        return torch.cat(pieces, dim=-1)[:, :n_samples]

    # --- block rendering ---------------------------------------------------------------
    def latency_frames(self, hop: int) -> int:
        return 1

    def state_specs(self):
        states = [State("f0_hz", "(B, 1, 1) float64 Hz: f0 of the last frame"),
                  State("amplitudes", f"(B, 1, {self.n_carriers}): the last frame")]
        if self.n_modulators:
            states.append(State("mod_indices", f"(B, 1, {self.n_modulators}): the last frame"))
        if self.n_feedback:
            states.append(State("feedback_sine", f"(B, {self.n_feedback}): the last sine of "
                                "each feedback operator"))
        states += [State("phase", f"(B, {self.n_operators}, 1) float64 radians in [0, 2π): "
                         "each operator's phase at the next sample"),
                   State("position", "() int64: frames received so far")]
        return tuple(states)

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        kw = {"dtype": like.dtype, "device": like.device}
        state = {"f0_hz": torch.zeros(batch, 1, 1, dtype=torch.float64, device=like.device),
                 "amplitudes": torch.zeros(batch, 1, self.n_carriers, **kw)}
        if self.n_modulators:
            state["mod_indices"] = torch.zeros(batch, 1, self.n_modulators, **kw)
        if self.n_feedback:
            state["feedback_sine"] = torch.zeros(batch, self.n_feedback, **kw)
        state["phase"] = torch.zeros(batch, self.n_operators, 1, dtype=torch.float64,
                                     device=like.device)
        state["position"] = torch.zeros((), dtype=torch.int64, device=like.device)
        return state

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        hop = n_samples // n_frames
        new: Dict[str, Tensor] = {}
        amps, new["amplitudes"] = control_block(params["amplitudes"], state["amplitudes"], hop)
        if self.n_modulators:
            idx, new["mod_indices"] = control_block(params["mod_indices"], state["mod_indices"], hop)
        else:
            idx = amps[:, :0]
        f0, new["f0_hz"] = control_block(params["f0_hz"].to(torch.float64), state["f0_hz"], hop)
        b = f0.shape[0]
        valid = valid_mask(state["position"], 1, n_frames, hop, f0)
        omega = (2.0 * math.pi / self.sample_rate) * f0 * self._ratios(params, b)[:, :, None] * valid
        phase, new["phase"] = advance_phase(state["phase"], omega, dim=-1)
        if self.n_feedback:
            fb, fb_sine = params["feedback"], state["feedback_sine"]
        else:
            fb = amps.new_zeros(b, 0)
            fb_sine = fb
        ph = phase.to(amps.dtype)
        y, last = self.operators([ph[:, i] for i in range(self.n_operators)], amps, idx, fb,
                                 fb_sine)
        if self.n_feedback:
            new["feedback_sine"] = last
        y = y * valid.to(amps.dtype)
        new["position"] = state["position"] + n_frames
        return y[:, None, :], new


def _rows_to_audio_rate(x: Tensor, n_samples: int) -> Tensor:
    """``upsample_linear`` of ``(B, T, K)`` controls laid out as contiguous rows ``(B, K, n)``
    (each operator's envelope is then read without a stride)."""
    b, t, k = x.shape
    rows = x.transpose(1, 2).reshape(b * k, t, 1)
    return upsample_linear(rows, n_samples).reshape(b, k, n_samples)


class NoiseBandSynth(Processor):
    """A bank of band-passed noises mixed by frame-rate amplitudes:
    ``forward(amplitudes (B, T, n_bands), n_samples) -> (B, 1, n_samples)``.

    At construction, ``loop_length`` samples of counter noise (seed ``seed``) are split by an
    FFT into ``n_bands`` brick-wall bands with log-spaced edges from ``min_hz`` to ``max_hz``
    (default Nyquist); each band is scaled to RMS ``1 / sqrt(n_bands)`` (all amplitudes one:
    unit-RMS noise with equal energy per band). The bands are circular, so the buffer loops
    without a seam. Output sample ``n`` is ``sum_k a_k(n) bank[k, n mod loop_length]`` with
    ``a_k`` interpolated linearly between frames. ``learn_bank=True`` makes the bank a
    trainable ``nn.Parameter`` (as NoiseBandNet can), else a fixed buffer rebuilt from the
    seed. ``band_edges_hz`` holds the ``n_bands + 1`` edges.

    Block rendering: the stream carries the last frame and its sample position; blocks read
    the same looped buffer, so any block sizes equal the whole render.
    """

    n_inputs = 0

    def __init__(
        self,
        sample_rate: float = 16000,
        n_bands: int = 128,
        min_hz: float = 40.0,
        max_hz: float | None = None,
        loop_length: int = 65536,
        learn_bank: bool = False,
        seed: int = 0,
    ):
        super().__init__()
        self.sample_rate = float(sample_rate)
        self.n_bands = int(n_bands)
        self.min_hz = float(min_hz)
        self.max_hz = float(max_hz) if max_hz is not None else self.sample_rate / 2
        self.loop_length = int(loop_length)
        self.learn_bank = bool(learn_bank)
        self.seed = int(seed)
        if self.n_bands < 1 or not (0 < self.min_hz < self.max_hz <= self.sample_rate / 2):
            raise ValueError("NoiseBandSynth needs n_bands >= 1 and 0 < min_hz < max_hz <= "
                             f"Nyquist, got n_bands={n_bands}, min_hz={min_hz}, max_hz={max_hz}")
        edges = self.min_hz * (self.max_hz / self.min_hz) ** (
            torch.arange(self.n_bands + 1, dtype=torch.float64) / self.n_bands)
        bank = band_noise_bank(edges, self.loop_length, self.sample_rate, self.seed)
        bank = bank.to(torch.get_default_dtype())
        self.register_buffer("band_edges_hz", edges, persistent=False)
        if self.learn_bank:
            self.bank = nn.Parameter(bank)
        else:
            self.register_buffer("bank", bank, persistent=False)

    def config(self):
        return {"sample_rate": self.sample_rate, "n_bands": self.n_bands, "min_hz": self.min_hz,
                "max_hz": self.max_hz, "loop_length": self.loop_length,
                "learn_bank": self.learn_bank, "seed": self.seed}

    @classmethod
    def examples(cls):
        return [
            {"n_bands": 16, "min_hz": 100.0, "loop_length": 4096},
            {"n_bands": 8, "min_hz": 200.0, "max_hz": 6000.0, "loop_length": 2048,
             "learn_bank": True, "seed": 3},
        ]

    def param_specs(self):
        return (Param("amplitudes", self.n_bands, ExpSigmoid(), unit="linear",
                      doc="gain of each noise band"),)

    def render(self, frames: Tensor, start: Tensor, hop: int) -> Tensor:
        """``frames`` ``(B, N + 1, K)`` interpolated over ``N`` hops, bank read from sample
        ``start`` (0-dim int64) on: ``(B, N * hop)``."""
        b, n1, k = frames.shape
        n = n1 - 1
        idx = torch.remainder(torch.arange(n * hop, device=frames.device, dtype=torch.int64)
                              + start, self.loop_length)
        seg = self.bank.to(frames.dtype)[:, idx].reshape(k, n, hop).transpose(0, 1)  # (N, K, hop)
        c0 = torch.bmm(frames[:, :n].transpose(0, 1), seg)  # (N, B, hop)
        c1 = torch.bmm(frames[:, 1:].transpose(0, 1), seg)
        w = torch.arange(hop, device=frames.device, dtype=frames.dtype) / hop
        y = c0 + (c1 - c0) * w
        return y.transpose(0, 1).reshape(b, n * hop)

    def forward(self, amplitudes: Tensor, n_samples: int) -> Tensor:
        self.check_params({"amplitudes": amplitudes})
        b, t, k = amplitudes.shape
        hop = hop_size(t, n_samples)
        frames = -(-n_samples // hop)
        ext = torch.cat([amplitudes, amplitudes[:, -1:].expand(b, frames - t + 1, k)], dim=1)
        start = torch.zeros((), dtype=torch.int64, device=amplitudes.device)
        return self.render(ext, start, hop)[:, None, :n_samples]

    # --- block rendering ---------------------------------------------------------------
    def latency_frames(self, hop: int) -> int:
        return 1

    def state_specs(self):
        return (State("amplitudes", f"(B, 1, {self.n_bands}) linear: the last frame"),
                State("position", "() int64: frames received so far"))

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        return {"amplitudes": torch.zeros(batch, 1, self.n_bands, dtype=like.dtype,
                                          device=like.device),
                "position": torch.zeros((), dtype=torch.int64, device=like.device)}

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        hop = n_samples // n_frames
        frames, last = push_frames(state["amplitudes"], params["amplitudes"])
        y = self.render(frames, state["position"] * hop - hop, hop)
        y = y * valid_mask(state["position"], 1, n_frames, hop, y)
        return y[:, None, :], {"amplitudes": last, "position": state["position"] + n_frames}


def band_noise_bank(edges_hz: Tensor, length: int, sample_rate: float, seed: int) -> Tensor:
    """``(n_bands, length)`` float64: counter noise split into the bands ``[edges[k],
    edges[k+1])`` (the last band includes its upper edge) by an FFT of the whole loop, each
    band scaled to RMS ``1 / sqrt(n_bands)``. Raises ``ValueError`` if a band holds no FFT bin
    (make ``length`` longer or ``min_hz`` higher)."""
    like = torch.zeros((), dtype=torch.float64)
    noise = counter_noise(1, 0, length, seed, like)[0]
    spec = torch.fft.rfft(noise)
    freqs = torch.arange(spec.shape[-1], dtype=torch.float64) * (sample_rate / length)
    k = edges_hz.shape[0] - 1
    lo, hi = edges_hz[:-1, None], edges_hz[1:, None]
    inside = (freqs >= lo) & ((freqs < hi) | ((freqs == hi) & (torch.arange(k)[:, None] == k - 1)))
    counts = inside.sum(-1)
    if bool((counts == 0).any()):
        first = int(torch.nonzero(counts == 0)[0])
        raise ValueError(
            f"NoiseBandSynth: band {first} ({float(edges_hz[first]):.2f} .. "
            f"{float(edges_hz[first + 1]):.2f} Hz) holds no FFT bin of a {length}-sample loop; "
            "use a longer loop_length, fewer bands or a higher min_hz")
    bank = torch.fft.irfft(spec[None, :] * inside, n=length)
    rms = bank.pow(2).mean(-1, keepdim=True).sqrt()
    return bank / rms / math.sqrt(k)
