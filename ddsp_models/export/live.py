"""Audio in, audio out, in real time: a trained instrument as a scriptable live model.

:class:`LiveModel` chains, for one mono stream at the host's rate (any rate; 44.1, 48, 88.2,
96 kHz and the model's own are tested) and host blocks of any size (64..8192 samples, changing
from call to call)::

    host audio ─► StreamResampler(host → model) ─► FIFO of whole frames (hop)
      ─► CausalFeatures (causal YIN f0, A-weighted loudness)
      ─► controls (gate, auto-adjust, pitch shift, gain) ─► decoder step + graph stream
         (harmonic/noise mix, reverb wet) ─► output gate ─► StreamResampler(model → host)
      ─► output FIFO ─► host audio

Everything is TorchScript (``torch.jit.script(LiveModel(model))``): no Python at run time.

**Latency.** The output FIFO starts with ``fifo_samples = ceil(k * hop * host / model)``
zeros (``k = frames_per_step``, default 1), which is enough for any block size: the live
output is the *offline causal rendering*
(:meth:`LiveModel.render_offline`: the same modules over a whole signal) delayed by exactly
``fifo_samples``. What a player hears is later by the analysis too:
``latency_samples`` = FIFO + input resampler delay + (feature centre lag + the graph's
look-ahead + output resampler delay) × host / model, in host samples (the value reported to
hosts; about 29 ms at 48 kHz for the shipped 16 kHz models).

**Cost per call.** Most of a call's CPU time is a fixed cost per synth call (the decoder
step and the graph stream run a few hundred small tensor ops however many frames they
render), so ``frames_per_step = k > 1`` renders frames only once ``k`` are waiting (then all
waiting frames): fewer, larger synth calls, a lower mean cost per second (and median, when
a host block is shorter than ``k`` frames), about the same worst case, and ``(k - 1) * hop``
more model samples of latency (4 ms per extra frame at 250 frames/s). ``docs/live.md`` has
the measured trade-off; the default is 1.

**Controls** (attributes, set with ``set_<name>``, which returns 0, or -1 when the value is
rejected):

* ``pitch_shift`` semitones (-24..24), applied after auto-adjust;
* ``gain_db`` input gain = loudness shift (-40..40 dB);
* ``auto_adjust`` (bool): a causal version of :mod:`ddsp_models.transfer.adjust` — an
  exponential mean (``adjust_seconds``) of the pitch and loudness of note-on frames is moved
  into the training data's pitch range by the fewest whole octaves (none when it is inside;
  a new shift only once the mean strays :data:`OCTAVE_HYSTERESIS` semitones beyond the range)
  and to the training loudness mean by a dB shift; note-off frames are quieted by
  ``quiet_db``; needs the model's ``stats.json``;
* ``gate_db`` (-120..0 dB, A-weighted loudness of the input): below it the decoder gets the
  floor loudness and the output fades out over ``release_seconds``; it opens again above it
  (6 dB hysteresis). Silence in gives exact silence out;
* ``harmonic_mix`` (0..1, 0.5 = as trained; 0 = noise only, 1 = harmonics only), only if the
  graph has harmonic (``amplitude``) and noise (``magnitudes``) nodes;
* ``reverb_wet`` (0..1, 1 = as trained), only if the graph has a trainable ``Reverb``.

:meth:`LiveModel.set_sample_rate` changes the host rate (rebuilds both resamplers) and resets
the stream; :meth:`LiveModel.reset` starts a new stream.
"""

import math
from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn

from ..core.scaling import octaves_into_range
from ..data.stats import pitch_range
from ..features.causal import CAUSAL_YIN_DEFAULTS, CausalFeatures
from .resample_stream import StreamResampler
from .streaming import StreamingSynth

__all__ = ["LiveModel", "CONTROL_RANGES"]

#: control → (min, max, default) as the hosts show them
CONTROL_RANGES = {
    "pitch_shift": (-24.0, 24.0, 0.0),
    "gain_db": (-40.0, 40.0, 0.0),
    "gate_db": (-120.0, 0.0, -60.0),
    "harmonic_mix": (0.0, 1.0, 0.5),
    "reverb_wet": (0.0, 1.0, 1.0),
}

