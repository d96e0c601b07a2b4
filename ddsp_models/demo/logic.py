"""What the demo page does, as plain functions (testable without gradio or a browser).

The page (:mod:`.app`) only wires widgets to these:

* :func:`read_upload`: an uploaded or recorded file → ``(channels, samples)`` audio, or an
  :class:`~ddsp_models.errors.InvalidInputError` whose one-line message the page shows (not
  audio, longer than :data:`MAX_SECONDS`, shorter than :data:`MIN_SECONDS`, silent);
* :func:`model_choices` / :func:`pick_model` / :class:`ModelCache`: shipped names or a local
  model folder, each loaded once with :func:`ddsp_models.registry.load_model`;
* :func:`check_settings` / :func:`transfer_kwargs`: the page's controls → the keyword arguments
  of :func:`ddsp_models.transfer.core.transfer_with_features` (options the installed version
  lacks are left out with a note, never an error);
* :func:`run_transfer`: the transfer, a WAV to listen to / download and a PNG of the input and
  output spectrograms with their f0 curves (:func:`ddsp_models.transfer.plot.plot_transfer`).

Importing this module imports neither torch nor gradio; the functions import what they use.
"""

from __future__ import annotations

import inspect
import math
import os
import re
import threading
import time
import uuid
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import InvalidInputError, one_line

if TYPE_CHECKING:  # pragma: no cover
    from torch import Tensor

__all__ = ["MAX_SECONDS", "MIN_SECONDS", "AUTO_SCALE", "SCALES", "Settings", "DemoOutput",
           "read_upload", "check_settings", "model_choices", "pick_model", "ModelCache",
           "transfer_options", "transfer_kwargs", "f0_methods", "default_f0_method",
           "run_transfer", "prune_outputs"]

#: Longest upload accepted, in seconds (a transfer on 2 CPU cores takes a few seconds per
#: minute of audio with a fast pitch tracker; the page stays responsive for every visitor).
MAX_SECONDS = 60.0
#: Shortest upload accepted, in seconds (a few analysis frames).
MIN_SECONDS = 0.1
#: Pitch shift range of the page, semitones.
PITCH_SHIFT_RANGE = (-24.0, 24.0)
#: Loudness shift range of the page, dB.
LOUDNESS_SHIFT_RANGE = (-30.0, 30.0)
#: Auto-adjust's note threshold range of the page (1 = the library default).
NOTE_THRESHOLD_RANGE = (0.0, 3.0)
#: Range of the dB taken off non-note frames by auto-adjust.
QUIET_DB_RANGE = (0.0, 60.0)
#: The scale choice meaning "detect the key from the input" (``scale=None``).
AUTO_SCALE = "auto (key from the input)"
_KEYS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
#: Scale choices offered: detect, chromatic, major / minor (tonic detected), the 24 keys
#: (another spelling, e.g. ``"Db major"``, may be typed in).
SCALES = (AUTO_SCALE, "chromatic", "major", "minor") + tuple(
    f"{k} {mode}" for mode in ("major", "minor") for k in _KEYS)


@dataclass(frozen=True)
class Settings:
    """The page's controls.

    ``pitch_shift`` semitones, ``loudness_shift`` dB, ``autotune`` amount in ``[0, 1]``
    (0 = off, 1 = snapped to the scale), ``scale`` (None = detected from the input),
    ``auto_adjust`` on/off, ``f0_method`` (a key of ``ddsp_models.features.f0.F0_METHODS``),
    and auto-adjust's ``note_threshold`` (its note/silence decision; higher keeps fewer frames
    as notes) and ``quiet_db`` (dB taken off non-note frames); None = the library default.
    """

    pitch_shift: float = 0.0
    loudness_shift: float = 0.0
    autotune: float = 0.0
    scale: str | None = None
    auto_adjust: bool = True
    f0_method: str = "crepe-tiny"
    note_threshold: float | None = None
    quiet_db: float | None = None


@dataclass
class DemoOutput:
    """A finished transfer: ``audio_path`` (WAV at the input's rate), ``plot_path`` (PNG),
    ``notes`` (one-line remarks for the page), ``seconds`` (input duration), ``elapsed`` (s)."""

    audio_path: Path
    plot_path: Path | None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    elapsed: float = 0.0


