"""Greedy CTC decoding, word timings and error rates, against hand computations and jiwer."""

import jiwer
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decode_testkit import LETTERS, peaked
from w2v2.data.text import Vocabulary
from w2v2.decode.ctc import TokenSpan, best_path, collapse, greedy_decode, word_timings
from w2v2.decode.metrics import char_error_rate, edit_distance, word_error_rate

A, B, C, T, BAR = (LETTERS.index[u] for u in "ABCT|")


def test_collapse_by_hand():
    # "AA_A|BB__C": repeats merge, a blank separates the two A's, blanks vanish
    path = [A, A, 0, A, BAR, B, B, 0, 0, C]
    assert collapse(path) == [TokenSpan(A, 0, 2), TokenSpan(A, 3, 4), TokenSpan(BAR, 4, 5), TokenSpan(B, 5, 7),
                              TokenSpan(C, 9, 10)]
    assert collapse([]) == [] and collapse([0, 0]) == []


def test_greedy_decode_on_hand_made_logits():
    frames = [0, C, C, 0, A, A, T, BAR, BAR, 0, A, 0, T, T]  # "CAT AT"
    emissions = peaked(frames)
    hyp = greedy_decode(emissions, LETTERS)
    assert hyp.text == "CAT AT"
    # the best path's score is the sum of the per-frame maxima
    assert hyp.score == pytest.approx(float(emissions.max(-1).values.sum()), abs=1e-5)
    # a split frame goes to the larger share
    assert greedy_decode(peaked([C, {A: 0.4, B: 0.6}, T]), LETTERS).text == "CBT"


def test_word_timings_use_frame_spans():
    frames = [0, C, C, 0, A, A, T, BAR, BAR, 0, A, 0, T, T]
    words = word_timings(best_path(peaked(frames)), LETTERS, frame_seconds=0.02)
    assert [(w.word, w.start, w.end) for w in words] == [("CAT", 0.02, 0.14), ("AT", 0.2, 0.28)]


def test_word_timings_token_units():
    vocab = Vocabulary(["<pad>", "<unk>", "|", "K", "AE", "T"], units="token")
    spans = [TokenSpan(3, 0, 1), TokenSpan(4, 1, 3), TokenSpan(5, 3, 4), TokenSpan(2, 4, 5), TokenSpan(3, 6, 7)]
    words = word_timings(spans, vocab, 0.02)
    assert [(w.word, w.start, w.end) for w in words] == [("K AE T", 0.0, 0.08), ("K", 0.12, 0.14)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([0, A, B, C, T, BAR]), max_size=40))
def test_greedy_equals_reference_collapse(path):
    """Property: B(argmax path) = itertools.groupby-collapse without blanks (torchaudio's recipe)."""
    from itertools import groupby

    ref = [k for k, _ in groupby(path) if k != 0]
    assert [s.token for s in best_path(peaked(path))] == ref


def test_edit_distance_by_hand():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], ["a", "b"]) == 2 and edit_distance(["a"], []) == 1


words = st.lists(st.sampled_from(["THE", "CAT", "SAT", "ON", "A", "MAT", "AT"]), max_size=8).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(words.filter(bool), words), min_size=1, max_size=5))
def test_error_rates_match_jiwer(pairs):
    refs, hyps = [r for r, _ in pairs], [h for _, h in pairs]
    assert word_error_rate(refs, hyps) == pytest.approx(jiwer.wer(refs, hyps))
    assert char_error_rate(refs, hyps) == pytest.approx(jiwer.cer(refs, hyps))


def test_error_rate_refuses_mismatch():
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        word_error_rate(["A", "B"], ["A"])


def test_word_confidence_is_the_mean_posterior_of_the_path_by_hand():
    """Frames "A A _ B | C": the word AB spans frames 0-3, its path is A A blank B; the word C frame 5."""
    import torch

    probs = torch.full((6, len(LETTERS)), 1e-3)
    for t, (tok, p) in enumerate([(A, 0.9), (A, 0.6), (0, 0.5), (B, 0.8), (BAR, 0.7), (C, 0.4)]):
        probs[t, tok] = p
    spans = [TokenSpan(A, 0, 2), TokenSpan(B, 3, 4), TokenSpan(BAR, 4, 5), TokenSpan(C, 5, 6)]
    words = word_timings(spans, LETTERS, 0.02, probs.log())
    assert [w.word for w in words] == ["AB", "C"]
    assert words[0].confidence == pytest.approx((0.9 + 0.6 + 0.5 + 0.8) / 4, abs=1e-4)
    assert words[1].confidence == pytest.approx(0.4, abs=1e-4)
    assert word_timings(spans, LETTERS, 0.02)[0].confidence is None  # without emissions
