"""The Neutone export (`.nm`): the scripted structure the plugin calls (what neutone_sdk's
``save_neutone_model`` writes: SampleQueueWrapper → WaveformToWaveformBase → model), the
metadata (schema of neutone_sdk 1.5.2, values from the model card), knobs, delay, and the
plugin's calls emulated. The SDK's own loader runs in a side environment (slow test)."""

import json
import math
import os
import subprocess
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.usefixtures("one_thread")

#: neutone_sdk 1.5.2's WaveformToWaveformBase.to_metadata keys, in order
W2W_FIELDS = ["model_name", "model_authors", "model_short_description",
              "model_long_description", "neutone_parameters", "wet_default_value",
              "dry_default_value", "input_gain_default_value", "output_gain_default_value",
              "technical_description", "technical_links", "tags", "model_version",
              "sdk_version", "pytorch_version", "date_created", "citation", "is_experimental",
              "is_input_mono", "is_output_mono", "model_type", "native_buffer_sizes",
              "native_sample_rates", "look_behind_samples"]
#: ContinuousNeutoneParameter.to_metadata keys
PARAM_FIELDS = ["name", "description", "default_value", "used", "type", "min_value",
                "max_value"]
#: what the SDK's SampleQueueWrapper.get_preserved_attributes lists (1.5.2 and, with the
#: get_model_* and get_default_param_* accessors, 1.4)
SQW_PRESERVED = ["w2w_base", "forward_bt", "is_input_mono", "is_output_mono",
                 "get_native_sample_rates", "get_native_buffer_sizes", "is_resampling",
                 "calc_buffering_delay_samples", "calc_model_delay_samples",
                 "set_daw_sample_rate_and_buffer_size", "reset", "get_preserved_attributes",
                 "to_metadata", "get_metadata_json", "get_wet_default_value",
                 "get_dry_default_value", "get_default_param_values",
                 "get_input_gain_default_value", "get_output_gain_default_value",
                 "get_model_name", "get_model_authors", "get_default_param_names",
                 "get_default_param_descriptions", "get_default_param_types",
                 "get_default_param_used"]
