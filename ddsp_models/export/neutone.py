"""Export a model as a Neutone plugin model (``.nm``), without the ``neutone_sdk`` package.

The Neutone plugin loads a TorchScript file (with ``metadata.json`` inside) and calls, by
name, what neutone_sdk's ``save_neutone_model`` writes: a ``SampleQueueWrapper`` around a
``WaveformToWaveformBase``. neutone_sdk imports torchaudio, which cannot be a dependency
here, so this module builds the same scripted structure from its own classes:

* the outer module (what the SDK's ``SampleQueueWrapper`` is): ``forward(x (ch, n), params
  (4, n)) -> (ch, n)``, ``forward_bt``, ``forward_offline``,
  ``set_daw_sample_rate_and_buffer_size(daw_sr, daw_bs, model_sr=None, model_bs=None) ->
  int``, ``reset()``, ``is_resampling()``, ``calc_buffering_delay_samples()``,
  ``calc_model_delay_samples()`` (= the live model's declared latency), ``to_metadata()``,
  ``get_preserved_attributes()``, the ``get_*`` metadata accessors and ``w2w_base``;
* ``w2w_base`` (what ``WaveformToWaveformBase`` is): the same metadata methods,
  ``is_input_mono``/``is_output_mono`` (mono → mono), ``get_native_sample_rates`` /
  ``get_native_buffer_sizes``, ``get_look_behind_samples`` (0), the knobs' metadata
  (``p1..p4``: dicts as ``ContinuousNeutoneParameter.to_metadata`` writes them),
  ``get_numerical_params_default_values_0to1``, ``forward(x, params)`` and ``model`` (the
  :class:`~ddsp_models.export.live.LiveModel`);
* ``to_metadata()`` returns a ``Dict[str, Any]`` equal to ``metadata.json`` less
  ``sample_sound_files`` (neutone_sdk >= 1.5; 1.4 returned NamedTuples), and
  ``get_metadata_json()`` that JSON (as the SDK writes it: indent 4, sorted keys).

It follows neutone_sdk 1.5.2 (the SDK release that runs on torch 2.5, the libtorch of nn~ 1.6
and of today's hosts); its loader and checks accept the file (``benchmarks/check_host_compat.py``
in a side environment; docs/live.md, "Older hosts").

The live model resamples and buffers by itself (any DAW rate and buffer size), so the wrapper
never resamples (``is_resampling() == False``) and adds no queue delay. Knobs (continuous,
0..1): ``p1`` pitch shift (-24..24 semitones, whole semitones, default 0), ``p2`` loudness
shift (-20..20 dB), ``p3`` gate threshold (-100..-20 dB), ``p4`` reverb wet (0..1) when the
graph has a learned reverb, else the harmonic/noise mix. Auto-adjust stays on when the model
has statistics. Metadata (name, authors, descriptions, tags, version, citation, licence of
the training data) comes from the model card (``README.md`` of the model folder).
"""

import json
import re
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from .live import LiveModel

__all__ = ["NeutoneLive", "NeutoneW2W", "export_neutone", "card_metadata",
           "PRESERVED_ATTRIBUTES", "NEUTONE_SDK_VERSION", "METADATA_FIELDS"]

#: the SDK release whose structure this follows (checked with its loader: docs/live.md)
NEUTONE_SDK_VERSION = "1.5.2"
MAX_N_PARAMS = 4
NATIVE_SAMPLE_RATES = [44100, 48000, 88200, 96000]
NATIVE_BUFFER_SIZES = [64, 128, 256, 512, 1024, 2048, 4096, 8192]
CITATION = ("Engel, J., Hantrakul, L., Gu, C., Roberts, A. DDSP: Differentiable Digital "
            "Signal Processing. ICLR 2020.")


#: keys of ``to_metadata()`` (neutone_sdk 1.5's core metadata, then the waveform-to-waveform
#: ones); ``metadata.json`` adds ``sample_sound_files``
METADATA_FIELDS = ["model_name", "model_authors", "model_short_description",
                   "model_long_description", "neutone_parameters", "wet_default_value",
                   "dry_default_value", "input_gain_default_value",
                   "output_gain_default_value", "technical_description", "technical_links",
                   "tags", "model_version", "sdk_version", "pytorch_version", "date_created",
                   "citation", "is_experimental", "is_input_mono", "is_output_mono",
                   "model_type", "native_buffer_sizes", "native_sample_rates",
                   "look_behind_samples"]


