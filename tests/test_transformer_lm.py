"""Word Transformer LM (w2v2.decode.transformer_lm, lm_train): scores against a hand computation
from the logits, causality, the incremental API against whole-sentence scores, training on a
repetitive corpus, save/load and the `w2v2 lm train` command."""

import json
import math
import random
from collections import Counter

import pytest
import torch

from w2v2.cli import main
from w2v2.data.heldout import split_heldout
from w2v2.decode.lm_train import TrainOptions, batches, build_vocab, train
from w2v2.decode.transformer_lm import (TransformerLM, TransformerLMConfig, load_transformer_lm, perplexity,
                                        save_transformer_lm)

WORDS = "the cat sat on mat a dog ran to park".split()


@pytest.fixture(autouse=True)
def one_thread():
    """These models are tiny: a second thread only adds synchronisation (badly so on a busy CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def toy_model(context: int = 16, seed: int = 0) -> TransformerLM:
    torch.manual_seed(seed)
    vocab = build_vocab([WORDS], 20)
    cfg = TransformerLMConfig(vocab_size=len(vocab), dim=32, layers=2, heads=2, ffn_dim=64, context=context,
                              cutoffs=(4, 8), div_value=2)  # three adaptive clusters: widths 32, 16, 8
    return TransformerLM(cfg, vocab).eval()


def adaptive_log_probs_by_hand(model: TransformerLM, h: torch.Tensor) -> torch.Tensor:
    """Baevski & Auli's factorisation written out word by word: p(w) = p_head(w) in the first
    cluster, p_head(cluster) * p_cluster(w) in the others; logits h . (P_i e_w)."""
    emb = model.embed
    head_logits = [h @ (emb.projs[0].weight @ emb.embeds[0].weight[w]) for w in range(emb.bounds[1])]
    head_logits += [h @ c for c in emb.clusters]
    head = torch.log_softmax(torch.stack(head_logits), 0)
    out = list(head[: emb.bounds[1]])
    for i in range(1, len(emb.bounds) - 1):
        tail = torch.stack([h @ (emb.projs[i].weight @ e) for e in emb.embeds[i].weight])
        out += list(head[emb.bounds[1] + i - 1] + torch.log_softmax(tail, 0))
    return torch.stack(out)


def hand_log_prob(model: TransformerLM, words: list[str]) -> float:
    """Sum over positions of the hand-computed log-probability of the next token."""
    tokens = [model.eos_id] + [model.vocab.get(w, model.unk_id) for w in words] + [model.eos_id]
    with torch.no_grad():
        h = model.hidden(torch.tensor([tokens[:-1]]))[0]
        return sum(adaptive_log_probs_by_hand(model, h[t])[tokens[t + 1]].item() for t in range(len(tokens) - 1))


def test_adaptive_softmax_by_hand():
    model = toy_model()
    assert model.embed.bounds == [0, 4, 8, len(model.vocab)]
    h = torch.randn(5, 32)
    with torch.no_grad():
        logp = model.embed.log_probs(h)
        hand = torch.stack([adaptive_log_probs_by_hand(model, row) for row in h])
        targets = torch.tensor([0, 3, 4, 9, -100])
        picked = model.embed.target_log_probs(h, targets)
    assert torch.allclose(logp, hand, atol=1e-5)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(5), atol=1e-5)
    assert torch.allclose(picked[:4], logp[torch.arange(4), targets[:4]], atol=1e-5) and picked[4] == 0


def test_scores_and_perplexity_by_hand():
    model = toy_model()
    sentences = [["the", "cat", "sat"], ["a", "zebra", "ran", "to", "the", "park"], []]
    scores = model.score_sentences(sentences, batch_size=2)
    hand = [hand_log_prob(model, s) for s in sentences]
    assert scores == pytest.approx(hand, abs=1e-4)
    tokens = sum(len(s) + 1 for s in sentences)
    assert perplexity(model, sentences) == pytest.approx(math.exp(-sum(hand) / tokens), rel=1e-5)


def test_causal():
    model = toy_model()
    a = torch.tensor([[1, 2, 3, 4, 5, 6]])
    b = a.clone()
    b[0, 4:] = torch.tensor([9, 8])
    with torch.no_grad():
        la, lb = model(a), model(b)
    assert torch.allclose(la[:, :4], lb[:, :4], atol=1e-5)
    assert not torch.allclose(la[:, 4:], lb[:, 4:], atol=1e-3)


def test_next_log_probs_agree_with_sentence_scores():
    model = toy_model()
    sentence = ["the", "dog", "ran", "to", "the", "park"]
    ids = model.ids(sentence)
    histories = [ids[:i] for i in range(len(ids) + 1)]  # different lengths in one batch
    logp = model.next_log_probs(histories)
    assert logp.shape == (len(histories), len(model.vocab))
    assert torch.allclose(logp.exp().sum(-1), torch.ones(len(histories)), atol=1e-5)
    incremental = sum(logp[i, t].item() for i, t in enumerate(ids + [model.eos_id]))
    assert incremental == pytest.approx(model.score_sentences([sentence])[0], abs=1e-4)


def test_long_sentences_use_sliding_windows():
    model = toy_model(context=8)
    sentence = (WORDS * 3)[:21]
    tokens = [model.eos_id] + model.ids(sentence) + [model.eos_id]
    windows = list(model.windows(model.ids(sentence)))
    hand = 0.0
    for k, (inputs, targets, skip) in enumerate(windows):
        end = min(4 * k + 8, len(tokens) - 1)
        assert inputs == tokens[4 * k: end] and targets == tokens[4 * k + 1: end + 1]
        assert skip == (0 if k == 0 else 4)  # counted targets see at least 4 tokens of history
        with torch.no_grad():
            logp = model(torch.tensor([inputs]))[0]
        hand += sum(logp[i, targets[i]].item() for i in range(skip, len(targets)))
    counted = [t for _, targets, skip in windows for t in targets[skip:]]
    assert counted == tokens[1:]  # every target exactly once
    assert model.score_sentences([sentence, ["the"]], batch_size=3)[0] == pytest.approx(hand, abs=1e-4)


def test_batches_cover_every_target_once_per_pass():
    model = toy_model(context=8)
    rng = random.Random(0)
    sentences = [rng.choices(WORDS + ["zebra"], k=rng.randint(0, 20)) for _ in range(40)]
    n = sum(1 for s in sentences for _ in model.windows(model.ids(s)))
    data = batches(model, sentences, 4, seed=0)
    seen = Counter()
    for _ in range(-(-n // 4)):
        inputs, targets = next(data)
        assert inputs.shape == targets.shape and inputs.shape[1] <= 8
        seen.update(targets[targets >= 0].tolist())
    assert seen == Counter(t for s in sentences for t in model.ids(s) + [model.eos_id])


def test_training_on_a_repetitive_corpus_reaches_low_perplexity():
    corpus = [["the", "cat", "sat", "on", "the", "mat"], ["a", "dog", "ran", "to", "the", "park"]] * 200
    train_part, heldout = split_heldout(corpus, 0.05, seed=0)
    vocab = build_vocab(train_part, 50)
    torch.manual_seed(0)
    model = TransformerLM(TransformerLMConfig(vocab_size=len(vocab), dim=32, layers=1, heads=2, ffn_dim=64,
                                              context=8, dropout=0.0), vocab)
    before = perplexity(model.eval(), heldout)
    log = train(model, train_part, heldout, TrainOptions(steps=100, batch_size=16, lr=3e-3, warmup=10, evals=1))
    after = perplexity(model, heldout)
    # per sentence only the first word is uncertain (2 choices over 7 tokens): ppl -> 2 ** (1 / 7)
    assert before > 5 and after < 1.3, (before, after)
    assert log[-1]["valid_ppl"] == pytest.approx(after, rel=1e-4)


def test_save_load_round_trip(tmp_path):
    model = toy_model()
    save_transformer_lm(model, tmp_path / "lm")
    loaded = load_transformer_lm(tmp_path / "lm")
    assert loaded.vocab == model.vocab and (loaded.bos_id, loaded.eos_id, loaded.unk_id) == (0, 0, 1)
    sentences = [["the", "cat"], ["park", "zebra"]]
    assert loaded.score_sentences(sentences) == pytest.approx(model.score_sentences(sentences), abs=1e-6)
    cfg = json.loads((tmp_path / "lm" / "config.json").read_text())
    (tmp_path / "lm" / "config.json").write_text(json.dumps({**cfg, "dim": 64}))
    with pytest.raises(ValueError, match="do not fit"):
        load_transformer_lm(tmp_path / "lm")


def test_cli_train(tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("THE CAT SAT ON THE MAT\nA DOG RAN TO THE PARK\n" * 50)
    valid = tmp_path / "valid.txt"
    valid.write_text("THE DOG SAT ON THE PARK\n")
    assert main(["lm", "train", "--text", str(text), "--out", str(tmp_path / "lm"), "--valid", str(valid),
                 "--steps", "20", "--dim", "32", "--heads", "2", "--layers", "1", "--context", "8",
                 "--batch-size", "8", "--valid-fraction", "0.1"]) == 0
    for name in ("config.json", "model.safetensors", "vocab.json", "metrics.json", "training.png"):
        assert (tmp_path / "lm" / name).is_file(), name
    metrics = json.loads((tmp_path / "lm" / "metrics.json").read_text())
    model = load_transformer_lm(tmp_path / "lm")
    _, heldout = split_heldout([s.split() for s in text.read_text().splitlines()], 0.1, seed=0)
    assert metrics["heldout"]["perplexity"] == pytest.approx(perplexity(model, heldout), rel=1e-5)
    assert metrics["valid"]["perplexity"] == pytest.approx(perplexity(model, [valid.read_text().split()]), rel=1e-5)
    assert f"{metrics['heldout']['perplexity']:.1f}" in capsys.readouterr().out
