"""The DDSP autoencoder: features (+ optional MFCC latent z) → decoder → processor graph → audio.

:class:`Autoencoder` is a plain ``torch.nn.Module`` configured by simple values, so a YAML recipe
can declare all of it (the graph as a dict, see :meth:`ProcessorGraph.from_dict`); loading and
running it never imports Lightning. Training uses its subclass
:class:`ddsp_models.training.module.AutoencoderModule` (the same model, hyper-parameters and
state-dict keys, plus Lightning's training hooks): it minimises
:class:`~ddsp_models.nn.losses.MultiResolutionSpectralLoss` between the rendered audio and the
example; Adam with DDSP's step-wise exponential decay (``lr * decay_rate ** (step /
decay_steps)``) and gradient-norm clipping.

Saving: Lightning checkpoints (``.ckpt``), or an exported folder with
:meth:`Autoencoder.save_pretrained` (``model.safetensors`` + ``config.yaml`` + ``stats.json``).
Both load without unpickling code: :meth:`Autoencoder.from_pretrained`,
:meth:`Autoencoder.from_checkpoint`; :func:`ddsp_models.load_model` (in
:mod:`ddsp_models.registry`) also resolves shipped names and picks the right one. A missing,
incomplete or corrupt file raises :class:`~ddsp_models.errors.ModelLoadError` naming the file
and the fix.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor, nn

from ..core.upsample import frame_hop
from ..errors import DDSPError, InvalidInputError, ModelLoadError, one_line
from .decoder import RnnFcDecoder
from .losses import MultiResolutionSpectralLoss

__all__ = ["Autoencoder", "load_state_dict_file", "read_checkpoint"]

WEIGHTS = "model.safetensors"
CONFIG = "config.yaml"
STATS = "stats.json"


def default_graph(sample_rate: int = 16000) -> dict:
    """DDSP's output layer: 60 harmonics + 65 noise bands → trainable 1 s reverb."""
    from ..graph import presets

    return presets.ddsp_default(sample_rate=sample_rate).to_dict()


_REFIT = ("write the folder again with Autoencoder.save_pretrained (or 'ddsp train --export "
          "DIR'), or download the model again")


def _short(err: BaseException, limit: int = 160) -> str:
    msg = one_line(err)
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as err:  # SafetensorError, OSError, ...: a truncated or foreign file
        raise ModelLoadError(
            f"{path} is not a readable safetensors file ({_short(err)}); {_REFIT}") from err


def read_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """A Lightning checkpoint read with ``torch.load(weights_only=True)``: nothing unpickled.

    Raises:
        ModelLoadError: the file is empty, corrupt or not a dict (the message names it).
    """
    path = Path(path)
    fix = "pass a .ckpt written by 'ddsp train', a model folder or a shipped model name"
    if path.stat().st_size == 0:
        raise ModelLoadError(f"{path} is empty (0 bytes): the checkpoint was not written "
                             f"completely; {fix}")
    import zipfile

    if not zipfile.is_zipfile(path):  # torch.save writes zip archives (torch >= 1.6)
        # Read anyway, torch's unpickler gives meaningless errors on such bytes (a text file
        # starting "he" raises KeyError(101)): name the problem instead.
        raise ModelLoadError(f"{path} is not a checkpoint: torch.save writes a zip archive and "
                             f"this file is not one (text, audio, another format?); {fix}")
    try:
        ckpt = torch.load(str(path), map_location=map_location, weights_only=True)
    except Exception as err:  # UnpicklingError, EOFError, RuntimeError (zip), KeyError ...
        raise ModelLoadError(f"{path} is a zip archive but not a readable checkpoint "
                             f"({type(err).__name__}: {_short(err)}); {fix}") from err
    if not isinstance(ckpt, dict):
        raise ModelLoadError(f"{path} holds a {type(ckpt).__name__}, not a checkpoint dict; {fix}")
    return ckpt


