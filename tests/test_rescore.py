"""N-best rescoring with the Transformer LM: the combined score by hand, the flip it can cause,
and tune-decoder / evaluate --decoder rescore end to end."""

import json

import pytest

from decode_testkit import LETTERS, peaked, tiny_ctc_model, write_arpa, write_lexicon, write_manifest_tsv, write_noise
from test_decode_transformer_lm import tiny_lm
from w2v2.cli import main
from w2v2.decode.beam import BeamSearchConfig, BeamSearchDecoder, ngram_search_model
from w2v2.decode.ctc import Hypothesis
from w2v2.decode.rescore import NBest, NBestRescorer, rescored_texts
from w2v2.decode.transformer_lm import load_transformer_lm

A, B, C, T, BAR = (LETTERS.index[u] for u in "ABCT|")
WORDS = ["CAT", "CAB", "AT", "A", "TAB"]


def test_combined_score_by_hand():
    hyps = [Hypothesis("CAT AT", [], -1.0), Hypothesis("CAB", [], -1.5), Hypothesis("A CAB AT", [], -2.0)]
    nbest = NBest(hyps, lm_scores=[-9.0, -4.0, -5.0])
    assert nbest.best(0.0, 0.0).text == "CAT AT"  # no LM: the first pass's choice
    # lm_weight 0.5: -5.5, -3.5, -4.5 -> CAB
    assert nbest.best(0.5, 0.0).text == "CAB"
    # + word score 1.2 per word: -3.1, -2.3, -0.9 -> A CAB AT
    assert nbest.best(0.5, 1.2).text == "A CAB AT"
    tied = NBest([Hypothesis("X", [], -1.0), Hypothesis("Y", [], -1.0)], [-2.0, -2.0])
    assert tied.best(1.0, 0.0).text == "X"  # ties keep the first pass's order
    assert NBest([], []).best(1.0, 0.0).text == ""
    assert rescored_texts([nbest, tied], 0.5, 0.0) == ["CAB", "X"]


def test_rescoring_flips_an_ambiguous_word(tmp_path):
    """The n-gram first pass (no LM preference between CAT and CAB) follows the acoustics; the
    Transformer LM's preference, weighted enough, overturns a 0.6 / 0.4 acoustic lean, and the
    LM part of the decision is the LM's own sentence score."""
    lm = load_transformer_lm(tiny_lm(tmp_path))
    uni = {"<s>": -99.0, "</s>": -1.0, "<unk>": -3.0, **{w: -1.0 for w in WORDS}}
    search = ngram_search_model(LETTERS, write_arpa(tmp_path / "lm.arpa", uni),
                                write_lexicon(tmp_path / "lexicon.txt", WORDS))
    first = lm.next_log_probs([[]])[0]
    preferred, other = sorted(["CAT", "CAB"], key=lambda w: -float(first[lm.vocab[w]]))
    lean = {T: 0.6, B: 0.4} if other == "CAT" else {B: 0.6, T: 0.4}
    emissions = peaked([C, A, lean], floor=-30.0)
    first_pass = BeamSearchDecoder(search, BeamSearchConfig(lm_weight=1.0, nbest=8))
    nbest = NBestRescorer(first_pass, lm, 0.0, 0.0).nbest(emissions)
    assert [h.text for h in nbest.hypotheses[:2]] == [other, preferred]
    assert nbest.lm_scores[:2] == pytest.approx(lm.score_sentences([[other], [preferred]]))
    gap = nbest.lm_scores[1] - nbest.lm_scores[0]
    acoustic = nbest.hypotheses[0].score - nbest.hypotheses[1].score  # log(0.6 / 0.4) here
    assert gap > 0.05 and acoustic == pytest.approx(0.405, abs=0.01)
    assert NBestRescorer(first_pass, lm, 0.9 * acoustic / gap, 0.0)(emissions)[0].text == other
    assert NBestRescorer(first_pass, lm, 1.1 * acoustic / gap, 0.0)(emissions)[0].text == preferred