#: methods the plugin calls on the saved module (the SDK's preserved attributes)
PRESERVED_ATTRIBUTES = [
    "forward_bt", "is_input_mono", "is_output_mono", "get_model_name", "get_model_authors",
    "get_native_sample_rates", "get_native_buffer_sizes", "get_wet_default_value",
    "get_dry_default_value", "get_default_param_values", "get_default_param_names",
    "get_default_param_descriptions", "get_default_param_types", "get_default_param_used",
    "get_input_gain_default_value", "get_output_gain_default_value", "is_resampling",
    "calc_buffering_delay_samples", "calc_model_delay_samples",
    "set_daw_sample_rate_and_buffer_size", "reset", "get_preserved_attributes",
    "to_metadata", "get_metadata_json", "w2w_base",
]  # neutone_sdk 1.5.2's SampleQueueWrapper lists a subset; 1.4 all but get_metadata_json


def card_metadata(folder: Union[str, Path, None], name: str = "") -> dict:
    """Metadata from a model card (``folder/README.md``): name, short and long description,
    licence of the data, version and tags. Missing parts get neutral defaults."""
    text = ""
    if folder is not None and (Path(folder) / "README.md").is_file():
        text = (Path(folder) / "README.md").read_text(encoding="utf-8")
    title = re.search(r"^#\s+(.+)$", text, re.M)
    model = name or (Path(folder).name if folder else "ddsp model")
    paras = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    short = next((p for p in paras if not p.startswith(("#", "|", "```"))), "")
    short = re.sub(r"`([^`]*)`", r"\1", short.replace("\n", " "))
    data = re.search(r"## Data\s*\n(.+?)(?:\n## |\Z)", text, re.S)
    data_text = data.group(1) if data else ""
    data_first = re.split(r"\n\s*\n", data_text.strip())[0] if data_text else ""
    licence = re.search(r"Licen[cs]e of the data:\s*(.+?)(?:\n\s*\n|\Z)", text, re.S)
    licence_text = " ".join(licence.group(1).split()) if licence else "unknown"
    release = re.search(r"\(([^)]*release[^)]*)\)", title.group(1)) if title else None
    words = {"first": 1, "second": 2, "third": 3, "fourth": 4}
    version = "1"
    if release:
        for w, v in words.items():
            if w in release.group(1):
                version = str(v)
    long = " ".join(data_first.split())
    long = re.sub(r"`([^`]*)`", r"\1", long)
    return {
        "model_name": f"DDSP {model}"[:30],
        "model_authors": ["ddsp-models contributors"],
        "model_version": version,
        "model_short_description": (short or f"DDSP {model}")[:150],
        "model_long_description": (f"Plays any monophonic audio as {model}: causal pitch and "
                                   f"loudness tracking drive a DDSP decoder and synth. "
                                   f"Training data: {long}")[:500],
        "technical_description": (f"DDSP autoencoder (GRU decoder, harmonic + filtered noise "
                                  f"synth, learned reverb) with causal YIN f0 and "
                                  f"A-weighted loudness. Licence of the training data: "
                                  f"{licence_text}")[:500],
        "technical_links": {"Paper": "https://arxiv.org/abs/2001.04643"},
        "tags": ["ddsp", "timbre transfer", model[:15], "instrument", "real-time"],
        "citation": CITATION,
        "licence": licence_text,
    }