def _shown_name(path: str | os.PathLike) -> str:
    """The file's own name (gradio keeps it under a random folder, which means nothing)."""
    return Path(path).name or str(path)


def read_upload(path: str | os.PathLike | None, max_seconds: float = MAX_SECONDS,
                min_seconds: float = MIN_SECONDS) -> tuple["Tensor", int]:
    """Read an uploaded or recorded file with :func:`ddsp_models.audio_io.load_audio`.

    Args:
        path: the file gradio stored (None: nothing uploaded).
        max_seconds, min_seconds: accepted duration.

    Returns:
        ``(audio, sample_rate)``: float32 ``(channels, samples)`` and its rate in Hz.

    Raises:
        InvalidInputError: one line for the page: nothing uploaded, not a readable audio
            file, too long, too short, or silent (peak below -80 dBFS).
    """
    if path is None or str(path) == "":
        raise InvalidInputError("no audio yet: upload a file or record with the microphone, "
                                "then press Transfer")
    name = _shown_name(path)
    import soundfile as sf

    from ..audio_io import load_audio, supported_extensions

    have = set(supported_extensions())
    readable = ", ".join(e.lstrip(".").upper() for e in (".wav", ".flac", ".ogg", ".mp3", ".aiff")
                         if e in have)
    not_audio = (f"{name!r} is not an audio file this page can read ({readable}); convert "
                 "it, e.g. `ffmpeg -i in.m4a out.wav`, and upload that")
    try:  # the header first: a too-long file is refused before it is decoded
        info = sf.info(str(path))
        seconds = info.frames / info.samplerate if info.samplerate > 0 else 0.0
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise InvalidInputError(not_audio) from e
    if info.frames > 0 and seconds > max_seconds:
        raise InvalidInputError(f"{name!r} is {seconds:.1f} s long; this page takes at most "
                                f"{max_seconds:g} s: trim it, or use `ddsp transfer` for long "
                                "files")
    try:
        audio, sr = load_audio(path, mono=False)
    except (FileNotFoundError, ValueError) as e:  # AudioFileError is a ValueError
        msg = one_line(e)
        if "no audio samples" in msg or "NaN" in msg:
            raise InvalidInputError(f"{name!r}: {msg.replace(repr(str(path)), 'the file')}") \
                from e
        raise InvalidInputError(not_audio) from e
    seconds = audio.shape[-1] / sr
    if seconds > max_seconds:  # a header may not know its length (e.g. streamed OGG)
        raise InvalidInputError(f"{name!r} is {seconds:.1f} s long; this page takes at most "
                                f"{max_seconds:g} s: trim it, or use `ddsp transfer` for long "
                                "files")
    if seconds < min_seconds:
        raise InvalidInputError(f"{name!r} is only {seconds * 1000:.0f} ms long; upload at "
                                f"least {min_seconds:g} s of a melody")
    from ..transfer.core import SILENCE_PEAK

    peak = float(audio.abs().max())
    if not peak >= SILENCE_PEAK:
        raise InvalidInputError(f"{name!r} is silent (peak below -80 dBFS): nothing to "
                                "transfer; record closer to the microphone or upload another "
                                "file")
    return audio, sr


def f0_methods() -> list[str]:
    """Pitch trackers the installed version offers (``F0_METHODS``; imports torch)."""
    from ..features.f0 import F0_METHODS

    return list(F0_METHODS)


def default_f0_method(methods: Sequence[str], preferred: str | None = None) -> str:
    """The page's default pitch tracker: ``preferred`` (the library's default) if offered,
    else crepe-tiny (fast, accurate on melodies), else yin."""
    for m in (preferred, "crepe-tiny", "yin"):
        if m in methods:
            return m
    return methods[0]


