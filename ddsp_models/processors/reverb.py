"""Convolution reverbs: a free impulse response, an exponentially decaying noise IR, and a
band-wise decaying noise IR.

All three share DDSP's dry-path convention: with ``add_dry=True`` (default) the IR's first
tap is forced to zero and the dry input is added to the wet convolution, so the IR models
only the reverberant part and a unit-impulse IR returns the input unchanged. With
``add_dry=False`` the IR is used as given (tap 0 included) and nothing is added.
The output has the input's length (the tail past the input is cut, as DDSP does).

Block rendering (``step``): latency 0. The convolution streams with the zero-latency uniformly
partitioned FFT convolution of :mod:`ddsp_models.core.convolution`, partition size
``partition_size`` samples (``0``, the default, picks the hop itself, or its largest divisor up
to 1024, at :meth:`init_state`: every block is then whole partitions). The IR's partition
spectra are carried in the state and recomputed only when what the IR is computed from changes
(the trainable weights, or the static parameters ``ir`` / ``gain, decay_s`` / ``band_gains,
band_decays_s`` given to ``step``). A change mid-stream applies the new IR to the whole carried
input history: at once for the first partition, fully two partitions later (the tail already
computed for the current and the next partition keeps the previous IR). Static parameters are
per-stream constants (the autoencoder learns them as constants); a static value that a caller
derives as a mean over all frames of a decoder's output would not be causal, and is the
caller's concern: the processor streams whatever static value each block gets.
"""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn

from ..core.convolution import (IR_STREAM_STATES, convolve_with_cached_ir, default_partition_size,
                                init_ir_stream_state, ir_unchanged, partition_ir)
from ..core.filtering import fft_convolve
from ..core.scaling import ExpSigmoid, Identity, LogSigmoidRange, exp_sigmoid
from .base import Param, Processor, State, check_audio

__all__ = ["Reverb", "ExpDecayReverb", "FilteredNoiseReverb"]


