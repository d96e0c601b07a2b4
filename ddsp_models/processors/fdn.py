"""``FDNReverb``: a feedback delay network reverb with per-band decay, exact or frequency sampled.

``N`` delay lines (default 8, prime lengths between 25 and 60 ms), a lossless orthogonal
feedback matrix (Householder, Hadamard or a seeded random orthogonal one), a first-order
absorption filter per line that sets the reverberation time at low and high frequencies
(``t60_low_s``, ``t60_high_s``, and the shelf's ``crossover_hz``), input gains into the lines
and output gains out of them, mono or stereo (``stereo=True``: two sets of output gains). The
recursion and the transfer function are in :mod:`ddsp_models.core.fdn`.

Modes:

* ``mode="recursive"`` (default, exact): the time-domain recursion, all lines advanced
  ``min(delays)`` samples at a time (:func:`~ddsp_models.core.fdn.fdn_block`); gradients are
  exact through the whole recursion. It equals a per-sample loop to float rounding.
* ``mode="freq_sampling"`` (fast for training on long signals, an approximation): the FDN's
  transfer function sampled on an ``fir_length``-point FFT grid and applied as a long FIR
  (:func:`~ddsp_models.core.fdn.fdn_impulse_response`): the exact impulse response
  time-aliased modulo ``fir_length``, so ``fir_length`` should exceed the longest T60
  (default: the next power of two above ``sample_rate * max_t60_s``).

Block rendering (``step``): latency 0. ``recursive`` carries the line contents and the
absorption filters' last input and output, and runs the same recursion (streams equal the
whole render to float rounding). ``freq_sampling`` carries the zero-latency partitioned FFT
convolution of :mod:`ddsp_models.core.convolution` with the sampled FIR (whose spectra are
recomputed only when the parameters change), so streaming it equals its offline output, not
the exact recursion.

All parameters are static ``(B, size)``: a reverb's decay is a per-stream constant.
The input is mixed to mono (channel mean) before the lines; the wet output has 2 channels with
``stereo=True``, else 1, broadcast to the input's channels; ``add_dry=True`` (default, as the
convolution reverbs) adds the input. The output has the input's length.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

from ..core.convolution import (default_partition_size, init_partitioned_state, ir_unchanged,
                                partition_ir, partitioned_convolve_step)
from ..core.fdn import (ABSORPTIONS, FEEDBACK_MATRICES, absorption_filters, fdn_block,
                        fdn_impulse_response, feedback_matrix, matrix_factor,
                        prime_delays)
from ..core.filtering import fft_convolve
from ..core.scaling import Identity, LogSigmoidRange
from .base import Param, Processor, State, check_audio

__all__ = ["FDNReverb"]

_MODES = ("recursive", "freq_sampling")


class FDNReverb(Processor):
    """Feedback delay network reverb: ``forward(x (B, C, L), input_gains, output_gains,
    t60_low_s, t60_high_s, crossover_hz)``, all static ``(B, size)``.

    Parameters:
        input_gains ``(B, N)``: gain of the (mono-mixed) input into each line, linear.
        output_gains ``(B, N)`` or ``(B, 2N)`` with ``stereo`` (left gains, then right):
            gain of each line's (absorbed) output into the wet signal, linear.
        t60_low_s, t60_high_s ``(B, 1)``: time to decay by 60 dB at DC and at Nyquist, seconds
            (not with ``absorption="none"``).
        crossover_hz ``(B, 1)``: the shelf's transition frequency, Hz (``absorption="shelf"``
            only); the decay time is ``t60_low_s`` well below it and ``t60_high_s`` well above.

    Args:
        sample_rate: Hz.
        n_lines: number of delay lines (default 8; 4 to 16 is the usual range), or the length
            of ``delays``.
        delays: line lengths in samples (default: ``n_lines`` distinct primes, geometrically
            spaced from ``min_delay_ms`` to ``max_delay_ms``). The shortest sets the block
            length of the vectorised recursion.
        matrix: ``"householder"`` (``I - 2/N 11^T``, default), ``"hadamard"`` (``N`` a power
            of two; the densest mixing) or ``"orthogonal"`` (random orthogonal from ``seed``).
        absorption: ``"shelf"`` (first-order shelf: exact T60 at DC and Nyquist, transition at
            ``crossover_hz``; default), ``"one_pole"`` (Jot's one-pole lowpass, exact at DC and
            Nyquist, no crossover) or ``"none"`` (lossless loop; ``recursive`` mode only).
        stereo: two output channels (two sets of output gains).
        add_dry: add the input to the wet output.
        mode: ``"recursive"`` (exact) or ``"freq_sampling"`` (sampled transfer function as an
            FIR of ``fir_length`` taps).
        fir_length: taps of the ``freq_sampling`` FIR; 0: next power of two
            ``>= sample_rate * max_t60_s``.
        min_t60_s, max_t60_s: range of the T60 scaling. min_crossover_hz, max_crossover_hz:
            range of the crossover scaling (default max ``0.45 * sample_rate``).
    """

    n_inputs = 1

    def __init__(
        self,
        sample_rate: float = 16000,
        n_lines: int | None = None,
        delays: List[int] | None = None,
        min_delay_ms: float = 25.0,
        max_delay_ms: float = 60.0,
        matrix: str = "householder",
        seed: int = 0,
        absorption: str = "shelf",
        stereo: bool = False,
        add_dry: bool = True,
        mode: str = "recursive",
        fir_length: int = 0,
        min_t60_s: float = 0.05,
        max_t60_s: float = 3.0,
        min_crossover_hz: float = 50.0,
        max_crossover_hz: float | None = None,
    ):
        super().__init__()
        if matrix not in FEEDBACK_MATRICES:
            raise ValueError(f"unknown matrix {matrix!r}; choose one of {FEEDBACK_MATRICES}")
        if absorption not in ABSORPTIONS:
            raise ValueError(f"unknown absorption {absorption!r}; choose one of {ABSORPTIONS}")
        if mode not in _MODES:
            raise ValueError(f"mode must be 'recursive' or 'freq_sampling', got {mode!r}")
        if mode == "freq_sampling" and absorption == "none":
            raise ValueError("mode='freq_sampling' needs absorption (a lossless loop has poles on "
                             "the unit circle and no finite impulse response)")
        self.sample_rate = float(sample_rate)
        self.min_delay_ms, self.max_delay_ms = float(min_delay_ms), float(max_delay_ms)
        if delays is not None:
            delays = [int(d) for d in delays]
            if n_lines is not None and int(n_lines) != len(delays):
                raise ValueError(f"n_lines={n_lines} but {len(delays)} delays given")
            if not delays or min(delays) < 1:
                raise ValueError(f"delays must be >= 1 sample, got {delays}")
            self.delays: List[int] = delays
        else:
            n = 8 if n_lines is None else int(n_lines)
            if n < 2:
                raise ValueError(f"n_lines must be >= 2, got {n}")
            self.delays = prime_delays(n, self.sample_rate, self.min_delay_ms, self.max_delay_ms)
        self.given_n_lines = None if n_lines is None else int(n_lines)
        self.given_delays = None if delays is None else list(delays)
        self.n_lines = len(self.delays)
        self.matrix, self.seed = matrix, int(seed)
        self.register_buffer("matrix_factor", matrix_factor(matrix, self.n_lines, self.seed),
                             persistent=False)
        self.absorption = absorption
        self.stereo, self.add_dry = bool(stereo), bool(add_dry)
        self.wet_channels = 2 if self.stereo else 1
        self.mode = mode
        self.min_t60_s, self.max_t60_s = float(min_t60_s), float(max_t60_s)
        LogSigmoidRange(self.min_t60_s, self.max_t60_s)  # validates the range
        self.min_crossover_hz = float(min_crossover_hz)
        self.max_crossover_hz = (float(max_crossover_hz) if max_crossover_hz is not None
                                 else 0.45 * self.sample_rate)
        if not 0 < self.min_crossover_hz < self.max_crossover_hz < self.sample_rate / 2:
            raise ValueError("need 0 < min_crossover_hz < max_crossover_hz < sample_rate / 2, "
                             f"got {self.min_crossover_hz}, {self.max_crossover_hz}")
        self.fir_length = int(fir_length)
        if self.fir_length < 0:
            raise ValueError(f"fir_length must be >= 0, got {fir_length}")
        auto = 1 << max(0, int(math.ceil(self.sample_rate * self.max_t60_s)) - 1).bit_length()
        self.fir_taps = self.fir_length or auto
        self.names: List[str] = [p.name for p in self.param_specs()]

    @classmethod
    def examples(cls):
        return [
            {},
            {"delays": [5, 7, 11, 13], "min_t60_s": 0.005, "max_t60_s": 0.05},
            {"delays": [3, 4, 6, 9, 10, 15, 17, 19], "matrix": "hadamard", "stereo": True,
             "absorption": "one_pole", "add_dry": False, "min_t60_s": 0.005, "max_t60_s": 0.05},
            {"delays": [5, 6, 7, 8], "matrix": "orthogonal", "absorption": "none"},
            {"delays": [4, 5, 7, 9], "mode": "freq_sampling", "fir_length": 512, "stereo": True,
             "min_t60_s": 0.005, "max_t60_s": 0.02},
        ]

    # --- declaration --------------------------------------------------------------------
    def param_specs(self):
        n = len(self.delays)
        specs = [
            Param("input_gains", n, Identity(), time_varying=False, unit="linear",
                  doc="input gain into each delay line"),
            Param("output_gains", (2 if self.stereo else 1) * n, Identity(), time_varying=False,
                  unit="linear", doc="output gain of each line (left lines, then right: stereo)"),
        ]
        if self.absorption != "none":
            t60 = LogSigmoidRange(self.min_t60_s, self.max_t60_s)
            specs += [
                Param("t60_low_s", 1, t60, time_varying=False, unit="s",
                      doc="reverberation time (-60 dB) at low frequencies (DC)"),
                Param("t60_high_s", 1, t60, time_varying=False, unit="s",
                      doc="reverberation time (-60 dB) at high frequencies (Nyquist)"),
            ]
        if self.absorption == "shelf":
            specs.append(Param("crossover_hz", 1,
                               LogSigmoidRange(self.min_crossover_hz, self.max_crossover_hz),
                               time_varying=False, unit="Hz",
                               doc="transition between the low and high decay times"))
        return tuple(specs)

    def config(self):
        return {
            "sample_rate": self.sample_rate, "n_lines": self.given_n_lines,
            "delays": self.given_delays, "min_delay_ms": self.min_delay_ms,
            "max_delay_ms": self.max_delay_ms, "matrix": self.matrix, "seed": self.seed,
            "absorption": self.absorption, "stereo": self.stereo, "add_dry": self.add_dry,
            "mode": self.mode, "fir_length": self.fir_length, "min_t60_s": self.min_t60_s,
            "max_t60_s": self.max_t60_s, "min_crossover_hz": self.min_crossover_hz,
            "max_crossover_hz": self.max_crossover_hz,
        }

    def n_output_channels(self, input_channels=()):
        if input_channels and input_channels[0] not in (1, 2):
            raise ValueError(f"FDNReverb takes 1 or 2 input channels, got {input_channels[0]}")
        if self.stereo:
            return 2
        return input_channels[0] if input_channels else 1

    # --- the network's coefficients -------------------------------------------------------
    def coefficients(self, params: Dict[str, Tensor], like: Tensor
                     ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``(input_gains (B, N), output_gains (B, C, N), matrix (N, N), filter_b (B, N, 2),
        filter_a (B, N, 2))`` in ``like``'s dtype, from physical parameter values."""
        dt = like.dtype
        gains_in = params["input_gains"].to(dt)
        gains_out = params["output_gains"].to(dt)
        gains_out = gains_out.reshape(gains_out.shape[0], self.wet_channels, len(self.delays))
        matrix = feedback_matrix(self.matrix, self.matrix_factor.to(dt))
        m = torch.tensor(self.delays, dtype=dt, device=like.device)
        if self.absorption == "none":
            one = gains_in[:, :1]
            b, a = absorption_filters("none", m, self.sample_rate, one, one, one)
        else:
            low, high = params["t60_low_s"].to(dt), params["t60_high_s"].to(dt)
            cross = params["crossover_hz"].to(dt) if self.absorption == "shelf" else low
            b, a = absorption_filters(self.absorption, m, self.sample_rate, low, high, cross)
        return gains_in, gains_out, matrix, b, a

    def impulse_response(self, params: Dict[str, Tensor], like: Tensor) -> Tensor:
        """The ``freq_sampling`` FIR ``(B, C_wet, fir_taps)`` (wet path only)."""
        gi, go, mat, b, a = self.coefficients(params, like)
        return fdn_impulse_response(gi, go, mat, self.delays, b, a, self.fir_taps,
                                    self._reflection(like))

    def _reflection(self, like: Tensor) -> Optional[Tensor]:
        """The Householder vector (``O(N)`` per bin in ``freq_sampling``), else None."""
        if self.matrix == "householder":
            return self.matrix_factor[0].to(like.dtype)
        return None

    def _mix(self, x: Tensor, wet: Tensor) -> Tensor:
        if self.add_dry:
            return x + wet
        channels = 2 if self.stereo else x.shape[1]
        return wet.expand(wet.shape[0], channels, wet.shape[2])

    # --- whole signal -----------------------------------------------------------------------
    def forward(self, x: Tensor, input_gains: Tensor, output_gains: Tensor,
                t60_low_s: Tensor | None = None, t60_high_s: Tensor | None = None,
                crossover_hz: Tensor | None = None) -> Tensor:
        check_audio("FDNReverb", x, (1, 2))
        given = {"input_gains": input_gains, "output_gains": output_gains,
                 "t60_low_s": t60_low_s, "t60_high_s": t60_high_s, "crossover_hz": crossover_hz}
        params = {k: v for k, v in given.items() if k in self.names}
        extra = [k for k, v in given.items() if v is not None and k not in self.names]
        if extra:
            raise ValueError(f"FDNReverb(absorption={self.absorption!r}) takes no {extra}")
        missing = [k for k, v in params.items() if v is None]
        if missing:
            raise ValueError(f"FDNReverb: missing parameters {missing}; declared: {self.names}")
        self.check_params(params)
        if params["input_gains"].shape[0] != x.shape[0]:
            raise ValueError(f"FDNReverb: parameters have batch {input_gains.shape[0]} but "
                             f"audio has batch {x.shape[0]}")
        u = x.mean(1)
        if self.mode == "freq_sampling":
            ir = self.impulse_response(params, x)
            wet = fft_convolve(u[:, None], ir, padding="same", delay_compensation=0)
            return self._mix(x, wet)
        state = self.init_state(x.shape[0], [x.shape[1]], 1, x)
        return self.step([x], params, state, 1, x.shape[-1], False)[0]

    # --- block rendering --------------------------------------------------------------------
    def latency_frames(self, hop: int) -> int:
        return 0

    def state_specs(self):
        if self.mode == "freq_sampling":
            return (
                State("conv_input", "(B, C_wet, P) the last P mono input samples"),
                State("conv_fdl", "(B, C_wet, K-1, P+1, 2) spectra of the last input partitions"),
                State("conv_acc", "(B, C_wet, P) wet output of the current partition period"),
                State("conv_carry", "(B, C_wet, P) wet output carried to the next period"),
                State("conv_position", "() int64 samples consumed"),
                State("ir_key", "(B, k) the parameter values the carried FIR was sampled from"),
                State("ir_head", "(B, C_wet, P) the FIR's first P taps"),
                State("ir_spectra", "(B, C_wet, K-1, P+1, 2) rfft(2P) of its later partitions"),
            )
        specs = [State("lines", f"(B, {len(self.delays)}, {max(self.delays)}) the last line "
                                "inputs, oldest first")]
        if self.absorption != "none":
            specs += [State("absorption_x", "(B, N, 1) each absorption filter's last input"),
                      State("absorption_y", "(B, N, 1) each absorption filter's last output")]
        return tuple(specs)

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        z = dict(dtype=like.dtype, device=like.device)
        n = len(self.delays)
        if self.mode == "freq_sampling":
            p = default_partition_size(hop)
            state = init_partitioned_state([batch, self.wet_channels], self.fir_taps, p, like)
            k = max(1, -(-self.fir_taps // p))
            state["ir_key"] = torch.zeros(batch, sum(s.size for s in self.param_specs()), **z)
            state["ir_head"] = torch.zeros(batch, self.wet_channels, p, **z)
            state["ir_spectra"] = torch.zeros(batch, self.wet_channels, k - 1, p + 1, 2, **z)
            return state
        state = {"lines": torch.zeros(batch, n, max(self.delays), **z)}
        if self.absorption != "none":
            state["absorption_x"] = torch.zeros(batch, n, 1, **z)
            state["absorption_y"] = torch.zeros(batch, n, 1, **z)
        return state

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        x = inputs[0]
        u = x.mean(1)
        new: Dict[str, Tensor] = {}
        if self.mode == "freq_sampling":
            key = torch.cat([params[name].to(x.dtype) for name in self.names], dim=-1)
            if ir_unchanged(key, state["ir_key"], state["conv_position"]):
                head, spectra = state["ir_head"], state["ir_spectra"]
            else:  # first block, or new parameters: sample the transfer function again
                ir = self.impulse_response(params, x)
                head, spectra = partition_ir(ir, state["ir_head"].shape[-1])
            xin = u[:, None, :].expand(u.shape[0], self.wet_channels, u.shape[1])
            aligned = (n_samples // n_frames) % head.shape[-1] == 0
            wet, new = partitioned_convolve_step(xin, head, spectra, state, aligned)
            new["ir_key"] = key
            new["ir_head"] = head
            new["ir_spectra"] = spectra
            return self._mix(x, wet), new
        gi, go, mat, b, a = self.coefficients(params, x)
        absorb = self.absorption != "none"
        fx = state["absorption_x"] if absorb else state["lines"][:, :, :1]
        fy = state["absorption_y"] if absorb else state["lines"][:, :, :1]
        wet, lines, fx, fy = fdn_block(u, gi, go, mat, self.delays, b, a, state["lines"], fx, fy,
                                       absorb)
        new["lines"] = lines
        if absorb:
            new["absorption_x"] = fx
            new["absorption_y"] = fy
        return self._mix(x, wet), new
