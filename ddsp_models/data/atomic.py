"""Writing outputs: the one policy for every file and folder ddsp-models writes.

* **Atomic.** A file is written under a hidden temporary name in its target folder,
  ``.NAME.<pid>.<random>.tmp``, flushed to disk, then renamed onto ``NAME``
  (``os.replace`` within one file system is atomic): a reader, or a crash, never sees a
  half-written file. A folder of several files (a prepared dataset) is built the same way
  beside the old one (:func:`atomic_dir`) and swapped in whole once complete, so the previous
  folder stays intact and readable until the new one is ready.
* **Modes follow the umask**, as ``open(..., "w")`` and ``mkdir`` would give them: files
  ``0o666 & ~umask``, folders ``0o777 & ~umask`` (``0644`` / ``0755`` under the usual umask
  ``022``). ``tempfile.mkstemp``/``mkdtemp`` create ``0600``/``0700``; that mode is not kept.
* **Leftovers are swept.** A writer killed with ``SIGKILL`` cannot remove its temporary; the
  next writer of the same name in the same folder removes every ``.NAME.*.tmp`` whose writer
  is gone (its process no longer runs, or started after the temporary was last written), see
  :func:`sweep_temporaries`.

Use :func:`atomic_write` (any writer that takes a path), :func:`atomic_write_json`,
:func:`atomic_write_text`, :func:`atomic_save_safetensors` and :func:`atomic_dir`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

__all__ = [
    "atomic_write", "atomic_write_json", "atomic_write_text", "atomic_save_safetensors",
    "atomic_dir", "sweep_temporaries", "sweep_folder", "current_umask", "file_mode", "dir_mode",
    "make_dirs", "check_writable_folder",
]

#: When this process started (seconds since the epoch): a temporary older than this that
#: carries our own pid was left by an earlier process that had the same pid.
PROCESS_START = time.time()

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask (read from ``/proc/self/status`` where possible: no race)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # no read-only query elsewhere: set and restore
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode of a written file: ``0o666 & ~umask`` (``0o644`` under umask ``022``)."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """Mode of a created folder: ``0o777 & ~umask`` (``0o755`` under umask ``022``)."""
    return 0o777 & ~current_umask()


def make_dirs(path: str | os.PathLike) -> Path:
    """``mkdir -p path`` (modes from the umask); an existing file there is a clear error."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(20, "exists and is not a folder", str(path))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cannot_write(err: OSError, path: Path) -> OSError:
    """``err`` re-raised as the same type, naming ``path`` (not a temporary) and the fix."""
    return type(err)(err.errno, f"cannot write here ({err.strerror}); choose a writable "
                     "folder", str(path))


