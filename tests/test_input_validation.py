"""Inputs validated at the API boundary (#18 items 10-12 and 15, the processor/model/graph part).

* Processor constructors: ``sample_rate`` must be a positive, finite number of Hz (0 or NaN
  gave NaN audio), and every keyword is checked against the signature (an unknown name or a
  wrong simple type is one line naming the processor and the argument, not ``'<' not
  supported between instances of 'str' and 'int'``). Registry driven: a new processor is
  covered without being listed.
* ``processor_from_dict`` / ``ProcessorGraph.from_dict`` say what they expected when given
  lists where mappings belong (they raised AttributeError / TypeError).
* ``ProcessorGraph.from_yaml`` reads a shipped recipe's and a model's ``model: graph:`` entry.
* A model folder's ``config.yaml`` with ill-typed or misspelt keys fails with one line naming
  the file and the key; a file of a model folder stands for the folder.
* ``ddsp processors NoSuch`` exits 2 with close names.
* The quickstart's input is made by ``recipes/data/make_melody.py``.
"""

from __future__ import annotations

import importlib.util
import inspect
import math
from pathlib import Path
from typing import Any, List, Mapping, Optional

import numpy as np
import pytest
import torch
import yaml

from ddsp_models.cli import main
from ddsp_models.errors import InvalidInputError, ModelLoadError
from ddsp_models.graph import GraphError, ProcessorGraph
from ddsp_models.processors import Processor, all_processor_classes, processor_from_dict
from ddsp_models.registry import UnknownModelError, load_model

ROOT = Path(__file__).resolve().parent.parent
SR, FR = 16000, 250

pytestmark = pytest.mark.usefixtures("one_thread")


def _package_processors() -> dict:
    return {n: c for n, c in all_processor_classes().items()
            if c.__module__.startswith("ddsp_models.")}


