"""The live (audio-in) model: stateful resampler, causal features, block invariance against the
offline causal rendering, pitch through the exported violin, silence, gate, clicks, controls,
sample-rate changes."""

import math
import random

import numpy as np
import pytest
import torch

from ddsp_models.export.live import LiveModel
from ddsp_models.export.resample_stream import StreamResampler
from ddsp_models.features.causal import CausalFeatures, causal_features, compute_causal_f0

pytestmark = pytest.mark.usefixtures("one_thread")


def _db(err, ref):
    return 20 * math.log10(float(err.norm()) / max(float(ref.norm()), 1e-30) + 1e-30)


def _dbfs(y):
    return 20 * math.log10(max(float(y.abs().max()), 1e-30))


def _tone(sr, seconds, f0=330.0, start=0.05, amp=0.3, vibrato=True, gap=None):
    t = torch.arange(int(sr * seconds), dtype=torch.float64) / sr
    f = f0 * 2 ** ((0.3 * torch.sin(2 * math.pi * 5 * t) if vibrato else 0 * t) / 12)
    x = amp * torch.sin(2 * math.pi * torch.cumsum(f, 0) / sr)
    x = x * (t >= start)
    if gap is not None:
        x = x * ~((t >= gap[0]) & (t < gap[1]))
    return x.float()[None]


def melody(sr, seconds=2.0):
    """A trumpet-like line: 8 harmonics (0.6^k), vibrato ±20 cents at 5.5 Hz, eight notes of
    C major with 20 ms attacks and 30 ms gaps. Returns audio (1, L) and f0 per sample."""
    notes = [60, 62, 64, 67, 65, 64, 62, 60]
    dur = seconds / len(notes)
    t = np.arange(int(sr * seconds)) / sr
    midi = np.array(notes)[np.minimum((t / dur).astype(int), len(notes) - 1)].astype(float)
    midi = midi + 0.2 * np.sin(2 * np.pi * 5.5 * t)
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(0.6 ** k * np.sin(k * phase) for k in range(1, 9))
    pos = t % dur
    env = np.clip(pos / 0.02, 0, 1) * np.clip((dur - pos) / 0.03, 0, 1)
    return torch.tensor(0.3 * x * env / np.abs(x).max(), dtype=torch.float32)[None], f0


@pytest.fixture(scope="module")
def live():
    """The violin's scripted live model (built once; tests set its rate and controls)."""
    from ddsp_models.registry import load_model

    torch.set_num_threads(1)
    return torch.jit.script(LiveModel(load_model("violin"), host_rate=48000))


def _stream(lm, x, sizes):
    lm.reset()
    out, i, k = [], 0, 0
    while i < x.shape[1]:
        n = sizes[k % len(sizes)]
        out.append(lm.process(x[:, i:i + n]))
        i += n
        k += 1
    return torch.cat(out, -1)


# --- the resampler ---------------------------------------------------------------------------
@pytest.mark.parametrize("rates", [(48000, 16000), (44100, 16000), (16000, 44100),
                                   (16000, 96000), (88200, 16000), (16000, 16000)])
def test_resampler_blocks_equal_whole_and_band_limited_delay(rates):
    a, b = rates
    r = torch.jit.script(StreamResampler(a, b))
    n = a // 4
    t = torch.arange(n, dtype=torch.float64) / a
    x = torch.sin(2 * math.pi * 1000 * t)[None].float()
    whole = r(x)
    assert whole.shape[-1] == math.ceil(n * b / a) == r.n_outputs(0) + 0 * 0 + whole.shape[-1] - 0
    r.reset()
    rng = random.Random(0)
    parts, i = [], 0
    while i < n:
        m = rng.choice([1, 64, 100, 511, 4096])
        assert r.n_outputs(min(m, n - i)) >= 0
        parts.append(r(x[:, i:i + m]))
        i += m
    assert torch.equal(torch.cat(parts, -1), whole)
    # output k is the input at time k * a / b - delay_in (input samples): a delayed sine
    k = torch.arange(whole.shape[-1], dtype=torch.float64)
    ideal = torch.sin(2 * math.pi * 1000 * (k / b - r.delay_in / a))
    skip = int(2 * r.taps * b / a) + 2
    assert (whole[0, skip:].double() - ideal[skip:]).abs().max() < 1e-3


def test_resampler_rejects_aliases():
    r = StreamResampler(48000, 16000)
    n = 48000 // 4
    t = torch.arange(n, dtype=torch.float64) / 48000
    y = r(torch.sin(2 * math.pi * 12000 * t)[None].float())  # above the new Nyquist
    assert _dbfs(y[:, 200:]) < -60