def check_writable_folder(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and prove it writable by creating and removing a temporary
    file there: fails at once (``PermissionError``/``OSError`` naming the folder) instead of
    after the work. ``os.access`` is not enough: it says yes to root on a read-only mount."""
    folder = make_dirs(folder)
    try:
        fd, probe = tempfile.mkstemp(prefix=".ddsp-write-test.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise _cannot_write(err, folder) from None
    os.close(fd)
    os.unlink(probe)
    return folder


# ----------------------------------------------------------------------------- sweeping
def _temp_prefix(name: str) -> str:
    return f".{name}.{os.getpid()}."


def _boot_time() -> float | None:
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("btime"):
                    return float(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _process_start(pid: int) -> float | None:
    """Start time (epoch seconds) of process ``pid`` from ``/proc``; ``None`` if unknown."""
    if pid == os.getpid():
        return PROCESS_START
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22 of stat: starttime in clock ticks after boot
        boot = _boot_time()
        return None if boot is None else boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    except OSError:
        return False
    return True


def _is_stale(entry: Path, owner: int | None) -> bool:
    """A temporary is stale when its writer cannot still be writing it."""
    try:
        mtime = entry.lstat().st_mtime
    except FileNotFoundError:
        return False
    if owner is None:  # no pid in the name (older versions): older than this process
        return mtime < PROCESS_START
    if not _pid_alive(owner):
        return True
    started = _process_start(owner)
    # the pid runs, but a process that started after the last write is not the writer
    return started is not None and mtime < started - 1.0


_MIDDLE = re.compile(r"^(?P<pid>\d+)\.[A-Za-z0-9_]{8}(?:\.old)?$")  # mkstemp: 8 characters
_LEGACY = re.compile(r"^[A-Za-z0-9_]{8}$")


def _owner(entry_name: str, name: str) -> int | None | bool:
    """The writer's pid in ``.NAME.<pid>.<random>[.old].tmp``; ``None`` for an older
    ``.NAME.<random>.tmp`` (no pid); ``False`` if the entry is not a temporary of ``NAME`` (the
    temporary of another file whose name starts with ``NAME.``)."""
    middle = entry_name[len(name) + 2: -len(".tmp")]
    m = _MIDDLE.match(middle)
    if m:
        return int(m["pid"])
    return None if _LEGACY.match(middle) else False


def sweep_temporaries(folder: str | os.PathLike, name: str) -> list[Path]:
    """Remove the stale temporaries ``.NAME.*.tmp`` (files or folders) of ``folder`` that
    killed writers of ``folder/NAME`` left behind; returns what was removed. A temporary whose
    writer still runs is kept. A folder swap interrupted half-way (see :func:`atomic_dir`)
    is undone first: the previous folder is put back if ``NAME`` is missing."""
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    head, tail = f".{name}.", ".tmp"
    target = folder / name
    for e in sorted(entries, key=lambda e: e.name):
        if not (e.name.startswith(head) and e.name.endswith(tail)
                and len(e.name) > len(head) + len(tail)):
            continue
        path = Path(e.path)
        owner = _owner(e.name, name)
        if owner is False or not _is_stale(path, owner):
            continue
        if e.name.endswith(".old.tmp") and not os.path.lexists(target):
            try:  # a swap killed between its two renames: put the previous folder back
                os.rename(path, target)
            except OSError:
                pass  # keep it rather than delete the only copy
            continue
        with contextlib.suppress(FileNotFoundError):
            if e.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
    return removed


_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]{8}(?:\.old)?\.tmp$")


def sweep_folder(folder: str | os.PathLike) -> list[Path]:
    """:func:`sweep_temporaries` for every name that has a temporary in ``folder`` (e.g. a
    checkpoint folder, whose step checkpoints are each written once)."""
    try:
        names = {m["name"] for e in os.scandir(folder) if (m := _TEMP_NAME.match(e.name))}
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed: list[Path] = []
    for name in sorted(names):
        removed += sweep_temporaries(folder, name)
    return removed


# ----------------------------------------------------------------------------- files
def _fsync_path(path: str | os.PathLike, directory: bool = False) -> None:
    """Flush ``path`` to disk (best effort for folders: not every system can)."""
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        if directory:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)``, then give the file the umask's mode, flush it and rename it
    to ``path``; on any error (or ``KeyboardInterrupt``) the temporary is removed and an
    existing ``path`` is left as it was. Stale temporaries of ``path`` are swept first."""
    path = Path(path)
    folder = make_dirs(path.parent)
    sweep_temporaries(folder, path.name)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.name), suffix=".tmp", dir=folder)
    except OSError as err:
        raise _cannot_write(err, path) from None
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, file_mode())
        _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_path(folder, directory=True)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8), atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def atomic_save_safetensors(path: str | os.PathLike, tensors: dict, metadata: dict | None = None) -> Path:
    """``safetensors.torch.save_file`` to ``path``, atomically (never pickle)."""
    from safetensors.torch import save_file

    tensors = {k: v.contiguous() for k, v in tensors.items()}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


# ----------------------------------------------------------------------------- folders
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); ``False``
    where the system or the file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


def _swap_in(new: Path, target: Path) -> Path | None:
    """Put folder ``new`` at ``target``; returns where the previous content now is (to be
    removed), or ``None`` if there was none."""
    if not os.path.lexists(target):
        os.rename(new, target)
        return None
    if not target.is_dir() or target.is_symlink():
        raise NotADirectoryError(20, "exists and is not a folder", str(target))
    if _exchange(new, target):
        return new  # ``new`` now holds the previous folder
    # two renames; a kill between them leaves ``.NAME.<pid>.<random>.old.tmp`` and no NAME,
    # which the next sweep (sweep_temporaries) renames back
    old = Path(tempfile.mkdtemp(prefix=_temp_prefix(target.name), suffix=".old.tmp",
                                dir=target.parent))
    os.rmdir(old)
    os.rename(target, old)
    os.rename(new, target)
    return old


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Build a folder beside ``path`` and swap it in whole when the block ends without error.

    >>> with atomic_dir("data/violin") as tmp:   # doctest: +SKIP
    ...     (tmp / "manifest.json").write_text("{}")

    Inside the block, write into the yielded temporary folder ``.NAME.<pid>.<random>.tmp``
    (a sibling of ``path``: same file system). On success the previous ``path`` is replaced by
    it in one atomic exchange (Linux) and then deleted; on an error, ``KeyboardInterrupt`` or
    a kill, ``path`` is untouched (the temporary is removed, or swept by the next run).
    The folder gets the umask's mode.
    """
    path = Path(path)
    parent = make_dirs(path.parent)
    sweep_temporaries(parent, path.name)
    if os.path.lexists(path) and (not path.is_dir() or path.is_symlink()):
        raise NotADirectoryError(20, "exists and is not a folder", str(path))
    try:
        tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path.name), suffix=".tmp", dir=parent))
    except OSError as err:
        raise _cannot_write(err, path) from None
    try:
        os.chmod(tmp, dir_mode())
        yield tmp
        _fsync_path(tmp, directory=True)
        old = _swap_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_path(parent, directory=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