def _one_line(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


# ------------------------------------------------------------------ processors: sample rate
WITH_RATE = sorted(n for n, c in _package_processors().items()
                   if "sample_rate" in inspect.signature(c).parameters)
BAD_RATES = [0, -16000, math.nan, math.inf, "16000", True, None]


def test_every_processor_with_a_rate_is_covered():
    assert {"Harmonic", "FilteredNoise", "Reverb", "Biquad", "ParametricEQ"} <= set(WITH_RATE)


@pytest.mark.parametrize("name", WITH_RATE)
def test_every_processor_refuses_a_sample_rate_that_is_not_a_positive_number(name):
    cls = _package_processors()[name]
    cfg = dict(cls.examples()[0])
    for bad in BAD_RATES:
        with pytest.raises(InvalidInputError, match=rf"^{name}: sample_rate must be a "):
            cls(**{**cfg, "sample_rate": bad})
    if list(inspect.signature(cls).parameters)[0] == "sample_rate":  # positionally too
        with pytest.raises(InvalidInputError, match="sample_rate"):
            cls(0, **{k: v for k, v in cfg.items() if k != "sample_rate"})


def test_harmonic_at_rate_zero_or_nan_is_refused_not_rendered_as_nan():
    from ddsp_models.synths import Harmonic

    for bad in (0, math.nan, -1.0):
        with pytest.raises(InvalidInputError, match="positive, finite number of Hz"):
            Harmonic(sample_rate=bad, n_harmonics=4)
    assert Harmonic(sample_rate=22050.0, n_harmonics=4).sample_rate == 22050.0


# ------------------------------------------------------------------ processors: keywords
@pytest.mark.parametrize("name", sorted(_package_processors()))
def test_every_processor_names_an_unknown_keyword(name):
    cls = _package_processors()[name]
    with pytest.raises(InvalidInputError, match=rf"^{name} takes no argument 'colour'") as info:
        cls(**{**cls.examples()[0], "colour": "blue"})
    assert isinstance(info.value, TypeError)  # callers catching TypeError keep working


@pytest.mark.parametrize("kwargs,needle", [
    ({"type": "Harmonic", "n_harmonics": "60"}, "Harmonic: n_harmonics must be an integer"),
    ({"type": "Harmonic", "n_harmonics": math.nan}, "n_harmonics must be an integer, got nan"),
    ({"type": "Harmonic", "n_harmonic": 60}, "did you mean 'n_harmonics'"),
    ({"type": "Reverb", "length": 100, "trainable": "yes"}, "trainable must be true or false"),
    ({"type": "Biquad", "kind": 3}, "Biquad: kind must be a string, got 3"),
    ({"type": "FilteredNoise", "n_bands": [4]}, "n_bands must be an integer, got [4]"),
])
def test_wrong_constructor_types_name_the_argument(kwargs, needle):
    with pytest.raises(InvalidInputError) as info:
        processor_from_dict(kwargs)
    assert needle in str(info.value)
    # values of the right type still build (floats with integer values are integers)
    processor_from_dict({"type": "Harmonic", "n_harmonics": 4.0, "sample_rate": 8000})


@pytest.mark.parametrize("d", [["Harmonic"], "Harmonic", None, 3])
def test_processor_from_dict_says_what_it_expected(d):
    with pytest.raises(InvalidInputError, match=r"a processor is described by a mapping "
                                                r"\{type: ClassName"):
        processor_from_dict(d)


# ------------------------------------------------------------------ graphs
GRAPH = {"nodes": {"harmonic": {"type": "Harmonic", "sample_rate": SR, "n_harmonics": 4}},
         "edges": ["harmonic -> out"]}


@pytest.mark.parametrize("change,needle", [
    (lambda g: g.__setitem__("nodes", ["harmonic"]), "graph 'nodes' must be a mapping"),
    (lambda g: g.__setitem__("edges", {"harmonic": "out"}), "graph 'edges' must be a list"),
    (lambda g: g["nodes"].__setitem__("harmonic", ["Harmonic"]),
     "node 'harmonic': expected {type: ClassName"),
    (lambda g: g["nodes"]["harmonic"].__setitem__("sample_rate", 0),
     "Harmonic: sample_rate must be a positive"),
])
def test_graph_from_dict_says_what_it_expected(change, needle):
    g = yaml.safe_load(yaml.safe_dump(GRAPH))
    change(g)
    with pytest.raises(GraphError) as info:
        ProcessorGraph.from_dict(g)
    assert needle in str(info.value)


RECIPES = sorted(p for p in [*ROOT.glob("recipes/*.yaml"), *ROOT.glob("checkpoints/*/config.yaml")]
                 if "graph" in (yaml.safe_load(p.read_text()).get("model") or {}))


def test_shipped_recipes_with_graphs_are_found():
    names = {p.name for p in RECIPES}
    assert {"solo_instrument.yaml", "tiny.yaml", "config.yaml"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(ROOT)))
def test_from_yaml_reads_a_recipes_model_graph(path):
    g = ProcessorGraph.from_yaml(path)
    want = ProcessorGraph.from_dict(yaml.safe_load(path.read_text())["model"]["graph"])
    assert len(g.nodes) >= 1 and g.to_dict() == want.to_dict()


def test_from_yaml_reads_plain_and_graph_entries_and_names_the_file(tmp_path):
    plain, wrapped, none, broken = (tmp_path / f for f in ("g.yaml", "r.yaml", "n.yaml",
                                                           "b.yaml"))
    plain.write_text(yaml.safe_dump(GRAPH))
    wrapped.write_text(yaml.safe_dump({"graph": GRAPH}))
    none.write_text(yaml.safe_dump({"trainer": {"max_steps": 1}, "model": {"sample_rate": SR}}))
    broken.write_text("nodes: [unclosed")
    for p in (plain, wrapped):
        assert list(ProcessorGraph.from_yaml(p).nodes) == ["harmonic"]
    with pytest.raises(GraphError, match=r"n\.yaml holds no graph: .*'model: graph:'"):
        ProcessorGraph.from_yaml(none)
    with pytest.raises(GraphError, match=r"cannot read a graph from .*b\.yaml"):
        ProcessorGraph.from_yaml(broken)


# ------------------------------------------------------------------ model folders
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from ddsp_models.nn.autoencoder import Autoencoder

    d = tmp_path_factory.mktemp("models") / "tiny"
    Autoencoder(graph=GRAPH, sample_rate=SR, frame_rate=FR,
                decoder={"hidden_size": 8, "mlp_size": 8, "mlp_layers": 1}).save_pretrained(d)
    return d