class NeutoneW2W(nn.Module):
    """The ``WaveformToWaveformBase`` part (see the module docstring)."""

    neutone_parameters_metadata: Dict[str, Dict[str, Union[int, float, str, bool, List[str],
                                                           List[int]]]]
    remapped_params: Dict[str, Tensor]

    def __init__(self, live: LiveModel, meta: dict):
        super().__init__()
        self.model = live
        self.MAX_N_PARAMS = MAX_N_PARAMS
        self.SDK_VERSION = NEUTONE_SDK_VERSION
        self.CURRENT_TIME = float(time.time())
        self.use_debug_mode = False
        self.model_name = str(meta["model_name"])
        self.model_authors: List[str] = list(meta["model_authors"])
        self.model_version = str(meta["model_version"])
        self.short_description = str(meta["model_short_description"])
        self.long_description = str(meta["model_long_description"])
        self.technical_description = str(meta["technical_description"])
        self.technical_links: Dict[str, str] = dict(meta["technical_links"])
        self.tags: List[str] = list(meta["tags"])
        self.citation = str(meta["citation"])
        fourth = "reverb_wet" if live.has_reverb else ("harmonic_mix" if live.has_mix else "")
        self.fourth = fourth
        knobs = [
            ("pitch shift", "pitch shift, -24..+24 semitones (centre: none)", 0.5),
            ("loudness", "loudness shift, -20..+20 dB (centre: none)", 0.5),
            ("gate", "gate threshold, -100..-20 dB: quieter input plays nothing", 0.5),
        ]
        if fourth == "reverb_wet":
            knobs.append(("reverb", "learned reverb, dry (0) to as trained (1)", 1.0))
        elif fourth == "harmonic_mix":
            knobs.append(("harmonic/noise", "noise only (0) .. harmonics only (1)", 0.5))
        # as ContinuousNeutoneParameter(name, description, default, 0.0, 1.0).to_metadata()
        self.neutone_parameters_metadata = {
            f"p{i + 1}": {"name": n, "description": d, "default_value": float(v),
                          "used": True, "type": "continuous", "min_value": 0.0,
                          "max_value": 1.0}
            for i, (n, d, v) in enumerate(knobs)}
        self.n_neutone_parameters = len(knobs)
        defaults = [float(k[2]) for k in knobs] + [0.0] * (MAX_N_PARAMS - len(knobs))
        self.register_buffer("default_param_values", torch.tensor(defaults).unsqueeze(-1))
        self.neutone_parameter_names: List[str] = (
            [k[0] for k in knobs] + [""] * (MAX_N_PARAMS - len(knobs)))
        self.neutone_parameter_descriptions: List[str] = (
            [k[1] for k in knobs] + [""] * (MAX_N_PARAMS - len(knobs)))
        self.neutone_parameter_used: List[bool] = (
            [True] * len(knobs) + [False] * (MAX_N_PARAMS - len(knobs)))
        self.neutone_parameter_types: List[str] = ["continuous"] * MAX_N_PARAMS
        self.remapped_params = {f"p{i + 1}": torch.tensor([defaults[i]])
                                for i in range(MAX_N_PARAMS)}
        self.last_knobs: List[float] = [-1.0] * MAX_N_PARAMS
        self.sample_rate = int(live.host_rate)
        self.buffer_size = 0
        self.realtime = True  # read by neutone_sdk >= 1.5's loader
        self.metadata_json_str = ""  # filled by export_neutone before scripting

    @torch.jit.export
    def get_metadata_json(self) -> str:
        """The metadata as JSON (what ``metadata.json`` in the file holds; SDK >= 1.5)."""
        return self.metadata_json_str

    # --- metadata ------------------------------------------------------------------------
    @torch.jit.export
    def get_model_name(self) -> str:
        return self.model_name

    @torch.jit.export
    def get_model_authors(self) -> List[str]:
        return self.model_authors

    @torch.jit.export
    def get_model_short_description(self) -> str:
        return self.short_description

    @torch.jit.export
    def get_model_long_description(self) -> str:
        return self.long_description

    @torch.jit.export
    def get_technical_description(self) -> str:
        return self.technical_description

    @torch.jit.export
    def get_technical_links(self) -> Dict[str, str]:
        return self.technical_links

    @torch.jit.export
    def get_tags(self) -> List[str]:
        return self.tags

    @torch.jit.export
    def get_model_version(self) -> str:
        return self.model_version

    @torch.jit.export
    def is_experimental(self) -> bool:
        return False

    @torch.jit.export
    def get_citation(self) -> str:
        return self.citation

    @torch.jit.export
    def get_neutone_parameters_metadata(self) -> Dict[str, Dict[str, Union[
            int, float, str, bool, List[str], List[int]]]]:
        return self.neutone_parameters_metadata

    @torch.jit.export
    def get_numerical_params_default_values_0to1(self) -> Tensor:
        """``(4, 1)`` knob defaults in 0..1 (unused knobs 0)."""
        return self.default_param_values

    @torch.jit.export
    def get_default_param_values(self) -> Tensor:
        return self.default_param_values

    @torch.jit.export
    def get_default_param_names(self) -> List[str]:
        return self.neutone_parameter_names

    @torch.jit.export
    def get_default_param_descriptions(self) -> List[str]:
        return self.neutone_parameter_descriptions

    @torch.jit.export
    def get_default_param_types(self) -> List[str]:
        return self.neutone_parameter_types

    @torch.jit.export
    def get_default_param_used(self) -> List[bool]:
        return self.neutone_parameter_used

    @torch.jit.export
    def get_wet_default_value(self) -> float:
        return 1.0

    @torch.jit.export
    def get_dry_default_value(self) -> float:
        return 0.0

    @torch.jit.export
    def get_input_gain_default_value(self) -> float:
        return 0.5

    @torch.jit.export
    def get_output_gain_default_value(self) -> float:
        return 0.5

    @torch.jit.export
    def is_input_mono(self) -> bool:
        return True

    @torch.jit.export
    def is_output_mono(self) -> bool:
        return True

    @torch.jit.export
    def get_native_sample_rates(self) -> List[int]:
        return [44100, 48000, 88200, 96000]

    @torch.jit.export
    def get_native_buffer_sizes(self) -> List[int]:
        return [64, 128, 256, 512, 1024, 2048, 4096, 8192]

    @torch.jit.export
    def get_look_behind_samples(self) -> int:
        return 0

    @torch.jit.export
    def is_resampling(self) -> bool:
        return False

    @torch.jit.export
    def calc_model_delay_samples(self) -> int:
        """The live model's declared latency in DAW samples."""
        return self.model.get_latency()

    @torch.jit.export
    def get_core_preserved_attributes(self) -> List[str]:
        return ["model", "get_neutone_parameters_metadata",
                "get_numerical_params_default_values_0to1", "get_wet_default_value",
                "get_dry_default_value", "get_input_gain_default_value",
                "get_output_gain_default_value", "get_core_preserved_attributes",
                "to_core_metadata"]

    @torch.jit.export
    def get_preserved_attributes(self) -> List[str]:
        attrs = self.get_core_preserved_attributes()
        attrs.extend(["is_input_mono", "is_output_mono", "get_native_sample_rates",
                      "get_native_buffer_sizes", "is_resampling", "calc_model_delay_samples",
                      "set_sample_rate_and_buffer_size", "set_daw_sample_rate_and_buffer_size",
                      "reset", "get_preserved_attributes", "to_metadata", "get_metadata_json"])
        return attrs

    @torch.jit.export
    def to_core_metadata(self) -> Dict[str, Any]:
        return {
            "model_name": self.get_model_name(),
            "model_authors": self.get_model_authors(),
            "model_short_description": self.get_model_short_description(),
            "model_long_description": self.get_model_long_description(),
            "neutone_parameters": self.get_neutone_parameters_metadata(),
            "wet_default_value": self.get_wet_default_value(),
            "dry_default_value": self.get_dry_default_value(),
            "input_gain_default_value": self.get_input_gain_default_value(),
            "output_gain_default_value": self.get_output_gain_default_value(),
            "technical_description": self.get_technical_description(),
            "technical_links": self.get_technical_links(),
            "tags": self.get_tags(),
            "model_version": self.get_model_version(),
            "sdk_version": self.SDK_VERSION,
            "pytorch_version": torch.__version__,
            "date_created": self.CURRENT_TIME,
            "citation": self.get_citation(),
            "is_experimental": self.is_experimental(),
        }

    @torch.jit.export
    def to_metadata(self) -> Dict[str, Any]:
        """The metadata (keys :data:`METADATA_FIELDS`), as neutone_sdk 1.5 returns it."""
        md = self.to_core_metadata()
        md["is_input_mono"] = self.is_input_mono()
        md["is_output_mono"] = self.is_output_mono()
        md["model_type"] = "mono-mono"
        md["native_buffer_sizes"] = self.get_native_buffer_sizes()
        md["native_sample_rates"] = self.get_native_sample_rates()
        md["look_behind_samples"] = self.get_look_behind_samples()
        return md

    # --- stream --------------------------------------------------------------------------
    @torch.jit.export
    def set_sample_rate_and_buffer_size(self, sample_rate: int, n_samples: int) -> bool:
        """Any rate the live model accepts and any buffer size (it buffers by itself)."""
        if n_samples < 1:
            return False
        ok = self.model.set_sample_rate(sample_rate) == 0
        if ok:
            self.sample_rate = sample_rate
            self.buffer_size = n_samples
            self.last_knobs = [-1.0, -1.0, -1.0, -1.0]
        return ok

    @torch.jit.export
    def set_daw_sample_rate_and_buffer_size(self, daw_sr: int, daw_buffer_size: int,
                                            model_sr: Optional[int] = None,
                                            model_buffer_size: Optional[int] = None) -> None:
        self.set_sample_rate_and_buffer_size(daw_sr, daw_buffer_size)

    @torch.jit.export
    def reset(self) -> bool:
        self.model.reset()
        return True

    def _apply_knobs(self, knobs: List[float]):
        """Knob values 0..1 → the live model's controls (only those that changed)."""
        for i in range(self.n_neutone_parameters):
            v = min(1.0, max(0.0, knobs[i]))
            if v == self.last_knobs[i]:
                continue
            self.last_knobs[i] = v
            if i == 0:
                self.model.set_control("pitch_shift", float(round(48.0 * v - 24.0)))
            elif i == 1:
                self.model.set_control("gain_db", 40.0 * v - 20.0)
            elif i == 2:
                self.model.set_control("gate_db", 80.0 * v - 100.0)
            elif i == 3:
                self.model.set_control(self.fourth, v)

    def forward(self, x: Tensor, params: Optional[Tensor] = None) -> Tensor:
        """``x (channels, n)`` DAW audio (mixed to mono) and ``params (4, n)`` knob values in
        0..1 (averaged over the buffer) → ``(1, n)``."""
        if params is None:
            params = self.default_param_values.repeat(1, x.shape[1])
        agg = params.mean(1)
        for i in range(self.MAX_N_PARAMS):
            self.remapped_params["p" + str(i + 1)] = agg[i:i + 1]
        knobs: List[float] = agg.tolist()
        self._apply_knobs(knobs)
        mono = x.mean(0, keepdim=True)
        return self.model.process(mono)


