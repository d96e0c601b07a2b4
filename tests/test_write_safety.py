"""The one output policy (issue 18 items 1, 7, 8): atomic writes, umask modes, sweeping.

Every file the project writes gets ``0o666 & ~umask`` (0644 under umask 022), every folder
``0o777 & ~umask``, never mkstemp's 0600; a temporary left by a killed writer is removed by the
next writer of the same name; a folder is swapped in whole.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ddsp_models.data import atomic
from ddsp_models.data.atomic import (atomic_dir, atomic_save_safetensors, atomic_write,
                                     atomic_write_json, check_writable_folder, sweep_folder,
                                     sweep_temporaries)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(p: Path) -> int:
    return p.stat().st_mode & 0o777


def _dead_pid() -> int:
    """The pid of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_written_files_and_folders_follow_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        f = atomic_write_json(tmp_path / "new" / "a.json", {"x": 1})
        s = atomic_save_safetensors(tmp_path / "w.safetensors", {"w": torch.zeros(2)})
        with atomic_dir(tmp_path / "ds") as d:
            (d / "inner.json").write_text("{}")
    finally:
        os.umask(old)
    for p in (f, s):
        assert _mode(p) == 0o666 & ~mask, (p, oct(_mode(p)))
    assert _mode(tmp_path / "new") == 0o777 & ~mask
    assert _mode(tmp_path / "ds") == 0o777 & ~mask


def test_every_writer_of_the_project_gives_0644(tmp_path, umask022):
    """Audio, model exports (safetensors, YAML, JSON), checkpoints, TorchScript, metrics."""
    from ddsp_models.audio_io import save_audio
    from ddsp_models.cli.train import AtomicCheckpointIO
    from ddsp_models.nn.autoencoder import Autoencoder

    save_audio(tmp_path / "a.wav", np.zeros(100, np.float32), 16000)
    save_audio(tmp_path / "a.flac", np.zeros(100, np.float32), 16000)
    AtomicCheckpointIO().save_checkpoint({"global_step": 1}, tmp_path / "ck" / "last.ckpt")
    graph = {"nodes": {"h": {"type": "Harmonic", "sample_rate": 16000, "n_harmonics": 2}},
             "edges": ["h -> out"]}
    m = Autoencoder(graph=graph, decoder={"hidden_size": 4, "mlp_size": 4, "mlp_layers": 1})
    m.dataset_stats = {"n_frames": 0}
    m.save_pretrained(tmp_path / "model")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"a.wav", "a.flac", "last.ckpt", "model.safetensors",
                                       "config.yaml", "stats.json"}
    for p in files:
        assert _mode(p) == 0o644, (p, oct(_mode(p)))
    for p in tmp_path.rglob("*"):
        if p.is_dir():
            assert _mode(p) == 0o755, p
    assert not [p for p in tmp_path.rglob(".*.tmp")]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "x.json"
    atomic_write_json(target, {"v": 1})

    def broken(tmp):
        Path(tmp).write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, broken)
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_the_next_writer_sweeps_temporaries_of_dead_writers_only(tmp_path):
    dead, alive = _dead_pid(), os.getppid()
    stale = tmp_path / f".out.wav.{dead}.abcdefgh.tmp"
    stale.write_bytes(b"x" * 1000)  # a transfer killed with -9
    live = tmp_path / f".out.wav.{alive}.abcdefgh.tmp"
    live.write_bytes(b"y")  # still being written by a running process
    legacy = tmp_path / ".out.wav.k2j3h4g5.tmp"  # older versions: no pid, older than us
    legacy.write_bytes(b"z")
    os.utime(legacy, (atomic.PROCESS_START - 60, atomic.PROCESS_START - 60))
    other = tmp_path / f".out.wav.bak.{dead}.abcdefgh.tmp"  # a temp of "out.wav.bak"
    other.write_bytes(b"w")
    atomic_write(tmp_path / "out.wav", lambda tmp: Path(tmp).write_bytes(b"RIFF"))
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["out.wav", live.name, other.name]), left
    # a folder sweep (checkpoint folders) finds every name
    assert sweep_folder(tmp_path) == [other]


def test_a_pid_reused_by_a_later_process_does_not_protect_an_old_temporary(tmp_path):
    mine = tmp_path / f".x.{os.getpid()}.abcdefgh.tmp"
    mine.write_bytes(b"x")
    os.utime(mine, (atomic.PROCESS_START - 60, atomic.PROCESS_START - 60))
    assert sweep_temporaries(tmp_path, "x") == [mine]


def test_atomic_dir_swaps_whole_and_keeps_the_old_folder_on_failure(tmp_path):
    target = tmp_path / "ds"
    with atomic_dir(target) as d:
        (d / "v").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as d:
            (d / "v").write_text("2")
            raise RuntimeError("failed half-way")
    assert (target / "v").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
    with atomic_dir(target) as d:
        (d / "v").write_text("3")
    assert (target / "v").read_text() == "3" and sorted(os.listdir(tmp_path)) == ["ds"]


def test_a_swap_killed_between_two_renames_is_undone_by_the_next_run(tmp_path):
    """Where renameat2 cannot exchange (not Linux, some file systems) the swap is two
    renames; a kill between them leaves the previous folder as ``.NAME.<pid>.<r>.old.tmp``."""
    backup = tmp_path / f".ds.{_dead_pid()}.abcdefgh.old.tmp"
    backup.mkdir()
    (backup / "manifest.json").write_text("{}")
    sweep_temporaries(tmp_path, "ds")
    assert (tmp_path / "ds" / "manifest.json").is_file() and not backup.exists()


def test_two_rename_fallback_swaps_too(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    target = tmp_path / "ds"
    for v in ("1", "2"):
        with atomic_dir(target) as d:
            (d / "v").write_text(v)
    assert (target / "v").read_text() == "2" and os.listdir(tmp_path) == ["ds"]


def test_unwritable_outputs_fail_before_any_work_naming_the_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(NotADirectoryError, match="file"):
        check_writable_folder(blocker / "sub")
    with pytest.raises(NotADirectoryError):
        atomic_write_json(blocker / "x.json", {})
    if os.geteuid() != 0:  # root writes anywhere: read-only folders only bind other users
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        try:
            with pytest.raises(PermissionError, match="ro.*choose a writable folder"):
                check_writable_folder(ro)
            with pytest.raises(PermissionError, match="out.json"):
                atomic_write_json(ro / "out.json", {})
        finally:
            ro.chmod(0o755)


def test_a_writer_killed_with_sigkill_leaves_a_temp_that_the_next_run_removes(tmp_path):
    """End to end: a process killed in the middle of a (slow) write, then a fresh writer."""
    code = ("import sys, time\n"
            "from pathlib import Path\n"
            "from ddsp_models.data.atomic import atomic_write\n"
            "def slow(tmp):\n"
            "    Path(tmp).write_bytes(b'x' * 100000)\n"
            "    print('writing', flush=True)\n"
            "    time.sleep(60)\n"
            f"atomic_write({str(tmp_path / 'big.bin')!r}, slow)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout.readline().strip() == b"writing"
    finally:
        proc.kill()
        proc.wait()
    leftovers = list(tmp_path.glob(".big.bin.*.tmp"))
    assert len(leftovers) == 1 and not (tmp_path / "big.bin").exists()
    atomic_write(tmp_path / "big.bin", lambda tmp: Path(tmp).write_bytes(b"ok"))
    assert sorted(os.listdir(tmp_path)) == ["big.bin"]
