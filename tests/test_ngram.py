"""Modified Kneser-Ney n-gram (w2v2.decode.ngram) and lexicon: a hand computation, normalisation
of every context's distribution, and equality with KenLM's lmplz (skipped when KenLM is not built:
`make kenlm`)."""

import gzip
import math
from collections import Counter

import numpy as np
import pytest

from w2v2.cli import main
from w2v2.decode.lexicon import build_lexicon, read_lexicon
from w2v2.decode.ngram import (ArpaLM, build_binary, estimate_kneser_ney, kenlm_tool, read_sentences,
                               run_lmplz, write_arpa)

needs_lmplz = pytest.mark.skipif(kenlm_tool("lmplz") is None,
                                 reason="KenLM's lmplz is not installed (`make kenlm` builds it)")


def zipf_corpus(seed: int, sentences: int = 3000, types: int = 300) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    p = 1 / np.arange(1, types + 1)
    words = [f"w{i}" for i in range(types)]
    return [list(rng.choice(words, size=rng.integers(0, 15), p=p / p.sum())) for _ in range(sentences)]


def arpa_of(sentences, order, tmp_path, **kw) -> ArpaLM:
    write_arpa(estimate_kneser_ney(sentences, order, **kw), tmp_path / "mine.arpa")
    return ArpaLM.read(tmp_path / "mine.arpa")


def test_bigram_by_hand(tmp_path):
    # <s> a b </s> (twice), <s> b </s>. Unigram continuation counts a=1 b=2 </s>=1: t3 = 0, so the
    # fallback D = 0.5 1 1.5; bigram counts 2 2 3 1: Y = 1/5, D1 = 0.2, D2 = 1.7, D3+ = 3.
    lm = arpa_of([["a", "b"], ["a", "b"], ["b"]], 2, tmp_path)
    gamma0, uniform = (0.5 * 2 + 1 * 1) / 4, 1 / 4  # 5 unigrams, <s> excluded
    p1 = {"a": 0.5 / 4 + gamma0 * uniform, "b": 1 / 4 + gamma0 * uniform, "</s>": 0.5 / 4 + gamma0 * uniform,
          "<unk>": gamma0 * uniform}
    gamma_bos, gamma_a, gamma_b = (1.7 + 0.2) / 3, 1.7 / 2, 3 / 3
    expected = {
        ("<unk>",): (p1["<unk>"], 1), ("<s>",): (1, gamma_bos), ("</s>",): (p1["</s>"], 1),
        ("a",): (p1["a"], gamma_a), ("b",): (p1["b"], gamma_b),
        ("<s>", "a"): ((2 - 1.7) / 3 + gamma_bos * p1["a"], 1), ("<s>", "b"): ((1 - 0.2) / 3 + gamma_bos * p1["b"], 1),
        ("a", "b"): ((2 - 1.7) / 2 + gamma_a * p1["b"], 1), ("b", "</s>"): (0 + gamma_b * p1["</s>"], 1),
    }
    got = {k: v for entries in lm.entries for k, v in entries.items()}
    assert set(got) == set(expected)
    for gram, (p, b) in expected.items():
        assert got[gram] == pytest.approx((math.log10(p), math.log10(b)), abs=1e-6), gram
    assert sum(p1.values()) == pytest.approx(1)


@pytest.mark.parametrize("order,prune", [(1, ()), (2, ()), (3, ()), (4, ()), (4, (0, 1, 1)), (3, (1,))])
def test_every_context_sums_to_one(tmp_path, order, prune):
    lm = arpa_of(zipf_corpus(1, 1500, 60), order, tmp_path, prune=prune)
    vocab = [w for (w,) in lm.entries[0] if w != "<s>"]
    contexts = [[], ["<s>"], ["<s>", "w0"], ["w1", "w0", "w2"], ["w3"], ["w59", "w58"], ["<s>", "w2", "w1"], ["zz"]]
    for context in contexts:
        total = sum(10 ** lm.log10_prob(context, w) for w in vocab)
        assert total == pytest.approx(1, abs=1e-5), context


