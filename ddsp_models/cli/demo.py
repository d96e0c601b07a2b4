"""A local web page to try timbre transfer (needs the [demo] extra: gradio)."""

from __future__ import annotations

import argparse
import importlib.util

from ..errors import DDSPError

PROG = "ddsp demo"
#: The one line printed (as ``ddsp demo: error: ...``, exit status 2) without gradio.
INSTALL_HINT = ("the demo page needs gradio, which is not installed: install the extra with "
                "pip install \"ddsp-models[demo]\"")


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "demo", help="a local web page to try timbre transfer (needs the [demo] extra)",
        description=(
            "Serve a web page on this computer (Gradio) to upload or record a melody, choose a\n"
            "shipped or local model, set pitch shift, loudness shift, autotune and auto-adjust,\n"
            "listen to and download the result and see input and output spectrograms with\n"
            "their f0 curves. Uploads up to --max-seconds (default 60 s). Nothing is sent to\n"
            "the internet: no share link, no analytics. Stop it with Ctrl-C.\n"
            'Needs the optional extra: pip install "ddsp-models[demo]".'),
        epilog=("examples:\n  ddsp demo                      # http://127.0.0.1:7860\n"
                "  ddsp demo --model violin --model ./my_model --port 8000\n"
                "  ddsp demo --host 0.0.0.0       # reachable from other computers of the "
                "network"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this computer only; "
                        "0.0.0.0: every network interface; the page then offers only the listed "
                        "models, without the model-path box, unless --allow-model-paths)")
    p.add_argument("--allow-model-paths", action="store_true",
                   help="show the model-path box even when serving to the network (anyone who "
                        "reaches the page can then load any model file of this computer)")
    p.add_argument("--port", type=int, default=7860,
                   help="TCP port (default 7860; 0: any free port)")
    p.add_argument("--model", "-m", action="append", default=[], metavar="NAME_OR_PATH",
                   help="a shipped model name or a model folder / .ckpt to list first in the "
                        "page (repeatable; the first is selected; the shipped models are "
                        "always listed)")
    p.add_argument("--f0", default=None, metavar="METHOD",
                   help="pitch tracker selected at start: crepe-tiny (default), yin (fastest) "
                        "or crepe-full")
    p.add_argument("--max-seconds", type=float, default=60.0, metavar="S",
                   help="longest upload accepted, seconds (default 60)")
    p.add_argument("--preload", action="store_true",
                   help="load the first model before serving (the first transfer is faster)")
    return p


def gradio_available() -> bool:
    """Whether gradio can be imported (without importing it)."""
    try:
        return importlib.util.find_spec("gradio") is not None
    except (ImportError, ValueError):
        return False


def run(args) -> int:
    """Serve the page until Ctrl-C, the normal way to stop it (the server is closed, status
    0). Without gradio: one line naming the extra to install, status 2."""
    import math
    import shutil
    import signal
    import time

    from ..errors import InvalidInputError

    if not gradio_available():
        raise DDSPError(INSTALL_HINT)
    if not (0 <= args.port <= 65535):
        raise InvalidInputError(f"--port must be between 0 and 65535, got {args.port}")
    if not (math.isfinite(args.max_seconds) and args.max_seconds > 0):
        raise InvalidInputError(f"--max-seconds must be a positive number of seconds, got "
                                f"{args.max_seconds}")
    from ..registry import resolve_model

    for m in args.model:  # a wrong name is reported before the server starts
        resolve_model(m)
    try:
        from ..demo.app import build_app, launch
    except ImportError as err:  # gradio present but broken (e.g. a missing dependency)
        raise DDSPError(f"gradio cannot be imported ({err}); reinstall the extra with "
                        "pip install --force-reinstall \"ddsp-models[demo]\"") from err
    from ..demo.logic import ModelCache

    cache = ModelCache()
    if args.preload and args.model:
        cache.get(args.model[0])
    app = build_app(models=args.model, f0_method=args.f0, max_seconds=args.max_seconds,
                    cache=cache, allow_paths=args.allow_model_paths or _loopback(args.host))
    try:
        port = args.port
        try:
            port = port or _free_port(args.host)
            launch(app, host=args.host, port=port, block=False, quiet=True)
        except OSError as err:  # gradio's "Cannot find empty port", or not this host's address
            why = ("the port is in use" if "empty port" in str(err)
                   else " ".join(str(err).split()))
            raise DDSPError(f"cannot serve on {args.host}:{port}: {why}; pass another --port "
                            "(0 = any free port) or --host") from err
        print(f"{PROG}: serving on http://{args.host}:{port} (Ctrl-C to stop)", flush=True)
        previous = _stop_on_sigterm()
        try:
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            print(f"{PROG}: stopped", flush=True)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    finally:
        app.close()
        shutil.rmtree(app.ddsp_out_dir, ignore_errors=True)  # this run's results
    return 0


def _stop_on_sigterm():
    """Make SIGTERM (``kill``, a service manager) stop the server like Ctrl-C, so the results
    folder is removed; returns the previous handler (None off the main thread)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def stop(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, stop)


def _loopback(host: str) -> bool:
    """Whether ``host`` serves this computer only (127.x, ::1, localhost)."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
