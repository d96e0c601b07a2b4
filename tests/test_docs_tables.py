"""The processor tables of README.md and docs/*.md are generated from the declarations.

The committed docs must equal what ``python3 -m ddsp_models.docs_tables`` writes (regenerated
in memory here); the generator documents every processor of the package, shows the declared
parameters, state and latency, and never documents classes registered by user code.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ddsp_models import docs_tables
from ddsp_models.core.scaling import ExpSigmoid, LogSigmoidRange, SigmoidRange, Softmax
from ddsp_models.processors import Param, Processor, discover, load_processor_class

ROOT = Path(__file__).resolve().parent.parent


def test_committed_docs_are_up_to_date():
    stale = docs_tables.stale_docs(ROOT)
    assert not stale, (
        f"generated processor tables are stale in {[str(f) for f in stale]}: run "
        "'python3 -m ddsp_models.docs_tables' (or 'ddsp processors --write-docs') and commit")


def test_every_processor_is_documented():
    files = docs_tables.doc_files(ROOT)
    assert {f.name for f in files} >= {"README.md", "synths.md", "effects_filters.md",
                                       "effects_dynamics.md"}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    detail = "".join(f.read_text(encoding="utf-8") for f in files if f.name != "README.md")
    for name in discover():
        assert f"| `{name}` |" in readme, name  # the summary row
        assert f"**`{name}`**" in detail, name  # a detailed section


def test_detail_shows_declarations():
    info = docs_tables.processor_info(load_processor_class("Gain"))
    text = docs_tables.render_detail(info)
    assert "| `gain_db` | 1 | dB | SigmoidRange [-60, 24] | yes | no | gain |" in text
    for s in info.state:
        assert f"| `{s.name}` |" in text
    assert f"latency {info.latency_text}." in text


def test_scaling_text():
    assert docs_tables.scaling_text(SigmoidRange(-1.0, 1.0)) == "SigmoidRange [-1, 1]"
    assert docs_tables.scaling_text(LogSigmoidRange(20.0, 8000.0)) == "LogSigmoidRange [20, 8000]"
    assert docs_tables.scaling_text(ExpSigmoid()) == "ExpSigmoid"
    assert docs_tables.scaling_text(ExpSigmoid(bias=-5.0)) == "ExpSigmoid(bias=-5)"
    assert docs_tables.scaling_text(Softmax()) == "Softmax"


class DocsOnlyEcho(Processor):
    """A processor registered outside the package: never in the generated docs."""

    n_inputs = 1

    def param_specs(self):
        return (Param("mix", 1, SigmoidRange(0.0, 1.0)),)


def _tree(tmp_path: Path, readme: str, docs: dict[str, str]) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(readme)
    for name, text in docs.items():
        (tmp_path / "docs" / name).write_text(text)
    return tmp_path


def test_sections_select_link_and_rewrite(tmp_path):
    root = _tree(tmp_path, "intro\n<!-- processors:begin style=summary -->\nOLD TEXT\n"
                           "<!-- processors:end -->\noutro\n", {
        "a.md": "# A\n<!-- processors:begin names=Gain,Biquad -->\n<!-- processors:end -->\n",
        "b.md": "<!-- processors:begin modules=harmonic -->x<!-- processors:end -->\n"
                "<!-- processors:begin rest kind=synth -->x<!-- processors:end -->\n",
        "plain.md": "no markers\n",
    })
    assert [f.name for f in docs_tables.doc_files(root)] == ["README.md", "a.md", "b.md"]
    new = docs_tables.render_docs(root)
    readme = new[root / "README.md"]
    assert readme.startswith("intro\n<!-- processors:begin style=summary -->\n")
    assert readme.endswith("<!-- processors:end -->\noutro\n") and "OLD TEXT" not in readme
    assert "| `Gain` | effect |" in readme and "[a](docs/a.md)" in readme
    assert "| `Harmonic` | synth |" in readme and "[b](docs/b.md)" in readme
    assert "DocsOnlyEcho" not in "".join(new.values())
    a = new[root / "docs" / "a.md"]
    assert a.index("**`Gain`**") < a.index("**`Biquad`**")  # the order given
    b = new[root / "docs" / "b.md"]
    rest = b[b.index("rest kind=synth"):]
    assert "**`Harmonic`**" not in rest and "**`Wavetable`**" in rest  # claimed elsewhere
    assert "**`Reverb`**" not in rest  # not a synth
    # writing is idempotent, and check then finds nothing stale
    assert docs_tables.stale_docs(root) == [root / "README.md", root / "docs" / "a.md",
                                            root / "docs" / "b.md"]
    docs_tables.write_docs(root)
    assert docs_tables.stale_docs(root) == [] and docs_tables.write_docs(root) == []


def test_bad_markers_are_named(tmp_path):
    root = _tree(tmp_path, "<!-- processors:begin names=Nope -->\n<!-- processors:end -->\n", {})
    with pytest.raises(ValueError, match="Nope"):
        docs_tables.render_docs(root)
    (root / "README.md").write_text(
        "<!-- processors:begin colour=red -->\n<!-- processors:end -->\n")
    with pytest.raises(ValueError, match="colour=red"):
        docs_tables.render_docs(root)


def test_commands(tmp_path, capsys):
    from ddsp_models.cli import main as ddsp

    root = _tree(tmp_path, "<!-- processors:begin names=Gain -->\n<!-- processors:end -->\n", {})
    assert docs_tables.main(["--root", str(root), "--check"]) == 1
    assert ddsp(["processors", "--write-docs", str(root)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert ddsp(["processors", "--check-docs", str(root)]) == 0
    assert docs_tables.main(["--root", str(root), "--check"]) == 0