def check_settings(s: Settings, methods: Sequence[str] | None = None) -> None:
    """Raise :class:`InvalidInputError` (one line) for a control outside the page's range."""
    for what, value, (lo, hi), unit in (
            ("pitch shift", s.pitch_shift, PITCH_SHIFT_RANGE, " semitones"),
            ("loudness shift", s.loudness_shift, LOUDNESS_SHIFT_RANGE, " dB"),
            ("autotune", s.autotune, (0.0, 1.0), ""),
            ("note threshold", s.note_threshold, NOTE_THRESHOLD_RANGE, ""),
            ("quiet level", s.quiet_db, QUIET_DB_RANGE, " dB")):
        if value is None and what in ("note threshold", "quiet level"):
            continue
        if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
            raise InvalidInputError(f"{what} must be between {lo:g} and {hi:g}{unit}, got "
                                    f"{value!r}")
    if methods is not None and s.f0_method not in methods:
        raise InvalidInputError(f"pitch tracker must be one of {', '.join(methods)}, got "
                                f"{s.f0_method!r}")
    if s.autotune > 0 and s.scale is not None:
        try:
            from ..transfer.autotune import parse_scale
        except ImportError:  # a version without autotune: the option is ignored with a note
            return
        parse_scale(s.scale)  # InvalidInputError naming the accepted spellings


def scale_argument(choice: str | None) -> str | None:
    """The page's scale choice → the ``scale`` argument (None: detect the key)."""
    if choice is None:
        return None
    choice = " ".join(str(choice).split())
    if choice == "" or choice == AUTO_SCALE or choice.lower() == "auto":
        return None
    return choice


def model_choices(models: Sequence[str] = ()) -> list[str]:
    """The model dropdown: ``models`` (names or paths, e.g. from ``ddsp demo --model``) first,
    then every shipped / ``$DDSP_MODELS_PATH`` name not already listed."""
    from ..registry import available_models

    out = [str(m) for m in models]
    out += [name for name in available_models() if name not in out]
    return out


def pick_model(choice: str | None, local_path: str | None) -> str:
    """The model to use: a non-empty local folder path wins over the dropdown's choice.

    Raises:
        InvalidInputError: neither is given.
    """
    local = (local_path or "").strip()
    if local:
        return local
    if choice:
        return str(choice)
    raise InvalidInputError("no model chosen: pick one in the list or type a model folder path")


class ModelCache:
    """Models loaded once with :func:`ddsp_models.registry.load_model`, keyed by their resolved
    path and its modification time (a re-exported folder is reloaded); the ``size`` most
    recently used are kept. Thread-safe: gradio runs handlers in worker threads."""

    def __init__(self, size: int = 3, loader=None):
        self.size = int(size)
        self._loader = loader
        self._models: OrderedDict[tuple[str, float], Any] = OrderedDict()
        self._lock = threading.Lock()

    def _key(self, path: Path) -> tuple[str, float]:
        probe = path / "model.safetensors" if path.is_dir() else path
        try:
            mtime = probe.stat().st_mtime
        except OSError:
            mtime = 0.0
        return str(path.resolve()), mtime

    def get(self, name_or_path: str):
        """The model for a shipped name or a model folder / ``.ckpt`` path.

        Raises:
            DDSPError: unknown name, not a model, corrupt files (the registry's one line).
        """
        from ..registry import load_model, resolve_model

        path = resolve_model(name_or_path)
        key = self._key(path)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            model = (self._loader or load_model)(path)
            self._models[key] = model
            while len(self._models) > self.size:
                self._models.popitem(last=False)
            return model

    def __len__(self) -> int:
        return len(self._models)


def transfer_options(fn=None) -> frozenset[str]:
    """Keyword arguments ``fn`` (default: ``transfer_with_features``) accepts."""
    if fn is None:
        from ..transfer.core import transfer_with_features as fn
    return frozenset(inspect.signature(fn).parameters)


