"""Causal f0 and loudness, computed block by block with carried state (live use and training).

A live instrument cannot look ahead, so its features come from the past only. Frame ``t``
(``t * hop`` at the model's rate) is analysed when input sample ``(t + 1) * hop - 1`` has
arrived, from the last ``window`` samples ``[(t + 1) * hop - window, (t + 1) * hop)``:

* **f0** by YIN (de Cheveigné & Kawahara, 2002) on the ``2 * tau_max`` samples centred in that
  window (``tau_max = ceil(sample_rate / fmin)``): difference function by one real FFT,
  cumulative-mean normalisation, first dip below ``threshold`` (else the global minimum),
  parabolic interpolation of the raw difference. Confidence ``1 - d'``. Frames whose
  confidence is below ``voicing_threshold`` (or that are silent) are unvoiced and *hold* the
  last voiced f0 (causal fill; ``initial_f0_hz`` before the first voiced frame).
* **loudness** as :func:`ddsp_models.features.loudness.compute_loudness` (A-weighted mean
  power of a Hann-windowed ``n_fft`` frame, referred to a 512-point FFT, dB floored at
  ``-range_db``) on the ``n_fft`` samples centred in the same window.

Both analyses are centred on the same instant, ``window // 2`` samples before the frame's
last sample, so the features describe the audio ``latency_samples = window // 2 - hop``
samples before the frame's own time ``t * hop`` (16 ms at 16 kHz with the defaults).

The state is the last ``window - hop`` input samples (the analysis ring, kept as a shifted
buffer) and the held f0. Blocks of any whole number of frames give the same features as one
call on a whole signal (:func:`causal_features`), which is what a model should be trained or
fine-tuned on when it will be played live (``compute_causal_f0`` is the ``causal-yin``
method's function for ``ddsp prepare``). Computed in float64. Scriptable (TorchScript).
"""

from __future__ import annotations

import math
from typing import Dict, Tuple

import torch
from torch import Tensor, nn

from ..core.filtering import fft_size

__all__ = ["CausalFeatures", "causal_features", "compute_causal_f0", "compute_causal_loudness",
           "CAUSAL_YIN_DEFAULTS"]

#: defaults shared by the live model and the offline functions (what a model is trained on)
CAUSAL_YIN_DEFAULTS = {"fmin": 50.0, "fmax": 2000.0, "threshold": 0.15,
                       "voicing_threshold": 0.5, "initial_f0_hz": 220.0}


def _a_weight_power(sample_rate: float, n_fft: int) -> Tensor:
    from .loudness import a_weighting_db

    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    return 10.0 ** (a_weighting_db(freqs) / 10.0)


