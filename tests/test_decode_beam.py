"""flashlight-text beam search: properties against greedy decoding, hand-computed scores of the
search objective, LM effects on ambiguous frames, and the custom-LM path against KenLM."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from decode_testkit import LETTERS, peaked, write_arpa, write_lexicon
from w2v2.decode.beam import BeamSearchConfig, BeamSearchDecoder, TransformerBeamLM, ngram_search_model
from w2v2.decode.beam import lexicon_search_model
from w2v2.decode.ctc import greedy_decode

A, B, C, T, BAR = (LETTERS.index[u] for u in "ABCT|")
WIDE = dict(beam_size=1000, beam_threshold=1000.0)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 12))
def test_lexicon_free_without_lm_finds_the_best_path(seed, frames):
    """With no LM, no lexicon and a wide beam, the search maximises the score of a single
    alignment (max, not log-add), whose optimum is the per-frame argmax: greedy decoding."""
    g = torch.Generator().manual_seed(seed)
    emissions = torch.log_softmax(3 * torch.randn(frames, len(LETTERS), generator=g), -1)
    search = BeamSearchDecoder(ngram_search_model(LETTERS), BeamSearchConfig(lm_weight=0.0, **WIDE))
    hyp, ref = search(emissions)[0], greedy_decode(emissions, LETTERS)
    assert hyp.text == ref.text
    assert hyp.score == pytest.approx(ref.score, abs=1e-4)


def test_lexicon_free_peaked_equals_greedy_with_default_beam():
    emissions = peaked([C, C, 0, A, T, BAR, 0, A, A, T, BAR, B, 0, B])
    search = BeamSearchDecoder(ngram_search_model(LETTERS), BeamSearchConfig(lm_weight=0.0, word_score=0.0))
    hyp = search(emissions)[0]
    assert hyp.text == greedy_decode(emissions, LETTERS).text == "CAT AT BB"
    assert [s.token for s in hyp.spans] == [C, A, T, BAR, A, T, BAR, B, B]


@pytest.fixture
def cat_cab(tmp_path):
    """Lexicon {CAT, CAB, AT}; an LM that strongly prefers CAB, and frames that say C, A, then
    T (0.6) or B (0.4). No final "|": the search must still count the last word."""
    lexicon = write_lexicon(tmp_path / "lexicon.txt", ["CAT", "CAB", "AT"])
    lm = write_arpa(tmp_path / "lm.arpa", {"<s>": -99.0, "</s>": -0.5, "<unk>": -5.0, "CAT": -3.0, "CAB": -0.2,
                                           "AT": -1.0})
    emissions = peaked([C, 0, A, {T: 0.6, B: 0.4}])
    return lexicon, lm, emissions


def test_lm_flips_ambiguous_frame(cat_cab):
    lexicon, lm, emissions = cat_cab
    model = ngram_search_model(LETTERS, lm, lexicon)
    assert BeamSearchDecoder(model, BeamSearchConfig(lm_weight=0.0))(emissions)[0].text == "CAT"
    assert BeamSearchDecoder(model, BeamSearchConfig(lm_weight=1.0))(emissions)[0].text == "CAB"


def test_score_is_the_papers_objective(cat_cab):
    """score = log p_CTC(path) + lm_weight * log10 p_LM(words, </s>) + word_score * #words."""
    lexicon, lm, emissions = cat_cab
    weight, word_score = 1.0, -0.7
    hyp = BeamSearchDecoder(ngram_search_model(LETTERS, lm, lexicon),
                            BeamSearchConfig(lm_weight=weight, word_score=word_score, **WIDE))(emissions)[0]
    path = [C, 0, A, B]
    acoustic = sum(float(emissions[t, k]) for t, k in enumerate(path))
    lm_score = -0.2 + -0.5  # unigram CAB (the <s> backoff is 0 in a unigram file) + </s>
    assert hyp.text == "CAB"
    assert hyp.score == pytest.approx(acoustic + weight * lm_score + word_score, abs=1e-4)


