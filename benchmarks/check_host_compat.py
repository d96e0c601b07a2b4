"""Load exported live models the way older hosts do, in a side environment (not a test).

    SIDE_PY check_host_compat.py nn-tilde MODEL.ts     # nn~ calls, any torch >= 2.5
    SIDE_PY check_host_compat.py neutone MODEL.nm      # the plugin calls; with neutone_sdk
                                                       # installed, also its loader and checks

Runs under another Python (e.g. a venv with torch 2.5.1, the libtorch nn~ 1.6 embeds, and
optionally ``neutone_sdk``); imports nothing from ddsp_models. Exits 0 when every call
worked, 1 with the failing step otherwise. See docs/live.md ("Older hosts").
"""

import json
import math
import sys

import torch


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
    md = m.to_metadata()
    assert md.model_name == meta["model_name"]
    msg = f"neutone structure OK with torch {torch.__version__}"
    try:
        from neutone_sdk.utils import load_neutone_model
    except ImportError:
        print(msg + " (neutone_sdk not installed: its loader was not run)")
        return
    model, loaded_meta = load_neutone_model(path)  # validates the metadata schema
    from neutone_sdk.utils import check_for_preserved_attributes

    check_for_preserved_attributes(model, model.get_preserved_attributes())
    model.set_daw_sample_rate_and_buffer_size(48000, 512)
    model.reset()
    out = model.forward(torch.zeros(2, 512), model.get_default_param_values().repeat(1, 512))
    assert out.shape == (2, 512)
    print(msg + "; neutone_sdk's load_neutone_model and checks passed")


def main():
    kind, path = sys.argv[1], sys.argv[2]
    try:
        {"nn-tilde": check_nn_tilde, "neutone": check_neutone}[kind](path)
    except Exception as err:  # report the failing step, exit 1
        print(f"FAILED ({kind}, torch {torch.__version__}): {type(err).__name__}: {err}")
        sys.exit(1)


if __name__ == "__main__":
    main()