class NeutoneLive(nn.Module):
    """The saved module (the ``SampleQueueWrapper`` part; see the module docstring)."""

    def __init__(self, live: LiveModel, meta: dict):
        super().__init__()
        self.w2w_base = NeutoneW2W(live, meta)
        self.daw_sr = int(live.host_rate)
        self.daw_bs = 2048
        self.use_debug_mode = False
        self.realtime = True

    @torch.jit.export
    def get_metadata_json(self) -> str:
        return self.w2w_base.get_metadata_json()

    @torch.jit.export
    def get_preserved_attributes(self) -> List[str]:
        return ["forward_bt", "is_input_mono", "is_output_mono", "get_model_name",
                "get_model_authors", "get_native_sample_rates", "get_native_buffer_sizes",
                "get_wet_default_value", "get_dry_default_value", "get_default_param_values",
                "get_default_param_names", "get_default_param_descriptions",
                "get_default_param_types", "get_default_param_used",
                "get_input_gain_default_value", "get_output_gain_default_value",
                "is_resampling", "calc_buffering_delay_samples", "calc_model_delay_samples",
                "set_daw_sample_rate_and_buffer_size", "reset", "get_preserved_attributes",
                "to_metadata", "get_metadata_json", "w2w_base"]

    def forward(self, x: Tensor, params: Optional[Tensor] = None) -> Tensor:
        """``x (channels, n)`` → ``(channels, n)`` (the mono output on every channel)."""
        y = self.w2w_base(x, params)
        return y.expand(x.shape[0], y.shape[1]).contiguous()

    @torch.jit.export
    def forward_bt(self, x: Tensor, params: Optional[Tensor] = None) -> Optional[Tensor]:
        """Background-thread form: the output is always ready (the model buffers itself)."""
        return self.forward(x, params)

    @torch.jit.export
    def forward_offline(self, x: Tensor, params: Optional[Tensor] = None) -> Tensor:
        """A whole signal ``(channels, n)``, delay removed (reset first)."""
        self.reset()
        delay = self.calc_model_delay_samples()
        n = x.shape[1]
        padded = torch.nn.functional.pad(x, [0, delay])
        p: Optional[Tensor] = None
        if params is not None:
            p = torch.nn.functional.pad(params.unsqueeze(0), [0, delay],
                                        mode="replicate").squeeze(0)
        y = self.forward(padded, p)
        return y[:, delay:delay + n]

    @torch.jit.export
    def is_input_mono(self) -> bool:
        return self.w2w_base.is_input_mono()

    @torch.jit.export
    def is_output_mono(self) -> bool:
        return self.w2w_base.is_output_mono()

    @torch.jit.export
    def get_native_sample_rates(self) -> List[int]:
        return self.w2w_base.get_native_sample_rates()

    @torch.jit.export
    def get_native_buffer_sizes(self) -> List[int]:
        return self.w2w_base.get_native_buffer_sizes()

    @torch.jit.export
    def is_resampling(self) -> bool:
        return False

    @torch.jit.export
    def calc_buffering_delay_samples(self) -> int:
        return 0

    @torch.jit.export
    def calc_model_delay_samples(self) -> int:
        return self.w2w_base.calc_model_delay_samples()

    @torch.jit.export
    def set_daw_sample_rate_and_buffer_size(self, daw_sr: int, daw_bs: int,
                                            model_sr: Optional[int] = None,
                                            model_bs: Optional[int] = None) -> int:
        """Called by the plugin; returns the largest number of samples one call may hold."""
        self.w2w_base.set_sample_rate_and_buffer_size(daw_sr, daw_bs)
        self.daw_sr = daw_sr
        self.daw_bs = daw_bs
        self.reset()
        return 2 * daw_bs

    @torch.jit.export
    def reset(self) -> None:
        self.w2w_base.reset()

    @torch.jit.export
    def to_metadata(self) -> Dict[str, Any]:
        return self.w2w_base.to_metadata()

    @torch.jit.export
    def get_model_name(self) -> str:
        return self.w2w_base.get_model_name()

    @torch.jit.export
    def get_model_authors(self) -> List[str]:
        return self.w2w_base.get_model_authors()

    @torch.jit.export
    def get_wet_default_value(self) -> float:
        return self.w2w_base.get_wet_default_value()

    @torch.jit.export
    def get_dry_default_value(self) -> float:
        return self.w2w_base.get_dry_default_value()

    @torch.jit.export
    def get_default_param_values(self) -> Tensor:
        return self.w2w_base.get_default_param_values()

    @torch.jit.export
    def get_default_param_names(self) -> List[str]:
        return self.w2w_base.get_default_param_names()

    @torch.jit.export
    def get_default_param_descriptions(self) -> List[str]:
        return self.w2w_base.get_default_param_descriptions()

    @torch.jit.export
    def get_default_param_types(self) -> List[str]:
        return self.w2w_base.get_default_param_types()

    @torch.jit.export
    def get_default_param_used(self) -> List[bool]:
        return self.w2w_base.get_default_param_used()

    @torch.jit.export
    def get_input_gain_default_value(self) -> float:
        return self.w2w_base.get_input_gain_default_value()

    @torch.jit.export
    def get_output_gain_default_value(self) -> float:
        return self.w2w_base.get_output_gain_default_value()


