"""LightningDataModule over prepared shards, with exactly resumable batch order.

The training order is a pure function of ``(seed, batch number)``: epoch ``e`` visits the
examples in ``randperm(n, seed + e)``, and batch ``k`` of the run takes the ``k``-th slice of
that order (each DDP rank its own part of the global batch). When training resumes from a
checkpoint the sampler starts at the batch number the trainer restored, so no batch is lost
or repeated. This needs ``Trainer(use_distributed_sampler=False)``, which ``ddsp train`` sets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Sampler, Subset

from ..errors import InvalidInputError
from .dataset import ShardDataset, load_manifest
from .stats import load_stats

__all__ = ["DDSPDataModule", "ResumableSampler"]


class ResumableSampler(Sampler[int]):
    """Example indices for batches ``start, start + 1, ...`` to the end of the current epoch.

    Args:
        n: dataset size.
        batch_size: per-rank batch size.
        seed: base seed of the per-epoch permutations.
        position: callable returning ``(batches_done, rank, world_size)`` when iteration starts.

    ``len`` is a full epoch of this rank (``n // (batch_size * world)`` batches); iteration yields
    only the batches still to come in the current epoch (all of them on a fresh start).
    """

    def __init__(self, n: int, batch_size: int, seed: int,
                 position: Callable[[], tuple[int, int, int]]):
        self.n, self.batch_size, self.seed, self.position = n, batch_size, seed, position

    def batches_per_epoch(self, world: int) -> int:
        nb = self.n // (self.batch_size * world)
        if nb < 1:
            raise InvalidInputError(
                f"the training set has {self.n} examples, fewer than one global batch "
                f"({self.batch_size} x {world} ranks); lower data.batch_size or add data"
            )
        return nb

    def __len__(self) -> int:
        return self.batches_per_epoch(self.position()[2]) * self.batch_size

    def order(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 100003 + epoch)
        return torch.randperm(self.n, generator=g)

    def __iter__(self) -> Iterator[int]:
        done, rank, world = self.position()
        nb = self.batches_per_epoch(world)
        epoch, first = divmod(done, nb)
        perm = self.order(epoch)
        gb = self.batch_size * world
        for k in range(first, nb):
            block = perm[k * gb : (k + 1) * gb]
            yield from block[rank * self.batch_size : (rank + 1) * self.batch_size].tolist()


class DDSPDataModule(pl.LightningDataModule):
    """Batches of ``{"audio": (B, 1, L), "f0_hz", "f0_confidence", "loudness_db": (B, T, 1)}``,
    plus any extra frame-rate control the shards carry (``gate``, ``velocity``, ``note``:
    ``(B, T, 1)``; see :class:`~ddsp_models.data.dataset.ShardDataset`).

    Args:
        path: a folder written by ``ddsp prepare``.
        batch_size: per-device batch size (DDSP: 16 in total).
        num_workers: DataLoader worker processes.
        val_fraction: share of examples held out for validation (a seeded random choice; the
            examples overlap by default so this measures fit more than generalisation).
        val_max_examples: cap on validation examples.
        seed: seed of the split and of the training order.
    """

    def __init__(self, path: str, batch_size: int = 16, num_workers: int = 0,
                 val_fraction: float = 0.05, val_max_examples: int = 64, seed: int = 0):
        super().__init__()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"data.batch_size must be a whole number >= 1, got "
                                    f"{batch_size!r}")
        if not 0 <= val_fraction < 1:
            raise InvalidInputError(f"val_fraction must be in [0, 1), got {val_fraction}")
        load_manifest(path)  # not a prepared dataset: one clear error now, before the trainer
        self.path, self.batch_size, self.num_workers = str(path), batch_size, num_workers
        self.val_fraction, self.val_max_examples, self.seed = val_fraction, val_max_examples, seed
        self.dataset: ShardDataset | None = None
        self.save_hyperparameters()

    @property
    def manifest(self) -> dict:
        self._load()
        return self.dataset.manifest

    @property
    def stats(self) -> dict | None:
        try:
            return load_stats(Path(self.path))
        except FileNotFoundError:
            return None

    def _load(self):
        if self.dataset is None:
            self.dataset = ShardDataset(self.path)
            n = len(self.dataset)
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed)).tolist()
            n_val = min(int(round(self.val_fraction * n)), self.val_max_examples) if n > 1 else 0
            self.val_indices, self.train_indices = sorted(perm[:n_val]), sorted(perm[n_val:])

    def setup(self, stage: str | None = None):
        self._load()

    def _position(self) -> tuple[int, int, int]:
        t = self.trainer
        if t is None:
            return 0, 0, 1
        done = t.global_step * max(1, t.accumulate_grad_batches)
        return done, t.global_rank, t.world_size

    def train_dataloader(self) -> DataLoader:
        self._load()
        train = Subset(self.dataset, self.train_indices)
        sampler = ResumableSampler(len(train), self.batch_size, self.seed, self._position)
        return _ResumableLoader(train, batch_size=self.batch_size, sampler=sampler, drop_last=True,
                          num_workers=self.num_workers, collate_fn=collate,
                          persistent_workers=False)

    def val_dataloader(self) -> DataLoader | list:
        self._load()
        if not self.val_indices:
            return []
        return DataLoader(Subset(self.dataset, self.val_indices), batch_size=self.batch_size,
                          num_workers=self.num_workers, collate_fn=collate)


class _ResumableLoader(DataLoader):
    """A DataLoader whose position is restored through the trainer's global step.

    Its state is the sampler's (a function of the restored step), so ``state_dict`` has
    nothing to add; having it tells Lightning that a mid-epoch resume is exact.
    """

    def state_dict(self) -> dict:
        return {"resumes_from": "global_step"}

    def load_state_dict(self, state: dict) -> None:
        pass


def collate(items: list[dict]) -> dict:
    """Stack tensors; ints become a LongTensor."""
    out = {}
    for k in items[0]:
        vals = [it[k] for it in items]
        out[k] = torch.stack(vals) if torch.is_tensor(vals[0]) else torch.tensor(vals)
    return out
