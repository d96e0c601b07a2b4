"""Export a model for nn~ (Max/MSP and Pure Data), without the ``nn_tilde`` package.

nn~ (acids-ircam/nn_tilde) loads a TorchScript file and talks to it only through names:

* ``get_methods() -> List[str]``; for each method ``m`` a buffer ``m_params`` =
  ``[in_channels, in_ratio, out_channels, out_ratio]`` and the string lists
  ``m_input_labels`` / ``m_output_labels``. nn~ calls ``m(x)`` with ``x (batch, in_channels,
  buffer / in_ratio)`` — each control input decimated by keeping the last sample of every
  ``in_ratio`` — and expands the output ``(batch, out_channels, buffer / out_ratio)`` with
  ``repeat_interleave(out_ratio)``. The buffer is a power of two (nn~ rounds it up) and at
  least the largest ratio;
* ``get_attributes() -> List[str]``; for each attribute ``a`` a buffer ``a_params`` of type
  ids (bool 0, int 1, float 2, str 3), ``get_a()`` returning a tuple and ``set_a(value) ->
  int`` (0 accepted, -1 rejected);
* ``set_sample_rate(int)`` at load and when the audio settings change (nn~ never
  resamples: the model does).

:class:`NnTildeLive` emits that structure around :class:`~ddsp_models.export.live.LiveModel`:

======== ======================================== ===== ==========================
method   in → out                                 ratio labels
======== ======================================== ===== ==========================
forward  audio → audio                            1 / 1 ``(signal) audio in/out``
encode   audio → f0 (Hz), loudness (dB)           1 / R decoder inputs
decode   f0 (Hz), loudness (dB) → audio           R / 1 decoder inputs → audio
======== ======================================== ===== ==========================

``R`` (``control_ratio``) is a power of two near one frame at 48 kHz (128), so any nn~
buffer works. The attributes are the live model's controls (``pitch_shift``, ``gain_db``,
``gate_db``, ``auto_adjust`` and, where the graph has them, ``harmonic_mix``,
``reverb_wet``). Extra methods: ``get_latency() -> int`` (host samples), ``reset()``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Tuple

import torch
from torch import Tensor, nn

from ..core.filtering import fft_size
from .live import LiveModel

__all__ = ["NnTildeLive", "export_nn_tilde", "TYPE_IDS", "power_ceil"]

#: nn~'s attribute type ids
TYPE_IDS = {"bool": 0, "int": 1, "float": 2, "str": 3}


#: The power of two nn~ rounds a buffer size up to (1 for ``n <= 1``).
power_ceil = fft_size


class NnTildeLive(nn.Module):
    """nn~'s scripted structure around a :class:`LiveModel` (see the module docstring).

    Args:
        model: an :class:`~ddsp_models.nn.Autoencoder`.
        sample_rate: the rate before nn~ calls ``set_sample_rate`` (48 kHz).
        control_ratio: ``R``, host samples per control value of encode/decode (power of two).
        seed: noise seed.
        frames_per_step: :class:`LiveModel`'s option (frames per synth call at least; each
            above 1 adds a frame of latency and lowers the mean CPU cost).
    """

    def __init__(self, model, sample_rate: int = 48000, control_ratio: int = 128,
                 seed: int = 0, frames_per_step: int = 1):
        super().__init__()
        if control_ratio < 1 or control_ratio & (control_ratio - 1):
            raise ValueError(f"control_ratio must be a power of two, got {control_ratio}")
        self.live = LiveModel(model, host_rate=int(sample_rate), seed=seed,
                              frames_per_step=frames_per_step)
        self.sr = int(sample_rate)
        self.ratio = int(control_ratio)
        r = self.ratio
        self._methods: List[str] = ["forward", "encode", "decode"]
        self.register_buffer("forward_params", torch.tensor([1, 1, 1, 1]))
        self.register_buffer("encode_params", torch.tensor([1, 1, 2, r]))
        self.register_buffer("decode_params", torch.tensor([2, r, 1, 1]))
        self.forward_input_labels: List[str] = ["(signal) audio in (monophonic melody)"]
        self.forward_output_labels: List[str] = ["(signal) audio out (the instrument)"]
        self.encode_input_labels: List[str] = ["(signal) audio in (monophonic melody)"]
        self.encode_output_labels: List[str] = ["(signal) f0 in Hz", "(signal) loudness in dB"]
        self.decode_input_labels: List[str] = ["(signal) f0 in Hz", "(signal) loudness in dB"]
        self.decode_output_labels: List[str] = ["(signal) audio out (the instrument)"]
        names = self.live.control_names()
        self._attributes: List[str] = list(names)
        for name in names:
            kind = "bool" if name == "auto_adjust" else "float"
            self.register_buffer(f"{name}_params", torch.tensor([TYPE_IDS[kind]]))
        # values as nn~ sees them (one-element tuples, like nn_tilde's Module)
        self.has_mix = bool(self.live.has_mix)
        self.has_reverb = bool(self.live.has_reverb)
        self.has_stats = bool(self.live.has_stats)
        self.enc_f0 = 0.0
        self.enc_ld = -80.0
        self.eval()

    # --- nn~ discovery -------------------------------------------------------------------
    @torch.jit.export
    def get_methods(self) -> List[str]:
        return self._methods

    @torch.jit.export
    def get_attributes(self) -> List[str]:
        return self._attributes

    @torch.jit.export
    def set_sample_rate(self, sample_rate: int) -> int:
        """Called by nn~ with the host rate; resets the stream. 0, or -1 if rejected."""
        res = self.live.set_sample_rate(sample_rate)
        if res == 0:
            self.sr = sample_rate
            self.enc_f0 = 0.0
            self.enc_ld = -80.0
        return res

    @torch.jit.export
    def get_latency(self) -> int:
        """Total latency of ``forward`` in host samples (add nn~'s buffer for the patch)."""
        return self.live.get_latency()

    @torch.jit.export
    def reset(self) -> int:
        self.live.reset()
        self.enc_f0 = 0.0
        self.enc_ld = -80.0
        return 0

    # --- attributes ----------------------------------------------------------------------
    @torch.jit.export
    def get_pitch_shift(self) -> Tuple[float]:
        return (self.live.pitch_shift,)

    @torch.jit.export
    def set_pitch_shift(self, value: float) -> int:
        return self.live.set_control("pitch_shift", value)

    @torch.jit.export
    def get_gain_db(self) -> Tuple[float]:
        return (self.live.gain_db,)

    @torch.jit.export
    def set_gain_db(self, value: float) -> int:
        return self.live.set_control("gain_db", value)

    @torch.jit.export
    def get_gate_db(self) -> Tuple[float]:
        return (self.live.gate_db,)

    @torch.jit.export
    def set_gate_db(self, value: float) -> int:
        return self.live.set_control("gate_db", value)

    @torch.jit.export
    def get_auto_adjust(self) -> Tuple[bool]:
        return (self.live.auto_adjust,)

    @torch.jit.export
    def set_auto_adjust(self, value: bool) -> int:
        return self.live.set_control("auto_adjust", 1.0 if value else 0.0)

    @torch.jit.export
    def get_harmonic_mix(self) -> Tuple[float]:
        return (self.live.harmonic_mix,)

    @torch.jit.export
    def set_harmonic_mix(self, value: float) -> int:
        return self.live.set_control("harmonic_mix", value)

    @torch.jit.export
    def get_reverb_wet(self) -> Tuple[float]:
        return (self.live.reverb_wet,)

    @torch.jit.export
    def set_reverb_wet(self, value: float) -> int:
        return self.live.set_control("reverb_wet", value)

    # --- methods -------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        """``(B, 1, n)`` host audio → ``(B, 1, n)`` (batch mixed to one stream, repeated)."""
        return self.live(x)

    @torch.jit.export
    def encode(self, x: Tensor) -> Tensor:
        """``(B, 1, n)`` audio → ``(B, 2, n // R)``: f0 (Hz) and loudness (dB) as the decoder
        receives them (controls applied); each slot holds the latest frame completed by its
        end (the last value repeats while no new frame is ready)."""
        mono = x.mean(1).mean(0, keepdim=True)
        n = x.shape[-1]
        s = n // self.ratio
        f0, ld = self.live.encode_block(mono)
        f = f0.shape[-1]
        out = torch.empty(1, 2, s)
        for i in range(s):
            j = ((i + 1) * f) // s - 1 if s > 0 else -1
            if j >= 0:
                self.enc_f0 = float(f0[0, j])
                self.enc_ld = float(ld[0, j])
            out[0, 0, i] = self.enc_f0
            out[0, 1, i] = self.enc_ld
        return out.expand(x.shape[0], 2, s).contiguous()

    @torch.jit.export
    def decode(self, z: Tensor) -> Tensor:
        """``(B, 2, m)`` f0 (Hz) and loudness (dB) → ``(B, 1, m * R)`` audio (batch row 0)."""
        m = z.shape[-1]
        y = self.live.decode_block(z[:1, 0], z[:1, 1], m * self.ratio)
        return y.unsqueeze(1).expand(z.shape[0], 1, m * self.ratio).contiguous()


def nn_tilde_description(module: NnTildeLive) -> dict:
    """What the exported file holds (printed by the CLI, stored as ``ddsp_io.json``)."""
    live = module.live
    return {
        "format": "nn-tilde",
        "methods": {m: [int(v) for v in getattr(module, f"{m}_params").tolist()]
                    for m in module._methods},
        "attributes": list(module._attributes),
        "model_sample_rate": live.model_rate,
        "sample_rate": module.sr,
        "control_ratio": module.ratio,
        "latency_samples": live.get_latency(),
        "latency_ms": round(1000.0 * live.get_latency() / module.sr, 2),
        "note": "nn~ adds its own buffer (the buffer size argument) to the latency",
    }


def export_nn_tilde(model, path: str | Path, sample_rate: int = 48000,
                    control_ratio: int = 128, seed: int = 0,
                    frames_per_step: int = 1) -> tuple[Path, dict]:
    """Script :class:`NnTildeLive` and save it atomically; returns the path and description
    (``frames_per_step``: see :class:`~ddsp_models.export.live.LiveModel`)."""
    from ..data.atomic import atomic_write

    module = NnTildeLive(model, sample_rate=sample_rate, control_ratio=control_ratio,
                         seed=seed, frames_per_step=frames_per_step)
    info = nn_tilde_description(module)
    scripted = torch.jit.script(module)
    path = Path(path)
    extra = {"ddsp_io.json": json.dumps(info, indent=1)}
    atomic_write(path, lambda tmp: torch.jit.save(scripted, tmp, _extra_files=extra))
    return path, info