#: Semitones the running mean pitch may stray beyond the training pitch range before
#: auto-adjust picks a new octave shift (with the range ``mean ± 6`` this is DDSP's rule with
#: a hysteresis of 0.15 octave).
OCTAVE_HYSTERESIS = 1.8


def _harmonic_noise_nodes(model) -> Tuple[List[str], List[str], List[str]]:
    layout = model.graph.parameter_layout()
    harm = sorted({e.node for e in layout.predicted if e.time_varying and e.param == "amplitude"})
    noise = sorted({e.node for e in layout.predicted
                    if e.time_varying and e.param == "magnitudes"})
    reverbs = [name for name, proc in model.graph.nodes.items()
               if type(proc).__name__ == "Reverb" and isinstance(getattr(proc, "ir", None),
                                                                 nn.Parameter)]
    return harm, noise, sorted(reverbs)


class LiveModel(nn.Module):
    """A model played live from audio (see the module docstring).

    Args:
        model: an :class:`~ddsp_models.nn.Autoencoder` (copied; its ``dataset_stats`` give
            the auto-adjust targets).
        host_rate: the host's sample rate in Hz (changeable with :meth:`set_sample_rate`).
        seed: seed of the counter-based noise.
        adjust_seconds: time constant of auto-adjust's running means.
        release_seconds: output fade once the gate closes.
        quiet_db: auto-adjust lowers unvoiced frames by this much.
        frames_per_step: render frames once this many (1..16) are waiting (module docstring:
            cost per call); each frame above 1 adds a frame of latency.
        **feature_kwargs: :class:`~ddsp_models.features.causal.CausalFeatures` options.

    ``forward(audio (B, 1, n)) -> (B, 1, n)`` (nn~'s shape; a batch is mixed down to one
    stream and the output repeated) and :meth:`process` ``((1, n)) -> (1, n)``.
    """

    # TorchScript reads attribute types from here (empty lists cannot be inferred)
    harmonic_nodes: List[str]
    noise_nodes: List[str]
    reverb_irs: List[Tensor]
    reverb_base: List[Tensor]
    gate_history: List[float]

    def __init__(self, model, host_rate: int = 48000, seed: int = 0,
                 adjust_seconds: float = 2.0, release_seconds: float = 0.3,
                 quiet_db: float = 20.0, frames_per_step: int = 1, **feature_kwargs):
        super().__init__()
        if not 1 <= int(frames_per_step) <= 16:
            raise ValueError(f"frames_per_step must be 1..16, got {frames_per_step}")
        self.frames_per_step = int(frames_per_step)
        synth = StreamingSynth(model, seed=seed)
        self.synth = synth
        self.model_rate = int(synth.sample_rate)
        self.frame_rate = int(synth.frame_rate)
        self.hop = int(synth.hop)
        self.graph_latency_frames = int(synth.latency_frames)
        kw = dict(CAUSAL_YIN_DEFAULTS)
        kw.update(feature_kwargs)
        self.features = CausalFeatures(self.model_rate, self.hop, **kw)
        self.range_db = float(self.features.range_db)
        self.res_in = StreamResampler(int(host_rate), self.model_rate)
        self.res_out = StreamResampler(self.model_rate, int(host_rate))
        self.host_rate = int(host_rate)
        # controls
        self.pitch_shift = 0.0
        self.gain_db = 0.0
        self.gate_db = -60.0
        self.harmonic_mix = 0.5
        self.reverb_wet = 1.0
        stats = getattr(model, "dataset_stats", None) or {}
        pitch = stats.get("pitch_midi") or {}
        loud = stats.get("loudness_db_voiced") or stats.get("loudness_db") or {}
        self.has_stats = pitch.get("mean") is not None and loud.get("mean") is not None
        self.target_midi = float(pitch.get("mean", 60.0) or 60.0)
        low_high = pitch_range(stats) if self.has_stats else None
        if low_high is None:  # DDSP's rule: the octaves nearest the mean
            low_high = (self.target_midi - 6.0, self.target_midi + 6.0)
        self.target_low = float(low_high[0])
        self.target_high = float(low_high[1])
        self.octave_hysteresis = OCTAVE_HYSTERESIS
        self.target_loudness = float(loud.get("mean", -30.0) or -30.0)
        self.auto_adjust = bool(self.has_stats)
        self.adjust_alpha = 1.0 - math.exp(-1.0 / (float(adjust_seconds) * self.frame_rate))
        self.release_step = 1.0 / max(1.0, float(release_seconds) * self.frame_rate)
        self.quiet_db = float(quiet_db)
        harm, noise, reverbs = _harmonic_noise_nodes(model)
        self.harmonic_nodes: List[str] = harm
        self.noise_nodes: List[str] = noise
        # the mix path below feeds f0_hz only: graphs with other external controls (gate,
        # velocity, ...) keep StreamingSynth.step, which derives them, and have no mix control
        only_f0 = set(model.graph.parameter_layout().externals) <= {"f0_hz"}
        self.has_mix = len(harm) > 0 and len(noise) > 0 and only_f0
        self.has_reverb = len(reverbs) > 0
        # the stream's own IR parameters (shared tensors) and their trained values
        procs = dict(self.synth.stream.procs.items())
        self.reverb_irs: List[Tensor] = [procs[r].ir for r in reverbs]
        self.reverb_base: List[Tensor] = [procs[r].ir.detach().clone() for r in reverbs]
        for p in self.parameters():
            p.requires_grad_(False)
        # stream state
        self.feat_state: Dict[str, Tensor] = self.features.init_state(1)
        self.pending = torch.zeros(1, 0)
        self.fifo_samples = 0
        self.out_fifo = torch.zeros(1, 0)
        self.dec_fifo = torch.zeros(1, 0)
        self.ema_midi = 0.0
        self.ema_loudness = 0.0
        self.seen_note = False
        self.octave = 0.0
        self.gate_open = False
        self.out_gain = 0.0
        self.gate_history: List[float] = [0.0] * (self.graph_latency_frames + 1)
        # the output gain's linear ramp over one frame (1 / hop .. 1)
        self.register_buffer("ramp", (torch.arange(1, self.hop + 1, dtype=torch.float32)
                                      / float(self.hop)).reshape(1, 1, self.hop),
                             persistent=False)
        self.latency_samples = 0
        self.underflows = 0
        self._configure(int(host_rate))
        self.eval()

    # --- configuration -------------------------------------------------------------------
    def _configure(self, host_rate: int):
        self.host_rate = host_rate
        self.res_in.set_rates(host_rate, self.model_rate)
        self.res_out.set_rates(self.model_rate, host_rate)
        lead = self.frames_per_step * self.hop * host_rate
        self.fifo_samples = (lead + self.model_rate - 1) // self.model_rate
        model_side = float(self.features.latency_samples + self.graph_latency_frames * self.hop
                           + self.res_out.delay_in)
        self.latency_samples = int(round(self.fifo_samples + self.res_in.delay_in
                                         + model_side * host_rate / self.model_rate))
        self.reset()

    @torch.jit.export
    def reset(self):
        """Start a new stream (every state back to silence; controls kept)."""
        self.res_in.reset()
        self.res_out.reset()
        self.synth.reset()
        self.feat_state = self.features.init_state(1)
        self.pending = torch.zeros(1, 0)
        self.out_fifo = torch.zeros(1, self.fifo_samples)
        self.dec_fifo = torch.zeros(1, self.fifo_samples)
        self.ema_midi = self.target_midi
        self.ema_loudness = self.target_loudness
        self.seen_note = False
        self.octave = 0.0
        self.gate_open = False
        self.out_gain = 0.0
        self.gate_history = [0.0] * (self.graph_latency_frames + 1)
        self.underflows = 0

    @torch.jit.export
    def set_sample_rate(self, sample_rate: int) -> int:
        """Change the host rate (8 kHz..384 kHz) and reset: 0, or -1 if rejected."""
        if sample_rate < 8000 or sample_rate > 384000:
            return -1
        self._configure(sample_rate)
        return 0

    @torch.jit.export
    def get_latency(self) -> int:
        """Total latency in host samples (see the module docstring)."""
        return self.latency_samples

    @torch.jit.export
    def set_control(self, name: str, value: float) -> int:
        """Set a control by name (module docstring): 0, or -1 if the name/value is rejected."""
        if name == "auto_adjust":
            if not self.has_stats and value != 0.0:
                return -1
            self.auto_adjust = value != 0.0
            return 0
        if name == "pitch_shift" and -24.0 <= value <= 24.0:
            self.pitch_shift = value
            return 0
        if name == "gain_db" and -40.0 <= value <= 40.0:
            self.gain_db = value
            return 0
        if name == "gate_db" and -120.0 <= value <= 0.0:
            self.gate_db = value
            return 0
        if name == "harmonic_mix" and self.has_mix and 0.0 <= value <= 1.0:
            self.harmonic_mix = value
            return 0
        if name == "reverb_wet" and self.has_reverb and 0.0 <= value <= 1.0:
            self.reverb_wet = value
            for i in range(len(self.reverb_irs)):
                self.reverb_irs[i].copy_(self.reverb_base[i] * value)
            return 0
        return -1

    @torch.jit.export
    def get_control(self, name: str) -> float:
        """The value of a control (``auto_adjust``: 1.0 or 0.0); NaN for an unknown name."""
        if name == "auto_adjust":
            return 1.0 if self.auto_adjust else 0.0
        if name == "pitch_shift":
            return self.pitch_shift
        if name == "gain_db":
            return self.gain_db
        if name == "gate_db":
            return self.gate_db
        if name == "harmonic_mix":
            return self.harmonic_mix
        if name == "reverb_wet":
            return self.reverb_wet
        return float("nan")

    @torch.jit.export
    def control_names(self) -> List[str]:
        """The controls this model has (mixes only where the graph has such nodes)."""
        names = ["pitch_shift", "gain_db", "gate_db"]
        if self.has_stats:
            names.append("auto_adjust")
        if self.has_mix:
            names.append("harmonic_mix")
        if self.has_reverb:
            names.append("reverb_wet")
        return names

    # --- the frame pipeline --------------------------------------------------------------
    @torch.jit.export
    def analyse(self, xm: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Model-rate audio ``(1, F * hop)`` → the decoder's inputs ``f0_hz, loudness_db``
        ``(1, F)`` (controls applied) and the output gate target ``(1, F)`` (1 open, 0
        closed); carries the feature and control state."""
        f0_out, ld_out, gate = self._analyse(xm)
        n = len(gate)
        return (torch.tensor(f0_out, dtype=torch.float64).reshape(1, n),
                torch.tensor(ld_out, dtype=torch.float64).reshape(1, n),
                torch.tensor(gate, dtype=torch.float64).reshape(1, n))

    def _analyse(self, xm: Tensor) -> Tuple[List[float], List[float], List[float]]:
        """:meth:`analyse` as lists of ``F`` floats (the live path makes its tensors once)."""
        f0, conf, ld, voiced, self.feat_state = self.features(xm, self.feat_state)
        n = f0.shape[1]
        f0_list: List[float] = f0[0].tolist()
        ld_list: List[float] = ld[0].tolist()
        voiced_list: List[bool] = voiced[0].tolist()
        f0_out: List[float] = []
        ld_out: List[float] = []
        gate: List[float] = []
        alpha = self.adjust_alpha
        shift = 2.0 ** (self.pitch_shift / 12.0)
        for t in range(n):
            raw = ld_list[t]
            if self.gate_open and raw < self.gate_db - 6.0:
                self.gate_open = False
            elif (not self.gate_open) and raw > self.gate_db:
                self.gate_open = True
            note_on = self.gate_open and voiced_list[t]
            level = raw + self.gain_db
            octave = 0.0
            if self.auto_adjust:
                if note_on:
                    midi = 12.0 * math.log(max(f0_list[t], 1e-3) / 440.0) / math.log(2.0) + 69.0
                    if not self.seen_note:  # the first note sets the means
                        self.ema_midi = midi
                        self.ema_loudness = level
                        self.seen_note = True
                    else:
                        self.ema_midi += alpha * (midi - self.ema_midi)
                        self.ema_loudness += alpha * (level - self.ema_loudness)
                    placed = self.ema_midi + 12.0 * self.octave
                    if (placed < self.target_low - self.octave_hysteresis
                            or placed > self.target_high + self.octave_hysteresis):
                        self.octave = float(octaves_into_range(self.ema_midi, self.target_low,
                                                               self.target_high))
                octave = self.octave
                level = level + (self.target_loudness - self.ema_loudness)
                if not note_on:
                    level = level - self.quiet_db
            f0_out.append(f0_list[t] * shift * 2.0 ** octave)
            ld_out.append(max(level, -self.range_db) if self.gate_open else -self.range_db)
            gate.append(1.0 if self.gate_open else 0.0)
        return f0_out, ld_out, gate

    @torch.jit.export
    def synthesize(self, f0_hz: Tensor, loudness_db: Tensor) -> Tensor:
        """Decoder + graph for frames ``(1, F)`` → model-rate audio ``(1, F * hop)`` (mono;
        harmonic/noise mix applied; state carried)."""
        synth = self.synth
        dtype = synth.template["#last_f0"].dtype
        f0 = f0_hz.to(dtype).unsqueeze(-1)
        ld = loudness_db.to(dtype).unsqueeze(-1)
        n = f0.shape[1]
        state = synth.state
        if not self.has_mix or self.harmonic_mix == 0.5:  # as trained: the synth's own step
            y0, synth.state = synth.step(f0, ld, state, False)
            return (y0[:, 0] if y0.shape[1] == 1 else y0.mean(1)).to(torch.float32)
        # the mix: StreamingSynth.step with the harmonic amplitudes and noise magnitudes scaled
        # (graphs whose one external control is f0_hz; see __init__)
        raw, hidden = synth.decoder.step(f0, ld, state["#hidden"])
        params = synth.params(raw)
        hg = min(1.0, 2.0 * self.harmonic_mix)
        ng = min(1.0, 2.0 * (1.0 - self.harmonic_mix))
        for name in self.harmonic_nodes:
            params[name]["amplitude"] = params[name]["amplitude"] * hg
        for name in self.noise_nodes:
            params[name]["magnitudes"] = params[name]["magnitudes"] * ng
        controls: Dict[str, Tensor] = {"f0_hz": f0}
        y, new = synth.stream(params, controls, [], state, n, False)
        new["#hidden"] = hidden
        new["#last_raw"] = raw[:, n - 1:]
        new["#last_f0"] = f0[:, n - 1:]
        synth.state = new
        return y.mean(1).to(torch.float32)

    def _gate_gain(self, gate: List[float]) -> List[float]:
        """Per-frame output gains ``F + 1`` (the last gain of the previous call first) from
        per-frame gate targets, delayed by the graph's latency; attack one frame, release
        ``release_seconds``."""
        n = len(gate)
        hist = self.gate_history + gate
        g_prev = self.out_gain
        values: List[float] = [g_prev]
        for t in range(n):
            g = 1.0 if hist[t + 1] > 0.5 else max(0.0, g_prev - self.release_step)
            values.append(g)
            g_prev = g
        self.out_gain = g_prev
        self.gate_history = hist[n:]
        return values

    def _apply_gain(self, y: Tensor, values: List[float]) -> Tensor:
        """``y (1, F * hop)`` times the gains linearly ramped over each frame (no work while
        the gate stays open; zeros while it stays closed)."""
        n = len(values) - 1
        if min(values) == 1.0:
            return y
        if max(values) == 0.0:
            return torch.zeros_like(y)
        gains = torch.tensor(values, dtype=torch.float32, device=y.device).reshape(1, n + 1, 1)
        g = gains[:, :-1] + (gains[:, 1:] - gains[:, :-1]) * self.ramp
        return y * g.reshape(1, n * self.hop)

    @torch.jit.export
    def frames(self, xm: Tensor) -> Tensor:
        """Model-rate audio ``(1, F * hop)`` → model-rate output ``(1, F * hop)``."""
        f0, ld, gate = self._analyse(xm)
        n = len(gate)
        dtype = self.synth.template["#last_f0"].dtype
        y = self.synthesize(torch.tensor(f0, dtype=dtype).reshape(1, n),
                            torch.tensor(ld, dtype=dtype).reshape(1, n))
        return self._apply_gain(y, self._gate_gain(gate))

    # --- host-rate streaming -------------------------------------------------------------
    @torch.jit.export
    def process(self, x: Tensor) -> Tensor:
        """One host block ``(1, n)`` → ``(1, n)`` (any ``n``; state carried)."""
        n = x.shape[-1]
        xm = self.res_in(x.to(torch.float32))
        buf = torch.cat([self.pending, xm], -1)
        f = buf.shape[-1] // self.hop
        if f >= self.frames_per_step:
            ym = self.frames(buf[:, :f * self.hop])
            self.pending = buf[:, f * self.hop:]
            self.out_fifo = torch.cat([self.out_fifo, self.res_out(ym)], -1)
        else:
            self.pending = buf
        have = self.out_fifo.shape[-1]
        if have < n:  # cannot happen with fifo_samples of lead; kept safe
            self.underflows += 1
            self.out_fifo = torch.cat([torch.zeros(1, n - have), self.out_fifo], -1)
        out = self.out_fifo[:, :n]
        self.out_fifo = self.out_fifo[:, n:]
        return out

    @torch.jit.export
    def encode_block(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Host audio ``(1, n)`` → the decoder inputs of the frames completed in this call:
        ``f0_hz, loudness_db`` ``(1, F)`` (controls applied; ``F`` may be 0)."""
        xm = self.res_in(x.to(torch.float32))
        buf = torch.cat([self.pending, xm], -1)
        f = buf.shape[-1] // self.hop
        self.pending = buf[:, f * self.hop:]
        f0, ld, gate = self.analyse(buf[:, :f * self.hop])
        return f0.to(torch.float32), ld.to(torch.float32)

    @torch.jit.export
    def decode_block(self, f0_hz: Tensor, loudness_db: Tensor, n: int) -> Tensor:
        """Control slots ``(1, m)`` spread evenly over the next ``n`` host samples → audio
        ``(1, n)`` (frames are rendered until ``n`` samples are ready; each frame uses the
        slot it falls in)."""
        m = f0_hz.shape[-1]
        tries = 0
        while self.dec_fifo.shape[-1] < n and tries < 4:
            need = n - self.dec_fifo.shape[-1]
            frames = max(1, int(math.ceil(need * self.model_rate
                                          / float(self.host_rate * self.hop))))
            pos = (torch.arange(frames, dtype=torch.float64) + 0.5) * (float(m) / frames)
            slot = pos.floor().to(torch.int64).clamp(0, m - 1)
            f0 = f0_hz[:, slot].to(torch.float64)
            ld = loudness_db[:, slot].to(torch.float64)
            y = self.synthesize(f0, ld)
            self.dec_fifo = torch.cat([self.dec_fifo, self.res_out(y)], -1)
            tries += 1
        have = self.dec_fifo.shape[-1]
        if have < n:
            self.dec_fifo = torch.cat([torch.zeros(1, n - have), self.dec_fifo], -1)
        out = self.dec_fifo[:, :n]
        self.dec_fifo = self.dec_fifo[:, n:]
        return out

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 1, n)`` → ``(B, 1, n)``: the batch mixed to one stream, output repeated."""
        mono = x.mean(1).mean(0, keepdim=True) if x.dim() == 3 else x.reshape(1, -1)
        y = self.process(mono)
        b = x.shape[0] if x.dim() == 3 else 1
        return y.unsqueeze(1).expand(b, 1, y.shape[-1]).contiguous()

    @torch.jit.export
    def render_offline(self, x: Tensor) -> Tensor:
        """The offline causal rendering of a whole host-rate signal ``(1, L)`` → ``(1, L')``,
        ``L' = ceil(ceil(L * model / host) // hop * hop * host / model)`` (resets first): the
        same modules in one call each; the live output is this delayed by ``fifo_samples``."""
        self.reset()
        xm = self.res_in(x.to(torch.float32))
        f = xm.shape[-1] // self.hop
        y = self.res_out(self.frames(xm[:, :f * self.hop]))
        self.reset()
        return y
