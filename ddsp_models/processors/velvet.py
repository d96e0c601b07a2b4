"""``VelvetNoiseReverb``: a velvet-noise impulse response with band-wise decay, rendered by
sparse convolution.

The IR is a fixed velvet-noise sequence (:func:`ddsp_models.core.velvet.velvet_pulses`: one
``±1`` pulse per grid period of ``sample_rate / density_hz`` samples, at a random position in
its period; positions and signs from ``seed``), shaped per frequency band:

    ``h = Σ_k f_k * v_k``,   ``v_k[t_m] = gain_k · s_m · 10^(-3 t_m / T60_k)``

with ``f_k`` the fixed linear-phase FIR band split of
:func:`~ddsp_models.core.velvet.complementary_fir_bands` (``n_bands`` bands, crossovers
log-spaced from 300 Hz to ``min(sample_rate / 4, 6000)`` Hz unless given; the bands sum to a
delay of ``(filter_taps - 1) / 2`` samples, the reverb's only pre-delay) and ``T60_k`` the
band's decay time in seconds. Every band uses the same pulses, so each band keeps the full
pulse density. With ``n_bands = 1`` there is no filter: ``h = v_0``.

Rendering never builds ``h``: the input is gathered at the ``M`` pulse delays and summed with
the signed, decayed gains of each band (:func:`~ddsp_models.core.velvet.sparse_convolve`),
``M`` gathers per output sample whatever the IR length, then the ``K`` band outputs go through
their FIRs (one FFT convolution offline; ``filter_taps`` multiply-adds per band and sample
when streaming). :meth:`VelvetNoiseReverb.impulse_response` gives the dense IR (references,
FFT convolution). Offline on a CPU the FFT route is faster for dense or short IRs and about
even for long, sparse ones (``benchmarks/velvet.py``, ``docs/velvet.md``).

Dry path (``dry``): ``"add"`` (default, DDSP's convention) ``y = x + wet``; ``"none"`` ``y =
wet``; ``"mix"`` a static parameter ``mix`` in ``[0, 1]``, ``y = (1 - mix) x + mix · wet``.

Block rendering (``step``): latency 0. The state carries the delay line (the last
``max_delay`` input samples, ``max_delay`` the last pulse's delay) and the band outputs' last
``filter_taps - 1`` samples;
a block of ``n`` samples reads the delayed input at the pulse positions (cost ``O(M n)``).
Parameters are static per stream.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..core.filtering import fft_convolve
from ..core.scaling import ExpSigmoid, LogSigmoidRange, SigmoidRange
from ..core.velvet import (complementary_fir_bands, dense_velvet, sparse_convolve,
                           sparse_convolve_block, velvet_gains, velvet_pulses)
from .base import Param, Processor, State, check_audio

__all__ = ["VelvetNoiseReverb"]

_DRY = ("add", "none", "mix")


def default_crossovers_hz(n_bands: int, sample_rate: float) -> List[float]:
    """``n_bands - 1`` crossovers log-spaced from 300 Hz to ``min(sample_rate / 4, 6000)``."""
    if n_bands < 2:
        return []
    hi = min(sample_rate / 4.0, 6000.0)
    lo = min(300.0, hi / 2.0)
    if n_bands == 2:
        return [math.sqrt(lo * hi)]
    return [lo * (hi / lo) ** (i / (n_bands - 2)) for i in range(n_bands - 1)]


class VelvetNoiseReverb(Processor):
    """Velvet-noise reverb with a decay time (T60) per frequency band (see the module doc).

    Args:
        sample_rate: Hz.
        length_s: IR length in seconds (whole grid periods of pulses within it).
        density_hz: pulses per second (one per grid period of ``sample_rate / density_hz``
            samples); 1500–2000 sounds smooth (Välimäki et al. 2013).
        n_bands: frequency bands, each with its own level and T60.
        crossovers_hz: ``n_bands - 1`` increasing band edges (default: log-spaced, 300 Hz to
            ``min(sample_rate / 4, 6000)``).
        filter_taps: odd length of the band FIRs (default ``2 round(sample_rate / 250) + 1``,
            129 at 16 kHz: transitions about 700 Hz wide, pre-delay 4 ms); ignored (1) for
            one band.
        dry: ``"add"``, ``"none"`` or ``"mix"`` (see the module doc).
        seed: seed of the pulse positions and signs.
        min_decay_s, max_decay_s: range of the ``band_decays_s`` scaling.

    Parameters (static): ``band_gains (B, n_bands)`` linear, ``band_decays_s (B, n_bands)``
    seconds, and with ``dry="mix"`` ``mix (B, 1)``.
    ``forward(audio (B, C, L), band_gains, band_decays_s[, mix]) -> (B, C, L)`` (the tail past
    the input is cut, as for the other reverbs).
    """

    n_inputs = 1

    def __init__(self, sample_rate: float = 16000, length_s: float = 1.0,
                 density_hz: float = 2000.0, n_bands: int = 3,
                 crossovers_hz: Optional[List[float]] = None, filter_taps: Optional[int] = None,
                 dry: str = "add", seed: int = 0, min_decay_s: float = 0.05,
                 max_decay_s: float = 4.0):
        super().__init__()
        if not sample_rate > 0 or not length_s > 0:
            raise ValueError(f"sample_rate and length_s must be positive, got {sample_rate}, "
                             f"{length_s}")
        if int(n_bands) < 1:
            raise ValueError(f"n_bands must be >= 1, got {n_bands}")
        if dry not in _DRY:
            raise ValueError(f"dry must be one of {_DRY}, got {dry!r}")
        if not 0 < min_decay_s < max_decay_s:
            raise ValueError(f"need 0 < min_decay_s < max_decay_s, got {min_decay_s}, "
                             f"{max_decay_s}")
        self.sample_rate = float(sample_rate)
        self.length_s = float(length_s)
        self.density_hz = float(density_hz)
        self.n_bands = int(n_bands)
        self.dry = str(dry)
        self.seed = int(seed)
        self.min_decay_s, self.max_decay_s = float(min_decay_s), float(max_decay_s)
        self.crossovers_hz = ([float(f) for f in crossovers_hz] if crossovers_hz is not None
                              else default_crossovers_hz(self.n_bands, self.sample_rate))
        if len(self.crossovers_hz) != self.n_bands - 1:
            raise ValueError(f"crossovers_hz needs n_bands - 1 = {self.n_bands - 1} values, "
                             f"got {self.crossovers_hz}")
        if self.n_bands == 1:
            filter_taps = 1  # no band split: no filter, no pre-delay
        elif filter_taps is None:
            filter_taps = 2 * round(self.sample_rate / 250.0) + 1
        self.filter_taps = int(filter_taps)
        fir = complementary_fir_bands(self.crossovers_hz, self.sample_rate, self.filter_taps)

        length = max(1, int(round(self.length_s * self.sample_rate)))
        positions, signs = velvet_pulses(length, self.density_hz, self.sample_rate, self.seed)
        self.n_pulses = int(positions.shape[0])
        #: delay line length: the last pulse's delay (samples)
        self.max_delay = int(positions[-1])
        self.register_buffer("positions", positions, persistent=False)
        self.register_buffer("signs", signs, persistent=False)
        self.register_buffer("time_s", positions.to(torch.float64) / self.sample_rate,
                             persistent=False)
        # conv1d weight (1, K, taps), flipped: out = Σ_k f_k * wet_k (causal)
        self.register_buffer("fir", fir.flip(-1)[None], persistent=False)
        self.filtered = self.n_bands > 1
        self.mixing = self.dry == "mix"
        self.add_dry = self.dry == "add"

    @classmethod
    def examples(cls):
        return [
            {"length_s": 0.02, "density_hz": 1000.0, "n_bands": 2, "filter_taps": 15},
            {"length_s": 0.01, "n_bands": 1, "dry": "none"},
            {"length_s": 0.015, "density_hz": 3000.0, "n_bands": 3, "filter_taps": 9,
             "dry": "mix", "seed": 3},
        ]

    def config(self):
        return {"sample_rate": self.sample_rate, "length_s": self.length_s,
                "density_hz": self.density_hz, "n_bands": self.n_bands,
                "crossovers_hz": list(self.crossovers_hz), "filter_taps": self.filter_taps,
                "dry": self.dry, "seed": self.seed, "min_decay_s": self.min_decay_s,
                "max_decay_s": self.max_decay_s}

    def param_specs(self):
        specs = [
            Param("band_gains", self.n_bands, ExpSigmoid(), time_varying=False, unit="linear",
                  doc="level of each band's pulses at time 0"),
            Param("band_decays_s", self.n_bands,
                  LogSigmoidRange(self.min_decay_s, self.max_decay_s), time_varying=False,
                  unit="s", doc="time for each band to decay by 60 dB (T60)"),
        ]
        if self.dry == "mix":
            specs.append(Param("mix", 1, SigmoidRange(0.0, 1.0), time_varying=False,
                               unit="ratio", doc="0 dry only, 1 wet only"))
        return tuple(specs)

    @property
    def ir_length(self) -> int:
        """Taps of the dense IR: last pulse delay + 1 + filter_taps - 1."""
        return self.max_delay + self.filter_taps

    def pulse_gains(self, band_gains: Tensor, band_decays_s: Tensor) -> Tensor:
        """``(B, K)`` levels and T60s → signed, decayed pulse gains ``(B, K, M)``."""
        return velvet_gains(self.signs, self.time_s, band_gains, band_decays_s)

    def impulse_response(self, band_gains: Tensor, band_decays_s: Tensor) -> Tensor:
        """The dense wet IR ``(B, ir_length)`` (band FIRs applied), for references and FFT
        convolution; rendering never builds it."""
        g = self.pulse_gains(band_gains, band_decays_s)
        v = dense_velvet(self.positions, g, self.max_delay + 1)  # (B, K, D + 1)
        fir = self.fir.to(v.dtype)
        return F.conv1d(F.pad(v, (fir.shape[-1] - 1, fir.shape[-1] - 1)), fir)[:, 0]

    def _mixdown(self, x: Tensor, wet: Tensor, params: Dict[str, Tensor]) -> Tensor:
        if self.mixing:
            mix = params["mix"].to(x.dtype)[:, :, None]
            return (1.0 - mix) * x + mix * wet
        if self.add_dry:
            return x + wet
        return wet

    def forward(self, audio: Tensor, band_gains: Tensor, band_decays_s: Tensor,
                mix: Optional[Tensor] = None) -> Tensor:
        check_audio("VelvetNoiseReverb", audio)
        params = {"band_gains": band_gains, "band_decays_s": band_decays_s}
        if mix is not None:
            params["mix"] = mix
        self.check_params(params)
        if band_gains.shape[0] != audio.shape[0]:
            raise ValueError(f"VelvetNoiseReverb: parameters have batch {band_gains.shape[0]} "
                             f"but audio has batch {audio.shape[0]}")
        g = self.pulse_gains(band_gains.to(audio.dtype), band_decays_s.to(audio.dtype))
        bands = sparse_convolve(audio, self.positions, g, self.max_delay)  # (B, C, K, L)
        b, c, k, n = bands.shape
        if self.filtered:  # the band FIRs by one FFT convolution (O(log) per sample)
            fir = self.fir[0].flip(-1).to(audio.dtype)  # (K, taps), causal
            wet = fft_convolve(bands, fir, padding="same", delay_compensation=0).sum(2)
        else:
            wet = bands[:, :, 0]
        return self._mixdown(audio, wet, params)

    # --- block rendering ----------------------------------------------------------------
    def latency_frames(self, hop: int) -> int:
        return 0

    def state_specs(self):
        specs = [State("line", f"(B, C, {self.max_delay}) the last input samples (the delay "
                               "line, as long as the last pulse's delay)")]
        if self.n_bands > 1:
            specs.append(State("band_history", f"(B, C, {self.n_bands}, {self.filter_taps - 1})"
                                               " the band outputs' last samples (FIR history)"))
        return tuple(specs)

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        z = dict(dtype=like.dtype, device=like.device)
        c = int(input_channels[0])
        state = {"line": torch.zeros(batch, c, self.max_delay, **z)}
        if self.n_bands > 1:
            state["band_history"] = torch.zeros(batch, c, self.n_bands, self.filter_taps - 1,
                                                **z)
        return state

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        x = inputs[0]
        n = x.shape[-1]
        g = self.pulse_gains(params["band_gains"].to(x.dtype),
                             params["band_decays_s"].to(x.dtype))
        line = torch.cat([state["line"], x], dim=-1)
        bands = sparse_convolve_block(line, self.positions, g, n)  # (B, C, K, n)
        new: Dict[str, Tensor] = {"line": line[..., line.shape[-1] - self.max_delay:]}
        b, c, k = bands.shape[0], bands.shape[1], bands.shape[2]
        if self.filtered:
            both = torch.cat([state["band_history"], bands], dim=-1)
            wet = F.conv1d(both.reshape(b * c, k, both.shape[-1]), self.fir.to(x.dtype))
            wet = wet.reshape(b, c, n)
            new["band_history"] = both[..., both.shape[-1] - (self.filter_taps - 1):]
        else:
            wet = bands[:, :, 0]
        return self._mixdown(x, wet, params), new