# --- causal features -------------------------------------------------------------------------
def test_causal_features_blocks_equal_whole_and_scripted():
    sr, hop = 16000, 64
    x = _tone(sr, 0.5, f0=220.0, gap=(0.25, 0.3))[0]
    f0, conf, ld = causal_features(x.double(), sr, 250)
    m = torch.jit.script(CausalFeatures(sr, hop))
    st = m.init_state(1)
    rng = random.Random(1)
    got, i, frames = [], 0, x.shape[0] // hop
    while i < frames:
        n = min(rng.choice([1, 2, 5, 16]), frames - i)
        a, b, c, _, st = m(x[None, i * hop:(i + n) * hop], st)
        got.append(torch.stack([a, b, c], -1))
        i += n
    got = torch.cat(got, 1)[0]
    torch.testing.assert_close(got, torch.stack([f0, conf, ld], -1), rtol=0, atol=1e-9)


def test_causal_f0_matches_yin_and_loudness_matches_compute_loudness_on_a_steady_tone():
    from ddsp_models.features.loudness import compute_loudness
    from ddsp_models.features.yin import yin

    sr = 16000
    x = _tone(sr, 0.5, f0=261.63, start=0.0, vibrato=False)[0].double()
    f0, conf = compute_causal_f0(x, sr, 250)
    f0_ref, _, _ = yin(x[None], sr, 64, 125)
    ld = causal_features(x, sr, 250)[2]
    ld_ref = compute_loudness(x, sr, 250)
    sl = slice(20, 110)  # past the causal window's start, before the centred window's end
    cents = 1200 * torch.log2(f0[sl] / f0_ref[0, sl])
    assert cents.abs().max() < 1.0 and (conf[sl] > 0.95).all()
    assert (ld[sl] - ld_ref[sl]).abs().max() < 0.1
    # frame t describes the audio latency_samples earlier: a step shows up that much later
    feats = CausalFeatures(sr, 64)
    assert feats.latency_samples == feats.window // 2 - 64 == 256


def test_causal_f0_holds_the_last_voiced_pitch_through_silence():
    sr = 16000
    x = _tone(sr, 0.6, f0=300.0, vibrato=False, gap=(0.3, 0.45))[0]
    f0, conf = compute_causal_f0(x, sr, 250)
    gap = slice(int(0.36 * 250), int(0.44 * 250))  # windows wholly inside the gap
    assert (conf[gap] < 0.5).all()
    assert torch.allclose(f0[gap], torch.full_like(f0[gap], 300.0), rtol=2e-3)
    assert torch.allclose(f0[:5], torch.full_like(f0[:5], 220.0))  # initial_f0_hz


# --- the live model: blocks equal the offline causal pipeline ---------------------------------
CASES = [(48000, [64]), (48000, [4096]), (44100, [512]), (44100, [2048, 64, 1000, 4096, 8192, 333])]
SLOW_CASES = [(48000, [512]), (48000, [2048]), (48000, [2048, 64, 1000, 4096, 8192, 333]),
              (44100, [64]), (44100, [2048]), (44100, [4096]), (88200, [4096, 100]),
              (96000, [1024]), (16000, [64, 700])]


def _check_blocks_equal_offline(live, rate, sizes, seconds=0.6):
    assert live.set_sample_rate(rate) == 0
    x = _tone(rate, seconds, gap=(0.35, 0.45))
    off = live.render_offline(x)
    y = _stream(live, x, sizes)
    assert live.underflows == 0
    p = live.fifo_samples
    n = min(y.shape[1] - p, off.shape[1])
    assert n > 0.8 * x.shape[1]
    assert torch.all(y[:, :p] == 0)
    assert float(off.abs().max()) > 1e-3  # something was played
    assert _db(y[:, p:p + n] - off[:, :n], off[:, :n]) < -60


@pytest.mark.parametrize("rate,sizes", CASES)
def test_live_blocks_equal_offline_causal_rendering(live, rate, sizes):
    _check_blocks_equal_offline(live, rate, sizes)


@pytest.mark.slow
@pytest.mark.parametrize("rate,sizes", SLOW_CASES)
def test_live_blocks_equal_offline_causal_rendering_more_sizes(live, rate, sizes):
    _check_blocks_equal_offline(live, rate, sizes)


def test_declared_latency_adds_up(live):
    assert live.set_sample_rate(48000) == 0
    lat = live.get_latency()
    model_side = (live.features.latency_samples + live.graph_latency_frames * live.hop
                  + live.res_out.delay_in)
    assert lat == round(live.fifo_samples + live.res_in.delay_in + model_side * 3)
    assert lat < 0.05 * 48000  # the goal: <= 50 ms


