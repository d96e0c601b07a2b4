"""Block-by-block rendering of an :class:`~ddsp_models.nn.Autoencoder` with carried state.

:class:`StreamingSynth` takes the frame-rate features of one block (``f0_hz`` and
``loudness_db``, ``N`` frames) and returns ``N * hop`` samples. Between calls it carries

* the decoder's GRU state (the decoder is causal: frame ``t`` sees frames ``<= t`` only);
* the harmonic oscillator's phase (float64, wrapped to ``[0, 2π)``) and the last frames of
  f0 and harmonic amplitudes (for the linear f0 interpolation, the Hann cross-fade of the
  amplitudes and the Nyquist mask that looks at the neighbouring frames);
* the filtered-noise overlap-add tail and the noise generator's position (a counter, see
  :mod:`.noise`: the streaming noise is the same sequence whatever the block size);
* the reverb's convolution tail (``length - 1`` samples of wet signal still to come).

**Latency.** The offline renderer interpolates f0 and amplitudes towards the *next* frame and
centres the noise filters on their frame, so sample ``n`` depends on frames up to
``n / hop + 2``. The stream therefore lags the offline rendering by ``latency_frames``
frames (2 at 16 kHz / 250 frames/s: 128 samples, 8 ms): output sample ``m`` of the stream
equals offline sample ``m - latency_samples`` (the first ``latency_samples`` are zero).
:meth:`StreamingSynth.flush` renders the last ``latency_frames`` frames, holding the last
frame as the offline renderer does.

Supported graphs: one ``Harmonic`` and/or one ``FilteredNoise`` feeding ``out`` directly or
through one trainable ``Reverb`` (the DDSP default graph). Anything else raises
:class:`UnsupportedGraphError` naming the node. The module is TorchScript-compatible
(``torch.jit.script(StreamingSynth(model))``).
"""

from __future__ import annotations

import copy
import math
from typing import List

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["StreamingSynth", "UnsupportedGraphError", "streaming_plan", "latency_frames"]

_SCALING_CODES = {"identity": 0, "exp_sigmoid": 1, "sigmoid_range": 2, "log_sigmoid_range": 3,
                  "softmax": 4}
SUPPORTED = ("Harmonic", "FilteredNoise", "Reverb")


class UnsupportedGraphError(ValueError):
    """The model's graph (or encoder) cannot be rendered block by block."""


# --------------------------------------------------------------------------------------
# Graph analysis (plain Python, at construction)
# --------------------------------------------------------------------------------------
def streaming_plan(model) -> dict:
    """Which node plays which role: ``{"harmonic": name|None, "noise": name|None,
    "reverb": name|None}``; raises :class:`UnsupportedGraphError` naming the first node or
    edge the streaming renderer cannot handle."""
    from ..graph.graph import IN, OUT

    if getattr(model, "encoder", None) is not None:
        raise UnsupportedGraphError(
            "models with an MFCC encoder (latent z from the audio) cannot be rendered from "
            "f0/loudness alone; streaming supports encoder-free models only")
    graph = model.graph
    roles: dict = {"harmonic": None, "noise": None, "reverb": None}
    for name, proc in graph.nodes.items():
        kind = type(proc).__name__
        role = {"Harmonic": "harmonic", "FilteredNoise": "noise", "Reverb": "reverb"}.get(kind)
        if role is None:
            raise UnsupportedGraphError(
                f"node {name!r} ({kind}) is not supported by the streaming renderer; supported "
                f"node types: {', '.join(SUPPORTED)} (the DDSP default graph)")
        if roles[role] is not None:
            raise UnsupportedGraphError(
                f"node {name!r}: the streaming renderer supports one {kind} node, the graph "
                f"also has {roles[role]!r}")
        if kind == "Reverb" and not proc.trainable:
            raise UnsupportedGraphError(
                f"node {name!r} (Reverb, trainable=False) takes a predicted static IR (a mean "
                "over all frames, not causal); only a trainable Reverb streams")
        roles[role] = name
    sources = [n for n in (roles["harmonic"], roles["noise"]) if n is not None]
    if not sources:
        raise UnsupportedGraphError("the graph has no Harmonic or FilteredNoise node to stream")
    sink = roles["reverb"] or OUT
    for e in graph.edges:
        ok = (e.src in sources and e.dst == sink) or (
            roles["reverb"] is not None and e.src == roles["reverb"] and e.dst == OUT)
        if e.src == IN or not ok:
            raise UnsupportedGraphError(
                f"edge {e} is not supported by the streaming renderer; it needs "
                "harmonic/noise -> reverb -> out or harmonic/noise -> out")
    fed = {e.src for e in graph.edges}
    for n in sources + ([roles["reverb"]] if roles["reverb"] else []):
        if n not in fed:
            raise UnsupportedGraphError(f"node {n!r} is not connected to the output")
    return roles