def transfer_kwargs(s: Settings, supported: frozenset[str] | set[str]) \
        -> tuple[dict[str, Any], list[str]]:
    """Keyword arguments for ``transfer_with_features`` from the page's settings.

    Options the installed version does not accept (``autotune``, ``scale``,
    ``note_threshold``, ``quiet_db``) are left out; a note says so when the user asked for
    them. ``None`` settings are left to the library's defaults.

    Returns:
        ``(kwargs, notes)``.
    """
    kw: dict[str, Any] = {"pitch_shift": float(s.pitch_shift),
                          "loudness_shift": float(s.loudness_shift),
                          "auto_adjust": bool(s.auto_adjust), "f0_method": s.f0_method}
    notes: list[str] = []
    if "autotune" in supported:
        kw["autotune"] = float(s.autotune)
        if "scale" in supported:
            kw["scale"] = s.scale
    elif s.autotune > 0:
        notes.append("autotune is not available in this version of ddsp-models; ignored")
    for name, value in (("note_threshold", s.note_threshold), ("quiet_db", s.quiet_db)):
        if value is None:
            continue
        if name in supported:
            kw[name] = float(value)
        else:
            notes.append(f"{name} is not available in this version of ddsp-models; ignored")
    return kw, notes


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_stem(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("._")[:60] or "audio"


def run_transfer(model, audio: "Tensor", sample_rate: int, settings: Settings,
                 out_dir: str | os.PathLike, input_name: str = "input",
                 model_name: str = "model", plot: bool = True) -> DemoOutput:
    """Transfer ``audio`` with ``model``; write the result WAV and the spectrogram PNG.

    Args:
        model: a loaded :class:`~ddsp_models.nn.Autoencoder`.
        audio: ``(channels, samples)`` or ``(samples,)`` float, at ``sample_rate`` Hz.
        settings: the page's controls (checked here).
        out_dir: a fresh sub-folder is made in it for this result's files.
        input_name, model_name: used in the file names (``<input>_<model>.wav``).
        plot: also draw the input / output spectrograms with f0 curves.

    Returns:
        :class:`DemoOutput`. The WAV is 16-bit PCM at ``sample_rate`` (every browser plays
        it), normalised to a 0.99 peak only if the model's output exceeds full scale.

    Raises:
        DDSPError: bad settings or audio (one line for the page).
    """
    import torch

    from ..audio_io import save_audio
    from ..transfer.core import transfer_with_features

    check_settings(settings)
    kw, notes = transfer_kwargs(settings, transfer_options(transfer_with_features))
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = transfer_with_features(model, audio, sample_rate, **kw)
    for w in caught:
        msg = one_line(w.message)
        if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning)) \
                and msg not in notes:
            notes.append(msg)
    y = res.audio.reshape(-1).float()
    peak = float(y.abs().max()) if y.numel() else 0.0
    if peak > 1.0:
        y = y / peak * 0.99
        notes.append(f"the output peaked at {peak:.2f} (above full scale); normalised")
    for note in getattr(res, "notes", ()):
        if note and note not in notes:
            notes.append(str(note))
    if res.octaves:
        notes.append(f"auto-adjust shifted the pitch by {res.octaves:+d} octave(s) into the "
                     "model's range")
    folder = Path(out_dir) / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{_safe_stem(Path(input_name).stem)}_{_safe_stem(Path(str(model_name)).name)}"
    wav = save_audio(folder / f"{stem}.wav", y, sample_rate, subtype="PCM_16")
    png = None
    if plot:
        from ..transfer.plot import plot_transfer

        x = torch.as_tensor(audio).float()
        mono = x.reshape(-1, x.shape[-1]).mean(0)
        f0_in = res.features.f0_hz if res.features is not None else None
        png = plot_transfer(folder / f"{stem}.png", mono, y, sample_rate, f0_in, res.f0_hz,
                            res.frame_rate, title=Path(input_name).name)
    return DemoOutput(wav, png, notes, seconds=audio.shape[-1] / sample_rate,
                      elapsed=time.perf_counter() - t0)


def prune_outputs(out_dir: str | os.PathLike, max_age_s: float = 3600.0) -> int:
    """Delete result folders in ``out_dir`` older than ``max_age_s``; returns how many."""
    import shutil

    root = Path(out_dir)
    if not root.is_dir():
        return 0
    now, n = time.time(), 0
    for d in root.iterdir():
        try:
            if d.is_dir() and now - d.stat().st_mtime > max_age_s:
                shutil.rmtree(d, ignore_errors=True)
                n += 1
        except OSError:
            continue
    return n