@pytest.mark.parametrize("rate,sizes", [(48000, [512]), (44100, [2048, 64, 1000, 333])])
def test_frames_per_step_keeps_blocks_equal_offline_and_declares_its_latency(rate, sizes):
    """Frames rendered in groups of k: the same output, later by (k - 1) frames' FIFO lead."""
    from ddsp_models.registry import load_model

    model = load_model("violin")
    lm = torch.jit.script(LiveModel(model, host_rate=rate, frames_per_step=2))
    base = LiveModel(model, host_rate=rate)
    hop = model.sample_rate // model.frame_rate  # model samples per frame
    assert lm.fifo_samples == math.ceil(2 * hop * rate / model.sample_rate)
    assert base.fifo_samples == math.ceil(hop * rate / model.sample_rate)
    assert lm.get_latency() - base.get_latency() == lm.fifo_samples - base.fifo_samples
    _check_blocks_equal_offline(lm, rate, sizes)
    with pytest.raises(ValueError, match="frames_per_step"):
        LiveModel(model, frames_per_step=0)


# --- pitch --------------------------------------------------------------------------------------
def _voiced_pitch_agreement(x, y, sr, lag):
    from ddsp_models.features.f0 import compute_f0

    fr = 250 if sr % 250 == 0 else 225  # a frame rate that divides the rate
    fi, ci = compute_f0(x[0].double(), sr, fr, method="yin", fill=False)
    fo, _ = compute_f0(y[0].double(), sr, fr, method="yin", fill=False)
    shift = int(round(lag / (sr / fr)))
    n = min(fi.shape[0], fo.shape[0] - shift)
    fi, ci, fo = fi[:n], ci[:n], fo[shift:shift + n]
    voiced = ci > 0.8
    cents = 1200 * torch.log2(fo / fi)
    mod = torch.remainder(cents + 600, 1200) - 600
    return float(((mod.abs() < 50) & voiced).sum() / voiced.sum()), fo, voiced


def test_trumpet_like_melody_keeps_its_pitch_and_shift_12_doubles_f0(live):
    sr = 48000
    assert live.set_sample_rate(sr) == 0
    # notes of 0.3 s: the shipped violin (third release) speaks too slowly for 0.15 s notes
    # (57 % of frames in tune there, 93 % at 0.3 s; the first release 95 % at 0.15 s; its card)
    x, _ = melody(sr, seconds=2.4)
    y = _stream(live, x, [512])
    ok, _, _ = _voiced_pitch_agreement(x, y, sr, live.get_latency())
    assert ok >= 0.9
    try:
        live.set_control("auto_adjust", 0.0)
        y0 = _stream(live, x, [512])
        assert live.set_control("pitch_shift", 12.0) == 0
        y12 = _stream(live, x, [512])
    finally:
        live.set_control("pitch_shift", 0.0)
        live.set_control("auto_adjust", 1.0)
    _, f0_a, voiced = _voiced_pitch_agreement(x, y0, sr, live.get_latency())
    _, f0_b, _ = _voiced_pitch_agreement(x, y12, sr, live.get_latency())
    ratio = (f0_b / f0_a)[voiced]
    assert float(((ratio - 2.0).abs() < 0.06).float().mean()) >= 0.9
    assert abs(float(ratio.median()) - 2.0) < 0.01


# --- silence, gate, clicks, bursts ----------------------------------------------------------
def test_silence_and_room_noise_give_silence(live):
    assert live.set_sample_rate(48000) == 0
    y = _stream(live, torch.zeros(1, 48000), [512])
    assert _dbfs(y) < -80
    noise = 10 ** (-75 / 20) * torch.randn(1, 48000)  # quiet room noise, below the gate
    y = _stream(live, noise, [1024])
    assert _dbfs(y) < -80


def test_click_and_full_scale_noise_burst_leave_no_stuck_state(live):
    sr = 44100
    assert live.set_sample_rate(sr) == 0
    x = torch.zeros(1, int(1.6 * sr))
    x[0, 2000] = 1.0  # a click
    x[0, int(0.2 * sr):int(0.4 * sr)] = torch.rand(int(0.2 * sr)) * 2 - 1  # full-scale noise
    tone = _tone(sr, 0.5, f0=440.0, start=0.0)
    x = torch.cat([x, tone], 1)
    y = _stream(live, x, [512, 4096])
    assert torch.isfinite(y).all()
    tail = y[:, int(1.1 * sr):int(1.6 * sr)]  # long after the burst, before the tone
    assert _dbfs(tail) < -80
    played = y[:, int(1.6 * sr) + live.get_latency():]
    assert _dbfs(played) > -40  # the tone plays again afterwards
    ok, _, _ = _voiced_pitch_agreement(x[:, int(1.6 * sr):], y[:, int(1.6 * sr):], sr,
                                       live.get_latency())
    assert ok > 0.8