class CausalFeatures(nn.Module):
    """Causal YIN f0 and A-weighted loudness per frame, with explicit state (module docstring).

    Args:
        sample_rate: Hz of the audio analysed (the model's rate).
        hop: samples per frame.
        fmin, fmax: f0 search range in Hz (``fmax`` is capped at ``sample_rate / 4``); ``fmin``
            sets the YIN window ``2 * ceil(sample_rate / fmin)`` and so the latency.
        threshold: YIN's absolute threshold on ``d'``.
        voicing_threshold: confidence below which a frame is unvoiced (f0 held).
        initial_f0_hz: f0 held before the first voiced frame.
        n_fft: loudness FFT size (default ``default_n_fft(sample_rate)``: 512 at 16 kHz).
        range_db: loudness floor is ``-range_db``.

    ``forward(audio (B, N * hop), state) -> (f0_hz, confidence, loudness_db, voiced, state)``,
    each feature ``(B, N)`` float64 (``voiced`` bool); start with :meth:`init_state`.
    """

    def __init__(self, sample_rate: int, hop: int, fmin: float = 50.0, fmax: float = 2000.0,
                 threshold: float = 0.15, voicing_threshold: float = 0.5,
                 initial_f0_hz: float = 220.0, n_fft: int = 0, range_db: float = 80.0):
        super().__init__()
        from .loudness import default_n_fft

        self.sample_rate = int(sample_rate)
        self.hop = int(hop)
        fmax = min(float(fmax), self.sample_rate / 4.0)
        if not 0 < fmin < fmax:
            raise ValueError(f"need 0 < fmin < fmax <= sample_rate / 4, got {fmin}, {fmax}")
        self.tau_min = max(2, int(math.floor(self.sample_rate / fmax)))
        self.tau_max = int(math.ceil(self.sample_rate / fmin))
        self.yin_length = 2 * self.tau_max
        self.n_fft = int(n_fft) if n_fft else int(default_n_fft(self.sample_rate))
        window = max(self.yin_length, self.n_fft, self.hop)
        window += window % 2
        self.window = int(window)
        self.yin_offset = (self.window - self.yin_length) // 2
        self.ld_offset = (self.window - self.n_fft) // 2
        self.yin_fft = fft_size(self.yin_length)
        self.threshold = float(threshold)
        self.voicing_threshold = float(voicing_threshold)
        self.initial_f0_hz = float(initial_f0_hz)
        self.range_db = float(range_db)
        self.latency_samples = self.window // 2 - self.hop
        self.register_buffer("hann", torch.hann_window(self.n_fft, periodic=True,
                                                       dtype=torch.float64), persistent=False)
        self.register_buffer("a_weight", _a_weight_power(float(self.sample_rate), self.n_fft),
                             persistent=False)
        self.register_buffer("lags", torch.arange(self.tau_max + 1, dtype=torch.float64),
                             persistent=False)
        # constants of the per-frame search, built once (fewer ops per live call)
        lag_index = torch.arange(self.tau_max + 1)
        self.register_buffer("lag_index", lag_index, persistent=False)
        self.register_buffer("valid_lag", lag_index >= self.tau_min, persistent=False)
        self.register_buffer("not_lag0", (lag_index > 0).to(torch.float64), persistent=False)
        self.register_buffer("neighbours", torch.tensor([-1, 0, 1]), persistent=False)

    @torch.jit.export
    def init_state(self, batch: int) -> Dict[str, Tensor]:
        """A fresh stream: silence before the start, ``initial_f0_hz`` held."""
        dev = self.hann.device
        return {"history": torch.zeros(batch, self.window - self.hop, dtype=torch.float64,
                                       device=dev),
                "last_f0": torch.full((batch, 1), self.initial_f0_hz, dtype=torch.float64,
                                      device=dev)}

    def _loudness(self, frames: Tensor) -> Tensor:
        seg = frames[..., self.ld_offset:self.ld_offset + self.n_fft] * self.hann
        s = torch.fft.rfft(seg, self.n_fft)
        power = s.real.square() + s.imag.square()
        mean_power = (power * self.a_weight).mean(-1) * (512.0 / self.n_fft)
        floor = 10.0 ** (-self.range_db / 10.0)
        return (10.0 * torch.log10(mean_power.clamp_min(floor))).clamp_min(-self.range_db)

    def _yin(self, frames: Tensor) -> Tuple[Tensor, Tensor]:
        """``frames (B, N, yin_length)`` → ``(period in samples, confidence)`` each ``(B, N)``."""
        tau_max = self.tau_max
        w = self.yin_length - tau_max
        x = frames[..., self.yin_offset:self.yin_offset + self.yin_length]
        fx = torch.fft.rfft(x, self.yin_fft)
        fa = torch.fft.rfft(x[..., :w], self.yin_fft)
        r = torch.fft.irfft(fx * fa.conj(), self.yin_fft)[..., :tau_max + 1]
        c = torch.nn.functional.pad(x.square().cumsum(-1), (1, 0))
        e_tau = c[..., w:w + tau_max + 1] - c[..., :tau_max + 1]
        # difference function, d(0) = 0
        d = (e_tau[..., :1] + e_tau - 2.0 * r).clamp_min(0.0) * self.not_lag0
        csum = d.cumsum(-1)
        # cumulative-mean normalised; d'(0) = 1 (csum(0) = 0 falls in the `else`)
        dn = torch.where(csum > 1e-300, d * self.lags / csum.clamp_min(1e-300), 1.0)
        # YIN's absolute threshold: first lag >= tau_min below it, then down to its dip
        k = tau_max + 1
        idx = self.lag_index
        valid = self.valid_lag
        below = (dn < self.threshold) & valid
        has = below.any(-1)
        first = torch.where(has, below.to(torch.int32).argmax(-1), 0)
        rising = torch.nn.functional.pad(dn[..., 1:] >= dn[..., :-1], (0, 1), value=True)
        bottom = (rising & (idx >= first.unsqueeze(-1))).to(torch.int32).argmax(-1)
        masked = dn.masked_fill(~valid, float("inf"))
        lag = torch.where(has, bottom, masked.argmin(-1))
        # parabolic refinement (position from d, value from d')
        at = lag.clamp(1, k - 2).unsqueeze(-1) + self.neighbours  # (B, N, 3)
        at_edge = (lag < 1) | (lag > k - 2)
        pos = torch.where(at_edge, lag.to(x.dtype),
                          at[..., 1].to(x.dtype) + self._shift(d.gather(-1, at)))
        nb = dn.gather(-1, at)
        dval = nb[..., 1] - 0.25 * (nb[..., 0] - nb[..., 2]) * self._shift(nb)
        dval = torch.where(at_edge, dn.gather(-1, lag.unsqueeze(-1)).squeeze(-1), dval)
        conf = (1.0 - dval).clamp(0.0, 1.0)
        return pos, conf

    def _shift(self, nb: Tensor) -> Tensor:
        """Vertex offset (-1..1) of the parabola through ``nb (..., 3)`` = (left, mid,
        right); 0 where it does not open upwards."""
        left = nb[..., 0]
        right = nb[..., 2]
        den = left - 2.0 * nb[..., 1] + right
        shift = torch.where(den > 0, 0.5 * (left - right) / den.clamp_min(1e-30), 0.0)
        return shift.clamp(-1.0, 1.0)

    def forward(self, audio: Tensor, state: Dict[str, Tensor]
                ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Dict[str, Tensor]]:
        """``audio (B, N * hop)`` (any float dtype) → ``(f0_hz, confidence, loudness_db,
        voiced, new_state)``, features ``(B, N)`` float64."""
        x = audio.to(torch.float64)
        n = x.shape[-1] // self.hop
        buf = torch.cat([state["history"], x[..., :n * self.hop]], -1)
        keep = buf.shape[-1] - (self.window - self.hop)
        new_state: Dict[str, Tensor] = {"history": buf[..., keep:],
                                        "last_f0": state["last_f0"]}
        if n == 0:
            empty = x.new_zeros(x.shape[0], 0)
            return empty, empty, empty, empty > 0, new_state
        frames = buf.unfold(-1, self.window, self.hop)  # (B, n, window)
        loud = self._loudness(frames)
        period, conf = self._yin(frames)
        f0 = self.sample_rate / period.clamp_min(1.0)
        voiced = (conf >= self.voicing_threshold) & (loud > -self.range_db)
        # causal fill: hold the last voiced f0
        t = torch.arange(n, device=x.device).unsqueeze(0).expand(x.shape[0], n)
        marks = torch.where(voiced, t, torch.full_like(t, -1))
        last, _ = torch.cummax(marks, dim=-1)
        held = f0.gather(-1, last.clamp_min(0))
        prev = state["last_f0"].expand(x.shape[0], n)
        f0_out = torch.where(last >= 0, held, prev)
        new_state["last_f0"] = f0_out[:, n - 1:]
        return f0_out, conf, loud, voiced, new_state