def test_tune_and_evaluate_rescore(tmp_path, capsys, monkeypatch):
    words = ["THE", "A", "CAT", "SAT", "ON", "MAT", "IT", "IS", "TO", "I"]
    model = tiny_ctc_model(tmp_path)
    lexicon = write_lexicon(tmp_path / "lexicon.txt", words)
    arpa = write_arpa(tmp_path / "lm.arpa", {"<s>": -99.0, "</s>": -1.0, "<unk>": -3.0, **{w: -1.0 for w in words}})
    tlm = tiny_lm(tmp_path, words)
    audio = [write_noise(tmp_path / f"u{i}.wav", s, seed=i) for i, s in enumerate([1.4, 0.9, 1.8])]
    dev = write_manifest_tsv(tmp_path / "dev.tsv", list(zip(audio, ["THE CAT SAT", "IT IS", "A CAT ON THE MAT"])))
    assert main(["tune-decoder", str(model), "--dev", str(dev), "--decoder", "rescore", "--lm", str(tlm)]) == 2
    assert "tune-decoder --decoder ngram" in capsys.readouterr().err  # the first pass must be tuned first
    assert main(["tune-decoder", str(model), "--dev", str(dev), "--lm", str(arpa), "--lexicon", str(lexicon),
                 "--trials", "4", "--beam-size", "20"]) == 0
    assert main(["tune-decoder", str(model), "--dev", str(dev), "--decoder", "rescore", "--lm", str(tlm),
                 "--trials", "30", "--nbest", "8"]) == 0
    saved = json.loads((model / "decoder.json").read_text())
    rescore, ngram = saved["rescore"], saved["ngram"]
    assert rescore["nbest"] == 8 and rescore["first_pass"]["lm"] == ngram["lm"] and rescore["lm"] == str(tlm)
    assert rescore["first_pass"]["lm_weight"] == ngram["lm_weight"]
    # weights (0, 0) are the n-gram search's own choice, so the tuned result is never worse on dev
    assert rescore["tuning"]["dev_wer_default"] == pytest.approx(ngram["tuning"]["dev_wer"])
    assert rescore["tuning"]["dev_wer"] <= ngram["tuning"]["dev_wer"]
    assert main(["evaluate", str(model), str(dev), "--decoder", "rescore", "--out", str(tmp_path / "ev")]) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["decoder"]["decoder"] == "rescore"
    assert metrics["wer"] == pytest.approx(rescore["tuning"]["dev_wer"])
    # all three decoders on one pass of the model: each folder as its own evaluation writes it, and the
    # n-gram search runs once per utterance (its best is the first of the rescorer's n-best)
    for dec in ("greedy", "ngram"):
        assert main(["evaluate", str(model), str(dev), "--decoder", dec, "--out", str(tmp_path / dec)]) == 0
    searches = []
    original = BeamSearchDecoder.__call__
    monkeypatch.setattr(BeamSearchDecoder, "__call__", lambda self, e: searches.append(1) or original(self, e))
    outs = [str(tmp_path / "together" / d) for d in ("greedy", "ngram", "rescore")]
    assert main(["evaluate", str(model), str(dev), "--decoder", "greedy", "ngram", "rescore", "--out", *outs]) == 0
    assert len(searches) == len(audio)
    for dec, alone in (("greedy", tmp_path / "greedy"), ("ngram", tmp_path / "ngram"), ("rescore", tmp_path / "ev")):
        together = tmp_path / "together" / dec
        assert (together / "hyps.tsv").read_text() == (alone / "hyps.tsv").read_text()
        m, a = (json.loads((d / "metrics.json").read_text()) for d in (together, alone))
        assert (m["wer"], m["cer"], m["decoder"]) == (a["wer"], a["cer"], a["decoder"])
        assert m["timed_together"] == ["greedy", "ngram", "rescore"]
    capsys.readouterr()
    assert main(["evaluate", str(model), str(dev), "--decoder", "greedy", "ngram", "--out", outs[0]]) == 2
    assert "one --out folder for each" in capsys.readouterr().err
    assert main(["evaluate", str(model), str(dev), "--decoder", "greedy", "ngram", "--lm-weight", "1",
                 "--out", *outs[:2]]) == 2
    assert "--lm-weight: with several decoders" in capsys.readouterr().err
