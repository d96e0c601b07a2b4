"""Read the shards written by ``ddsp prepare`` (see :mod:`ddsp_models.data.prepare`)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..errors import DatasetError
from .prepare import FORMAT, MANIFEST

__all__ = ["ShardDataset", "load_manifest"]

FEATURES = ("f0_hz", "f0_confidence", "loudness_db")
#: Shard tensors that are not frame-rate controls.
_NOT_CONTROLS = ("audio", "source", "start")


def load_manifest(data_dir: str | Path) -> dict:
    """The manifest of a prepared dataset, with a clear error if the folder is not one."""
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"{data_dir} holds no {MANIFEST}: it is not a prepared dataset (or its preparation was "
            f"interrupted); run 'ddsp prepare AUDIO_DIR -o {data_dir}'"
        )
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
        raise DatasetError(f"{path} is not valid JSON ({err}); the dataset is damaged: run "
                           f"'ddsp prepare AUDIO_DIR -o {data_dir}' again") from err
    if not isinstance(manifest, dict):
        raise DatasetError(f"{path} holds a {type(manifest).__name__}, not a manifest; run "
                           f"'ddsp prepare AUDIO_DIR -o {data_dir}' again")
    if manifest.get("format") != FORMAT:
        raise DatasetError(f"{path} has format {manifest.get('format')!r}, expected {FORMAT!r}")
    return manifest


class ShardDataset(Dataset):
    """All examples of a prepared dataset, held in memory (10 min of audio ≈ 150 MB).

    Item ``i`` is a dict: ``audio (1, n_samples)``, ``f0_hz``, ``f0_confidence``,
    ``loudness_db`` ``(n_frames, 1)`` (float32), ``source`` and ``start`` (ints), and any
    further frame-rate control the shards carry (e.g. ``gate``, ``velocity`` or ``note`` of a
    dataset made from MIDI; see :mod:`ddsp_models.graph.controls`): stored ``(N, n_frames)``
    or ``(N, n_frames, K)``, given as ``(n_frames, 1)`` / ``(n_frames, K)``. Their names are
    :attr:`extra_controls` (other per-example tensors are not passed on); the autoencoder
    uses those its graph declares instead of deriving them from f0 and loudness.
    """

    def __init__(self, data_dir: str | Path):
        from safetensors.torch import load_file

        self.data_dir = Path(data_dir)
        self.manifest = load_manifest(self.data_dir)
        parts: dict[str, list] = {}
        for shard in self.manifest.get("shards", []):
            file = self.data_dir / shard["file"]
            try:
                t = load_file(str(file))
            except Exception as err:  # SafetensorError, OSError: missing or truncated shard
                raise DatasetError(f"cannot read shard {file} ({' '.join(str(err).split())}); "
                                   f"the dataset is damaged: run 'ddsp prepare' again") from err
            if t["audio"].shape[0] != shard["n_examples"]:
                raise DatasetError(f"{shard['file']} holds {t['audio'].shape[0]} examples, the "
                                 f"manifest says {shard['n_examples']}; re-run 'ddsp prepare'")
            for k, v in t.items():
                parts.setdefault(k, []).append(v)
        self.tensors = {k: torch.cat(v) for k, v in parts.items()}
        n_frames = self.tensors["f0_hz"].shape[1] if "f0_hz" in self.tensors else None
        self.extra_controls: list[str] = []
        for k, v in self.tensors.items():
            if k in FEATURES or k in _NOT_CONTROLS:
                continue
            if v.dim() in (2, 3) and v.shape[1] == n_frames:  # frame-rate: a control
                self.extra_controls.append(k)
        self.sample_rate = int(self.manifest["sample_rate"])
        self.frame_rate = int(self.manifest["frame_rate"])

    def __len__(self) -> int:
        return int(self.tensors["audio"].shape[0]) if self.tensors else 0

    def __getitem__(self, i: int) -> dict:
        t = self.tensors
        item = {"audio": t["audio"][i][None]}
        for k in FEATURES:
            item[k] = t[k][i][:, None]
        for k in self.extra_controls:
            v = t[k][i]
            item[k] = (v[:, None] if v.dim() == 1 else v).float()
        item["source"] = int(t["source"][i])
        item["start"] = int(t["start"][i])
        return item