def _as_batch(audio) -> Tuple[Tensor, bool]:
    x = torch.as_tensor(audio)
    if x.dim() == 3:
        if x.shape[1] != 1:
            from ..errors import InvalidInputError

            raise InvalidInputError(f"causal features need mono audio, got {x.shape[1]} "
                                    "channels; mix down first")
        x = x[:, 0]
    single = x.dim() == 1
    return (x[None] if single else x), single


def causal_features(audio, sample_rate: int, frame_rate: int, **kwargs
                    ) -> Tuple[Tensor, Tensor, Tensor]:
    """The causal features of a whole signal: ``(f0_hz, confidence, loudness_db)``.

    Args:
        audio: ``(samples,)``, ``(batch, samples)`` or ``(batch, 1, samples)``.
        sample_rate, frame_rate: Hz and frames/s (``hop = sample_rate / frame_rate`` whole).
        **kwargs: :class:`CausalFeatures` options (defaults :data:`CAUSAL_YIN_DEFAULTS`).

    Returns:
        each ``(batch, frames)`` (or ``(frames,)``), ``frames = samples // hop``, in the
        audio's dtype. Equal to :class:`CausalFeatures` fed block by block.
    """
    from ..errors import InvalidInputError

    hop = sample_rate / frame_rate
    if hop != int(hop):
        raise InvalidInputError(f"sample_rate / frame_rate = {hop} must be a whole number")
    x, single = _as_batch(audio)
    dtype = x.dtype if x.is_floating_point() else torch.float32
    feats = CausalFeatures(int(sample_rate), int(hop), **kwargs).to(x.device)
    f0, conf, loud, _, _ = feats(x, feats.init_state(x.shape[0]))
    out = tuple(v.to(dtype) for v in (f0, conf, loud))
    return tuple(v[0] for v in out) if single else out  # type: ignore[return-value]


def compute_causal_f0(audio, sample_rate: float, frame_rate: float, **kwargs
                      ) -> Tuple[Tensor, Tensor]:
    """``(f0_hz, confidence)`` of the causal tracker (the ``causal-yin`` f0 method): unvoiced
    frames already hold the last voiced f0 (so callers need no fill)."""
    f0, conf, _ = causal_features(audio, int(sample_rate), int(frame_rate), **kwargs)
    return f0, conf


def compute_causal_loudness(audio, sample_rate: float, frame_rate: float, **kwargs) -> Tensor:
    """Loudness in dB centred where the causal f0 is (pair it with ``causal-yin``)."""
    return causal_features(audio, int(sample_rate), int(frame_rate), **kwargs)[2]
