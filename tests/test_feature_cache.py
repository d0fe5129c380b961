"""Fine-tuning's feature cache: the per-utterance features of the frozen encoder, reused."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from train_utils import micro_config, write_corpus
from w2v2.data.audio import load_audio
from w2v2.data.dataset import make_loader
from w2v2.data.manifest import Entry, read_manifest, write_manifest
from w2v2.data.text import Vocabulary
from w2v2.model import build_ctc_model
from w2v2.train.feature_cache import FeatureCache
from w2v2.train.finetune import FinetuneTask


CFG = dataclasses.replace(micro_config(), vocab_size=8, mask_prob=0.0, mask_channel_prob=0.0)


def frozen_ctc():
    torch.manual_seed(0)
    model = build_ctc_model(CFG)
    for p in model.wav2vec2.feature_extractor.parameters():
        p.requires_grad_(False)
    model.wav2vec2.feature_grad_mult = 0.0
    return model.eval()


def test_features_are_the_unpadded_per_utterance_ones_and_are_reused():
    model = frozen_ctc()
    fe = model.wav2vec2.feature_extractor
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor([8000, 5000, 6400])
    wave = torch.zeros(3, 8000)
    for i, n in enumerate(lengths.tolist()):
        wave[i, :n] = torch.randn(n, generator=g)
    cache = FeatureCache(max_bytes=10**8)
    z, frames = cache.encode(fe, wave, lengths, ["a", "b", "c"])
    assert torch.equal(frames, fe.output_lengths(lengths))
    for i, n in enumerate(lengths.tolist()):
        alone = fe(wave[i:i + 1, :n])[0][0]
        assert torch.equal(z[i, :frames[i]], alone)
        assert not z[i, frames[i]:].any()
    assert (cache.hits, cache.misses) == (0, 3)
    wave2 = wave.clone()
    wave2[1] = 0.0  # a cached key is not encoded again
    z2, _ = cache.encode(fe, wave2, lengths, ["a", "b", "c"])
    assert torch.equal(z2, z) and (cache.hits, cache.misses) == (3, 3)


def test_budget_limits_what_is_kept_and_results_stay_right():
    model = frozen_ctc()
    fe = model.wav2vec2.feature_extractor
    wave = torch.randn(2, 4000, generator=torch.Generator().manual_seed(2))
    lengths = torch.tensor([4000, 4000])
    one = fe(wave[:1])[0][0]
    cache = FeatureCache(max_bytes=one.numel() * one.element_size())  # room for one utterance
    z, _ = cache.encode(fe, wave, lengths, ["x", "y"])
    assert list(cache.store) == ["x"] and cache.bytes <= cache.max_bytes
    z2, _ = cache.encode(fe, wave, lengths, ["x", "y"])
    assert torch.equal(z, z2) and (cache.hits, cache.misses) == (1, 3)


def test_ctc_logits_with_cached_features_equal_the_plain_forward():
    model = frozen_ctc()
    wave = torch.randn(2, 6000, generator=torch.Generator().manual_seed(3))
    lengths = torch.tensor([6000, 6000])  # unpadded: the batched encoder sees the same input
    cache = FeatureCache(max_bytes=10**8)
    with torch.no_grad():
        plain = model(wave, lengths)
        cached = model(wave, lengths, conv_features=cache.encode(model.wav2vec2.feature_extractor, wave, lengths,
                                                                  ["u1", "u2"]))
    assert torch.allclose(plain.logits, cached.logits, atol=1e-5) and torch.equal(plain.lengths, cached.lengths)


def test_refuses_a_trainable_encoder():
    model = build_ctc_model(dataclasses.replace(micro_config(), vocab_size=8))
    with pytest.raises(RuntimeError, match="frozen"):
        FeatureCache(10**6).encode(model.wav2vec2.feature_extractor, torch.zeros(1, 4000), torch.tensor([4000]), ["a"])


def test_same_file_names_in_two_folders_get_their_own_features(tmp_path):
    """Fine-tuning keys the cache by manifest id: a/clip000.flac and b/clip000.flac are two
    recordings (a file stem would give the second one the first one's features)."""
    corpora = [write_corpus(tmp_path / d, n=2, seed=seed, texts=["AB BA"]) for d, seed in (("a", 0), ("b", 1))]
    write_manifest(tmp_path / "m.tsv", [Entry(e.path, e.samples, e.text) for m in corpora for e in read_manifest(m)])
    entries = read_manifest(tmp_path / "m.tsv")
    model, cache = frozen_ctc(), FeatureCache(max_bytes=10**8)
    task = FinetuneTask(CFG, Vocabulary.from_transcripts(["AB BA"]), [], 0, "error", feature_cache=cache)
    rng = np.random.default_rng(0)
    for epoch in (1, 2):
        for batch in make_loader(entries, 10**6, 10**6, 0, epoch, CFG.normalize, False, num_workers=0):
            task.step(model, batch, rng, num_updates=10)
    assert (cache.misses, cache.hits) == (4, 4)  # each recording encoded once, then reused
    fe = model.wav2vec2.feature_extractor
    with torch.no_grad():
        for e in entries:
            own = fe(torch.from_numpy(load_audio(e.path))[None])[0][0]
            assert torch.equal(cache.store[e.id], own), e.id
    assert sorted(cache.store) == ["a/clip000.flac", "a/clip001.flac", "b/clip000.flac", "b/clip001.flac"]


def test_batches_padded_to_a_multiple_change_nothing_on_the_valid_frames(tmp_path):
    """``pad_multiple`` rounds a padded batch up to a multiple of samples (fewer distinct shapes;
    ``crop_multiple`` a cropped one down):
    the clips and their lengths are unchanged, the cache returns the encoder's frame count for the
    padded length, and the CTC logits on valid frames are those of the tightly padded batch."""
    entries = read_manifest(write_corpus(tmp_path, n=3, seed=4, texts=["AB"]))
    longest = max(e.samples for e in entries)

    def batch(multiple):
        return next(iter(make_loader(entries, 10**6, 10**6, 0, 0, CFG.normalize, False, num_workers=0,
                                     shuffle=False, pad_multiple=multiple)))

    tight, grid = batch(0), batch(8000)
    assert tight.waveform.shape[1] == longest
    assert grid.waveform.shape[1] == -(-longest // 8000) * 8000 > longest
    assert torch.equal(grid.lengths, tight.lengths) and not grid.waveform[:, longest:].any()
    assert torch.equal(grid.waveform[:, :longest], tight.waveform)
    shortest = min(e.samples for e in entries)

    def cropped(multiple):  # pre-training crops to the shortest clip: no padding whatever pad_multiple says
        return next(iter(make_loader(entries, 10**6, 10**6, 0, 0, CFG.normalize, True, num_workers=0,
                                     pad_multiple=8000, crop_multiple=multiple))).waveform.shape[1]

    assert cropped(0) == shortest and cropped(8000) == shortest // 8000 * 8000 < shortest
    assert cropped(10**6) == shortest  # a shortest clip under one multiple is kept whole
    model = frozen_ctc()
    fe = model.wav2vec2.feature_extractor
    z, frames = FeatureCache(10**8).encode(fe, grid.waveform, grid.lengths, grid.ids)
    with torch.no_grad():
        own = fe(grid.waveform, grid.lengths)
        assert z.shape[1] == own[0].shape[1] > int(frames.max()) and torch.equal(frames, own[1])
        a = model(tight.waveform, tight.lengths)
        b = model(grid.waveform, grid.lengths, conv_features=(z, frames))
        c = model(grid.waveform, grid.lengths)
    assert torch.equal(a.lengths, b.lengths) and torch.equal(a.lengths, c.lengths)
    for i, n in enumerate(a.lengths.tolist()):
        assert torch.allclose(a.logits[i, :n], b.logits[i, :n], atol=1e-5)
        assert torch.allclose(a.logits[i, :n], c.logits[i, :n], atol=1e-5)