def test_reserved_tokens_and_bad_arguments(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("A B\nA <s> B\n")
    with pytest.raises(ValueError, match=r"t.txt:2: .*reserved"):
        list(read_sentences(text))
    with pytest.raises(ValueError, match="non-decreasing"):
        estimate_kneser_ney([["a"]], 3, prune=(1, 0))


def compare_arpa(mine: ArpaLM, ref: ArpaLM, tol: float = 1e-4) -> None:
    assert mine.order == ref.order
    for n, (a, b) in enumerate(zip(mine.entries, ref.entries), 1):
        assert set(a) == set(b), f"{n}-grams differ: {sorted(set(a) ^ set(b))[:5]}"
        worst = max(max(abs(a[k][0] - b[k][0]), abs(a[k][1] - b[k][1])) for k in a)
        assert worst < tol, f"{n}-grams: log10 difference {worst}"


@needs_lmplz
@pytest.mark.parametrize("order,prune,limit", [(2, (), None), (3, (), None), (4, (), None), (4, (0, 1, 1), None),
                                               (3, (0, 0, 2), None), (3, (), 100), (4, (1,), 150)])
def test_matches_lmplz(tmp_path, order, prune, limit):
    sentences = zipf_corpus(order)
    keep = {f"w{i}" for i in range(limit)} if limit else None
    run_lmplz(sentences, order, tmp_path / "ref.arpa", prune, keep, memory="100M")
    compare_arpa(arpa_of(sentences, order, tmp_path, prune=prune, keep_words=keep), ArpaLM.read(tmp_path / "ref.arpa"))


@needs_lmplz
def test_matches_lmplz_on_book_text(tmp_path, shared_data):
    with gzip.open(shared_data / "lm" / "lm_text.txt.gz", "rt") as f:
        sentences = [line.split() for _, line in zip(range(3000), f)]
    run_lmplz(sentences, 4, tmp_path / "ref.arpa", memory="100M")
    compare_arpa(arpa_of(sentences, 4, tmp_path), ArpaLM.read(tmp_path / "ref.arpa"))


def test_sentence_scores_match_kenlm(tmp_path):
    kenlm = pytest.importorskip("kenlm", reason="the optional kenlm module is not installed (`make kenlm`)")
    lm = arpa_of(zipf_corpus(5, 800, 80), 3, tmp_path)
    ref = kenlm.Model(str(tmp_path / "mine.arpa"))
    binary = None
    if kenlm_tool("build_binary"):
        build_binary(tmp_path / "mine.arpa", tmp_path / "mine.bin")
        binary = kenlm.Model(str(tmp_path / "mine.bin"))
    for words in (["w0", "w1", "w2"], ["w7", "unseen", "w0"], [], ["w3"] * 6):
        assert lm.score(words) == pytest.approx(ref.score(" ".join(words), bos=True, eos=True), abs=1e-4)
        if binary is not None:
            assert binary.score(" ".join(words)) == pytest.approx(ref.score(" ".join(words)), abs=1e-4)


def test_lexicon_format_and_filter(tmp_path):
    units = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ'")
    n = build_lexicon(["HELLO", "DON'T", "HELLO", "NAÏVE"], tmp_path / "lex.txt", units=units)
    assert n == 2
    assert (tmp_path / "lex.txt").read_text() == "HELLO\tH E L L O |\nDON'T\tD O N ' T |\n"
    assert read_lexicon(tmp_path / "lex.txt") == {"HELLO": [list("HELLO") + ["|"]], "DON'T": [list("DON'T") + ["|"]]}
    (tmp_path / "bad.txt").write_text("WORD\n")
    with pytest.raises(ValueError, match="bad.txt:1"):
        read_lexicon(tmp_path / "bad.txt")


def test_pronunciation_lexicon(tmp_path):
    """One line per pronunciation; a pronunciation with a unit the model lacks is left out, and so is
    a word left without one."""
    prons = {"READ": [["R", "IY", "D"], ["R", "EH", "D"]], "ZOO": [["Z", "UW"]], "NONE": []}
    n = build_lexicon(["READ", "ZOO", "NONE"], tmp_path / "lex.txt", {"R", "IY", "EH", "D"}, lambda w: prons[w])
    assert n == 1 and (tmp_path / "lex.txt").read_text() == "READ\tR IY D |\nREAD\tR EH D |\n"
    assert read_lexicon(tmp_path / "lex.txt") == {"READ": [["R", "IY", "D", "|"], ["R", "EH", "D", "|"]]}


def test_cli_build_phone_lexicon(tmp_path):
    """CMUdict spells HELLO two ways (HH AH0 L OW1, HH EH0 L OW1); stress is removed; without the
    letter-to-sound fallback a word outside CMUdict is left out (tests/test_g2p.py: with it)."""
    text = tmp_path / "text.txt"
    text.write_text("HELLO WORLD\nHELLO XQZWV\n")
    assert main(["lm", "build", "--text", str(text), "--order", "2", "--out", str(tmp_path / "lm.arpa"),
                 "--lexicon", str(tmp_path / "lex.txt"), "--phones", "--backend", "python",
                 "--letter-to-sound", "none"]) == 0
    lexicon = read_lexicon(tmp_path / "lex.txt")
    assert lexicon["HELLO"] == [["HH", "AH", "L", "OW", "|"], ["HH", "EH", "L", "OW", "|"]]
    assert lexicon["WORLD"] == [["W", "ER", "L", "D", "|"]] and "XQZWV" not in lexicon
    assert main(["lm", "build", "--text", str(text), "--order", "2", "--out", str(tmp_path / "lm.arpa"),
                 "--lexicon", str(tmp_path / "lex2.txt"), "--phones", "--units", "HH AH L OW W ER D",
                 "--backend", "python"]) == 0
    assert read_lexicon(tmp_path / "lex2.txt") == {"HELLO": [["HH", "AH", "L", "OW", "|"]],
                                                    "WORLD": [["W", "ER", "L", "D", "|"]]}

    # `lm lexicon` spells an existing ARPA file's words: the same lexicon without re-estimating the LM
    assert main(["lm", "lexicon", "--arpa", str(tmp_path / "lm.arpa"), "--out", str(tmp_path / "lex3.txt"),
                 "--phones", "--letter-to-sound", "none"]) == 0
    assert (tmp_path / "lex3.txt").read_text() == (tmp_path / "lex.txt").read_text()
    assert main(["lm", "lexicon", "--arpa", str(tmp_path / "lm.arpa"), "--out", str(tmp_path / "lex4.txt")]) == 0
    assert read_lexicon(tmp_path / "lex4.txt") == {w: [list(w) + ["|"]] for w in ("HELLO", "WORLD", "XQZWV")}


def test_cli_lexicon_names_a_missing_arpa_file(tmp_path, capsys):
    assert main(["lm", "lexicon", "--arpa", str(tmp_path / "none.arpa"), "--out", str(tmp_path / "lex.txt")]) != 0
    assert "none.arpa: no such ARPA file" in capsys.readouterr().err


def test_cli_build(tmp_path):
    text = tmp_path / "text.txt.gz"
    sentences = [[w.upper() for w in s] for s in zipf_corpus(3, 400, 40)]
    with gzip.open(text, "wt") as f:
        f.write("".join(" ".join(s) + "\n" for s in sentences))
    assert main(["lm", "build", "--text", str(text), "--order", "3", "--out", str(tmp_path / "lm.arpa"),
                 "--lexicon", str(tmp_path / "lex.txt"), "--vocab-limit", "20", "--backend", "python"]) == 0
    lm = ArpaLM.read(tmp_path / "lm.arpa")
    words = {w for (w,) in lm.entries[0]} - {"<s>", "</s>", "<unk>"}
    assert words == {w for w, _ in Counter(w for s in sentences for w in s).most_common(20)}
    assert read_lexicon(tmp_path / "lex.txt") == {w: [list(w) + ["|"]] for w in words}


def test_arpa_scoring_of_an_unknown_word_without_unk_is_an_error(tmp_path):
    """A hand-written bigram model without <unk>: known words back off as the ARPA format says
    (p(b | a) = backoff(a) * p(b)), an unknown word is refused instead of searched for forever."""
    (tmp_path / "lm.arpa").write_text("\\data\\\nngram 1=3\nngram 2=1\n\n\\1-grams:\n-1.0 <s> -0.3\n-0.5 a -0.2\n"
                                      "-0.7 b\n\n\\2-grams:\n-0.1 <s> a\n\n\\end\\\n")
    lm = ArpaLM.read(tmp_path / "lm.arpa")
    assert lm.log10_prob(["<s>"], "a") == pytest.approx(-0.1)
    assert lm.log10_prob(["a"], "b") == pytest.approx(-0.2 - 0.7)
    with pytest.raises(KeyError, match="'zebra' is not in the model's vocabulary"):
        lm.log10_prob(["a"], "zebra")
