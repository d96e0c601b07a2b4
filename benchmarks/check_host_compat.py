"""Load exported live models the way older hosts do, in a side environment (not a test).

    SIDE_PY check_host_compat.py nn-tilde MODEL.ts     # nn~ calls, any torch >= 2.5
    SIDE_PY check_host_compat.py neutone MODEL.nm      # the plugin calls; with neutone_sdk
                                                       # installed, also its loader and checks
    PY check_host_compat.py render MODEL OUT.pt        # a vibrato tone at 48 kHz in blocks of
                                                       # 512 → OUT.pt (compare two torches)

Runs under another Python (e.g. a venv with torch 2.5.1, the libtorch nn~ 1.6 embeds, and
optionally ``neutone_sdk``); imports nothing from ddsp_models. Exits 0 when every call
worked, 1 with the failing step otherwise. See docs/live.md ("Older hosts").
"""

import json
import math
import os
import sys

import torch

os.environ.setdefault("TQDM_DISABLE", "1")  # the SDK's renders print progress bars


def tone(n, sr, f0=330.0):
    t = torch.arange(n) / sr
    return 0.3 * torch.sin(2 * math.pi * f0 * t) * (t > 0.01)


def check_nn_tilde(path):
    m = torch.jit.load(path)
    methods = m.get_methods()
    assert methods == ["forward", "encode", "decode"], methods
    for meth in methods:
        p = getattr(m, meth + "_params").tolist()
        assert len(p) == 4, (meth, p)
    for a in m.get_attributes():
        value = getattr(m, "get_" + a)()
        assert getattr(m, "set_" + a)(value[0]) == 0, a
    for sr in (44100, 48000):
        assert m.set_sample_rate(sr) == 0
        x = tone(8 * 2048, sr)
        y = torch.cat([m(x[None, None, i:i + 2048]) for i in range(0, x.shape[0], 2048)], -1)
        assert y.shape == (1, 1, x.shape[0]) and bool(torch.isfinite(y).all())
        assert float(y.abs().max()) > 1e-3, "no sound"
        z = m.encode(x[None, None, :4096])
        assert z.shape == (1, 2, 4096 // int(m.encode_params[3]))
        w = m.decode(z)
        assert w.shape == (1, 1, 4096) and bool(torch.isfinite(w).all())
    print(f"nn-tilde OK with torch {torch.__version__}: latency {m.get_latency()} samples")


def check_neutone(path):
    extra = {"metadata.json": ""}
    m = torch.jit.load(path, _extra_files=extra)
    meta = json.loads(extra["metadata.json"])
    for name in m.get_preserved_attributes():
        assert hasattr(m, name), name
    for sr, bs in ((48000, 512), (44100, 256), (96000, 2048)):
        m.set_daw_sample_rate_and_buffer_size(sr, bs)
        m.reset()
        x = tone(16 * bs, sr)[None].repeat(2, 1)
        p = m.get_default_param_values().repeat(1, bs)
        y = torch.cat([m.forward(x[:, i:i + bs], p) for i in range(0, x.shape[1], bs)], 1)
        assert y.shape == x.shape and bool(torch.isfinite(y).all())
        assert m.calc_model_delay_samples() > 0
    md = m.to_metadata()  # a dict (neutone_sdk >= 1.5)
    assert md["model_name"] == meta["model_name"]
    assert json.loads(m.get_metadata_json()) == json.loads(json.dumps(md))
    msg = f"neutone structure OK with torch {torch.__version__}"
    try:
        import neutone_sdk
    except ImportError:
        print(msg + " (neutone_sdk not installed: its loader was not run)")
        return
    check_with_neutone_sdk(path)
    print(msg + f"; neutone_sdk {sdk_version()}: load_neutone_model, validate_metadata, "
                "the post-save and submission checks of save_neutone_model passed")


def sdk_version():
    from importlib.metadata import version

    return version("neutone_sdk")


def check_with_neutone_sdk(path):
    """What ``save_neutone_model`` runs on a saved file (after saving; its own steps, with
    the SDK's functions), except the network look-up of the links and the mp3 samples."""
    import neutone_sdk.metadata as sdk_meta
    from neutone_sdk.audio import get_default_audio_samples, render_audio_sample
    from neutone_sdk.benchmark import benchmark_latency_
    from neutone_sdk.utils import check_for_preserved_attributes, load_neutone_model

    sdk_meta.requests.head = _no_network  # links are checked by HEAD requests: offline here
    model, metadata = load_neutone_model(path)  # validate_metadata (JSON schema)
    assert model.realtime, "a WaveformToWaveform model is realtime"
    check_for_preserved_attributes(model, model.get_preserved_attributes())
    check_for_preserved_attributes(model.w2w_base, model.w2w_base.get_preserved_attributes())
    model.set_daw_sample_rate_and_buffer_size(48000, 512)
    model.reset()
    model.is_resampling()
    out = model.forward(torch.zeros(2, 512), model.get_default_param_values().repeat(1, 512))
    assert out.shape == (2, 512)
    # offline mode, as save_neutone_model tests it (random knobs, buffer 4096)
    sample = get_default_audio_samples()[0]
    model.set_daw_sample_rate_and_buffer_size(sample.sr, 4096)
    off = model.forward_offline(sample.audio, torch.rand((4, sample.audio.size(1))))
    assert off.shape == sample.audio.shape and bool(torch.isfinite(off).all())
    # submission checks: stored metadata == to_metadata(); two loads render the same
    meta = dict(metadata)
    del meta["sample_sound_files"]
    assert model.to_metadata() == meta, "to_metadata() differs from metadata.json"
    sample.audio = sample.audio[:, :sample.sr * 3]
    again, _ = load_neutone_model(path)
    renders = []
    for m in (model, again):
        torch.manual_seed(42)
        renders.append(render_audio_sample(m, sample)[0].audio)
    assert torch.allclose(renders[0], renders[1], atol=1e-6)
    assert bool(torch.isfinite(renders[0]).all()) and float(renders[0].abs().max()) > 1e-3
    benchmark_latency_(path)


class _Offline:
    status_code = 200


def _no_network(url, **kwargs):
    return _Offline()

def render(path, out):
    """The output of either file for a vibrato tone at 48 kHz in blocks of 512 (one thread),
    saved to ``out`` so that two torch versions can be compared."""
    torch.set_num_threads(1)
    sr, bs = 48000, 512
    t = torch.arange(32 * bs) / sr
    x = 0.3 * torch.sin(2 * math.pi * (330 + 20 * torch.sin(2 * math.pi * 5 * t)) * t)
    x = x * (t > 0.01)
    m = torch.jit.load(path)
    if hasattr(m, "set_daw_sample_rate_and_buffer_size"):  # a .nm file
        m.set_daw_sample_rate_and_buffer_size(sr, bs)
        m.reset()
        p = m.get_default_param_values().repeat(1, bs)
        y = torch.cat([m(x[None, i:i + bs], p) for i in range(0, x.shape[0], bs)], -1)
    else:
        assert m.set_sample_rate(sr) == 0
        y = torch.cat([m(x[None, None, i:i + bs]) for i in range(0, x.shape[0], bs)], -1)[0]
    torch.save(y, out)


def main():
    kind, path = sys.argv[1], sys.argv[2]
    try:
        if kind == "render":
            render(path, sys.argv[3])
            return
        {"nn-tilde": check_nn_tilde, "neutone": check_neutone}[kind](path)
    except Exception as err:  # report the failing step, exit 1
        print(f"FAILED ({kind}, torch {torch.__version__}): {type(err).__name__}: {err}")
        sys.exit(1)


if __name__ == "__main__":
    main()
