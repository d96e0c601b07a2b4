"""Autoencoder: learning (one step, overfitting), export round trips, freezing, errors."""

import math

import pytest
import numpy as np
import torch

from ddsp_models.nn.autoencoder import Autoencoder
from ddsp_models.registry import load_model
from ddsp_models.training.module import AutoencoderModule

SR, FR, HOP = 8000, 100, 80
GRAPH = {
    "nodes": {
        "harmonic": {"type": "Harmonic", "sample_rate": SR, "n_harmonics": 8},
        "noise": {"type": "FilteredNoise", "sample_rate": SR, "n_bands": 9},
    },
    "edges": ["harmonic -> out", "noise -> out"],
}
SMALL = dict(hidden_size=32, mlp_size=32, mlp_layers=1)


pytestmark = pytest.mark.usefixtures("one_thread")


def harmonic_example(seconds=1.0, f0=220.0):
    """A 1 s violin-like tone: 4 harmonics, 5 Hz vibrato, attack and decay; its features."""
    n = int(seconds * SR)
    t = torch.arange(n) / SR
    f = f0 * (1 + 0.01 * torch.sin(2 * math.pi * 5 * t))
    phase = 2 * math.pi * torch.cumsum(f, 0) / SR
    env = torch.clamp(t * 10, max=1) * (1 - 0.5 * t)
    x = sum((0.5 / k) * torch.sin(k * phase) for k in range(1, 5)) * env
    rms = x.reshape(-1, HOP).square().mean(-1).sqrt()
    return {
        "audio": x[None, None],
        "f0_hz": f[::HOP][None, :, None],
        "loudness_db": (20 * torch.log10(rms.clamp_min(1e-5)))[None, :, None],
    }


def small_model(**kw):
    """The training class (configure_optimizers, a Trainer); loading gives the plain model."""
    return AutoencoderModule(graph=GRAPH, sample_rate=SR, frame_rate=FR, decoder=SMALL, **kw)


def train(model, batch, steps):
    opt = model.configure_optimizers()["optimizer"]
    losses = []
    for _ in range(steps):
        loss, _ = model._step(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_decoder_width_follows_graph_layout_and_shapes():
    m = small_model()
    assert m.decoder.n_out == m.graph.parameter_layout().n_params == 1 + 8 + 9
    b = harmonic_example()
    out = m(b["f0_hz"], b["loudness_db"])
    assert out.shape == (1, 1, SR)


def test_one_step_lowers_the_loss():
    m = small_model(learning_rate=1e-3)
    b = harmonic_example()
    before = m._step(b)[0].item()
    train(m, b, 1)
    assert m._step(b)[0].item() < before


def test_overfit_one_example_halves_the_loss():
    torch.manual_seed(0)
    m = small_model(learning_rate=3e-3)
    losses = train(m, harmonic_example(), 200)
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])


def test_save_pretrained_round_trip(tmp_path):
    m = small_model().eval()
    from ddsp_models.data.stats import compute_stats

    rng = np.random.default_rng(0)
    m.dataset_stats = compute_stats([rng.uniform(200, 300, 50)], [rng.uniform(0, 1, 50)],
                                    [rng.uniform(-60, -10, 50)])
    m.save_pretrained(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "config.yaml", "model.safetensors", "stats.json"]
    m2 = Autoencoder.from_pretrained(tmp_path / "model")
    assert type(m2) is Autoencoder and isinstance(m, Autoencoder)
    assert m2.hparams == m.hparams and m2.hparams.n_log_examples == m.hparams.n_log_examples
    b = harmonic_example(0.3)
    torch.manual_seed(1)
    a = m.controls(b["f0_hz"], b["loudness_db"])
    c = m2.controls(b["f0_hz"], b["loudness_db"])
    for node in a:
        for p in a[node]:
            torch.testing.assert_close(a[node][p], c[node][p], rtol=0, atol=0)
    assert m2.dataset_stats == m.dataset_stats
    assert load_model(tmp_path / "model").decoder.n_out == m.decoder.n_out


def test_load_model_from_lightning_checkpoint_without_pickle(tmp_path):
    import lightning.pytorch as pl

    m = small_model()
    trainer = pl.Trainer(max_steps=0, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(m)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    torch.load(tmp_path / "m.ckpt", weights_only=True)  # loads with the safe unpickler
    m2 = load_model(tmp_path / "m.ckpt")
    assert type(m2) is Autoencoder
    for (k, v), (k2, v2) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)


def test_freeze_and_init_from(tmp_path):
    src = small_model()
    train(src, harmonic_example(), 3)
    src.save_pretrained(tmp_path / "src")
    m = small_model(init_from=str(tmp_path / "src"), freeze=["decoder.f0_mlp", "decoder.gru"])
    for k, v in src.state_dict().items():
        assert torch.equal(v, m.state_dict()[k])
    frozen = {n: p.clone() for n, p in m.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith(("decoder.f0_mlp", "decoder.gru")) for n in frozen)
    train(m, harmonic_example(), 2)
    for n, p in m.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n])
    with pytest.raises(ValueError, match="no parameters under"):
        small_model(freeze=["decodr"])


def test_lr_schedule_is_ddsp_exponential_decay():
    m = small_model(learning_rate=1e-3, lr_decay_steps=100, lr_decay_rate=0.5)
    cfg = m.configure_optimizers()
    opt, sched = cfg["optimizer"], cfg["lr_scheduler"]["scheduler"]
    for _ in range(50):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.5 ** 0.5)


def test_errors():
    with pytest.raises(ValueError, match="does not divide sample_rate"):
        Autoencoder(graph=GRAPH, sample_rate=8000, frame_rate=300)
    with pytest.raises(ValueError, match="derived from the graph"):
        Autoencoder(graph=GRAPH, sample_rate=SR, frame_rate=FR, decoder={"n_out": 3})
    from ddsp_models.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="whole number of frames per second"):
        Autoencoder(graph=GRAPH, sample_rate=16000, frame_rate=62.5)  # hop 256, but fractional


def test_bfloat16_autocast_runs_only_the_decoder_in_bfloat16():
    """``--trainer.precision bf16-mixed``: synths, effects and loss still see float32."""
    torch.manual_seed(0)
    m = small_model(learning_rate=3e-3)
    b = harmonic_example()
    seen = []
    hook = m.graph.nodes["harmonic"].register_forward_pre_hook(
        lambda mod, args, kwargs: seen.extend(v.dtype for v in kwargs.values()
                                              if torch.is_tensor(v)), with_kwargs=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, out = m._step(b)
        assert torch.is_autocast_enabled("cpu")  # the guard is local to the DSP
    hook.remove()
    assert seen and set(seen) == {torch.float32}
    assert out.dtype == loss.dtype == torch.float32
    with torch.no_grad():
        ref, _ = m._step(b)
    assert abs(loss.item() - ref.item()) < 0.05 * ref.item()  # bf16 decoder, same loss
    before = loss.item()
    opt = m.configure_optimizers()["optimizer"]
    for _ in range(30):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss, _ = m._step(b)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < before  # it learns
