"""Multiband processing: :class:`Multiband` splits its input into frequency bands with
Linkwitz-Riley crossovers, runs one effect (a chain: any effect, e.g. a :class:`SerialChain`)
per band and sums the bands.

The crossover tree
------------------
``N`` bands need ``N - 1`` crossover frequencies ``f_1 < ... < f_{N-1}``. The standard LR tree
splits the rest of the spectrum one crossover at a time, from the bottom up:

* ``x`` is split at ``f_1`` into band 0 (Linkwitz-Riley lowpass) and a rest (highpass);
* the rest is split at ``f_2`` into band 1 and a new rest, and so on; the last rest is the
  top band;
* every band below ``f_k`` that did not pass through the ``f_k`` split is run through the
  ``f_k`` crossover's *phase-compensation allpass* ``LP_k + HP_k``, so all bands carry the
  same phase when summed.

A Linkwitz-Riley crossover of order ``2M`` is a Butterworth of order ``M`` applied twice; its
lowpass plus highpass (the highpass negated for odd ``M``: LR2, LR6, as
:func:`~ddsp_models.core.iir.linkwitz_riley_crossover`) is the allpass ``D(-s) / D(s)``, with
``D`` the Butterworth denominator. Digitally (bilinear transform) that allpass is one section
per Butterworth section whose numerator is its denominator reversed. With identity effects
the sum of the bands is therefore the cascade of the ``N - 1`` allpasses: flat magnitude.

Parameters and state
--------------------
The crossover frequencies are fixed at construction (``crossovers_hz``; filters are designed
once, in float64). The parameters are the band effects', prefixed with the band's name and a
dot (``"0.threshold_db"``, ``"low.ratio"``), as in :mod:`.containers`. Block rendering follows
:class:`~ddsp_models.processors.containers.ParallelMix`: the latency is the largest band
effect's, a band of shorter latency is delayed by whole frames with a carried audio line, and a
band effect is not called after its own flush. The crossover filters themselves have no
look-ahead; their direct-form-I histories are carried in the state ``"crossover"``.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import torch
from torch import Tensor

from ..core.filter_design import butterworth_sos
from ..core.iir import lfilter_block, sosfilt
from . import load_processor_class
from .base import Processor, State, check_audio
from .containers import (
    _Container,
    _broadcast_channels,
    _counter,
    _counter_states,
)

__all__ = ["Multiband", "crossover_sections"]


def crossover_sections(
    order: int, cutoff_hz: float, sample_rate: float
) -> Tuple[List[List[float]], List[List[float]], List[List[float]]]:
    """The second-order sections of one Linkwitz-Riley crossover, as float64 Python lists.

    Args:
        order: Linkwitz-Riley order ``2M`` (2, 4, 6, 8, ...).
        cutoff_hz: crossover frequency (both bands -6 dB there).
        sample_rate: Hz.

    Returns:
        ``(lowpass, highpass, allpass)``: rows ``[b0, b1, b2, a0, a1, a2]``. ``lowpass`` and
        ``highpass`` have ``2 ceil(M / 2)`` sections (the Butterworth of order ``M`` twice);
        the highpass is negated for odd ``M`` so that ``lowpass + highpass == allpass`` for
        every order. ``allpass`` has ``ceil(M / 2)`` sections, each a Butterworth section's
        denominator over its reverse.
    """
    if int(order) != order or order < 2 or order % 2:
        raise ValueError(f"Linkwitz-Riley order must be even and >= 2 (2, 4, 6, ...), got {order}")
    half = int(order) // 2
    cutoff = torch.tensor(float(cutoff_hz), dtype=torch.float64)
    low = butterworth_sos(half, cutoff, sample_rate, "lowpass").tolist()
    high = butterworth_sos(half, cutoff, sample_rate, "highpass").tolist()
    allpass: List[List[float]] = []
    for row in low:
        a0, a1, a2 = row[3], row[4], row[5]
        if a2 == 0.0:  # first-order section (odd M): (a1 + z^-1) / (1 + a1 z^-1)
            allpass.append([a1 / a0, 1.0, 0.0, 1.0, a1 / a0, 0.0])
        else:
            allpass.append([a2 / a0, a1 / a0, 1.0, 1.0, a1 / a0, a2 / a0])
    high = [list(r) for r in high] + [list(r) for r in high]
    if half % 2:  # LR2, LR6: low - high is the allpass; fold the sign into one section
        high[0] = [-c for c in high[0][:3]] + high[0][3:]
    return [list(r) for r in low] + [list(r) for r in low], high, allpass


def _accepts_sample_rate(kind: Any) -> bool:
    try:
        cls = load_processor_class(kind)
    except (ValueError, ImportError):
        return False
    return "sample_rate" in inspect.signature(cls.__init__).parameters


class Multiband(_Container):
    """Linkwitz-Riley multiband container: split into bands, one effect per band, sum.

    Args:
        sample_rate: Hz.
        crossovers_hz: the ``N - 1`` crossover frequencies of ``N`` bands, increasing, each in
            ``(0, sample_rate / 2)``. Default ``(200, 2000)``: three bands.
        processors: one effect per band, low to high (instances or ``{"type": ...}`` dicts;
            a single dict is used for every band). A dict without ``sample_rate`` whose class
            takes one gets this container's. Default: a :class:`Compressor` per band.
        names: parameter prefixes of the bands, default ``"0", "1", ...``.
        order: Linkwitz-Riley order (2, 4, 6, 8, ...), default 4 (LR4: two cascaded
            second-order Butterworth sections per band split).

    ``forward(x (B, C, L), **params)`` returns the sum of the bands' outputs ``(B, C', L)``
    (channel counts broadcast: a band effect may turn mono into stereo). With identity band
    effects the output is ``x`` through an allpass (flat magnitude).
    """

    def __init__(
        self,
        sample_rate: float = 16000,
        crossovers_hz: Sequence[float] = (200.0, 2000.0),
        processors: Sequence[Processor | Mapping[str, Any]] | Mapping[str, Any] | None = None,
        names: Sequence[str] | None = None,
        order: int = 4,
    ):
        if sample_rate <= 0:
            raise ValueError(f"Multiband: sample_rate must be positive, got {sample_rate}")
        if isinstance(crossovers_hz, (int, float)):
            crossovers_hz = [crossovers_hz]
        cross = [float(f) for f in crossovers_hz]
        if not cross:
            raise ValueError("Multiband needs at least one crossover frequency (two bands)")
        if any(not 0 < f < sample_rate / 2 for f in cross):
            raise ValueError(f"Multiband: crossovers_hz must lie in (0, {sample_rate / 2}) Hz, "
                             f"got {cross}")
        if any(b <= a for a, b in zip(cross, cross[1:])):
            raise ValueError(f"Multiband: crossovers_hz must increase, got {cross}")
        n_bands = len(cross) + 1
        if processors is None:
            processors = {"type": "Compressor"}
        if isinstance(processors, (Processor, Mapping)):
            processors = [copy.deepcopy(processors) for _ in range(n_bands)]
        processors = list(processors)
        if len(processors) != n_bands:
            raise ValueError(f"Multiband: {len(cross)} crossovers make {n_bands} bands, got "
                             f"{len(processors)} processors")
        children = []
        for p in processors:
            if isinstance(p, Mapping) and "sample_rate" not in p and _accepts_sample_rate(
                    p.get("type")):
                p = {**p, "sample_rate": sample_rate}
            children.append(p)
        super().__init__(children, names)
        self.sample_rate = float(sample_rate)
        self.crossovers_hz = cross
        self.order = int(order)
        lows: List[List[List[float]]] = []
        highs: List[List[List[float]]] = []
        alls: List[List[List[float]]] = []
        for f in cross:
            lo, hi, ap = crossover_sections(self.order, f, self.sample_rate)
            lows.append(lo)
            highs.append(hi)
            alls.append(ap)
        # float64 (S, 6) tables kept out of the buffers, so the module's dtype (``.float()``)
        # leaves the design exact; converted to the signal's dtype and device where used
        # (TorchScript's ``torch.tensor(list)`` would round through float32).
        self.low_sections: List[Tensor] = [torch.tensor(s, dtype=torch.float64) for s in lows]
        self.high_sections: List[Tensor] = [torch.tensor(s, dtype=torch.float64) for s in highs]
        self.allpass_sections: List[Tensor] = [torch.tensor(s, dtype=torch.float64)
                                               for s in alls]
        self.n_sections = self._count_sections()
        self._check_state_keys()

    def _count_sections(self) -> int:
        n = 0
        for k in range(len(self.crossovers_hz)):
            n += self.low_sections[k].shape[0] + self.high_sections[k].shape[0]
        for i in range(len(self.crossovers_hz)):
            for j in range(i + 1, len(self.crossovers_hz)):
                n += self.allpass_sections[j].shape[0]
        return n

    @classmethod
    def examples(cls):
        gain, static = {"type": "Gain"}, {"type": "Gain", "time_varying": False}
        return [
            {},  # three bands, a compressor per band
            # latencies 0, 1, 1 (aligned by delaying the static band), mono + stereo -> stereo
            {"crossovers_hz": (500.0, 3000.0), "processors": [static, gain, {"type": "StereoGain"}],
             "names": ["low", "mid", "high"]},
            # LR2 and LR6 (odd Butterworth halves: negated highpass), two and four bands
            {"crossovers_hz": (1000.0,), "processors": [gain, static], "order": 2},
            {"crossovers_hz": (150.0, 800.0, 4000.0), "processors": static, "order": 6},
        ]

    def config(self):
        return {"sample_rate": self.sample_rate, "crossovers_hz": list(self.crossovers_hz),
                **super().config(), "order": self.order}

    def n_output_channels(self, input_channels=()):
        return _broadcast_channels(
            "Multiband", [p.n_output_channels(tuple(input_channels)) for p in self.processors])

    def latency_frames(self, hop: int) -> int:
        return max(self.child_latencies(hop))

    def state_specs(self):
        own = [State(f"line:{n}", f"(B, C, (L - L_{n}) * hop) output of band {n} not yet "
                     "summed (lines up a shorter latency)") for n in self.names]
        own.append(State("crossover", f"(B, C, {self.n_sections}, 4) the crossover filters' "
                         "direct-form-I histories, per section [x[-1], x[-2], y[-1], y[-2]]"))
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
        state["crossover"] = torch.zeros(batch, input_channels[0], self.n_sections, 4,
                                         dtype=like.dtype, device=like.device)
        state["frames"], state["flushed"] = _counter(like), _counter(like)
        return state

    # --- the split ---------------------------------------------------------------------
    def split(self, x: Tensor) -> List[Tensor]:
        """The bands of ``x`` ``(..., L)``, low to high (offline, zero initial state): a list
        of ``N`` tensors ``(..., L)`` whose sum is ``x`` through the crossovers' allpasses."""

        def run(sections: Tensor, y: Tensor) -> Tensor:
            return sosfilt(y, sections.to(device=x.device, dtype=x.dtype))

        n_cross = len(self.crossovers_hz)
        bands: List[Tensor] = []
        rest = x
        for k in range(n_cross):
            bands.append(run(self.low_sections[k], rest))
            rest = run(self.high_sections[k], rest)
        bands.append(rest)
        for i in range(n_cross - 1):
            # band i through the allpasses of the crossovers above f_{i+1}, in one cascade
            bands[i] = run(torch.cat(self.allpass_sections[i + 1:], dim=0), bands[i])
        return bands

    def _filter_block(self, sections: Tensor, x: Tensor, hist: Tensor, first: int,
                      rows: List[Tensor]) -> Tuple[Tensor, int]:
        """``x`` through ``sections`` ``(S, 6)`` from the carried histories
        ``hist[:, :, first:first + S]``; appends each section's new history ``(B, C, 4)`` to
        ``rows``."""
        idx = first
        sos = sections.to(device=x.device, dtype=x.dtype)
        for s in range(sos.shape[0]):
            b = sos[s, 0:3]
            a = sos[s, 3:6]
            h = hist[:, :, idx]
            x, xh, yh = lfilter_block(x, b, a, h[..., 0:2], h[..., 2:4])
            rows.append(torch.cat([xh, yh], dim=-1))
            idx += 1
        return x, idx

    def _split_block(self, x: Tensor, hist: Tensor) -> Tuple[List[Tensor], Tensor]:
        """One block of :meth:`split` from the carried histories; returns the bands and the
        new histories (sections in the order of ``state_specs``' ``"crossover"``)."""
        n_cross = len(self.crossovers_hz)
        rows: List[Tensor] = []
        idx = 0
        bands: List[Tensor] = []
        rest = x
        for k in range(n_cross):
            low, idx = self._filter_block(self.low_sections[k], rest, hist, idx, rows)
            rest, idx = self._filter_block(self.high_sections[k], rest, hist, idx, rows)
            bands.append(low)
        bands.append(rest)
        for i in range(n_cross - 1):
            y = bands[i]
            for j in range(i + 1, n_cross):
                y, idx = self._filter_block(self.allpass_sections[j], y, hist, idx, rows)
            bands[i] = y
        return bands, torch.stack(rows, dim=2)

    # --- rendering ---------------------------------------------------------------------
    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        hop = n_samples // n_frames
        x = inputs[0]
        new: Dict[str, Tensor] = {}
        if flushing:  # inputs are zero past the end: no band receives more signal
            bands: List[Tensor] = []
            for _ in range(len(self.names)):
                bands.append(torch.zeros_like(x))
            new["crossover"] = state["crossover"]
        else:
            bands, new["crossover"] = self._split_block(x, state["crossover"])
        return self._step_branches(bands, params, state, new, n_frames, hop, flushing), new

    def forward(self, x: Tensor, **params: Tensor) -> Tensor:
        check_audio("Multiband", x)
        bands = self.split(x)
        outs = [p(band, **sub) for (p, sub), band in zip(self._children(params), bands)]
        _broadcast_channels("Multiband", [o.shape[1] for o in outs])
        total = outs[0]
        for o in outs[1:]:
            total = total + o
        return total

    def extra_repr(self) -> str:
        return (f"crossovers_hz={self.crossovers_hz}, order={self.order}, names={self.names}")
