"""Error analysis counts on a hand-made hypothesis set, checked against jiwer's totals;
``w2v2 analyze errors`` end to end."""

import gzip
import random

import jiwer
import pytest

from w2v2.analysis.errors import SPACE, ErrorStats, Hypothesis, analyze_errors, read_hypotheses
from w2v2.cli import main

REFS = ["THE CAT WILL GO", "A DOG RAN", "SHE WILL SING", "ZORBLAX IS HERE"]
NO_LM = ["THE CAT WIL GO", "A DOG RAN AWAY", "SHE SING", "SORBLAX IS HERE"]
WITH_LM = ["THE CAT WILL GO", "A DOG RAN", "SHE WILL SING", "IS HERE"]
LM_TEXT = "THE CAT WILL GO\nA DOG RAN AWAY\nSHE CAN SING\nIS IT HERE\n"  # ZORBLAX, WIL, SORBLAX are OOV


def hyps(texts):
    return [Hypothesis(f"u{i}", r, h) for i, (r, h) in enumerate(zip(REFS, texts))]


def test_counts_by_hand():
    vocab = set(LM_TEXT.split())
    s = ErrorStats.collect(hyps(NO_LM), vocab)
    assert dict(s.substitutions) == {("WILL", "WIL"): 1, ("ZORBLAX", "SORBLAX"): 1}
    assert dict(s.deletions) == {"WILL": 1} and dict(s.insertions) == {"AWAY": 1}
    assert s.ref_words == 13 and s.hits == 13 - 2 - 1
    # 12 of the reference words are in the LM vocabulary; the two WILL errors are on them
    assert (s.iv_words, s.iv_errors, s.oov_words, s.oov_errors) == (12, 2, 1, 1)
    assert s.hyp_oov == 2  # WIL, SORBLAX
    # characters: WILL -> WIL (L deleted); " AWAY" inserted; "WILL " deleted; Z -> S
    assert s.ref_chars == 15 + 9 + 13 + 15
    assert dict(s.char_errors) == {("L", ""): 3, ("", SPACE): 1, ("", "A"): 2, ("", "W"): 1, ("", "Y"): 1,
                                   ("W", ""): 1, ("I", ""): 1, (SPACE, ""): 1, ("Z", "S"): 1}
    summary = s.summary()
    assert summary["WER %"] == pytest.approx(100 * 4 / 13) and summary["CER %"] == pytest.approx(100 * 12 / 52)
    assert summary["error rate on IV words % (S+D)"] == pytest.approx(100 * 2 / 12)
    assert summary["error rate on OOV words % (S+D)"] == 100.0
    lm = ErrorStats.collect(hyps(WITH_LM), vocab)
    assert not lm.substitutions and not lm.insertions and dict(lm.deletions) == {"ZORBLAX": 1}
    assert (lm.iv_errors, lm.oov_errors) == (0, 1)


def test_totals_match_jiwer():
    rng = random.Random(0)
    words = "A B C D E AB BA".split()
    refs = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 8))) for _ in range(40)]
    hyps_ = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 8))) for _ in range(40)]
    s = ErrorStats.collect([Hypothesis(str(i), r, h) for i, (r, h) in enumerate(zip(refs, hyps_))])
    ref = jiwer.process_words(refs, hyps_)
    assert (sum(s.substitutions.values()), sum(s.deletions.values()), sum(s.insertions.values()), s.hits) == \
        (ref.substitutions, ref.deletions, ref.insertions, ref.hits)
    chars = jiwer.process_characters(refs, hyps_)
    assert sum(s.char_errors.values()) == chars.substitutions + chars.deletions + chars.insertions


def write_hyps(path, texts, header="id\tpath\tref\thyp"):
    path.write_text(header + "\n" + "".join(f"u{i}\tu{i}.flac\t{r}\t{h}\n" for i, (r, h) in
                                            enumerate(zip(REFS, texts))))
    return path


def test_analyze_errors_command(tmp_path, capsys):
    no_lm = write_hyps(tmp_path / "greedy.tsv", NO_LM)
    with_lm = write_hyps(tmp_path / "lm.tsv", WITH_LM)
    with gzip.open(tmp_path / "lm_text.txt.gz", "wt") as f:
        f.write(LM_TEXT)
    out = tmp_path / "report"
    assert main(["analyze", "errors", str(no_lm), "--lm-hyps", str(with_lm), "--lm-text",
                 str(tmp_path / "lm_text.txt.gz"), "--out-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"no LM: WER {100 * 4 / 13:.2f}%" in printed and f"LM: WER {100 / 13:.2f}%" in printed
    report = (out / "errors.md").read_text()
    assert "| measure | no LM | LM |" in report
    assert "| error rate on OOV words % (S+D) | 100 | 100 |" in report
    assert "| 1 | L → ∅ (3) | Z → ∅ (1) |" in report  # most frequent character errors, side by side
    assert "WILL → WIL (1)" in report and "ZORBLAX (1)" in report
    png = (out / "errors.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_lm_hypotheses_compared_on_shared_utterances(tmp_path):
    no_lm = write_hyps(tmp_path / "greedy.tsv", NO_LM)
    lm = tmp_path / "lm.tsv"
    lm.write_text("".join(no_lm.read_text().splitlines(keepends=True)[:3]))  # header + u0, u1
    with pytest.warns(UserWarning, match="comparing the 2 they share"):
        summaries = analyze_errors(no_lm, tmp_path / "o", lm_hypotheses=lm)
    assert summaries["no LM"]["reference words"] == summaries["LM"]["reference words"] == 4 + 3
    assert summaries["no LM"]["WER %"] == pytest.approx(100 * 2 / 7)  # WILL -> WIL, AWAY inserted


def test_an_id_on_two_lines_cannot_be_paired(tmp_path):
    """hyps.tsv of an older ``w2v2 evaluate`` named a/x.wav and b/x.wav both "x": pairing systems
    by id would mix them up, so it is refused; a single system needs no pairing."""
    old = tmp_path / "old.tsv"
    old.write_text("id\tpath\tref\thyp\nx\ta/x.wav\tA B\tA\nx\tb/x.wav\tC D\tC D\n")
    with pytest.raises(ValueError, match="the id 'x' is on two lines"):
        analyze_errors(old, tmp_path / "o", lm_hypotheses=old)
    assert analyze_errors(old, tmp_path / "o")["no LM"]["reference words"] == 4


def test_bad_hypotheses_file(tmp_path, capsys):
    bad = write_hyps(tmp_path / "bad.tsv", NO_LM, header="id\tpath\treference\thypothesis")
    assert main(["analyze", "errors", str(bad), "--out-dir", str(tmp_path / "o")]) == 2
    assert "bad.tsv: first line must be a header" in capsys.readouterr().err
    assert len(read_hypotheses(write_hyps(tmp_path / "ok.tsv", NO_LM))) == 4
