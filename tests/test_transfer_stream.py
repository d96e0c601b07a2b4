"""``transfer_file``: file-to-file transfer with memory bounded by a chunk (issue #18 item 3).

The streamed output must equal the in-memory one (``transfer_with_features`` of the loaded
file, written as the CLI writes it) bit for bit, on a multi-chunk, 44.1 kHz stereo input, and
no step may read more than one block (the file) or one feature chunk with its context (the
model-rate audio) at once.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from ddsp_models.audio_io import load_audio, resample, resample_blocks, resampled_size
from ddsp_models.transfer.core import transfer_file, transfer_with_features
from _stub_stats import stub_dataset_stats

SR_IN = 44100

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(stats: bool = True, encoder: bool = False):
    from ddsp_models.nn.autoencoder import Autoencoder

    graph = {"nodes": {"harmonic": {"type": "Harmonic", "sample_rate": 16000, "n_harmonics": 4},
                       "noise": {"type": "FilteredNoise", "sample_rate": 16000, "n_bands": 5}},
             "edges": ["harmonic -> out", "noise -> out"]}
    if encoder:  # rendered in one offline call, whose noise is not seeded: no noise
        graph = {"nodes": {"harmonic": graph["nodes"]["harmonic"]}, "edges": ["harmonic -> out"]}
    torch.manual_seed(0)
    m = Autoencoder(graph=graph, sample_rate=16000, frame_rate=250,
                    decoder={"hidden_size": 8, "mlp_size": 8, "mlp_layers": 1},
                    encoder={"z_dims": 2} if encoder else None)
    if stats:
        m.dataset_stats = stub_dataset_stats()
    return m.eval()


def _stereo_melody(path, seconds: float, sr: int = SR_IN) -> None:
    t = np.arange(int(seconds * sr)) / sr
    f0 = np.array([196.0, 247.0, 294.0, 330.0])[(t * 1.5).astype(int) % 4]
    ph = 2 * np.pi * np.cumsum(f0) / sr
    env = np.minimum(1.0, 10 * (t * 1.5 % 1))
    x = 0.3 * env * (np.sin(ph) + 0.3 * np.sin(2 * ph))
    sf.write(path, np.stack([x, 0.6 * x + 0.01 * np.sin(2 * np.pi * 3000 * t)], 1)
             .astype(np.float32), sr, subtype="FLOAT")


OPTS = dict(f0_method="yin", chunk_seconds=1.0, synth_chunk_frames=97)


@pytest.mark.parametrize("auto_adjust,pitch_shift,autotune", [(True, 0.0, 0.0),
                                                              (False, -5.0, 0.7)])
def test_streamed_file_equals_the_in_memory_transfer(tmp_path, auto_adjust, pitch_shift,
                                                     autotune):
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    _stereo_melody(src, 4.3)  # 5 feature chunks, 11 synthesis chunks, 47 read blocks
    m = _model()
    kw = dict(OPTS, auto_adjust=auto_adjust, pitch_shift=pitch_shift, autotune=autotune)
    res = transfer_file(m, src, dst, subtype="FLOAT", block_frames=4096, **kw)
    audio, sr = load_audio(src, mono=False)
    ref = transfer_with_features(m, audio, sr, **kw)
    y, sr_out = sf.read(dst, dtype="float32")
    assert sr_out == SR_IN and y.shape == (audio.shape[1],)
    assert np.array_equal(y, ref.audio.numpy())  # bit-identical
    assert ref.audio.abs().max() > 1e-3
    for a, b in ((res.f0_hz, ref.f0_hz), (res.loudness_db, ref.loudness_db),
                 (res.features.confidence, ref.features.confidence)):
        assert torch.equal(a, b)
    assert (res.octaves, res.notes, res.scale) == (ref.octaves, ref.notes, ref.scale)
    assert res.audio is None and res.peak == pytest.approx(float(ref.audio.abs().max()))


def test_no_read_holds_more_than_a_block_or_a_chunk_with_context(tmp_path, monkeypatch):
    """The file is read ``block_frames`` at a time and the model-rate audio one feature
    chunk (+ context, + one resampled block) at a time, however long the file."""
    import ddsp_models.transfer.features as features

    src = tmp_path / "in.wav"
    _stereo_melody(src, 6.0)
    reads, spans, readers = [], [], []
    real_read, real_breader = sf.SoundFile.read, features.BlockReader.read

    def read(self, frames=-1, *a, **k):
        reads.append(frames)
        return real_read(self, frames, *a, **k)

    def breader(self, start, stop):
        spans.append(stop - start)
        readers.append(self)
        return real_breader(self, start, stop)

    monkeypatch.setattr(sf.SoundFile, "read", read)
    monkeypatch.setattr(features.BlockReader, "read", breader)
    block = 2048
    transfer_file(_model(), src, tmp_path / "o.wav", block_frames=block, **OPTS)
    assert reads and max(reads) == block and -1 not in reads  # never the whole file
    hop, ctx = 64, int(np.ceil(0.25 * 250))
    chunk_span = (250 + 2 * ctx) * hop  # chunk_seconds=1 at 250 frames/s, 16 kHz
    assert len(spans) == 6 and max(spans) <= chunk_span
    resampled_block = resampled_size(block, SR_IN, 16000) + 1
    assert readers[0].max_held <= chunk_span + 4 * resampled_block  # soxr releases unevenly
    assert readers[0].n_samples == resampled_size(6 * SR_IN, SR_IN, 16000)


def test_resample_blocks_equals_whole_resampling():
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(30011).astype(np.float32))
    for a, b in ((44100, 16000), (16000, 44100), (48000, 11025), (22050, 22050)):
        whole = resample(x, a, b)
        for bs in (1000, 4096, 40000):
            parts = list(resample_blocks(x.split(bs), a, b))
            assert torch.equal(torch.cat(parts), whole)
        assert whole.shape[0] == resampled_size(x.shape[0], a, b)


def test_output_above_full_scale_is_normalised_for_clipping_formats(tmp_path, monkeypatch):
    import ddsp_models.transfer.synthesis as synthesis

    real = synthesis.render_blocks
    monkeypatch.setattr(synthesis, "render_blocks",  # a model that plays too loud
                        lambda *a, **k: (8.0 * b for b in real(*a, **k)))
    src = tmp_path / "in.wav"
    _stereo_melody(src, 1.5)
    m = _model(stats=False)
    kw = dict(OPTS, auto_adjust=False)
    res = transfer_file(m, src, tmp_path / "o.flac", normalize=True, **kw)
    audio, sr = load_audio(src, mono=False)
    ref = transfer_with_features(m, audio, sr, **kw).audio
    peak = float(ref.abs().max())
    assert peak > 1.0 and res.normalized and res.peak == pytest.approx(peak)
    y, _ = sf.read(tmp_path / "o.flac", dtype="float32")
    assert np.abs(y - (ref / peak * 0.99).numpy()).max() < 2 / 32768  # PCM_16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "o.flac"]  # no temporary


def test_a_failure_mid_write_leaves_no_output(tmp_path, monkeypatch):
    import ddsp_models.transfer.synthesis as synthesis

    src, dst = tmp_path / "in.wav", tmp_path / "o.wav"
    _stereo_melody(src, 1.0)
    real = synthesis.render_blocks

    def broken(*a, **k):
        for i, b in enumerate(real(*a, **k)):
            yield b if i < 2 else b * float("nan")

    monkeypatch.setattr(synthesis, "render_blocks", broken)
    with pytest.raises(ValueError, match="NaN"):
        transfer_file(_model(), src, dst, **OPTS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]


def test_encoder_models_are_transferred_in_memory(tmp_path):
    src, dst = tmp_path / "in.wav", tmp_path / "o.wav"
    _stereo_melody(src, 0.8)
    m = _model(encoder=True)
    transfer_file(m, src, dst, subtype="FLOAT", **OPTS)
    audio, sr = load_audio(src, mono=False)
    ref = transfer_with_features(m, audio, sr, **OPTS).audio
    y, _ = sf.read(dst, dtype="float32")
    assert np.array_equal(y, ref.numpy())


def test_silent_file_gives_silence_of_its_length(tmp_path):
    from ddsp_models.transfer.core import SilentInputWarning

    src, dst = tmp_path / "in.wav", tmp_path / "o.wav"
    sf.write(src, np.zeros((70001, 2), np.float32), SR_IN)
    with pytest.warns(SilentInputWarning):
        res = transfer_file(_model(), src, dst, **OPTS)
    y, sr = sf.read(dst)
    assert res.silent and sr == SR_IN and y.shape == (70001,) and not y.any()
