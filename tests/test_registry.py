"""Model names: DDSP_MODELS_PATH, search-path arguments, the repo's checkpoints/ folder."""

from pathlib import Path

import pytest
import torch

import ddsp_models
from ddsp_models import registry
from ddsp_models.nn.autoencoder import Autoencoder

GRAPH = {"nodes": {"harmonic": {"type": "Harmonic", "n_harmonics": 4}},
         "edges": ["harmonic -> out"]}


def tiny(seed=0):
    torch.manual_seed(seed)
    return Autoencoder(graph=GRAPH, decoder=dict(hidden_size=8, mlp_size=8, mlp_layers=1))


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    root = tmp_path / "models"
    tiny(0).save_pretrained(root / "violin")
    tiny(1).save_pretrained(root / "flute")
    (root / "notes").mkdir()  # not a model: ignored
    monkeypatch.setenv(registry.ENV_VAR, str(root))
    return root


def test_name_found_via_env_var(models_dir):
    assert registry.resolve_model("violin") == models_dir / "violin"
    assert set(registry.available_models()) >= {"violin", "flute"}
    assert "notes" not in registry.available_models()
    m = ddsp_models.load_model("violin")
    ref = Autoencoder.from_pretrained(models_dir / "violin")
    for (k, a), (_, b) in zip(m.state_dict().items(), ref.state_dict().items()):
        assert torch.equal(a, b), k
    assert not m.training


def test_search_path_order(models_dir, tmp_path):
    other = tmp_path / "other"
    tiny(2).save_pretrained(other / "violin")
    assert registry.resolve_model("violin", extra=[other]) == other / "violin"  # argument first
    assert registry.search_path()[-1] == registry.CHECKPOINTS  # the repo folder last


def test_unknown_name_lists_available(models_dir):
    with pytest.raises(registry.UnknownModelError, match="Available models: ") as e:
        registry.resolve_model("theremin")
    listed = str(e.value).split("Available models: ")[1].split(". ")[0].split(", ")
    assert {"flute", "violin"} <= set(listed) and "notes" not in listed


def test_paths_pass_through(models_dir, tmp_path):
    assert registry.resolve_model(str(models_dir / "flute")) == models_dir / "flute"
    ckpt = tmp_path / "run.ckpt"
    ckpt.write_bytes(b"x")
    assert registry.resolve_model(ckpt) == ckpt
    with pytest.raises(registry.UnknownModelError, match="not a model"):
        registry.resolve_model(models_dir / "notes")


#: Every model folder under checkpoints/ (driven by the folder, so a new shipped model is
#: covered without being listed here).
SHIPPED = sorted(p.name for p in (Path(registry.__file__).resolve().parents[1] / "checkpoints")
                 .iterdir() if (p / "model.safetensors").is_file() and (p / "config.yaml").is_file())


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoint_folder_is_complete(name):
    folder = Path(registry.__file__).resolve().parents[1] / "checkpoints" / name
    files = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "config.yaml", "stats.json", "README.md"} <= files
    assert sum(p.stat().st_size for p in folder.iterdir()) < 10 * 2**20
    card = (folder / "README.md").read_text()
    # issue 14's card: data, licence, steps, training time, the curve, metrics
    for needed in ["## Data", "Licence", "steps", "ddsp evaluate", "held out", "To reproduce",
                   "over training", "min"]:
        assert needed in card, f"checkpoints/{name}/README.md lacks {needed!r}"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_loads_and_plays_the_given_pitch(monkeypatch, name):
    """checkpoints/NAME: safetensors weights + config + stats; f0 passes through the synth."""
    import torch

    from ddsp_models.features import compute_f0

    monkeypatch.delenv("DDSP_MODELS_PATH", raising=False)
    model = ddsp_models.load_model(name)
    assert model.dataset_stats is not None and "pitch_midi" in model.dataset_stats
    midi = round(model.dataset_stats["pitch_midi"]["mean"])  # a note in the training range
    hz = 440.0 * 2 ** ((midi - 69) / 12)
    frames = 100
    f0 = torch.full((1, frames, 1), hz)
    loudness = torch.full((1, frames, 1), -20.0)
    with torch.no_grad():
        audio = model(f0, loudness)
    assert audio.shape == (1, 1, frames * model.hop) and torch.isfinite(audio).all()
    assert audio.abs().max() > 1e-3  # a loud note is not silent
    est, _ = compute_f0(audio[0, 0], model.sample_rate, model.frame_rate, method="yin")
    cents = 1200 * torch.log2(est[20:-20] / hz)
    assert (cents.abs() < 50).float().mean() > 0.9


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_meets_the_live_latency_goal(monkeypatch, name):
    """Played live (nn~, Neutone) at 48 and 44.1 kHz, every shipped model answers within the
    50 ms goal: at 50 frames/s the synths' look-ahead alone would take 40 ms."""
    from ddsp_models.export.live import LiveModel

    monkeypatch.delenv("DDSP_MODELS_PATH", raising=False)
    model = ddsp_models.load_model(name)
    for rate in (48000, 44100):
        latency = LiveModel(model, host_rate=rate).get_latency()
        assert latency < 0.05 * rate, f"{name}: {1000 * latency / rate:.1f} ms at {rate} Hz"