def test_bigram_context_and_word_score(tmp_path):
    lexicon = write_lexicon(tmp_path / "lexicon.txt", ["CAT", "CAB", "AT", "A", "T"])
    unigrams = {"<s>": -99.0, "</s>": -1.0, "<unk>": -5.0, "CAT": -1.0, "CAB": -1.0, "AT": -1.0, "A": -1.0,
                "T": -1.0}
    bigrams = {("AT", "CAB"): -0.01, ("AT", "CAT"): -4.0}
    lm = write_arpa(tmp_path / "lm.arpa", unigrams, bigrams)
    emissions = peaked([A, T, BAR, C, A, {T: 0.6, B: 0.4}])
    model = ngram_search_model(LETTERS, lm, lexicon)
    assert BeamSearchDecoder(model, BeamSearchConfig(lm_weight=1.0))(emissions)[0].text == "AT CAB"
    # "A T" spells the same letters as "AT" with one more word: a word bonus buys it
    ambiguous = peaked([A, {BAR: 0.5, 0: 0.5}, T])
    texts = [BeamSearchDecoder(model, BeamSearchConfig(lm_weight=0.0, word_score=s))(ambiguous)[0].text
             for s in (-3.0, 3.0)]
    assert texts == ["AT", "A T"]


def test_lexicon_constrains_the_words(cat_cab):
    lexicon, lm, _ = cat_cab
    emissions = peaked([C, A, C, BAR])  # greedy says "CAC", not a word
    assert greedy_decode(emissions, LETTERS).text == "CAC"
    hyp = BeamSearchDecoder(ngram_search_model(LETTERS, lm, lexicon), BeamSearchConfig(lm_weight=0.5))(emissions)[0]
    assert set(hyp.text.split()) <= {"CAT", "CAB", "AT"}


def test_lexicon_free_unit_lm(tmp_path):
    """Without a lexicon the LM is over the model's units: here it prefers B after A."""
    unit_lm = write_arpa(tmp_path / "units.arpa", {"<s>": -99.0, "</s>": -1.0, "<unk>": -9.0, "|": -1.0,
                                                   "A": -1.0, "B": -1.0, "C": -1.0, "T": -1.0},
                         {("A", "B"): -0.01, ("A", "T"): -3.0})
    emissions = peaked([C, A, {T: 0.6, B: 0.4}])
    model = ngram_search_model(LETTERS, unit_lm)
    assert BeamSearchDecoder(model, BeamSearchConfig(lm_weight=0.0))(emissions)[0].text == "CAT"
    assert BeamSearchDecoder(model, BeamSearchConfig(lm_weight=1.0))(emissions)[0].text == "CAB"


class BigramTable:
    """A stand-in for the Transformer LM (same interface): next-word log-probabilities from a table."""

    def __init__(self, words: list[str], table: torch.Tensor) -> None:
        self.vocab = {w: i for i, w in enumerate(words)}
        self.eos_id, self.unk_id, self.bos = self.vocab["</s>"], self.vocab["<unk>"], self.vocab["<s>"]
        self.table, self.calls = table, 0

    def next_log_probs(self, histories: list[list[int]]) -> torch.Tensor:
        self.calls += 1
        return torch.stack([self.table[h[-1] if h else self.bos] for h in histories])


