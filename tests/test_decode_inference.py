"""Batched and chunked inference against whole-file, one-at-a-time forward passes."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from decode_testkit import tiny_ctc_model
from w2v2.config import W2V2Config
from w2v2.data.audio import normalize
from w2v2.decode.inference import InferenceConfig, batches, compute_emissions, plan_pieces
from w2v2.model.feature_encoder import num_frames
from w2v2.interop.model_dir import load_model_dir

CFG = W2V2Config()  # BASE conv stack: 320-sample stride, 400-sample receptive field


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model, cfg, _ = load_model_dir(tiny_ctc_model(tmp_path_factory.mktemp("tiny")))
    return model, cfg


def waves(*lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


@settings(max_examples=80, deadline=None)
@given(st.integers(400, 400_000), st.floats(0.1, 5.0), st.floats(0.0, 3.0))
def test_pieces_cover_every_frame_once(samples, chunk, context):
    """The kept frames of the windows tile [0, T) in order, and every window has the audio its
    kept frames read (frame f reads samples [320 f, 320 f + 400))."""
    pieces = plan_pieces(0, samples, CFG, InferenceConfig(chunk, context))
    covered = []
    for p in pieces:
        assert p.start % CFG.frame_stride == 0 and 0 <= p.start < p.end <= samples
        assert p.keep_to <= num_frames(CFG.conv_layers, p.end - p.start)
        covered.extend(range(p.start // CFG.frame_stride + p.keep_from, p.start // CFG.frame_stride + p.keep_to))
    assert covered == list(range(num_frames(CFG.conv_layers, samples)))
    assert num_frames(CFG.conv_layers, samples) == (samples - 400) // 320 + 1


def test_batches_respect_the_budget():
    pieces = [p for i, n in enumerate([16000, 48000, 8000, 47000, 30000]) for p in plan_pieces(i, n, CFG,
                                                                                                InferenceConfig())]
    plan = batches(pieces, 100_000)
    assert sorted(p.utt for b in plan for p in b) == [0, 1, 2, 3, 4]
    for b in plan:
        longest = max(p.end - p.start for p in b)
        assert len(b) == 1 or len(b) * longest <= 100_000
    assert [p.utt for p in plan[0]] == [1, 3]  # the two longest together


def test_batched_equals_one_at_a_time(tiny):
    model, cfg = tiny
    xs = waves(24000, 9000, 16000, 30000)
    assert cfg.normalize  # imported from a layer-norm transformers model: per-utterance normalisation
    batched = compute_emissions(model, cfg, xs, InferenceConfig(batch_seconds=10.0))
    assert len(batches([p for i, x in enumerate(xs) for p in plan_pieces(i, len(x), cfg, InferenceConfig())],
                       160000)) < len(xs)  # really batched
    for x, e in zip(xs, batched):
        with torch.no_grad():
            ref = torch.log_softmax(model(torch.from_numpy(normalize(x))[None]).logits[0], -1)
        assert e.shape == ref.shape
        assert (e - ref).abs().max() < 1e-4


def test_chunked_matches_whole_file(tiny):
    model, cfg = tiny
    (x,) = waves(5 * 16000 + 1234, seed=3)
    whole = compute_emissions(model, cfg, [x])[0]
    # windows that see the whole file: the stitching alone must reproduce it
    everything = compute_emissions(model, cfg, [x], InferenceConfig(chunk_seconds=1.0, context_seconds=10.0))[0]
    assert everything.shape == whole.shape and (everything - whole).abs().max() < 1e-4
    # realistic context: close to the whole-file posteriors, and closer than without context
    diffs = {}
    for context in (0.0, 2.0):
        chunked = compute_emissions(model, cfg, [x], InferenceConfig(chunk_seconds=1.0, context_seconds=context))[0]
        assert chunked.shape == whole.shape
        diffs[context] = float((chunked.exp() - whole.exp()).abs().max())
    assert diffs[2.0] < 0.05 and diffs[2.0] < diffs[0.0]


def test_normalised_models_normalise_the_whole_file(tiny):
    model, cfg = tiny
    (x,) = waves(40000, seed=4)
    scaled = compute_emissions(model, cfg, [7.0 * x + 0.3], InferenceConfig(chunk_seconds=1.0, context_seconds=10.0))
    plain = compute_emissions(model, cfg, [x])
    assert (scaled[0] - plain[0]).abs().max() < 1e-2  # up to the variance epsilon of normalize()
    raw = W2V2Config.from_dict({**cfg.to_dict(), "normalize": False})
    assert (compute_emissions(model, raw, [7.0 * x + 0.3])[0] - plain[0]).abs().max() > 0.1


def test_too_short_input_is_refused(tiny):
    model, cfg = tiny
    with pytest.raises(ValueError, match="input 1: 100 samples is shorter than the receptive field"):
        compute_emissions(model, cfg, waves(16000, 100))


@pytest.mark.parametrize("mode", ["group", "layer"])
def test_a_files_emissions_do_not_depend_on_its_batch(mode):
    """A short file decoded alone and in one batch with longer files gives the same emissions, for
    the BASE layout too (its first GroupNorm would otherwise see the padding: torchaudio issue 2242)."""
    from w2v2.model import Wav2Vec2ForCTC, build_model

    cfg = W2V2Config(conv_layers=((16, 10, 5),) + ((16, 3, 2),) * 4 + ((16, 2, 2),) * 2, extractor_mode=mode,
                     conv_bias=mode == "layer", encoder_embed_dim=32, encoder_layers=2, encoder_ffn_embed_dim=64,
                     encoder_attention_heads=2, conv_pos=16, conv_pos_groups=4, layer_norm_first=mode == "layer",
                     vocab_size=8)
    torch.manual_seed(0)
    model = Wav2Vec2ForCTC(cfg, build_model(cfg)).eval()
    short, *longer = waves(9000, 30000, 24000, seed=3)
    alone = compute_emissions(model, cfg, [short])[0]
    together = compute_emissions(model, cfg, [short, *longer], InferenceConfig(batch_seconds=10.0))
    assert len(batches([p for i, x in enumerate([short, *longer]) for p in plan_pieces(i, len(x), cfg,
                                                                                         InferenceConfig())],
                       160000)) == 1  # all three in one padded batch
    assert together[0].shape == alone.shape
    assert (together[0] - alone).abs().max() < 1e-5
