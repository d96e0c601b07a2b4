"""The registry: processors found without importing them, lazy namespaces, clear unknown names.

* Importing ``ddsp_models.synths``, ``ddsp_models.effects`` and ``ddsp_models.processors`` (and
  reading their names) imports neither numba nor Lightning (checked in a fresh interpreter).
* The :mod:`ast` scan (``processors.discover``) agrees with the registry that defining the
  classes fills: the same names, modules and synth/effect split.
* The scan follows inheritance through private bases and across modules, and reads
  ``n_inputs`` where it is inherited.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from ddsp_models.errors import DDSPError
from ddsp_models.processors import (
    PROCESSORS,
    UnknownProcessorError,
    _scan_sources,
    all_processor_classes,
    discover,
    load_processor_class,
)

HEAVY = ("numba", "lightning", "pytorch_lightning")


def _run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_namespaces_do_not_import_numba_or_lightning():
    got = _run("""
        import json, sys
        import ddsp_models.synths, ddsp_models.effects, ddsp_models.processors
        after_import = sorted(m for m in sys.modules if m.split(".")[0] in %r)
        names = (dir(ddsp_models.synths), ddsp_models.effects.__all__,
                 dict(ddsp_models.processors.SYNTHS), dict(ddsp_models.processors.EFFECTS))
        after_names = sorted(m for m in sys.modules if m.split(".")[0] in %r)
        processor_modules = sorted(m for m in sys.modules
                                   if m.startswith("ddsp_models.processors.")
                                   and m not in ("ddsp_models.processors.base",))
        print(json.dumps({"import": after_import, "names": after_names,
                          "synths": names[0], "modules": processor_modules}))
    """ % (HEAVY, HEAVY))
    assert got["import"] == [] and got["names"] == []
    assert got["modules"] == []  # no processor module imported to learn the names
    assert {"Harmonic", "FilteredNoise", "Wavetable", "Sinusoidal", "Subtractive"} <= set(
        got["synths"])


def test_public_imports_work():
    from ddsp_models.effects import Reverb
    from ddsp_models.synths import Harmonic

    assert Harmonic is PROCESSORS["Harmonic"] and Harmonic.n_inputs == 0
    assert Reverb is PROCESSORS["Reverb"] and Reverb.n_inputs == 1
    import ddsp_models.processors as P

    assert P.Reverb is Reverb  # the package re-exports every processor lazily too
    with pytest.raises(ImportError):
        from ddsp_models.synths import Reverb  # noqa: F401 - an effect, not a synth


def test_scan_agrees_with_the_registry():
    found = discover()
    classes = all_processor_classes()
    package = {n: c for n, c in classes.items()
               if c.__module__.startswith("ddsp_models.processors.")}
    assert set(found) == set(package)
    for name, entry in found.items():
        assert entry.module == package[name].__module__, name
        assert entry.is_synth == (package[name].n_inputs == 0), name


def test_derived_views_are_read_only():
    import ddsp_models.processors as P

    assert set(P.SYNTHS) | set(P.EFFECTS) == set(discover())
    assert not set(P.SYNTHS) & set(P.EFFECTS)
    assert P.SYNTHS["Harmonic"] == "ddsp_models.processors.harmonic"
    with pytest.raises(TypeError):
        P.SYNTHS["Mine"] = "x"


def test_scan_follows_inheritance():
    pkg = "ddsp_models.processors"
    sources = {
        f"{pkg}.base": "class Processor(nn.Module):\n    n_inputs: ClassVar[int] = 0\n",
        f"{pkg}.a": textwrap.dedent("""
            from .base import Processor
            class _Shared(Processor):
                n_inputs = 1
            class Echo(_Shared):
                pass
            class Tone(Processor):
                pass
            class _Hidden(Processor):
                pass
            class Helper:
                n_inputs = 0
            def f():
                class Inner(Processor):
                    pass
        """),
        f"{pkg}.b": textwrap.dedent("""
            from .a import Echo as BaseEcho, Tone
            class Chorus(BaseEcho):
                pass
            class Drone(Tone):
                pass
            class Mixer(Tone):
                n_inputs = 2
        """),
    }
    found = _scan_sources(sources)
    assert {n: (e.module.rsplit(".", 1)[1], e.is_synth) for n, e in found.items()} == {
        "Echo": ("a", False), "Tone": ("a", True), "Chorus": ("b", False),
        "Drone": ("b", True), "Mixer": ("b", False),
    }


def test_unknown_names_say_what_is_close():
    with pytest.raises(UnknownProcessorError) as err:
        load_processor_class("Harmonc")
    assert isinstance(err.value, DDSPError) and isinstance(err.value, ValueError)
    msg = str(err.value)
    assert "'Harmonc'" in msg and "Harmonic" in msg and "\n" not in msg
    with pytest.raises(UnknownProcessorError, match="type name"):
        load_processor_class(None)


def test_unknown_type_in_a_graph_names_the_node():
    from ddsp_models.graph import ProcessorGraph

    with pytest.raises(ValueError, match=r"node 'x'.*did you mean Reverb"):
        ProcessorGraph.from_dict({"nodes": {"x": {"type": "Reverbb"}}, "edges": ["x -> out"]})


@pytest.mark.parametrize("name,near", [("NoSuch", "NoiseGate"), ("Revreb", "Reverb"),
                                       ("delay", "ModDelay or MultitapDelay")])
def test_cli_unknown_name_exits_2_with_one_line(name, near, capsys):
    from ddsp_models.cli import main as ddsp

    assert ddsp(["processors", name]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and f"'{name}'" in lines[0] and near in lines[0], captured.err
    assert "Traceback" not in captured.err


def test_cli_bad_config_exits_2(capsys):
    from ddsp_models.cli import main as ddsp

    assert ddsp(["processors", "Biquad", "--config", "{kind: peaking}"]) == 2
    assert "--config is not valid JSON" in capsys.readouterr().err
    assert ddsp(["processors", "Biquad", "--config", '{"kind": "peak"}']) == 2
    assert "unknown biquad kind" in capsys.readouterr().err.lower()
    assert ddsp(["processors", "Biquad", "--config", '{"kind": "peaking"}']) == 0
    assert "gain_db [1] dB" in capsys.readouterr().out
