"""Train an autoencoder from a YAML recipe (LightningCLI).

``ddsp train --config RECIPE.yaml --data.path DATA_DIR``

Every option of the model (``--model.*``), the data (``--data.*``), the trainer
(``--trainer.*``) and the checkpoints (``--checkpoint.*``, a ModelCheckpoint) can be set in the
recipe or on the command line; ``ddsp train --help`` lists them. Extra options:

* ``--ckpt_path last`` resumes from ``RUN_DIR/checkpoints/last.ckpt`` (starts fresh if there is
  none yet), ``--ckpt_path PATH`` from a given checkpoint;
* ``--export DIR`` writes the trained model as an exported folder (safetensors) at the end.

Checkpoints go to ``<trainer.default_root_dir>/checkpoints`` and are written atomically;
TensorBoard logs (losses, audio, spectrograms) to ``<trainer.default_root_dir>/lightning_logs``.
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

from ..data.atomic import atomic_write
from ..data.datamodule import DDSPDataModule
from ..errors import InvalidInputError, ModelLoadError
from ..nn.autoencoder import Autoencoder, read_checkpoint

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
        parser.set_defaults({"checkpoint.save_last": True, "checkpoint.every_n_train_steps": 1000,
                             "checkpoint.save_top_k": -1})
        parser.add_argument("--ckpt_path", type=str | None, default=None,
                            help="'last' to resume from RUN_DIR/checkpoints/last.ckpt, or a path")
        parser.add_argument("--export", type=str | None, default=None,
                            help="write the trained model to this folder (safetensors)")


def _make_cli(argv: list[str]) -> TrainCLI:
    with warnings.catch_warnings():  # args= is how the dispatcher hands us our arguments
        warnings.filterwarnings("ignore", message=".*args parameter is intended.*")
        return _new_cli(argv)


def _new_cli(argv: list[str]) -> TrainCLI:
    return TrainCLI(
        Autoencoder,
        DDSPDataModule,
        run=False,
        args=argv,
        trainer_defaults={
            "use_distributed_sampler": False,  # the data module shards each batch itself
            "callbacks": [LearningRateMonitor(logging_interval="step")],
        },
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"prog": "ddsp train", "description": (__doc__ or "").strip().splitlines()[0]},
    )


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
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path == "last":
        last = ckpt_dir / "last.ckpt"
        if last.is_file():
            ckpt_path = str(last)
        else:
            print(f"no {last} yet: starting a new run", file=sys.stderr)
            ckpt_path = None
    elif ckpt_path:
        if not os.path.isfile(ckpt_path):
            raise ModelLoadError(f"--ckpt_path {ckpt_path}: no such checkpoint file; pass "
                                 "'last' (resume the run in trainer.default_root_dir) or the "
                                 "path of a .ckpt written by 'ddsp train'")
        if "state_dict" not in read_checkpoint(Path(ckpt_path)):  # empty/corrupt: one line
            raise ModelLoadError(f"--ckpt_path {ckpt_path} holds no 'state_dict': it is not a "
                                 "checkpoint written by 'ddsp train'")
    trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt_path, weights_only=True)
    export = cfg.get("export")
    if export and trainer.is_global_zero:
        cli.model.save_pretrained(export)
        print(f"exported the model to {export}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