def test_set_sample_rate_resets_cleanly_and_rejects_nonsense(live):
    x = _tone(44100, 0.3)

    def run():
        return torch.cat([live.process(x[:, i:i + 512]) for i in range(0, x.shape[1], 512)], -1)

    assert live.set_sample_rate(44100) == 0
    first = run()  # from a fresh rate change
    assert live.set_sample_rate(48000) == 0
    _stream(live, _tone(48000, 0.3, f0=500.0), [512])  # leave state behind at another rate
    live.process(torch.randn(1, 333))  # and a partial frame in the FIFO
    assert live.set_sample_rate(44100) == 0
    assert torch.equal(run(), first)
    assert float(first.abs().max()) > 1e-3
    assert live.set_sample_rate(10) == -1 and live.host_rate == 44100


def test_controls_ranges_and_effects(live):
    assert live.set_sample_rate(48000) == 0
    names = live.control_names()
    assert names == ["pitch_shift", "gain_db", "gate_db", "auto_adjust", "harmonic_mix",
                     "reverb_wet"]
    assert live.set_control("pitch_shift", 30.0) == -1
    assert live.set_control("harmonic_mix", 1.5) == -1
    assert live.set_control("nope", 0.0) == -1
    x = _tone(48000, 0.5)
    base = _stream(live, x, [1024])
    try:
        assert live.set_control("reverb_wet", 0.0) == 0
        dry = _stream(live, x, [1024])
        assert live.set_control("harmonic_mix", 0.0) == 0
        noise_only = _stream(live, x, [1024])
        assert live.set_control("gain_db", -30.0) == 0
        quiet = _stream(live, x, [1024])
    finally:
        for k, v in [("reverb_wet", 1.0), ("harmonic_mix", 0.5), ("gain_db", 0.0)]:
            live.set_control(k, v)
    assert _db(dry - base, base) > -40  # the learned reverb is audible and removable
    assert _db(noise_only - dry, dry) > -10
    assert float(quiet.norm()) < 0.5 * float(dry.norm())
    again = _stream(live, x, [1024])
    assert torch.equal(again, base)  # settings restored exactly (IR back to the trained one)


def test_a_graph_without_noise_or_reverb_has_no_mix_controls():
    from ddsp_models.nn.autoencoder import Autoencoder

    graph = {"nodes": {"harmonic": {"type": "Harmonic", "sample_rate": 16000,
                                    "n_harmonics": 8}},
             "edges": ["harmonic -> out"]}
    model = Autoencoder(graph=graph, sample_rate=16000, frame_rate=250,
                        decoder=dict(hidden_size=16, mlp_size=16, mlp_layers=1)).eval()
    lm = torch.jit.script(LiveModel(model, host_rate=44100))
    assert lm.control_names() == ["pitch_shift", "gain_db", "gate_db"]  # no stats, no mixes
    assert lm.set_control("reverb_wet", 0.5) == -1 and lm.set_control("auto_adjust", 1.0) == -1
    y = lm.process(_tone(44100, 0.1))
    assert y.shape == (1, 4410) and torch.isfinite(y).all()


@pytest.mark.parametrize("midi, octaves", [(62, 0), (84, 0), (40, 2), (100, -1)])
def test_auto_adjust_moves_only_pitches_outside_the_training_range(midi, octaves):
    # the causal rule is the offline one (ddsp_models.transfer.adjust): training pitches
    # spread over MIDI 55..91 (5-95 %: 56.8..89.2), so 62 and 84 stay where they are (DDSP's
    # nearest-the-mean rule moved both) and 40 / 100 move by the fewest octaves
    from ddsp_models.data.stats import compute_stats
    from ddsp_models.nn.autoencoder import Autoencoder

    graph = {"nodes": {"harmonic": {"type": "Harmonic", "sample_rate": 16000,
                                    "n_harmonics": 4}},
             "edges": ["harmonic -> out"]}
    model = Autoencoder(graph=graph, sample_rate=16000, frame_rate=250,
                        decoder=dict(hidden_size=8, mlp_size=8, mlp_layers=1)).eval()
    train = np.linspace(55.0, 91.0, 3601)
    model.dataset_stats = compute_stats([440.0 * 2 ** ((train - 69) / 12)], [np.ones(3601)],
                                        [np.full(3601, -30.0)])
    lm = LiveModel(model, host_rate=16000)
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    x = _tone(16000, 0.8, f0=f0, start=0.0, vibrato=False)
    f0_out, _, gate = lm.analyse(x[:, :64 * (x.shape[1] // 64)])
    on = gate[0] > 0
    late = f0_out[0][on][-50:]  # past the feature latency: steady
    np.testing.assert_allclose(late.numpy(), f0 * 2.0 ** octaves, rtol=0.01)