def _with_config(tmp_path, model_dir, change) -> Path:
    d = tmp_path / "m"
    d.mkdir()
    for f in model_dir.iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    cfg = yaml.safe_load((d / "config.yaml").read_text())
    change(cfg["model"])
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    return d


def _node(key, value):
    return lambda m: m["graph"]["nodes"]["harmonic"].__setitem__(key, value)


CONFIGS = {
    "node_rate_zero": (_node("sample_rate", 0), "Harmonic: sample_rate must be a positive"),
    "node_rate_nan": (_node("sample_rate", math.nan), "sample_rate must be a positive"),
    "node_harmonics_text": (_node("n_harmonics", "many"), "n_harmonics must be an integer"),
    "decoder_list": (lambda m: m.__setitem__("decoder", [8]), "decoder must be a mapping"),
    "decoder_typo": (lambda m: m["decoder"].__setitem__("hiden_size", 8),
                     "did you mean 'hidden_size'"),
    "loss_list": (lambda m: m.__setitem__("loss", [1]), "loss must be a mapping"),
    "learning_rate_text": (lambda m: m.__setitem__("learning_rate", "fast"),
                           "learning_rate must be a number"),
    "learning_rate_negative": (lambda m: m.__setitem__("learning_rate", -1.0),
                               "learning_rate must be a positive number"),
    "freeze_number": (lambda m: m.__setitem__("freeze", 5), "freeze must be a list"),
    "freeze_numbers": (lambda m: m.__setitem__("freeze", [5]), "freeze must be a list of"),
    "nodes_list": (lambda m: m["graph"].__setitem__("nodes", ["harmonic"]),
                   "graph 'nodes' must be a mapping"),
    "edges_mapping": (lambda m: m["graph"].__setitem__("edges", {"a": "b"}),
                      "graph 'edges' must be a list"),
    "model_typo": (lambda m: m.__setitem__("sample_rte", SR), "did you mean 'sample_rate'"),
}


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_a_config_with_bad_keys_or_types_is_one_line_naming_the_file(tmp_path, model_dir, kind):
    change, needle = CONFIGS[kind]
    d = _with_config(tmp_path, model_dir, change)
    with pytest.raises(ModelLoadError) as info:
        load_model(d)
    msg = str(info.value)
    assert "\n" not in msg and str(d / "config.yaml") in msg and needle in msg, msg


def test_the_cli_reports_a_node_rate_of_zero_in_one_line(tmp_path, model_dir, capsys):
    d = _with_config(tmp_path, model_dir, _node("sample_rate", 0))
    assert main(["export", "--model", str(d), "-o", str(tmp_path / "x.pt")]) == 2
    _one_line(capsys, "ddsp export: error:", "config.yaml", "sample_rate")
    assert not (tmp_path / "x.pt").exists()


def test_a_file_of_a_model_folder_stands_for_the_folder(tmp_path, model_dir):
    for part in ("model.safetensors", "config.yaml"):
        assert load_model(model_dir / part).sample_rate == SR
    lone = tmp_path / "weights.safetensors"
    lone.write_bytes((model_dir / "model.safetensors").read_bytes())
    with pytest.raises(UnknownModelError, match=r"is a \.safetensors file, not a model: pass "
                                                 r"the model folder"):
        load_model(lone)
    recipe = ROOT / "recipes" / "tiny.yaml"
    with pytest.raises(UnknownModelError, match=r"is a \.yaml file, not a model"):
        load_model(recipe)


def test_shipped_models_pass_the_config_checks():
    from ddsp_models.model_files import read_model_config
    from ddsp_models.nn import Autoencoder

    for d in sorted((ROOT / "checkpoints").iterdir()):
        if (d / "config.yaml").is_file():
            assert read_model_config(d, Autoencoder)["sample_rate"] == SR


def test_model_hparams_must_be_a_mapping():
    from ddsp_models.model_files import check_model_hparams
    from ddsp_models.nn import Autoencoder

    with pytest.raises(ModelLoadError, match="x.ckpt: the model's hyper-parameters must be a "
                                             "mapping"):
        check_model_hparams([1, 2], "x.ckpt", Autoencoder)
    check_model_hparams({"sample_rate": SR, "decoder": {"hidden_size": 8}}, "x.ckpt", Autoencoder)


