"""The DDSP autoencoder: features (+ optional MFCC latent z) → decoder → processor graph → audio.

:class:`Autoencoder` is a LightningModule configured by simple values, so a YAML recipe can
declare all of it (the graph as a dict, see :meth:`ProcessorGraph.from_dict`). Training
minimises :class:`~ddsp_models.nn.losses.MultiResolutionSpectralLoss` between the rendered
audio and the example; Adam with DDSP's step-wise exponential decay
(``lr * decay_rate ** (step / decay_steps)``) and gradient-norm clipping.

Saving: Lightning checkpoints (``.ckpt``), or an exported folder with
:meth:`Autoencoder.save_pretrained` (``model.safetensors`` + ``config.yaml`` + ``stats.json``).
Both load without unpickling code: :func:`load_model`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import yaml
from torch import Tensor

from .decoder import RnnFcDecoder
from .losses import MultiResolutionSpectralLoss

__all__ = ["Autoencoder", "load_model", "load_state_dict_file"]

WEIGHTS = "model.safetensors"
CONFIG = "config.yaml"
STATS = "stats.json"


def default_graph(sample_rate: int = 16000) -> dict:
    """DDSP's output layer: 60 harmonics + 65 noise bands → trainable 1 s reverb."""
    from ..graph import presets

    return presets.ddsp_default(sample_rate=sample_rate).to_dict()