def metadata_dict(module) -> dict:
    """``to_metadata()`` of a (scripted) module as plain JSON values."""
    return json.loads(json.dumps(module.to_metadata()))


def export_neutone(model, path: Union[str, Path], model_folder: Union[str, Path, None] = None,
                   name: str = "", sample_rate: int = 48000, seed: int = 0,
                   frames_per_step: int = 1) -> Tuple[Path, dict]:
    """Script :class:`NeutoneLive` and save it atomically to ``path`` (``.nm``) with
    ``metadata.json`` inside (as ``save_neutone_model`` does; no audio samples). Returns the
    path and the metadata (plus ``latency_samples`` at ``sample_rate``, not stored).
    ``frames_per_step``: see :class:`~ddsp_models.export.live.LiveModel`."""
    from ..data.atomic import atomic_write

    meta = card_metadata(model_folder, name)
    live = LiveModel(model, host_rate=sample_rate, seed=seed, frames_per_step=frames_per_step)
    module = NeutoneLive(live, meta).eval()
    metadata = metadata_dict(module)
    module.w2w_base.metadata_json_str = json.dumps(metadata, indent=4, sort_keys=True)
    metadata["sample_sound_files"] = []
    scripted = torch.jit.script(module)
    extra = {"metadata.json": json.dumps(metadata, indent=4)}
    path = Path(path)
    atomic_write(path, lambda tmp: torch.jit.save(scripted, tmp, _extra_files=extra))
    return path, {**metadata, "latency_samples": int(scripted.calc_model_delay_samples())}
