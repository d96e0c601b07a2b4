"""Train an autoencoder from a YAML recipe (LightningCLI).

The model class is :class:`~ddsp_models.training.module.AutoencoderModule` (the
:class:`~ddsp_models.nn.autoencoder.Autoencoder` with Lightning's training hooks); its
checkpoints and ``--export`` folders load as the plain, Lightning-free ``Autoencoder``.

``ddsp train --config RECIPE.yaml --data.path DATA_DIR``

Every option of the model (``--model.*``), the data (``--data.*``), the trainer
(``--trainer.*``) and the checkpoints (``--checkpoint.*``, a ModelCheckpoint) can be set in the
recipe or on the command line; ``ddsp train --help`` lists them. Extra options:

* ``--ckpt_path last`` resumes from the newest checkpoint in ``RUN_DIR/checkpoints`` (normally
  ``last.ckpt``; starts fresh if there is none yet), ``--ckpt_path PATH`` from a given one;
  the resumed run is exactly the uninterrupted one, noise synths included
  (:class:`~ddsp_models.training.resume.ExactResume`);
* ``--export DIR`` writes the trained model as an exported folder (safetensors) at the end.

Checkpoints go to ``<trainer.default_root_dir>/checkpoints`` and are written atomically with
the umask's mode (:mod:`ddsp_models.data.atomic`); temporaries a killed run left there are
removed at start. TensorBoard logs (losses, audio, spectrograms) go to
``<trainer.default_root_dir>/lightning_logs``. The data, the checkpoint to resume from, the
rates of data and model and the output folders are checked before training starts.
Multi-GPU / multi-process: ``--trainer.strategy ddp --trainer.devices N``; the batch order stays
exactly resumable because the data module places each rank's share of every global batch.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ..data.atomic import atomic_write, check_writable_folder, sweep_folder
from ..data.datamodule import DDSPDataModule
from ..errors import DatasetError, InvalidInputError, ModelLoadError
from ..nn.autoencoder import read_checkpoint
from ..training.module import AutoencoderModule
from ..training.resume import ExactResume, newest_checkpoint

__all__ = ["main", "AtomicCheckpointIO", "TrainCLI"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a temporary file in the target folder, then rename: a checkpoint is
    either complete or absent, even if the process is killed while writing it."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))

    def load_checkpoint(self, path, map_location=None, weights_only=None):
        # Our checkpoints hold tensors, numbers, strings and dicts only: never unpickle code.
        # A missing, empty or corrupt file is a ModelLoadError naming it (one line in the CLI).
        return read_checkpoint(path, map_location=map_location or "cpu")


class TrainCLI(LightningCLI):
    def add_arguments_to_parser(self, parser):
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        # enable_version_counter=False: a step checkpoint written again after a resume
        # replaces its namesake (atomically) instead of adding a duplicate "-v1.ckpt"
        parser.set_defaults({"checkpoint.save_last": True, "checkpoint.every_n_train_steps": 1000,
                             "checkpoint.save_top_k": -1,
                             "checkpoint.enable_version_counter": False})
        parser.add_argument("--ckpt_path", type=str | None, default=None,
                            help="'last' to resume from the newest checkpoint in "
                                 "RUN_DIR/checkpoints (starts fresh if none), or a path")
        parser.add_argument("--export", type=str | None, default=None,
                            help="write the trained model to this folder (safetensors)")


def _make_cli(argv: list[str]) -> TrainCLI:
    with warnings.catch_warnings():  # args= is how the dispatcher hands us our arguments
        warnings.filterwarnings("ignore", message=".*args parameter is intended.*")
        return _new_cli(argv)


def _new_cli(argv: list[str]) -> TrainCLI:
    return TrainCLI(
        AutoencoderModule,
        DDSPDataModule,
        run=False,
        args=argv,
        trainer_defaults={
            "use_distributed_sampler": False,  # the data module shards each batch itself
            "callbacks": [LearningRateMonitor(logging_interval="step"), ExactResume()],
        },
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"prog": "ddsp train", "description": (__doc__ or "").strip().splitlines()[0]},
    )


def _resolve_ckpt_path(ckpt_path: str | None, ckpt_dir: Path) -> str | None:
    """``--ckpt_path``: ``last`` → the newest checkpoint of the run (or ``None``: a new run),
    a path → checked now (missing, empty, corrupt or foreign: one clear line)."""
    if not ckpt_path:
        return None
    if ckpt_path == "last":
        newest = newest_checkpoint(ckpt_dir)
        if newest is None:
            print(f"no checkpoint in {ckpt_dir} yet: starting a new run", file=sys.stderr)
            return None
        if newest.name != "last.ckpt":
            print(f"resuming from {newest.name}, newer than last.ckpt (the run was stopped "
                  "while writing it)", file=sys.stderr)
        ckpt_path = str(newest)
    elif not os.path.isfile(ckpt_path):
        raise ModelLoadError(f"--ckpt_path {ckpt_path}: no such checkpoint file; pass "
                             "'last' (resume the run in trainer.default_root_dir) or the "
                             "path of a .ckpt written by 'ddsp train'")
    ckpt = read_checkpoint(Path(ckpt_path))  # empty/corrupt: one line naming the file
    missing = [k for k in ("state_dict", "global_step", "optimizer_states", "loops")
               if k not in ckpt]
    if missing:
        raise ModelLoadError(
            f"--ckpt_path {ckpt_path} is not a training checkpoint written by 'ddsp train' "
            f"(it lacks {', '.join(repr(k) for k in missing)}); to start from a model's "
            "weights instead, pass --model.init_from PATH")
    return ckpt_path


def _check_before_fit(cli: TrainCLI, ckpt_dir: Path, export: str | None) -> None:
    """Everything that would otherwise fail after minutes of training: the data's rates and
    statistics against the model, and the folders the run writes to."""
    model, dm = cli.model, cli.datamodule
    manifest = dm.manifest  # reads the shards: a damaged dataset fails here
    for key, mine in (("sample_rate", model.sample_rate), ("frame_rate", model.frame_rate)):
        theirs = int(manifest[key])
        if theirs != mine:
            unit = "Hz" if key == "sample_rate" else "frames/s"
            raise DatasetError(
                f"the data in {dm.path} has {key} {theirs} {unit} but the model {mine} {unit}; "
                f"prepare the data again with 'ddsp prepare AUDIO_DIR -o {dm.path} "
                f"--{key.replace('_', '-')} {mine}', or train a model of {theirs} {unit} "
                f"(model.{key}: {theirs} in the recipe, and the same rate for every node of "
                "its graph)")
    dm.stats  # a malformed stats.json: one line now (see data.stats.validate_stats)
    if len(getattr(dm, "train_indices", [])) < dm.batch_size:
        raise DatasetError(
            f"the training set in {dm.path} has {len(dm.train_indices)} examples, fewer than "
            f"one batch (data.batch_size {dm.batch_size}); lower data.batch_size or add data")
    if cli.trainer.is_global_zero:
        check_writable_folder(ckpt_dir)
        if export:
            check_writable_folder(Path(export).resolve().parent)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cli = _make_cli(argv)
    trainer, cfg = cli.trainer, cli.config
    if trainer._accelerator_connector.use_distributed_sampler:
        raise InvalidInputError("ddsp train needs trainer.use_distributed_sampler=false: the data module "
                         "splits every global batch between ranks itself")
    ckpt_dir = Path(trainer.default_root_dir) / "checkpoints"
    for cb in trainer.checkpoint_callbacks:
        if cb.dirpath is None:
            cb.dirpath = str(ckpt_dir)
    trainer.strategy.checkpoint_io = AtomicCheckpointIO()
    if not any(isinstance(cb, ExactResume) for cb in trainer.callbacks):
        trainer.callbacks.append(ExactResume())  # replaced by --trainer.callbacks: put back
    sweep_folder(ckpt_dir)  # temporaries of a run killed while writing a checkpoint
    ckpt_path = _resolve_ckpt_path(cfg.get("ckpt_path"), ckpt_dir)
    _check_before_fit(cli, ckpt_dir, cfg.get("export"))
    trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt_path, weights_only=True)
    export = cfg.get("export")
    if export and trainer.is_global_zero:
        cli.model.save_pretrained(export)
        print(f"exported the model to {export}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
