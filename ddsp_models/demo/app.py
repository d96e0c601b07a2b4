"""The demo page: a Gradio ``Blocks`` app wired to :mod:`ddsp_models.demo.logic`.

:func:`build_app` makes the page (nothing is served); :func:`launch` serves it on a local
address. Gradio is told never to reach the internet: analytics and version checks are off
(``GRADIO_ANALYTICS_ENABLED=False``, set before gradio is imported) and no share link is made.

Every problem the visitor can fix (not audio, too long, silent, unknown model, …) is shown in
the page as one line (a warning toast and the status text), never a traceback; an unexpected
error (a bug) shows its type and message and prints the traceback in the terminal.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

import inspect  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Sequence  # noqa: E402

import gradio as gr  # noqa: E402

from ..errors import DDSPError, one_line  # noqa: E402
from . import logic  # noqa: E402

__all__ = ["build_app", "launch", "ELEM_IDS"]

#: ``elem_id`` of the widgets a test or a stylesheet may look for.
ELEM_IDS = {
    "input": "ddsp-input-audio", "model": "ddsp-model", "model_path": "ddsp-model-path",
    "f0": "ddsp-f0-method", "pitch": "ddsp-pitch-shift", "loudness": "ddsp-loudness-shift",
    "autotune": "ddsp-autotune", "scale": "ddsp-scale", "auto_adjust": "ddsp-auto-adjust",
    "note_threshold": "ddsp-note-threshold", "quiet_db": "ddsp-quiet-db",
    "run": "ddsp-transfer-button", "output": "ddsp-output-audio", "download": "ddsp-download",
    "plot": "ddsp-plot", "status": "ddsp-status",
}

_INTRO = """# ddsp-models: timbre transfer
Upload a recording of a **monophonic melody** (one note at a time: a voice, a whistle, an
instrument) or record one, choose a model and press **Transfer**. Files up to
{max_s:g} s; WAV, FLAC, OGG, MP3 and AIFF are read. Everything runs on this computer."""


def _download_only(component=None) -> dict:
    """Keyword arguments giving an output player (``gr.Audio``, ``gr.Image``) a download
    button and no share button (that one offers to upload to Hugging Face), gradio 6 and 5."""
    params = inspect.signature((component or gr.Audio).__init__).parameters
    if "buttons" in params:
        return {"buttons": ["download"]}
    return {k: v for k, v in (("show_download_button", True), ("show_share_button", False))
            if k in params}


def _user_message(err: BaseException) -> str:
    from ..cli import error_message

    return error_message(err)


def build_app(models: Sequence[str] = (), f0_method: str | None = None,
              out_dir: str | os.PathLike | None = None,
              max_seconds: float = logic.MAX_SECONDS,
              cache: logic.ModelCache | None = None,
              allow_paths: bool = True) -> "gr.Blocks":
    """The demo page.

    Args:
        models: names or model folder paths listed first in the model menu (the first one is
            selected); every shipped / ``$DDSP_MODELS_PATH`` model follows.
        f0_method: the pitch tracker selected at start (default: the library's default,
            ``DEFAULT_F0_METHOD`` of :mod:`ddsp_models.transfer.core`, else crepe-tiny).
        out_dir: where result files are written (default: a new temporary folder); result
            folders older than an hour are deleted.
        max_seconds: longest upload accepted.
        cache: the loaded-model cache (default: a new one keeping 3 models).
        allow_paths: show the "local model folder" box. Off when the page is served to the
            network (``ddsp demo --host`` other than loopback): a visitor could otherwise load
            any model file of the server by its path. Only the listed models are offered then.
    """
    choices = logic.model_choices(models)
    methods = logic.f0_methods()
    from ..transfer import core

    f0_default = f0_method or logic.default_f0_method(
        methods, getattr(core, "DEFAULT_F0_METHOD", None))
    if f0_default not in methods:
        raise DDSPError(f"unknown pitch tracker {f0_default!r}: choose one of "
                        f"{', '.join(methods)}")
    supported = logic.transfer_options()
    advanced = {"note_threshold", "quiet_db"} <= supported  # else hidden (None: defaults)
    note_default = float(getattr(core, "NOTE_THRESHOLD", 1.0))
    quiet_default = float(getattr(core, "QUIET_DB", 20.0))
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="ddsp-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    cache = cache if cache is not None else logic.ModelCache()

    def on_input(path):
        if not path:
            return ""
        try:
            audio, sr = logic.read_upload(path, max_seconds=max_seconds)
        except DDSPError as err:
            msg = one_line(err)
            gr.Warning(msg)
            return f"**Cannot use this audio:** {msg}"
        ch = audio.shape[0]
        return (f"Input: {Path(path).name}, {audio.shape[-1] / sr:.1f} s at {sr} Hz, "
                f"{ch} channel{'s' if ch > 1 else ''}"
                f"{' (mixed to mono)' if ch > 1 else ''}. Press **Transfer**.")

    def on_transfer(path, model_choice, model_path, method, pitch, loudness, autotune, scale,
                    auto_adjust, note_threshold=None, quiet_db=None):
        nothing = (None, None, None)
        if not advanced:  # hidden controls: the library's defaults
            note_threshold = quiet_db = None
        try:
            settings = logic.Settings(
                pitch_shift=float(pitch), loudness_shift=float(loudness),
                autotune=float(autotune), scale=logic.scale_argument(scale),
                auto_adjust=bool(auto_adjust), f0_method=str(method),
                note_threshold=None if note_threshold is None else float(note_threshold),
                quiet_db=None if quiet_db is None else float(quiet_db))
            logic.check_settings(settings, methods)
            audio, sr = logic.read_upload(path, max_seconds=max_seconds)
            if model_choice not in choices:  # only the listed models (a crafted request)
                model_choice = None
            ref = logic.pick_model(model_choice, model_path if allow_paths else None)
            model = cache.get(ref)
            logic.prune_outputs(out)
            res = logic.run_transfer(model, audio, sr, settings, out,
                                     input_name=Path(path).name, model_name=ref)
        except (DDSPError, OSError, ValueError) as err:
            msg = _user_message(err)
            gr.Warning(msg)
            return (*nothing, f"**Could not transfer:** {msg}")
        except Exception as err:  # a bug: one line here, the traceback in the terminal
            traceback.print_exc(file=sys.stderr)
            msg = (f"internal error ({type(err).__name__}: {one_line(err)}); the terminal "
                   "running `ddsp demo` shows the details")
            gr.Warning(msg)
            return (*nothing, f"**Could not transfer:** {msg}")
        lines = [f"Done: {res.seconds:.1f} s of audio in {res.elapsed:.1f} s with "
                 f"{Path(ref).name} ({settings.f0_method})."]
        lines += [f"- {n}" for n in res.notes]
        return (str(res.audio_path), str(res.audio_path),
                str(res.plot_path) if res.plot_path else None, "\n".join(lines))

    with gr.Blocks(title="ddsp-models demo", analytics_enabled=False,
                   delete_cache=(1800, 3600)) as app:
        gr.Markdown(_INTRO.format(max_s=max_seconds))
        with gr.Row():
            with gr.Column():
                inp = gr.Audio(sources=["upload", "microphone"], type="filepath",
                               label=f"Input melody (at most {max_seconds:g} s)",
                               elem_id=ELEM_IDS["input"], **_download_only())
                with gr.Row():
                    model = gr.Dropdown(choices, value=choices[0] if choices else None,
                                        label="Model", elem_id=ELEM_IDS["model"])
                    model_path = gr.Textbox(label="…or a local model folder (path)",
                                            placeholder="/path/to/my_model",
                                            elem_id=ELEM_IDS["model_path"],
                                            visible=allow_paths)
                f0 = gr.Dropdown(methods, value=f0_default,
                                 label="Pitch tracker (yin: fastest; crepe-full: slowest)",
                                 elem_id=ELEM_IDS["f0"])
                pitch = gr.Slider(*logic.PITCH_SHIFT_RANGE, value=0.0, step=0.5,
                                  label="Pitch shift (semitones)", elem_id=ELEM_IDS["pitch"])
                loud = gr.Slider(*logic.LOUDNESS_SHIFT_RANGE, value=0.0, step=1.0,
                                 label="Loudness shift (dB)", elem_id=ELEM_IDS["loudness"])
                with gr.Row():
                    autotune = gr.Slider(0.0, 1.0, value=0.0, step=0.05,
                                         label="Autotune (0 = off, 1 = snapped to the scale)",
                                         elem_id=ELEM_IDS["autotune"])
                    scale = gr.Dropdown(list(logic.SCALES), value=logic.AUTO_SCALE,
                                        allow_custom_value=True,
                                        label="Scale (or type a key, e.g. D minor)",
                                        elem_id=ELEM_IDS["scale"])
                auto_adjust = gr.Checkbox(
                    value=True, label="Auto-adjust pitch range and loudness to the model",
                    elem_id=ELEM_IDS["auto_adjust"])
                with gr.Accordion("Auto-adjust details", open=False, visible=advanced):
                    note_threshold = gr.Slider(
                        *logic.NOTE_THRESHOLD_RANGE, value=note_default, step=0.05,
                        label="Note threshold (higher: fewer frames count as notes)",
                        elem_id=ELEM_IDS["note_threshold"])
                    quiet_db = gr.Slider(
                        *logic.QUIET_DB_RANGE, value=quiet_default, step=1.0,
                        label="Quiet non-note frames by (dB)", elem_id=ELEM_IDS["quiet_db"])
                run = gr.Button("Transfer", variant="primary", elem_id=ELEM_IDS["run"])
            with gr.Column():
                status = gr.Markdown("", elem_id=ELEM_IDS["status"])
                result = gr.Audio(type="filepath", label="Result", interactive=False,
                                  elem_id=ELEM_IDS["output"], **_download_only())
                download = gr.File(label="Download the result (WAV)", interactive=False,
                                   elem_id=ELEM_IDS["download"])
                plot = gr.Image(type="filepath", label="Spectrograms with f0 (input above, "
                                "output below)", show_label=False, interactive=False,
                                elem_id=ELEM_IDS["plot"], **_download_only(gr.Image))
        inp.change(on_input, inputs=inp, outputs=status)
        run.click(on_transfer,
                  inputs=[inp, model, model_path, f0, pitch, loud, autotune, scale,
                          auto_adjust, note_threshold, quiet_db],
                  outputs=[result, download, plot, status], concurrency_limit=1)
    app.ddsp_out_dir = out  # for tests and clean-up
    return app


def launch(app: "gr.Blocks", host: str = "127.0.0.1", port: int | None = 7860,
           block: bool = True, quiet: bool = False, max_file_size: str = "200mb"):
    """Serve ``app`` on ``http://host:port`` (never a share link).

    Args:
        block: wait until interrupted (Ctrl-C); else return at once (the server runs in a
            thread; ``app.close()`` stops it).
        max_file_size: the largest upload gradio accepts (the duration limit is checked after).

    Returns:
        gradio's ``(app, local_url, share_url)``.
    """
    kw = {}
    params = inspect.signature(app.launch).parameters
    if "max_file_size" in params:
        kw["max_file_size"] = max_file_size
    if "ssr_mode" in params:
        kw["ssr_mode"] = False  # no Node server
    return app.launch(server_name=host, server_port=port, share=False, inbrowser=False,
                      prevent_thread_lock=not block, quiet=quiet, show_error=False, **kw)
