"""Datasets: preparation of shards from recordings, reading them, and the Lightning DataModule."""

from __future__ import annotations

from .._lazy import lazy_exports

_D = "ddsp_models.data."
__getattr__, __dir__ = lazy_exports(__name__, {
    "PrepareConfig": _D + "prepare",
    "prepare_dataset": _D + "prepare",
    "find_audio_files": _D + "prepare",
    "slice_starts": _D + "prepare",
    "ShardDataset": _D + "dataset",
    "load_manifest": _D + "dataset",
    "DDSPDataModule": _D + "datamodule",
    "ResumableSampler": _D + "datamodule",
    "compute_stats": _D + "stats",
    "load_stats": _D + "stats",
    "pitch_range": _D + "stats",
})
