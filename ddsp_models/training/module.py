"""The Lightning side of the autoencoder: what ``ddsp train`` trains.

:class:`AutoencoderModule` is :class:`~ddsp_models.nn.autoencoder.Autoencoder` (the model:
same constructor, hyper-parameters, submodules and state-dict keys) plus
``lightning.pytorch.LightningModule`` and the training hooks: the loss of a batch
(:meth:`Autoencoder._step`) logged as ``train/loss`` / ``val/loss``, audio and spectrograms
logged to TensorBoard, Adam with DDSP's step-wise exponential decay, gradient-norm clipping,
the data's rates checked at the start of a fit and the dataset statistics carried in
checkpoints (``dataset_stats_json``).

The split keeps Lightning out of inference: loading a model (:func:`ddsp_models.load_model`,
:meth:`Autoencoder.from_pretrained`, :meth:`Autoencoder.from_checkpoint`) builds the plain
:class:`Autoencoder`, and the checkpoints this class writes load there unchanged.
``isinstance(module, Autoencoder)`` holds.
"""

from __future__ import annotations

import json
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from ..errors import InvalidInputError
from ..nn.autoencoder import Autoencoder

__all__ = ["AutoencoderModule"]


class AutoencoderModule(Autoencoder, pl.LightningModule):
    """:class:`~ddsp_models.nn.autoencoder.Autoencoder` as a ``LightningModule`` (the model
    class of ``ddsp train`` and its recipes); takes the same arguments.

    The method resolution order is ``AutoencoderModule → Autoencoder → LightningModule → ...
    → nn.Module``: the model's ``forward`` and methods win, and ``Autoencoder.__init__``'s
    ``super().__init__()`` runs ``LightningModule.__init__``. The hyper-parameters go through
    Lightning's ``save_hyperparameters``, so checkpoints hold them as ``hyper_parameters``
    (what :meth:`Autoencoder.from_checkpoint` reads).
    """

    # Lightning's own property (``self._hparams``, an AttributeDict filled by
    # save_hyperparameters), not the plain model's: Lightning's bookkeeping expects it.
    hparams = pl.LightningModule.hparams

    def _save_hparams(self, hp: dict[str, Any]) -> None:
        self.save_hyperparameters(hp)

    # ------------------------------------------------------------------ steps
    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        if hasattr(self.loss_fn, "set_step"):  # the loss's FFT-size warm-up follows the step
            self.loss_fn.set_step(self.global_step)
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
        """Audio ``(1, L)`` of target and resynthesis and their spectrograms for the first
        ``n_log_examples`` examples, every ``log_audio_every_n_val``-th validation run."""
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
                    raise InvalidInputError(
                        f"the data has {key}={manifest[key]} but the model {key}={mine}; pass "
                        f"--model.{key} {manifest[key]} (or set {key} under model: in the "
                        f"recipe), or prepare the data again with 'ddsp prepare "
                        f"--{key.replace('_', '-')} {mine}'"
                    )
        stats = getattr(dm, "stats", None) if dm is not None else None
        if stats:
            self.dataset_stats = stats

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.dataset_stats is not None:
            checkpoint["dataset_stats_json"] = json.dumps(self.dataset_stats)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._restore_stats(checkpoint)