# ------------------------------------------------------------------ ddsp processors
def test_processors_cli_refuses_an_unknown_name_with_close_names(capsys):
    assert main(["processors", "NoSuch"]) == 2
    _one_line(capsys, "ddsp processors: error:", "unknown processor type 'NoSuch'", "Harmonic")
    assert main(["processors", "harmonik"]) == 2
    _one_line(capsys, "did you mean Harmonic?")
    assert main(["processors", "Harmonic", "--config", '{"sample_rate": 0}']) == 2
    _one_line(capsys, "ddsp processors: error:", "sample_rate must be a positive")
    assert main(["processors", "Harmonic", "--config", '{"n_harmonic": 4}']) == 2
    _one_line(capsys, "did you mean 'n_harmonics'")


# ------------------------------------------------------------------ the quickstart's input
def test_make_melody_writes_the_quickstart_input(tmp_path):
    import soundfile as sf

    from ddsp_models.features.yin import yin

    spec = importlib.util.spec_from_file_location("make_melody",
                                                  ROOT / "recipes/data/make_melody.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "voice.wav"
    assert mod.main([str(out), "--seconds", "3"]) == 0
    audio, sr = sf.read(out)
    assert sr == SR and audio.shape == (3 * SR,) and 0.4 < np.abs(audio).max() < 0.6
    _, f0 = mod.melody(3.0, SR)
    hop = SR // FR
    est, conf, _ = yin(torch.from_numpy(audio)[None], SR, hop, 3 * FR)
    ref = f0[::hop][: 3 * FR]
    steady = (ref > 0) & (np.convolve(ref > 0, np.ones(9), "same") == 9) & (conf[0].numpy() > 0.8)
    cents = 1200 * np.abs(np.log2(est[0].numpy()[steady] / ref[steady]))
    assert steady.sum() > 300 and np.median(cents) < 10, (steady.sum(), np.median(cents))
    with pytest.raises(SystemExit):
        mod.main([str(tmp_path / "voice.mp3")])
    for seconds in (0.001, 0.3001, 6.0, 6.3001):  # a note cut to one sample stays finite
        audio, _ = mod.melody(seconds, SR)
        assert np.isfinite(audio).all(), seconds



# ------------------------------------------------------------------ the shared checks
@pytest.mark.parametrize("d,needle", [
    ({"exponent": 3.0}, "a scaling is a mapping {kind: name"),
    ([1], "a scaling is a mapping"),
    ({"kind": "exp_sigmod"}, "unknown scaling kind 'exp_sigmod'; known: ['exp_sigmoid'"),
    ({"kind": "exp_sigmoid", "exponnet": 3}, "its fields: ['exponent'"),
])
def test_scaling_from_dict_says_what_it_expected(d, needle):
    from ddsp_models.core.scaling import scaling_from_dict

    with pytest.raises(InvalidInputError) as info:
        scaling_from_dict(d)
    assert needle in str(info.value)


def test_check_arguments_reads_simple_annotations_only():
    from ddsp_models.core.arguments import ArgumentError, check_arguments

    # (annotations are strings here, as in the package: ``from __future__ import annotations``)
    def f(a: int, b: float | None = None, c: Optional[List[int]] = None,
          d: Processor | Mapping[str, Any] = None, e: bool = False, **extra):
        pass

    check_arguments("f", f, (3,), {"b": 2, "c": [1], "d": object(), "e": 1, "zz": "any"})
    check_arguments("f", f, (3.0,))  # an integer-valued float is an integer
    for kwargs, needle in (({"a": 1.5}, "f: a must be an integer, got 1.5"),
                           ({"a": True}, "a must be an integer, got True"),
                           ({"a": 1, "b": "x"}, "b must be a number or null, got 'x'"),
                           ({"a": 1, "c": 5}, "c must be a list or null, got 5"),
                           ({"a": 1, "e": "no"}, "e must be true or false"),
                           ({}, "f needs 'a'")):
        with pytest.raises(ArgumentError, match=needle.replace("(", r"\(")):
            check_arguments("f", f, (), kwargs)
    check_arguments("f", f, (), {}, complete=False)