def load_state_dict_file(path: str | Path) -> dict[str, Tensor]:
    """Weights from an exported folder / ``.safetensors`` file, or a Lightning ``.ckpt``.

    ``.ckpt`` files are read with ``torch.load(weights_only=True)``: no code is unpickled.
    """
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS
    if not path.exists():
        raise FileNotFoundError(f"no model weights at {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    return ckpt["state_dict"] if "state_dict" in ckpt else ckpt


class Autoencoder(pl.LightningModule):
    """Decoder + processor graph (+ optional MFCC encoder), trained end to end.

    Args:
        graph: the synth graph as a dict (``{"nodes": ..., "edges": ...}``); ``None`` gives
            :func:`ddsp_models.graph.presets.ddsp_default`.
        sample_rate: audio rate (Hz); must match the data.
        frame_rate: control rate (frames/s); ``hop = sample_rate // frame_rate``.
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

    ``forward(f0_hz (B,T,1) Hz, loudness_db (B,T,1) dB, audio (B,1,L) | None) -> (B,C,T*hop)``;
    ``audio`` is needed only with an encoder.
    """

    def __init__(
        self,
        graph: dict | None = None,
        sample_rate: int = 16000,
        frame_rate: int = 250,
        decoder: dict | None = None,
        encoder: dict | None = None,
        loss: dict | None = None,
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

        if sample_rate % frame_rate:
            raise ValueError(f"sample_rate ({sample_rate}) must be a multiple of frame_rate "
                             f"({frame_rate})")
        graph = copy.deepcopy(graph) if graph is not None else default_graph(sample_rate)
        self.save_hyperparameters({
            "graph": graph, "sample_rate": sample_rate, "frame_rate": frame_rate,
            "decoder": dict(decoder or {}), "encoder": dict(encoder) if encoder else None,
            "loss": dict(loss or {}), "learning_rate": learning_rate,
            "lr_decay_steps": lr_decay_steps, "lr_decay_rate": lr_decay_rate,
            "grad_clip_norm": grad_clip_norm, "freeze": list(freeze or []),
            "init_from": init_from, "log_audio_every_n_val": log_audio_every_n_val,
            "n_log_examples": n_log_examples,
        })
        self.sample_rate, self.frame_rate = int(sample_rate), int(frame_rate)
        self.hop = self.sample_rate // self.frame_rate
        self.graph = ProcessorGraph.from_dict(graph)
        layout = self.graph.parameter_layout()
        unsupported = set(layout.externals) - {"f0_hz"}
        if unsupported:
            raise ValueError(f"the graph needs external controls {sorted(unsupported)}; the "
                             "autoencoder supplies only f0_hz")
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
        self.decoder = RnnFcDecoder(n_out=layout.n_params, z_dims=z_dims, **dec)
        self.loss_fn = MultiResolutionSpectralLoss(
            **{"sample_rate": sample_rate, "frame_rate": frame_rate, **dict(loss or {})})
        self.dataset_stats: dict | None = None
        if init_from:
            missing, unexpected = self.load_state_dict(load_state_dict_file(init_from), strict=False)
            if unexpected or missing:
                raise ValueError(f"init_from={init_from} does not fit this model: missing "
                                 f"{missing[:5]}, unexpected {unexpected[:5]}")
        self._apply_freeze(self.hparams.freeze)

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
        return self.graph.split_params(raw.to(f0_hz.dtype))

    def forward(self, f0_hz: Tensor, loudness_db: Tensor, audio: Tensor | None = None) -> Tensor:
        params = self.controls(f0_hz, loudness_db, audio)
        n_samples = f0_hz.shape[1] * self.hop
        with _dsp_precision(f0_hz):
            return self.graph.render(params, n_samples, controls={"f0_hz": f0_hz})

    def _step(self, batch: dict) -> tuple[Tensor, Tensor]:
        target = batch["audio"]
        out = self(batch["f0_hz"], batch["loudness_db"], target)
        if out.shape[1] != target.shape[1]:
            out = out.mean(1, keepdim=True) if target.shape[1] == 1 else out
        with _dsp_precision(out):
            return self.loss_fn(out, target[..., : out.shape[-1]]), out

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        loss, _ = self._step(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["audio"].shape[0])
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> Tensor:
        loss, out = self._step(batch)
        self.log("val/loss", loss, prog_bar=True, batch_size=batch["audio"].shape[0],
                 sync_dist=True)
        if batch_idx == 0:
            self._log_examples(batch["audio"], out)
        return loss

    # ------------------------------------------------------------------ logging
    def _log_examples(self, target: Tensor, out: Tensor) -> None:
        logger = self.logger
        n_val = getattr(self, "_n_val_runs", 0)
        self._n_val_runs = n_val + 1
        every = max(1, int(self.hparams.log_audio_every_n_val))
        if logger is None or self.trainer.sanity_checking or n_val % every or self.global_rank:
            return
        exp = getattr(logger, "experiment", None)
        if not hasattr(exp, "add_audio"):
            return
        from ..metrics import spectrogram_figure

        for i in range(min(self.hparams.n_log_examples, out.shape[0])):
            o = out[i].detach().float().mean(0).cpu().clamp(-1, 1)
            t = target[i].detach().float().mean(0).cpu()
            exp.add_audio(f"audio/{i}_resynthesis", o[None], self.global_step, self.sample_rate)
            exp.add_audio(f"audio/{i}_target", t[None], self.global_step, self.sample_rate)
            exp.add_figure(f"spectrogram/{i}", spectrogram_figure(t, o, self.sample_rate),
                           self.global_step)

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        if not params:
            raise ValueError("all parameters are frozen; shorten the model's freeze list")
        opt = torch.optim.Adam(params, lr=self.hparams.learning_rate)
        steps, rate = float(self.hparams.lr_decay_steps), float(self.hparams.lr_decay_rate)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: rate ** (step / steps))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None,
                                    gradient_clip_algorithm=None):
        if gradient_clip_val is None and self.hparams.grad_clip_norm:
            gradient_clip_val, gradient_clip_algorithm = self.hparams.grad_clip_norm, "norm"
        self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    # ------------------------------------------------------------------ data statistics
    def on_fit_start(self) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        manifest = getattr(dm, "manifest", None) if dm is not None else None
        if manifest:
            for key, mine in (("sample_rate", self.sample_rate), ("frame_rate", self.frame_rate)):
                if int(manifest[key]) != mine:
                    raise ValueError(
                        f"the data has {key}={manifest[key]} but the model {key}={mine}; set "
                        f"model.init_args.{key} or re-run 'ddsp prepare --{key.replace('_', '-')}'"
                    )
        stats = getattr(dm, "stats", None) if dm is not None else None
        if stats:
            self.dataset_stats = stats

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.dataset_stats is not None:
            checkpoint["dataset_stats_json"] = json.dumps(self.dataset_stats)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "dataset_stats_json" in checkpoint:
            self.dataset_stats = json.loads(checkpoint["dataset_stats_json"])

    def transfer(self, audio, sample_rate: int, **kwargs) -> Tensor:
        """Timbre transfer of ``audio`` at ``sample_rate``; see :func:`ddsp_models.transfer.transfer`."""
        from ..transfer.core import transfer

        return transfer(self, audio, sample_rate, **kwargs)

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
        """Inverse of :meth:`save_pretrained` (safetensors weights; nothing unpickled)."""
        d = Path(directory)
        if not (d / CONFIG).is_file() or not (d / WEIGHTS).is_file():
            raise FileNotFoundError(f"{d} is not an exported model: it needs {CONFIG} and {WEIGHTS}")
        cfg = yaml.safe_load((d / CONFIG).read_text())
        model = cls(**cfg["model"])
        model.load_state_dict(load_state_dict_file(d / WEIGHTS))
        if (d / STATS).is_file():
            model.dataset_stats = json.loads((d / STATS).read_text())
        return model.to(map_location).eval()


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


def load_model(path: str | Path, map_location: str = "cpu") -> Autoencoder:
    """An :class:`Autoencoder` from an exported folder or a Lightning checkpoint (``.ckpt``).

    Checkpoints are read with ``torch.load(weights_only=True)``.
    """
    path = Path(path)
    if path.is_dir():
        return Autoencoder.from_pretrained(path, map_location)
    if not path.is_file():
        raise FileNotFoundError(f"no model at {path}: pass a .ckpt file or an exported folder")
    ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    hp: dict[str, Any] = dict(ckpt.get("hyper_parameters", {}))
    hp.pop("init_from", None)
    model = Autoencoder(**hp)
    model.load_state_dict(ckpt["state_dict"])
    model.on_load_checkpoint(ckpt)
    return model.to(map_location).eval()