def test_custom_lm_matches_kenlm_on_the_same_distribution(tmp_path):
    """A full bigram model through flashlight's Python LM interface (natural log) gives the same
    hypotheses and scores as the same model as an ARPA file in KenLM (log10) at lm_weight / ln 10."""
    words = ["CAT", "CAB", "AT", "A", "T"]
    vocab = ["<s>", "</s>", "<unk>"] + words
    g = torch.Generator().manual_seed(0)
    table = torch.log_softmax(2 * torch.randn(len(vocab), len(vocab), generator=g), -1)
    table[:, 0] = -1e4  # never predict <s>
    table = torch.log_softmax(table, -1)
    log10 = (table / math.log(10)).tolist()
    uni = {w: -99.0 for w in vocab}
    bi = {(a, b): log10[i][j] for i, a in enumerate(vocab) for j, b in enumerate(vocab) if a != "</s>" and b != "<s>"}
    arpa = write_arpa(tmp_path / "bigram.arpa", uni, bi, backoff=-99.0)
    lexicon = write_lexicon(tmp_path / "lexicon.txt", words)
    fake = BigramTable(vocab, table)
    neural = lexicon_search_model(LETTERS, lexicon, lambda d: TransformerBeamLM(fake, d))
    kenlm = ngram_search_model(LETTERS, arpa, lexicon)
    g = torch.Generator().manual_seed(1)
    for _ in range(4):
        emissions = torch.log_softmax(2 * torch.randn(20, len(LETTERS), generator=g), -1)
        for weight in (0.5, 2.0):
            a = BeamSearchDecoder(neural, BeamSearchConfig(lm_weight=weight / math.log(10), beam_size=20))(emissions)
            b = BeamSearchDecoder(kenlm, BeamSearchConfig(lm_weight=weight, beam_size=20))(emissions)
            assert a[0].text == b[0].text
            assert a[0].score == pytest.approx(b[0].score, abs=1e-3)
    assert fake.calls > 0


def test_bad_lexicon_and_missing_lm(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("CAT\tC A T |\nDOG\n")
    with pytest.raises(ValueError, match="bad.txt:2"):
        ngram_search_model(LETTERS, None, bad)
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        ngram_search_model(LETTERS, None, tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError, match="nope.arpa"):
        ngram_search_model(LETTERS, tmp_path / "nope.arpa", None)
    foreign = write_lexicon(tmp_path / "foreign.txt", ["XYZ"])
    with pytest.raises(ValueError, match="no lexicon spelling"):
        ngram_search_model(LETTERS, None, foreign)
    unigram_only = tmp_path / "uni.arpa"
    unigram_only.write_text("\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0\t<s>\n\n\\end\\\n")
    with pytest.raises(ValueError, match="uni.arpa: not a KenLM model"):
        ngram_search_model(LETTERS, unigram_only, foreign)


def test_phone_model_decodes_words_through_a_pronunciation_lexicon(tmp_path):
    """A phone CTC model (``--units token``) with a lexicon of pronunciations: the search emits
    words, and a word with two pronunciations is found from either."""
    from w2v2.data.text import Vocabulary
    from w2v2.decode.lexicon import build_lexicon

    phones = Vocabulary.from_transcripts(["R IY D | R EH D | AH"], units="token")
    prons = {"READ": [["R", "IY", "D"], ["R", "EH", "D"]], "RED": [["R", "EH", "D"]], "A": [["AH"]]}
    lexicon = tmp_path / "lexicon.txt"
    assert build_lexicon(["READ", "RED", "A"], lexicon, set(phones.index), lambda w: prons[w]) == 3
    lm = write_arpa(tmp_path / "lm.arpa", {"<s>": -99.0, "</s>": -0.5, "<unk>": -5.0, "READ": -0.3, "RED": -2.0,
                                           "A": -1.0})
    model = ngram_search_model(phones, lm, lexicon)
    R, IY, EH, D, AH, BOUND = (phones.index[u] for u in ["R", "IY", "EH", "D", "AH", "|"])
    search = BeamSearchDecoder(model, BeamSearchConfig(lm_weight=1.0))
    v = len(phones)
    assert search(peaked([AH, BOUND, R, 0, IY, D], v))[0].text == "A READ"
    assert search(peaked([R, EH, D], v))[0].text == "READ"  # the LM prefers READ over RED
    assert BeamSearchDecoder(model, BeamSearchConfig(lm_weight=0.0))(peaked([R, IY, D], v))[0].text == "READ"