#: WaveformToWaveformBase.get_preserved_attributes of neutone_sdk 1.5.2
W2W_PRESERVED = ["model", "get_neutone_parameters_metadata",
                 "get_numerical_params_default_values_0to1", "get_wet_default_value",
                 "get_dry_default_value", "get_input_gain_default_value",
                 "get_output_gain_default_value", "get_core_preserved_attributes",
                 "to_core_metadata", "is_input_mono", "is_output_mono",
                 "get_native_sample_rates", "get_native_buffer_sizes", "is_resampling",
                 "calc_model_delay_samples", "set_sample_rate_and_buffer_size",
                 "set_daw_sample_rate_and_buffer_size", "reset", "get_preserved_attributes",
                 "to_metadata", "get_metadata_json"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from ddsp_models.cli import main

    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("neutone") / "violin.nm"
    assert main(["export", "--model", "violin", "--format", "neutone", "-o", str(path)]) == 0
    return path


_LOADED = {}


def _load(path):
    """The loaded file and its metadata, shared by the tests."""
    if path not in _LOADED:
        extra = {"metadata.json": ""}
        model = torch.jit.load(str(path), _extra_files=extra)
        _LOADED[path] = model, json.loads(extra["metadata.json"])
    return _LOADED[path]


def test_metadata_follows_the_sdk_schema_and_the_model_card(exported):
    model, meta = _load(exported)
    assert sorted(meta) == sorted(W2W_FIELDS + ["sample_sound_files"])
    assert meta["sample_sound_files"] == [] and meta["sdk_version"] == "1.5.2"
    assert len(meta["model_name"]) <= 30 and meta["model_name"] == "DDSP violin"
    assert 1 <= len(meta["model_authors"]) <= 5
    assert len(meta["model_short_description"]) <= 150
    assert len(meta["model_long_description"]) <= 500
    assert len(meta["technical_description"]) <= 500
    assert len(meta["citation"]) <= 300 and "DDSP" in meta["citation"]
    assert len(meta["tags"]) <= 7 and len(set(meta["tags"])) == len(meta["tags"])
    assert len(meta["technical_links"]) <= 3
    assert meta["model_type"] == "mono-mono" and meta["is_input_mono"]
    assert meta["model_version"] == "3"  # "third release" in the model card
    card = (Path(__file__).parents[1] / "checkpoints/violin/README.md").read_text()
    assert "FluidR3_GM is MIT-licensed" in card
    assert "FluidR3_GM is MIT-licensed" in meta["technical_description"]  # data licence
    data = " ".join(card.split("## Data")[1].split()[:4])  # the card's data paragraph opens it
    assert data in " ".join(meta["model_long_description"].split())
    assert all(0 < sr <= 384000 for sr in meta["native_sample_rates"])
    assert all(1 <= bs <= 65536 for bs in meta["native_buffer_sizes"])
    params = meta["neutone_parameters"]
    assert sorted(params) == ["p1", "p2", "p3", "p4"]  # the four knobs the violin has
    for p in params.values():
        assert list(p) == PARAM_FIELDS and p["type"] == "continuous"
        assert p["min_value"] <= p["default_value"] <= p["max_value"]
    assert [p["name"] for p in params.values() if p["used"]] == ["pitch shift", "loudness",
                                                                 "gate", "reverb"]
    for k in ("wet_default_value", "dry_default_value", "input_gain_default_value",
              "output_gain_default_value"):
        assert 0.0 <= meta[k] <= 1.0
    # what the SDK's submission check asserts: to_metadata() == metadata.json less the samples
    md = model.to_metadata()
    assert list(md) == W2W_FIELDS
    assert md == {k: v for k, v in meta.items() if k != "sample_sound_files"}
    assert model.realtime and json.loads(model.get_metadata_json()) == md  # SDK >= 1.5
    assert md["neutone_parameters"]["p1"] == {
        "name": "pitch shift", "description": params["p1"]["description"],
        "default_value": 0.5, "used": True, "type": "continuous", "min_value": 0.0,
        "max_value": 1.0}


def test_the_plugin_calls(exported):
    model, _ = _load(exported)
    for name in SQW_PRESERVED + list(model.get_preserved_attributes()):
        assert hasattr(model, name), name
    w2w = model.w2w_base
    assert w2w.get_preserved_attributes() == W2W_PRESERVED
    for name in W2W_PRESERVED:
        assert hasattr(w2w, name), name
    assert torch.equal(w2w.get_numerical_params_default_values_0to1(),
                       model.get_default_param_values())
    assert model.set_daw_sample_rate_and_buffer_size(48000, 512) >= 512
    model.reset()
    assert not model.is_resampling() and model.calc_buffering_delay_samples() == 0
    assert model.calc_model_delay_samples() == w2w.model.get_latency() > 0
    assert model.get_default_param_values().shape == (4, 1)
    assert model.get_default_param_used() == [True, True, True, True]
    sr, bs = 44100, 512
    model.set_daw_sample_rate_and_buffer_size(sr, bs)
    model.reset()
    t = torch.arange(16 * bs) / sr
    tone = 0.3 * torch.sin(2 * math.pi * 330 * t) * (t > 0.02)
    x = torch.stack([tone, tone])  # a stereo DAW track
    params = model.get_default_param_values().repeat(1, bs)
    out = torch.cat([model(x[:, i:i + bs], params) for i in range(0, x.shape[1], bs)], 1)
    assert out.shape == x.shape and torch.equal(out[0], out[1])
    assert torch.isfinite(out).all() and float(out.abs().max()) > 1e-3
    # the same stream through the live model directly (knobs at their defaults = controls)
    live = w2w.model
    live.reset()
    ref = torch.cat([live.process(tone[None, i:i + bs]) for i in range(0, tone.shape[0], bs)],
                    1)
    assert torch.equal(out[:1], ref)
    # forward_offline removes exactly the declared delay
    off = model.forward_offline(tone[None])
    delay = model.calc_model_delay_samples()
    live.reset()
    padded = torch.nn.functional.pad(tone[None], [0, delay])
    full = live.process(padded)
    assert torch.equal(off, full[:, delay:delay + tone.shape[0]])


def test_knobs_reach_the_controls(exported):
    model, _ = _load(exported)
    model.set_daw_sample_rate_and_buffer_size(48000, 256)
    live = model.w2w_base.model
    p = torch.tensor([[0.75], [0.25], [0.5], [0.0]]).repeat(1, 256)
    model(torch.zeros(1, 256), p)
    assert live.pitch_shift == 12.0 and live.gain_db == -10.0
    assert live.gate_db == -60.0 and live.reverb_wet == 0.0
    model(torch.zeros(1, 256), model.get_default_param_values().repeat(1, 256))
    assert live.pitch_shift == 0.0 and live.gain_db == 0.0 and live.reverb_wet == 1.0


SIDE_PY = os.environ.get("DDSP_NEUTONE_PYTHON", "")


@pytest.mark.slow
@pytest.mark.skipif(not (SIDE_PY and Path(SIDE_PY).exists()),
                    reason="set DDSP_NEUTONE_PYTHON to a python with neutone_sdk installed "
                           "(see docs/live.md, 'Older hosts and the SDK's own checks')")
def test_neutone_sdk_loader_accepts_the_file(exported):
    script = Path(__file__).parents[1] / "benchmarks" / "check_host_compat.py"
    res = subprocess.run([SIDE_PY, str(script), "neutone", str(exported)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