def _noise_taps(n_bands: int, window_size: int) -> int:
    n = 2 * (n_bands - 1)
    return n if window_size <= 0 or window_size >= n else 2 * (window_size // 2) + 1


def latency_frames(hop: int, noise_taps: int = 0) -> int:
    """Frames the stream lags the offline rendering: 2 for the harmonic synth (f0 and
    amplitude interpolation towards the next frame, Nyquist mask over neighbours), more if the
    noise filters' half length plus half a hop exceeds two hops."""
    need = (noise_taps // 2 + hop // 2) if noise_taps else 0
    return max(2, -(-need // hop))


# --------------------------------------------------------------------------------------
# Scriptable helpers
# --------------------------------------------------------------------------------------
# Shifts are written as multiplications / floor divisions of non-negative int64 values:
# ONNX's BitShift takes unsigned integers only.
def _mul32(x: Tensor, c: int) -> Tensor:
    lo = c & 0xFFFF
    hi = c >> 16
    return torch.remainder(x * lo + torch.remainder(x * hi, 65536) * 65536, 4294967296)


def _shr(x: Tensor, k: int) -> Tensor:
    # exact: x < 2**53 and a division by a power of two is exact in float64 (ONNX runtimes
    # were seen to round int64 floor-division through float32)
    return torch.floor(x.to(torch.float64) / float(1 << k)).to(torch.int64)


def _hash32(x: Tensor) -> Tensor:
    x = torch.bitwise_xor(x, _shr(x, 16))
    x = _mul32(x, 0x7FEB352D)
    x = torch.bitwise_xor(x, _shr(x, 15))
    x = _mul32(x, 0x846CA68B)
    return torch.bitwise_xor(x, _shr(x, 16))


def _counter_noise(batch: int, start: int, n: int, seed: int, like: Tensor) -> Tensor:
    """Scriptable twin of :func:`ddsp_models.export.noise.counter_noise` (same values)."""
    pos = torch.arange(n, dtype=torch.int64, device=like.device) + start
    rows = torch.arange(batch, dtype=torch.int64, device=like.device) + seed
    key = _hash32(_mul32(torch.remainder(rows, 4294967296), 0x9E3779B9))
    x = _hash32(torch.remainder(pos[None, :] + key[:, None], 4294967296))
    u = x.to(torch.float64) * (2.0 / 4294967296.0) - 1.0
    u = torch.where(pos[None, :] >= 0, u, torch.zeros_like(u))
    return u.to(like.dtype)


def _overlap_add(frames: Tensor, hop: int) -> Tensor:
    """``(B, N, W)`` frames starting every ``hop`` samples → ``(B, (N + P - 1) * hop)``
    summed signal, ``P = ceil(W / hop)`` (explicit loop over the P overlapping slices)."""
    b, n, w = frames.shape
    p = (w + hop - 1) // hop
    y = F.pad(frames, [0, p * hop - w]).reshape(b, n, p, hop)
    out = torch.zeros(b, n + p - 1, hop, dtype=frames.dtype, device=frames.device)
    for i in range(p):
        out = out + F.pad(y[:, :, i], [0, 0, i, p - 1 - i])
    return out.reshape(b, (n + p - 1) * hop)


def _fft_size(n: int) -> int:
    s = 1
    while s < n:
        s *= 2
    return s


def _scale(x: Tensor, code: int, a: float, b: float, c: float, d: float) -> Tensor:
    """The declared Scaling of a parameter, by code (see ``_SCALING_CODES``)."""
    if code == 1:  # exp_sigmoid: max * sigmoid(x + bias) ** log(exponent) + threshold
        return b * torch.pow(torch.sigmoid(x + d), math.log(a)) + c
    if code == 2:  # sigmoid_range
        return a + (b - a) * torch.sigmoid(x)
    if code == 3:  # log_sigmoid_range
        lo = math.log(a)
        hi = math.log(b)
        return torch.exp(lo + (hi - lo) * torch.sigmoid(x)).clamp(a, b)
    if code == 4:
        return torch.softmax(x, dim=-1)
    return x


class StreamingSynth(nn.Module):
    """An autoencoder's decoder and synth graph, run block by block (see the module docstring).

    Args:
        model: an :class:`~ddsp_models.nn.Autoencoder` (its weights are copied; eval mode).
        seed: seed of the counter-based noise (row ``b`` of a batch uses ``seed + b``).

    ``forward(f0_hz (B, N, 1) Hz, loudness_db (B, N, 1) dB) -> (B, 1, N * hop)`` with any
    ``N >= 1`` per call (block size ``N * hop`` samples: 64..1024 samples = 1..16 frames at
    16 kHz / 250 frames/s). ``reset()`` starts a new stream (also for a new batch size);
    ``flush()`` returns the last ``latency_samples`` samples. Attributes ``sample_rate``,
    ``frame_rate``, ``hop``, ``latency_frames``, ``latency_samples``.
    """

    def __init__(self, model, seed: int = 0):
        super().__init__()
        roles = streaming_plan(model)
        graph = model.graph
        dec = model.decoder
        self.sample_rate = int(model.sample_rate)
        self.frame_rate = int(model.frame_rate)
        self.hop = int(model.hop)
        self.seed = int(seed)
        # ---- decoder (copied so the model stays untouched)
        self.f0_mlp = copy.deepcopy(dec.f0_mlp)
        self.loudness_mlp = copy.deepcopy(dec.loudness_mlp)
        self.gru = copy.deepcopy(dec.gru)
        self.out_mlp = copy.deepcopy(dec.out_mlp)
        self.head = copy.deepcopy(dec.head)
        self.f0_log_scaling = dec.f0_scaling == "log"
        self.loudness_db_range = float(dec.loudness_db_range)
        self.hidden_size = int(dec.gru.hidden_size)
        self.n_params = int(dec.n_out)
        # ---- parameter columns and scalings
        layout = graph.parameter_layout()
        cols: dict = {}
        for e in layout.predicted:
            sc = e.scaling.to_dict()
            kind = sc.pop("kind")
            if kind not in _SCALING_CODES:
                raise UnsupportedGraphError(f"{e.node}.{e.param}: scaling {kind!r} is not "
                                            f"supported by the streaming renderer")
            vals = {"exp_sigmoid": [sc.get("exponent", 10.0), sc.get("max_value", 2.0),
                                    sc.get("threshold", 1e-7), sc.get("bias", 0.0)],
                    "sigmoid_range": [sc.get("low", 0.0), sc.get("high", 1.0), 0.0, 0.0],
                    "log_sigmoid_range": [sc.get("low", 1.0), sc.get("high", 2.0), 0.0, 0.0],
                    }.get(kind, [0.0, 0.0, 0.0, 0.0])
            cols[(e.node, e.param)] = (e.offset, e.size, _SCALING_CODES[kind], vals)

        def col(node, param):
            if node is None:
                return [0, 0, 0], [0.0, 0.0, 0.0, 0.0]
            off, size, code, vals = cols[(node, param)]
            return [int(off), int(size), int(code)], [float(v) for v in vals]

        self.has_harmonic = roles["harmonic"] is not None
        self.has_noise = roles["noise"] is not None
        self.has_reverb = roles["reverb"] is not None
        self.amp_col, self.amp_scale = col(roles["harmonic"], "amplitude")
        self.dist_col, self.dist_scale = col(roles["harmonic"], "harmonic_distribution")
        self.mag_col, self.mag_scale = col(roles["noise"], "magnitudes")
        h = graph.nodes[roles["harmonic"]] if self.has_harmonic else None
        self.n_harmonics = int(h.n_harmonics) if h is not None else 1
        self.normalize_below_nyquist = bool(h.normalize_below_nyquist) if h is not None else True
        nz = graph.nodes[roles["noise"]] if self.has_noise else None
        self.n_bands = int(nz.n_bands) if nz is not None else 2
        self.window_size = int(nz.window_size) if nz is not None else 0
        self.noise_taps = _noise_taps(self.n_bands, self.window_size) if nz is not None else 0
        self.latency_frames = latency_frames(self.hop, self.noise_taps)
        self.latency_samples = self.latency_frames * self.hop
        self.noise_offset = self.hop // 2
        self.noise_delay = (self.latency_samples - self.noise_taps // 2 - self.noise_offset
                            if self.has_noise else 0)
        rv = graph.nodes[roles["reverb"]] if self.has_reverb else None
        self.add_dry = bool(rv.add_dry) if rv is not None else False
        if rv is not None:
            ir = rv.ir.detach().clone().float()
            if self.add_dry:
                ir[0] = 0.0
        else:
            ir = torch.zeros(1)
        self.register_buffer("reverb_ir", ir)
        self.reverb_length = int(ir.shape[0])
        # spectrum of the IR at the FFT size last used (recomputed when the block size changes)
        self.register_buffer("reverb_spec", torch.zeros(0, dtype=torch.complex64),
                             persistent=False)
        self.reverb_nfft = 0
        # ---- state (shapes set by reset on the first call)
        for name in ("h", "f0_hist", "amp_hist", "phase", "noise_tail", "noise_line",
                     "reverb_tail", "last_f0", "last_raw"):
            self.register_buffer(name, torch.zeros(0), persistent=False)
        self.frames_done = 0
        self.noise_end = -1
        self.eval()

    # ------------------------------------------------------------------ state
    @torch.jit.export
    def reset(self):
        """Start a new stream: the next call initialises all state."""
        self.frames_done = 0

    def _init_state(self, f0_hz: Tensor):
        b = f0_hz.shape[0]
        d = self.latency_frames
        dtype = f0_hz.dtype
        dev = f0_hz.device
        self.h = torch.zeros(1, b, self.hidden_size, dtype=dtype, device=dev)
        self.f0_hist = f0_hz[:, :1, 0].expand(b, d + 1).contiguous()
        self.amp_hist = torch.zeros(b, d + 1, self.n_harmonics, dtype=dtype, device=dev)
        self.phase = torch.zeros(b, dtype=torch.float64, device=dev)
        self.noise_tail = torch.zeros(b, max(self.noise_taps - 1, 0), dtype=dtype, device=dev)
        self.noise_line = torch.zeros(b, max(self.noise_delay, 0), dtype=dtype, device=dev)
        self.reverb_tail = torch.zeros(b, self.reverb_length - 1, dtype=dtype, device=dev)
        self.last_f0 = f0_hz[:, :1].clone()
        self.last_raw = torch.zeros(b, 1, self.n_params, dtype=dtype, device=dev)

    # ------------------------------------------------------------------ decoder
    def _scale_f0(self, f0_hz: Tensor) -> Tensor:
        if self.f0_log_scaling:
            return torch.log(f0_hz.clamp_min(1.0)) / math.log(8000.0)
        midi = 12.0 * torch.log2(f0_hz.clamp_min(1e-10) / 440.0) + 69.0
        return torch.where(f0_hz > 0, midi, torch.zeros_like(midi)) / 127.0

    def _decode(self, f0_hz: Tensor, loudness_db: Tensor) -> Tensor:
        a = self.f0_mlp(self._scale_f0(f0_hz))
        b = self.loudness_mlp(loudness_db / self.loudness_db_range + 1.0)
        seq, h = self.gru(torch.cat([a, b], dim=-1), self.h)
        self.h = h
        return self.head(self.out_mlp(torch.cat([a, b, seq], dim=-1)))

    def _param(self, raw: Tensor, col: List[int], sc: List[float]) -> Tensor:
        x = raw[..., col[0]: col[0] + col[1]]
        return _scale(x, col[2], sc[0], sc[1], sc[2], sc[3])

    # ------------------------------------------------------------------ synths
    def _harmonic(self, f0: Tensor, raw: Tensor, t0: int) -> Tensor:
        """``f0`` (B, N) Hz, raw (B, N, P) → (B, N*hop) for blocks ``t0-D .. t0+N-D-1``."""
        b, n = f0.shape
        hop = self.hop
        d = self.latency_frames
        nyq = self.sample_rate / 2.0
        amp = self._param(raw, self.amp_col, self.amp_scale)
        dist = self._param(raw, self.dist_col, self.dist_scale)
        k = torch.arange(1, self.n_harmonics + 1, device=f0.device, dtype=f0.dtype)
        dist = torch.where(f0[..., None] * k < nyq, dist, torch.zeros_like(dist))
        if self.normalize_below_nyquist:
            dist = dist / dist.sum(-1, keepdim=True).clamp_min(1e-7)
        amps = amp * dist  # (B, N, K)
        if self.noise_end >= 0:
            # flushing: offline rendering holds the last frame's amplitudes *after* their
            # Nyquist mask over frames T-2, T-1 (see harmonic_synthesis); mask them likewise
            held = torch.maximum(self.f0_hist[:, -2], self.f0_hist[:, -1])
            amps = torch.where(held[:, None, None] * k < nyq, amps, torch.zeros_like(amps))
        ff = torch.cat([self.f0_hist, f0], dim=1)  # frames t0-D-1 .. t0+N-1
        aa = torch.cat([self.amp_hist, amps], dim=1)
        self.f0_hist = ff[:, ff.shape[1] - (d + 1):]
        self.amp_hist = aa[:, aa.shape[1] - (d + 1):]
        # Blocks j = t0-D+i (i = 0..N-1) use frames i+1 (current) and i+2 (next) of ff;
        # the Nyquist mask of frame q looks at frames q-1..q+1.
        m = torch.maximum(torch.maximum(ff[:, 0:n + 1], ff[:, 1:n + 2]), ff[:, 2:n + 3])
        am = aa[:, 1:n + 2]
        am = torch.where(m[..., None] * k < nyq, am, torch.zeros_like(am))  # (B, N+1, K)
        valid = (torch.arange(n, device=f0.device) + (t0 - d)) >= 0  # (N,)
        cur = ff[:, 1:n + 1].to(torch.float64)
        nxt = ff[:, 2:n + 2].to(torch.float64)
        r = torch.arange(hop, device=f0.device, dtype=torch.float64) / hop
        f_audio = cur[..., None] + (nxt - cur)[..., None] * r  # (B, N, hop)
        omega = 2.0 * math.pi * f_audio / self.sample_rate
        omega = omega * valid[None, :, None].to(torch.float64)
        omega = omega.reshape(b, n * hop)
        cs = torch.cumsum(omega, dim=-1)
        phase = torch.remainder(self.phase[:, None] + cs - omega, 2.0 * math.pi)
        self.phase = torch.remainder(self.phase + cs[:, -1], 2.0 * math.pi)
        ph = phase.to(f0.dtype).reshape(b, n, hop)
        rr = torch.arange(hop, device=f0.device, dtype=torch.float64)
        w_cur = (0.5 + 0.5 * torch.cos(math.pi * rr / hop)).to(f0.dtype)
        w_nxt = 1.0 - w_cur
        out = torch.empty(b, n, hop, dtype=f0.dtype, device=f0.device)
        step = max(1, (1 << 18) // max(1, b * hop * self.n_harmonics))
        for c0 in range(0, n, step):
            c1 = min(n, c0 + step)
            basis = torch.sin(ph[:, c0:c1, :, None] * k)  # (B, c, hop, K)
            pair = torch.stack([am[:, c0:c1], am[:, c0 + 1:c1 + 1]], dim=-1)  # (B, c, K, 2)
            y = torch.matmul(basis, pair)
            out[:, c0:c1] = y[..., 0] * w_cur + y[..., 1] * w_nxt
        out = out * valid[None, :, None].to(out.dtype)
        return out.reshape(b, n * hop)

    def _noise_ir(self, mags: Tensor) -> Tensor:
        n = 2 * (self.n_bands - 1)
        ir = torch.fft.irfft(mags, n)
        ir = torch.roll(ir, n // 2, dims=-1)
        ws = self.window_size
        if ws <= 0 or ws >= n:
            return ir * torch.hann_window(n, periodic=True, dtype=ir.dtype, device=ir.device)
        half = ws // 2
        taps = 2 * half + 1
        ir = ir[..., n // 2 - half: n // 2 + half + 1]
        w = torch.hann_window(taps + 2, periodic=False, dtype=ir.dtype, device=ir.device)
        return ir * w[1:-1]

    def _noise(self, raw: Tensor, t0: int) -> Tensor:
        b, n, _ = raw.shape
        hop = self.hop
        taps = self.noise_taps
        ir = self._noise_ir(self._param(raw, self.mag_col, self.mag_scale))  # (B, N, taps)
        start = t0 * hop - self.noise_offset
        noise = _counter_noise(b, start, n * hop, self.seed, raw)
        if self.noise_end >= 0:  # flushing: no noise after the signal's end (offline pads 0)
            pos = torch.arange(n * hop, device=raw.device) + start
            noise = noise * (pos < self.noise_end).to(noise.dtype)
        blocks = noise.reshape(b, n, hop)
        nfft = _fft_size(hop + taps - 1)
        y = torch.fft.irfft(torch.fft.rfft(blocks, nfft) * torch.fft.rfft(ir, nfft), nfft)
        y = _overlap_add(y, hop)[:, : n * hop + taps - 1]
        y = torch.cat([y[:, : taps - 1] + self.noise_tail, y[:, taps - 1:]], dim=1)
        self.noise_tail = y[:, n * hop:]
        z = torch.cat([self.noise_line, y[:, : n * hop]], dim=1)
        self.noise_line = z[:, n * hop:]
        # Output sample r stands for offline sample (t0 - D) * hop + r; before 0 there is none.
        first = (t0 - self.latency_frames) * hop
        keep = (torch.arange(n * hop, device=raw.device) + first) >= 0
        return z[:, : n * hop] * keep.to(z.dtype)

    def _reverb(self, x: Tensor) -> Tensor:
        m = x.shape[1]
        nr = self.reverb_length
        nfft = _fft_size(m + nr - 1)
        if nfft != self.reverb_nfft or self.reverb_spec.device != x.device:
            self.reverb_spec = torch.fft.rfft(self.reverb_ir.to(x.dtype), nfft)
            self.reverb_nfft = nfft
        full = torch.fft.irfft(torch.fft.rfft(x, nfft) * self.reverb_spec, nfft)
        full = full[:, : m + nr - 1]
        full = torch.cat([full[:, : nr - 1] + self.reverb_tail, full[:, nr - 1:]], dim=1)
        self.reverb_tail = full[:, m:]
        wet = full[:, :m]
        return x + wet if self.add_dry else wet

    # ------------------------------------------------------------------ public
    @torch.jit.export
    def synthesize(self, f0_hz: Tensor, raw: Tensor) -> Tensor:
        """Render ``N`` frames of raw decoder outputs ``(B, N, P)`` with f0 ``(B, N, 1)``."""
        b, n, _ = raw.shape
        t0 = self.frames_done
        out = torch.zeros(b, n * self.hop, dtype=raw.dtype, device=raw.device)
        if self.has_harmonic:
            out = out + self._harmonic(f0_hz[..., 0], raw, t0)
        if self.has_noise:
            out = out + self._noise(raw, t0)
        if self.has_reverb:
            out = self._reverb(out)
        self.frames_done = t0 + n
        self.last_f0 = f0_hz[:, n - 1:]
        self.last_raw = raw[:, n - 1:]
        return out[:, None, :]

    def forward(self, f0_hz: Tensor, loudness_db: Tensor) -> Tensor:
        if f0_hz.dim() != 3 or f0_hz.shape[-1] != 1 or f0_hz.shape != loudness_db.shape:
            raise ValueError("f0_hz and loudness_db must both be (batch, frames, 1)")
        if self.frames_done == 0 or self.h.shape[1] != f0_hz.shape[0]:
            self.frames_done = 0
            self._init_state(f0_hz)
        return self.synthesize(f0_hz, self._decode(f0_hz, loudness_db))

    @torch.jit.export
    def flush(self) -> Tensor:
        """The last ``latency_samples`` samples: the final frames rendered with the last frame
        held (as offline rendering holds it). Call once at the end of a stream."""
        d = self.latency_frames
        b = self.last_f0.shape[0]
        f0 = self.last_f0.expand(b, d, 1).contiguous()
        raw = self.last_raw.expand(b, d, self.n_params).contiguous()
        self.noise_end = self.frames_done * self.hop  # also tells _harmonic it is flushing
        out = self.synthesize(f0, raw)
        self.noise_end = -1
        return out