def load_state_dict_file(path: str | Path) -> dict[str, Tensor]:
    """Weights from an exported folder / ``.safetensors`` file, or a Lightning ``.ckpt``.

    ``.ckpt`` files are read with ``torch.load(weights_only=True)``: no code is unpickled.

    Raises:
        ModelLoadError: the file is missing, empty or corrupt.
    """
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS
    if not path.is_file():
        raise ModelLoadError(f"no model weights at {path}: pass a model folder (holding "
                             f"{WEIGHTS}) or a Lightning .ckpt")
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    ckpt = read_checkpoint(path)
    return ckpt["state_dict"] if "state_dict" in ckpt else ckpt


class HParams(dict):
    """The hyper-parameters of an :class:`Autoencoder`: a dict whose keys also read as
    attributes (``hp.learning_rate``), like Lightning's ``AttributeDict``."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError as err:
            raise AttributeError(f"no hyper-parameter {key!r}") from err

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delattr__(self, key: str) -> None:
        try:
            del self[key]
        except KeyError as err:
            raise AttributeError(f"no hyper-parameter {key!r}") from err


class Autoencoder(nn.Module):
    """Decoder + processor graph (+ optional MFCC encoder), trained end to end.

    A plain ``nn.Module`` (inference imports no Lightning); ``ddsp train`` trains its
    subclass :class:`ddsp_models.training.module.AutoencoderModule`, whose checkpoints and
    exported folders load here unchanged (same hyper-parameters, same state-dict keys).

    Args:
        graph: the synth graph as a dict (``{"nodes": ..., "edges": ...}``); ``None`` gives
            :func:`ddsp_models.graph.presets.ddsp_default`.
        sample_rate: audio rate (Hz); must match the data.
        frame_rate: control rate (frames/s); ``hop = sample_rate / frame_rate`` must be whole
            (:func:`~ddsp_models.core.upsample.frame_hop`).
        decoder: keyword arguments of :class:`RnnFcDecoder` (``n_out`` and ``z_dims`` are set
            here: ``n_out`` from the graph's parameter layout).
        encoder: keyword arguments of :class:`ddsp_models.nn.encoders.MfccEncoder` (which must
            include ``z_dims``) to add a latent ``z`` input; ``None``: no encoder.
        loss: keyword arguments of :class:`MultiResolutionSpectralLoss`.
        learning_rate: Adam learning rate.
        lr_decay_steps, lr_decay_rate: ``lr(step) = lr * rate ** (step / steps)``.
        grad_clip_norm: clip the global gradient norm (DDSP: 3); ``None``/0 to disable. A
            ``trainer.gradient_clip_val`` takes precedence.
        freeze: parameter-name prefixes to freeze (e.g. ``["decoder.f0_mlp", "graph"]``).
        init_from: a checkpoint or exported folder to initialise the weights from (fine-tuning).
        log_audio_every_n_val: log audio and spectrograms at every n-th validation run.
        n_log_examples: number of examples logged.

    :attr:`hparams` holds these values (the graph as a dict) with attribute access; they are
    what :meth:`save_pretrained` writes and what a checkpoint's ``hyper_parameters`` hold.

    ``forward(f0_hz (B,T,1) Hz, loudness_db (B,T,1) dB, audio (B,1,L) | None, controls=None)
    -> (B,C,T*hop)``; ``audio`` is needed only with an encoder.

    External controls: the graph may declare any control of
    :data:`ddsp_models.graph.controls.CONTROLS` (``f0_hz``, ``gate``, ``velocity``, ``note``,
    ``loudness_db``); :attr:`external_names` lists them. Each is taken from ``controls``
    ``{name: (B, T, 1)}`` (in training: from the batch, when the data carries it, e.g. a
    ``gate`` track) or else derived from ``f0_hz`` and ``loudness_db``
    (:func:`~ddsp_models.graph.controls.resolve_controls`).
    """

    def __init__(
        self,
        graph: dict[str, Any] | None = None,
        sample_rate: int = 16000,
        frame_rate: int = 250,
        decoder: dict[str, Any] | None = None,
        encoder: dict[str, Any] | None = None,
        loss: dict[str, Any] | None = None,
        learning_rate: float = 3e-4,
        lr_decay_steps: int = 10000,
        lr_decay_rate: float = 0.98,
        grad_clip_norm: float | None = 3.0,
        freeze: list[str] | None = None,
        init_from: str | None = None,
        log_audio_every_n_val: int = 1,
        n_log_examples: int = 2,
    ):
        super().__init__()
        from ..graph import ProcessorGraph

        if float(frame_rate) != int(frame_rate):
            raise InvalidInputError(
                f"frame_rate must be a whole number of frames per second, got {frame_rate}; at "
                "48 kHz use e.g. 375 (hop 128), 250 (hop 192) or 100 (hop 480)")
        hop = frame_hop(sample_rate, frame_rate)
        graph = copy.deepcopy(graph) if graph is not None else default_graph(sample_rate)
        self._save_hparams({
            "graph": graph, "sample_rate": sample_rate, "frame_rate": frame_rate,
            "decoder": dict(decoder or {}), "encoder": dict(encoder) if encoder else None,
            "loss": dict(loss or {}), "learning_rate": learning_rate,
            "lr_decay_steps": lr_decay_steps, "lr_decay_rate": lr_decay_rate,
            "grad_clip_norm": grad_clip_norm, "freeze": list(freeze or []),
            "init_from": init_from, "log_audio_every_n_val": log_audio_every_n_val,
            "n_log_examples": n_log_examples,
        })
        self.sample_rate, self.frame_rate = int(sample_rate), int(frame_rate)
        self.hop = hop
        self.graph = ProcessorGraph.from_dict(graph)
        layout = self.graph.parameter_layout()
        from ..graph.controls import check_externals

        check_externals(layout.external_specs(), "the graph")
        #: the external controls the graph reads (given by the batch or derived from f0/loudness)
        self.external_names: list[str] = sorted(layout.externals)
        self.encoder = None
        z_dims = 0
        if encoder:
            from .encoders import MfccEncoder

            if "z_dims" not in encoder:
                raise ValueError("encoder needs z_dims (width of the latent z), e.g. z_dims: 16")
            self.encoder = MfccEncoder(**encoder)
            z_dims = int(encoder["z_dims"])
        dec = dict(decoder or {})
        for k in ("n_out", "z_dims"):
            if k in dec:
                raise ValueError(f"decoder.{k} is derived from the graph/encoder; remove it")
        # Time-varying parameters are predicted per frame by the decoder; static ones (constant
        # over time) are learned constants of the model: a per-example static value would be a
        # mean over the whole clip, which no live stream can know.
        tv_cols = [c for e in layout.predicted if e.time_varying
                   for c in range(e.offset, e.offset + e.size)]
        self.register_buffer("_tv_columns", torch.tensor(tv_cols, dtype=torch.long),
                             persistent=False)
        self.static_params = nn.ParameterDict({
            static_key(e.node, e.param): nn.Parameter(torch.zeros(e.size))
            for e in layout.predicted if not e.time_varying})
        self.decoder = RnnFcDecoder(n_out=max(len(tv_cols), 1), z_dims=z_dims, **dec)
        self.loss_fn = MultiResolutionSpectralLoss(
            **{"sample_rate": sample_rate, "frame_rate": frame_rate, **dict(loss or {})})
        self.dataset_stats: dict | None = None
        if init_from:
            missing, unexpected = self.load_state_dict(load_state_dict_file(init_from), strict=False)
            if unexpected or missing:
                raise ModelLoadError(f"init_from={init_from} does not fit this model: missing "
                                 f"{missing[:5]}, unexpected {unexpected[:5]}")
        self._apply_freeze(self.hparams.freeze)

    # ------------------------------------------------------------------ hyper-parameters
    def _save_hparams(self, hp: dict[str, Any]) -> None:
        """Keep the constructor's values in :attr:`hparams` (the training subclass hands them
        to Lightning's ``save_hyperparameters`` instead, which writes them to checkpoints)."""
        self._hparams = HParams(hp)

    @property
    def hparams(self) -> HParams:
        """The constructor's hyper-parameters (``hparams.learning_rate``, ``hparams["graph"]``)."""
        if "_hparams" not in self.__dict__:
            self._hparams = HParams()
        return self._hparams

    # ------------------------------------------------------------------ model
    def _apply_freeze(self, prefixes: list[str]) -> None:
        names = [n for n, _ in self.named_parameters()]
        for prefix in prefixes:
            hits = [n for n in names if n == prefix or n.startswith(prefix + ".")]
            if not hits:
                raise ValueError(f"freeze: no parameters under {prefix!r}; top-level modules: "
                                 f"{sorted({n.split('.')[0] for n in names})}")
        for n, p in self.named_parameters():
            if any(n == f or n.startswith(f + ".") for f in prefixes):
                p.requires_grad_(False)

    def controls(self, f0_hz: Tensor, loudness_db: Tensor, audio: Tensor | None = None):
        """Synth parameters ``{node: {param: physical value}}`` predicted for the features."""
        z = None
        if self.encoder is not None:
            if audio is None:
                raise ValueError("this model has an MFCC encoder: pass the audio to encode")
            z = self.encoder(audio.reshape(audio.shape[0], -1))
            z = _match_frames(z, f0_hz.shape[1])
        raw = self.decoder(f0_hz, loudness_db, z)
        # Under mixed precision (``--trainer.precision bf16-mixed``) only the decoder runs in
        # bfloat16; the synths, effects and loss always get float32 (see _dsp_precision).
        return self.params_from_raw(raw.to(f0_hz.dtype))

    def params_from_raw(self, raw: Tensor) -> dict[str, dict[str, Tensor]]:
        """Decoder outputs ``(B, T, n_out)`` (the time-varying columns of the graph's layout)
        → ``{node: {param: physical value}}``, static parameters from :attr:`static_params`."""
        layout = self.graph.parameter_layout()
        full = raw.new_zeros(raw.shape[0], raw.shape[1], layout.n_params)
        full[..., self._tv_columns] = raw[..., : self._tv_columns.numel()]
        params = self.graph.split_params(full)
        for e in layout.predicted:
            if not e.time_varying:
                value = e.scaling(self.static_params[static_key(e.node, e.param)].to(raw.dtype))
                params[e.node][e.param] = value.expand(raw.shape[0], e.size)
        return params

    def external_controls(self, f0_hz: Tensor, loudness_db: Tensor,
                          given: dict | None = None) -> dict[str, Tensor]:
        """The graph's external controls ``{name: (B, T, 1)}``: from ``given`` where present,
        else derived from the features (:func:`ddsp_models.graph.controls.resolve_controls`)."""
        from ..graph.controls import resolve_controls

        return resolve_controls(self.external_names, f0_hz, loudness_db, given)

    def forward(self, f0_hz: Tensor, loudness_db: Tensor, audio: Tensor | None = None,
                controls: dict | None = None) -> Tensor:
        params = self.controls(f0_hz, loudness_db, audio)
        n_samples = f0_hz.shape[1] * self.hop
        ctl = self.external_controls(f0_hz, loudness_db, controls)
        with _dsp_precision(f0_hz):
            return self.graph.render(params, n_samples, controls=ctl)

    def _step(self, batch: dict) -> tuple[Tensor, Tensor]:
        """The spectral loss of a batch ``{"audio" (B,C,L), "f0_hz", "loudness_db" (B,T,1),
        external controls...}`` and the rendered audio ``(B,C',T*hop)``."""
        target = batch["audio"]
        given = {k: batch[k] for k in self.external_names
                 if k not in ("f0_hz", "loudness_db") and k in batch}
        out = self(batch["f0_hz"], batch["loudness_db"], target, controls=given)
        if out.shape[1] != target.shape[1]:
            out = out.mean(1, keepdim=True) if target.shape[1] == 1 else out
        with _dsp_precision(out):
            return self.loss_fn(out, target[..., : out.shape[-1]]), out

    def transfer(self, audio, sample_rate: int, **kwargs) -> Tensor:
        """Timbre transfer of ``audio`` at ``sample_rate``; see :func:`ddsp_models.transfer.transfer`."""
        from ..transfer.core import transfer

        return transfer(self, audio, sample_rate, **kwargs)

    def synthesize_midi(self, score, **kwargs):
        """Perform a MIDI score (a ``.mid`` path or a :class:`ddsp_models.midi.score.Score`) with
        this model; returns a :class:`ddsp_models.midi.render.MidiResult` (``audio``
        ``(channels, samples)``, ``stems``, the ``f0_hz`` / ``loudness_db`` curves ``(voices,
        frames)``). Keywords: see :func:`ddsp_models.midi.synthesize_midi` (``tracks``,
        ``transpose``, ``tempo_scale``, ``vibrato_depth``, ``seed``, ``sample_rate``,
        ``max_voices``, ``out_of_range``, ``stems``, ...)."""
        from ..midi.render import synthesize_midi

        return synthesize_midi(self, score, **kwargs)

    # ------------------------------------------------------------------ export
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``model.safetensors``, ``config.yaml`` (hyper-parameters incl. the graph) and
        ``stats.json`` (if known) into ``directory``, each atomically."""
        from safetensors.torch import save_file

        from ..data.atomic import atomic_write, atomic_write_json

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous().clone() for k, v in self.state_dict().items()}
        atomic_write(d / WEIGHTS, lambda tmp: save_file(state, tmp, metadata={"format": "pt"}))
        cfg = {k: v for k, v in dict(self.hparams).items() if k != "init_from"}
        text = yaml.safe_dump({"class": "Autoencoder", "model": cfg}, sort_keys=False)
        atomic_write(d / CONFIG, lambda tmp: Path(tmp).write_text(text))
        if self.dataset_stats is not None:
            atomic_write_json(d / STATS, self.dataset_stats)
        return d

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str = "cpu") -> "Autoencoder":
        """Inverse of :meth:`save_pretrained` (safetensors weights; nothing unpickled).

        Raises:
            ModelLoadError: a file is missing, empty or corrupt, or the weights do not fit the
                config; the message names the file and the fix.
        """
        d = Path(directory)
        missing = [f for f in (CONFIG, WEIGHTS) if not (d / f).is_file()]
        if missing:
            raise ModelLoadError(f"{d} is not a model folder: it lacks {' and '.join(missing)}; "
                                 f"{_REFIT}")
        cfg_path = d / CONFIG
        try:
            cfg = yaml.safe_load(cfg_path.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise ModelLoadError(f"{cfg_path} is not valid YAML ({_short(err)}); {_REFIT}") from err
        if not isinstance(cfg, dict) or not isinstance(cfg.get("model"), dict):
            got = "an empty file" if cfg is None else (
                f"keys {sorted(map(str, cfg))}" if isinstance(cfg, dict) else type(cfg).__name__)
            raise ModelLoadError(f"{cfg_path} must hold a 'model:' mapping of hyper-parameters "
                                 f"(as save_pretrained writes it), got {got}; {_REFIT}")
        model = cls._build(cfg["model"], cfg_path)
        model._load_weights(_read_safetensors(d / WEIGHTS), d / WEIGHTS)
        if (d / STATS).is_file():
            from ..data.stats import load_stats

            try:
                model.dataset_stats = load_stats(d / STATS)
            except DDSPError as err:
                raise ModelLoadError(
                    f"{_short(err, 240)} (or delete it: auto-adjust is then unavailable)") from err
        return model.to(map_location).eval()

    @classmethod
    def from_checkpoint(cls, path: str | Path, map_location: str = "cpu") -> "Autoencoder":
        """An autoencoder from a Lightning checkpoint (``.ckpt``), read with
        ``torch.load(weights_only=True)``: no code is unpickled.

        Raises:
            ModelLoadError: the file is missing, empty, corrupt or not a checkpoint of this
                model; the message names the file and the fix.
        """
        path = Path(path)
        if not path.is_file():
            raise ModelLoadError(f"no checkpoint at {path}: pass a .ckpt file, a model folder "
                                 "or a shipped model name")
        ckpt = read_checkpoint(path)
        if not isinstance(ckpt.get("state_dict"), dict):
            raise ModelLoadError(
                f"{path} holds no 'state_dict' (keys: {sorted(map(str, ckpt))[:8]}): it is not a "
                "checkpoint written by 'ddsp train'; pass such a .ckpt or a model folder")
        hp = ckpt.get("hyper_parameters", {})
        if not isinstance(hp, dict):
            raise ModelLoadError(f"{path}: 'hyper_parameters' is a {type(hp).__name__}, not a "
                                 "mapping; pass a .ckpt written by 'ddsp train'")
        hp = dict(hp)
        hp.pop("init_from", None)
        model = cls._build(hp, path)
        model._load_weights(ckpt["state_dict"], path)
        try:
            model._restore_stats(ckpt)
        except ValueError as err:
            raise ModelLoadError(f"{path}: unreadable dataset statistics ({_short(err)})") from err
        return model.to(map_location).eval()

    @classmethod
    def _build(cls, hparams: dict, source: Path) -> "Autoencoder":
        """``cls(**hparams)`` with errors naming the file the hyper-parameters came from."""
        from ..model_files import check_model_hparams

        check_model_hparams(hparams, source, cls)
        try:
            return cls(**hparams)
        except (DDSPError, TypeError, ValueError, KeyError) as err:
            raise ModelLoadError(f"{source} does not describe a valid model: {_short(err, 240)}; "
                                 "fix the file or write it again") from err

    def _restore_stats(self, checkpoint: dict) -> None:
        """Set :attr:`dataset_stats` from a checkpoint's ``dataset_stats_json`` (if present).

        Raises:
            ValueError: the statistics are malformed.
        """
        if "dataset_stats_json" in checkpoint:
            from ..data.stats import validate_stats

            self.dataset_stats = validate_stats(json.loads(checkpoint["dataset_stats_json"]),
                                                "the checkpoint's dataset statistics")

    def _load_weights(self, state: dict[str, Tensor], source: Path) -> None:
        try:
            self.load_state_dict(state)
        except (RuntimeError, TypeError, ValueError) as err:
            raise ModelLoadError(f"the weights in {source} do not fit the model its config "
                                 f"describes ({_short(err)}); {_REFIT}") from err


def static_key(node: str, param: str) -> str:
    """Key of a static parameter in :attr:`Autoencoder.static_params` (no dots allowed)."""
    return f"{node}__{param}".replace(".", "__")


def _dsp_precision(x: Tensor):
    """Turn autocast off: oscillator phases, IIR recursions and spectra need full precision."""
    return torch.autocast(x.device.type, enabled=False)


def _match_frames(z: Tensor, frames: int) -> Tensor:
    """Bring an encoder's ``(B, T', Z)`` to ``T`` frames (crop or hold the last frame)."""
    if z.shape[1] == frames:
        return z
    if abs(z.shape[1] - frames) > 2:
        raise ValueError(f"the encoder gave {z.shape[1]} frames for {frames} feature frames; "
                         "build it with the same sample_rate/frame_rate as the model")
    if z.shape[1] > frames:
        return z[:, :frames]
    return torch.cat([z, z[:, -1:].expand(-1, frames - z.shape[1], -1)], dim=1)