def _noise(length: int, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(int(seed))
    return 2.0 * torch.rand(length, generator=g, dtype=torch.float64) - 1.0


class _ConvReverb(Processor):
    """Shared convolution and dry-path handling (not registered: private name)."""

    n_inputs = 1

    def __init__(self, sample_rate: float, length: int, add_dry: bool):
        super().__init__()
        if int(length) < 2:
            raise ValueError(f"length (IR taps) must be >= 2, got {length}")
        self.sample_rate = float(sample_rate)
        self.length = int(length)
        self.add_dry = bool(add_dry)
        self.trainable = True
        #: samples per partition of the block convolution; 0: chosen from the hop at init_state
        self.partition_size = 0

    def apply_ir(self, audio: Tensor, ir: Tensor) -> Tensor:
        """``audio`` ``(B, C, L)`` with ``ir`` ``(N,)`` (shared) or ``(B, N)`` (per example)."""
        check_audio(type(self).__name__, audio)
        if ir.dim() == 2 and ir.shape[0] != audio.shape[0]:
            raise ValueError(
                f"{type(self).__name__}: parameters have batch {ir.shape[0]} but audio has "
                f"batch {audio.shape[0]}"
            )
        if self.add_dry:
            ir = torch.cat([torch.zeros_like(ir[..., :1]), ir[..., 1:]], dim=-1)
        if ir.dim() == 2:
            ir = ir[:, None, :]
        wet = fft_convolve(audio, ir.to(audio.dtype), padding="same", delay_compensation=0)
        return audio + wet if self.add_dry else wet

    # --- block rendering ----------------------------------------------------------------
    def _key_size(self) -> int:
        """Features of the IR's key (what the IR is computed from)."""
        raise NotImplementedError

    def _ir_key(self, params: Dict[str, Tensor], like: Tensor) -> Tensor:
        """``(1 | B, key)`` in ``like``'s dtype: the values the IR is computed from."""
        raise NotImplementedError

    def _stream_ir(self, params: Dict[str, Tensor], like: Tensor) -> Tensor:
        """``(1 | B, length)`` the IR in ``like``'s dtype (1 row when trainable: shared)."""
        raise NotImplementedError

    def latency_frames(self, hop: int) -> int:
        return 0

    def state_specs(self):
        return tuple(State(name, doc) for name, doc in IR_STREAM_STATES)

    def init_state(self, batch: int, input_channels: List[int], hop: int,
                   like: Tensor) -> Dict[str, Tensor]:
        p = int(self.partition_size) or default_partition_size(hop)
        return init_ir_stream_state(batch, int(input_channels[0]), self.length,
                                    self._key_size(), self.trainable, p, like)

    def step(self, inputs: List[Tensor], params: Dict[str, Tensor], state: Dict[str, Tensor],
             n_frames: int, n_samples: int, flushing: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        x = inputs[0]
        key = self._ir_key(params, x)
        if ir_unchanged(key, state["ir_key"], state["conv_position"]):
            head, spectra = state["ir_head"], state["ir_spectra"]
        else:  # first block, or the IR changed: one transform of the IR, then carried
            ir = self._stream_ir(params, x)
            if self.add_dry:
                ir = torch.cat([torch.zeros_like(ir[:, :1]), ir[:, 1:]], dim=-1)
            head, spectra = partition_ir(ir[:, None, :], state["ir_head"].shape[-1])
        wet, conv = convolve_with_cached_ir(x, key, head, spectra, state, n_samples // n_frames)
        return (x + wet if self.add_dry else wet), conv


class Reverb(_ConvReverb):
    """Convolution with a free impulse response of ``length`` taps (DDSP's ``Reverb``).

    ``trainable=True``: the IR is an ``nn.Parameter`` ``(length,)`` shared by the batch,
    initialised as quiet decaying noise (peak 0.1, −60 dB at the end); ``forward(audio)``.
    ``trainable=False``: the IR is a static declared parameter ``ir`` ``(B, length)``;
    ``forward(audio, ir=...)``.
    """

    def __init__(
        self,
        sample_rate: float = 16000,
        length: int = 16000,
        trainable: bool = True,
        add_dry: bool = True,
        seed: int = 0,
    ):
        super().__init__(sample_rate, length, add_dry)
        self.trainable = bool(trainable)
        self.seed = int(seed)
        if self.trainable:
            t = torch.arange(self.length, dtype=torch.float64) / self.length
            init = 0.1 * _noise(self.length, seed) * 10.0 ** (-3.0 * t)
            self.ir = nn.Parameter(init.float())

    def param_specs(self):
        if self.trainable:
            return ()
        return (Param("ir", self.length, Identity(), time_varying=False, unit="linear",
                      doc="impulse response (tap 0 is the dry path)"),)

    def config(self):
        return {"sample_rate": self.sample_rate, "length": self.length,
                "trainable": self.trainable, "add_dry": self.add_dry, "seed": self.seed}

    @classmethod
    def examples(cls):
        return [{"length": 300}, {"length": 200, "trainable": False},
                {"length": 50, "trainable": False, "add_dry": False}]

    def _key_size(self) -> int:
        return self.length

    def _ir_key(self, params: Dict[str, Tensor], like: Tensor) -> Tensor:
        return self._stream_ir(params, like)

    def _stream_ir(self, params: Dict[str, Tensor], like: Tensor) -> Tensor:
        if hasattr(self, "ir"):
            return self.ir.to(like.dtype)[None, :]
        return params["ir"].to(like.dtype)

    def forward(self, audio: Tensor, ir: Tensor | None = None) -> Tensor:
        if self.trainable:
            if ir is not None:
                raise ValueError("Reverb(trainable=True) owns its IR; build it with "
                                 "trainable=False to pass `ir` to forward")
            return self.apply_ir(audio, self.ir)
        if ir is None:
            raise ValueError("Reverb(trainable=False): pass ir=(batch, length) to forward")
        self.check_params({"ir": ir})
        return self.apply_ir(audio, ir)


class _DecayingNoiseReverb(_ConvReverb):
    """Parameters either trainable (raw ``nn.Parameter``s through the declared scalings) or
    predicted (static declared parameters ``(B, size)``)."""

    def __init__(self, sample_rate, length, trainable, add_dry, seed, min_decay_s, max_decay_s):
        super().__init__(sample_rate, length, add_dry)
        if not 0 < min_decay_s < max_decay_s:
            raise ValueError(
                f"need 0 < min_decay_s < max_decay_s, got {min_decay_s}, {max_decay_s}"
            )
        self.trainable = bool(trainable)
        self.seed = int(seed)
        self.min_decay_s = float(min_decay_s)
        self.max_decay_s = float(max_decay_s)
        self.register_buffer(
            "time_s", torch.arange(self.length, dtype=torch.float32) / self.sample_rate,
            persistent=False,
        )

    def _declared(self) -> tuple[Param, ...]:  # the parameters, trainable or not
        raise NotImplementedError

    def param_specs(self):
        return () if self.trainable else self._declared()

    def _init_trainable(self):
        if self.trainable:
            self.raw = nn.ParameterDict(
                {p.name: nn.Parameter(torch.zeros(p.size)) for p in self._declared()}
            )

    def _values(self, given: dict) -> dict:
        if self.trainable:
            if any(v is not None for v in given.values()):
                raise ValueError(f"{type(self).__name__}(trainable=True) owns {list(given)}; "
                                 "build it with trainable=False to pass them to forward")
            return {p.name: p.scaling(self.raw[p.name]) for p in self._declared()}
        missing = [k for k, v in given.items() if v is None]
        if missing:
            raise ValueError(f"{type(self).__name__}(trainable=False): pass {missing} to forward")
        self.check_params(given)
        return given

    def _key_size(self) -> int:
        return 2 * self._n_values

    def _raw_weights(self, like: Tensor) -> Tuple[Tensor, Tensor]:
        """The trainable raw weights ``(1, size)`` each, in declaration order (subclasses
        index ``self.raw`` by string literals: all TorchScript allows)."""
        raise NotImplementedError

    def _raw_values(self, params: Dict[str, Tensor], like: Tensor) -> Tuple[Tensor, Tensor]:
        """The two declared values (``(1 | B, size)`` each, physical units, ``like``'s dtype):
        scaled from the trainable weights, else read from ``params`` (block rendering)."""
        if hasattr(self, "raw"):
            a, b = self._raw_weights(like)
            lo, hi = math.log(self.min_decay_s), math.log(self.max_decay_s)
            decay = torch.exp(lo + (hi - lo) * torch.sigmoid(b)).clamp(self.min_decay_s,
                                                                      self.max_decay_s)
            return exp_sigmoid(a), decay  # the declared ExpSigmoid / LogSigmoidRange scalings
        return params[self._names[0]].to(like.dtype), params[self._names[1]].to(like.dtype)

    def _ir_key(self, params: Dict[str, Tensor], like: Tensor) -> Tensor:
        if hasattr(self, "raw"):
            a, b = self._raw_weights(like)
            return torch.cat([a, b], dim=-1)
        return torch.cat([params[self._names[0]], params[self._names[1]]], dim=-1).to(like.dtype)

    def _decay(self, decay_s: Tensor) -> Tensor:
        """Envelope ``10^(-3 t / decay_s)`` (−60 dB after ``decay_s``): ``(..., length)``."""
        t = self.time_s.to(decay_s.dtype)
        return torch.exp((-3.0 * math.log(10.0)) * t / decay_s[..., None])


class ExpDecayReverb(_DecayingNoiseReverb):
    """IR = ``gain · noise(t) · 10^(-3 t / decay_s)``: white noise decaying by 60 dB in
    ``decay_s`` seconds (RT60). The noise is fixed (uniform in [-1, 1), from ``seed``).

    Parameters ``gain`` (linear) and ``decay_s`` (seconds): trainable ``nn.Parameter``s
    (``forward(audio)``) or, with ``trainable=False``, static declared parameters ``(B, 1)``
    (``forward(audio, gain=..., decay_s=...)``).
    """

    def __init__(self, sample_rate: float = 16000, length: int = 16000, trainable: bool = True,
                 add_dry: bool = True, seed: int = 0, min_decay_s: float = 0.05,
                 max_decay_s: float = 4.0):
        super().__init__(sample_rate, length, trainable, add_dry, seed, min_decay_s, max_decay_s)
        self.register_buffer("noise", _noise(self.length, seed).float(), persistent=False)
        self._names = ["gain", "decay_s"]
        self._n_values = 1
        self._init_trainable()

    @classmethod
    def examples(cls):
        return [{"length": 300}, {"length": 200, "trainable": False},
                {"length": 100, "trainable": False, "add_dry": False}]

    def _raw_weights(self, like: Tensor) -> Tuple[Tensor, Tensor]:
        return (self.raw["gain"].to(like.dtype)[None, :],
                self.raw["decay_s"].to(like.dtype)[None, :])

    def _stream_ir(self, params: Dict[str, Tensor], like: Tensor) -> Tensor:
        gain, decay_s = self._raw_values(params, like)
        return self.impulse_response(gain, decay_s)

    def _declared(self):
        return (
            Param("gain", 1, ExpSigmoid(), time_varying=False, unit="linear", doc="IR level"),
            Param("decay_s", 1, LogSigmoidRange(self.min_decay_s, self.max_decay_s),
                  time_varying=False, unit="s", doc="time to decay by 60 dB"),
        )

    def config(self):
        return {"sample_rate": self.sample_rate, "length": self.length,
                "trainable": self.trainable, "add_dry": self.add_dry, "seed": self.seed,
                "min_decay_s": self.min_decay_s, "max_decay_s": self.max_decay_s}

    def impulse_response(self, gain: Tensor, decay_s: Tensor) -> Tensor:
        """``gain``, ``decay_s`` ``(..., 1)`` → IR ``(..., length)``."""
        return gain * self.noise.to(gain.dtype) * self._decay(decay_s[..., 0])

    def forward(self, audio: Tensor, gain: Tensor | None = None,
                decay_s: Tensor | None = None) -> Tensor:
        v = self._values({"gain": gain, "decay_s": decay_s})
        return self.apply_ir(audio, self.impulse_response(v["gain"], v["decay_s"]))


def band_edges_hz(n_bands: int, sample_rate: float, lowest_edge_hz: float = 100.0) -> Tensor:
    """``n_bands + 1`` edges: 0, then log-spaced from ``lowest_edge_hz``, then Nyquist."""
    nyquist = sample_rate / 2
    inner = torch.logspace(math.log10(lowest_edge_hz), math.log10(nyquist), n_bands,
                           dtype=torch.float64)[:-1]
    return torch.cat([torch.zeros(1, dtype=torch.float64), inner,
                      torch.tensor([nyquist], dtype=torch.float64)])


class FilteredNoiseReverb(_DecayingNoiseReverb):
    """IR = ``Σ_b gain_b · 10^(-3 t / decay_b) · noise_b(t)`` with ``noise_b`` a fixed white
    noise split into ``n_bands`` bands (0 Hz, then log-spaced from 100 Hz to Nyquist) by
    brick-wall FFT masks; the bands sum back to the full noise. Each band decays at its own
    rate (RT60 ``band_decays_s``) from its own level (``band_gains``).

    Trainable (``forward(audio)``) or predicted (``trainable=False``: static declared
    ``band_gains`` and ``band_decays_s`` ``(B, n_bands)``).
    """

    def __init__(self, sample_rate: float = 16000, length: int = 16000, n_bands: int = 12,
                 trainable: bool = True, add_dry: bool = True, seed: int = 0,
                 min_decay_s: float = 0.05, max_decay_s: float = 4.0):
        super().__init__(sample_rate, length, trainable, add_dry, seed, min_decay_s, max_decay_s)
        if n_bands < 1:
            raise ValueError(f"n_bands must be >= 1, got {n_bands}")
        self.n_bands = int(n_bands)
        spec = torch.fft.rfft(_noise(self.length, seed))
        freqs = torch.fft.rfftfreq(self.length, 1.0 / self.sample_rate, dtype=torch.float64)
        edges = band_edges_hz(self.n_bands, self.sample_rate)
        band = (torch.bucketize(freqs, edges[1:-1], right=True))  # band index per bin
        masks = band[None, :] == torch.arange(self.n_bands)[:, None]
        noise = torch.fft.irfft(spec * masks, self.length)  # (n_bands, length)
        self.register_buffer("band_noise", noise.float(), persistent=False)
        self._names = ["band_gains", "band_decays_s"]
        self._n_values = self.n_bands
        self._init_trainable()

    @classmethod
    def examples(cls):
        return [{"length": 300, "n_bands": 4}, {"length": 200, "n_bands": 3, "trainable": False}]

    def _raw_weights(self, like: Tensor) -> Tuple[Tensor, Tensor]:
        return (self.raw["band_gains"].to(like.dtype)[None, :],
                self.raw["band_decays_s"].to(like.dtype)[None, :])

    def _stream_ir(self, params: Dict[str, Tensor], like: Tensor) -> Tensor:
        gains, decays = self._raw_values(params, like)
        return self.impulse_response(gains, decays)

    def _declared(self):
        return (
            Param("band_gains", self.n_bands, ExpSigmoid(), time_varying=False, unit="linear",
                  doc="initial level of each band"),
            Param("band_decays_s", self.n_bands,
                  LogSigmoidRange(self.min_decay_s, self.max_decay_s),
                  time_varying=False, unit="s", doc="time for each band to decay by 60 dB"),
        )

    def config(self):
        return {"sample_rate": self.sample_rate, "length": self.length, "n_bands": self.n_bands,
                "trainable": self.trainable, "add_dry": self.add_dry, "seed": self.seed,
                "min_decay_s": self.min_decay_s, "max_decay_s": self.max_decay_s}

    def impulse_response(self, band_gains: Tensor, band_decays_s: Tensor) -> Tensor:
        """``(..., n_bands)`` gains and decays → IR ``(..., length)``."""
        env = band_gains[..., None] * self._decay(band_decays_s)  # (..., n_bands, length)
        return (env * self.band_noise.to(env.dtype)).sum(-2)

    def forward(self, audio: Tensor, band_gains: Tensor | None = None,
                band_decays_s: Tensor | None = None) -> Tensor:
        v = self._values({"band_gains": band_gains, "band_decays_s": band_decays_s})
        return self.apply_ir(audio, self.impulse_response(v["band_gains"], v["band_decays_s"]))
