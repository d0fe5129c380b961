"""The letter-to-sound fallback (espeak-ng's rules mapped to ARPAbet) for words outside CMUdict."""

import random

import pytest

from w2v2.analysis import g2p
from w2v2.analysis.g2p import ESPEAK_TO_ARPABET, fallback_pronunciations, to_arpabet
from w2v2.analysis.phones import cmu_lexicon, cmu_lexicon_for, cmu_pronunciations, phone_spellings
from w2v2.cli import main
from w2v2.data.manifest import Entry, read_manifest, write_manifest
from w2v2.decode.lexicon import read_lexicon
from w2v2.decode.metrics import edit_distance

needs_espeak = pytest.mark.skipif(g2p.espeak_program() is None, reason="espeak-ng is not installed")


def test_mnemonics_map_to_arpabet_by_hand():
    """Stress marks dropped; two-letter mnemonics are one phone; a syllabic l is AH L; an r-coloured
    vowel gives its R once when espeak writes an r after it; the linking r is dropped."""
    assert to_arpabet("h_@_l_'oU") == ["HH", "AH", "L", "OW"]
    assert to_arpabet("w_'O:_t#_3") == ["W", "AO", "T", "ER"]
    assert to_arpabet("tS_'3:_tS") == ["CH", "ER", "CH"]
    assert to_arpabet("l_'I_t_@L") == ["L", "IH", "T", "AH", "L"]
    assert to_arpabet("f_'A@_m") == ["F", "AA", "R", "M"]
    assert to_arpabet("f_'e@_r_I2_N") == ["F", "EH", "R", "IH", "NG"]
    assert to_arpabet("l_'eI_3_r-_I_N") == ["L", "EY", "ER", "IH", "NG"]  # CMUdict's LAYERING
    assert to_arpabet("l_'V_n_tS r_u:_m") == ["L", "AH", "N", "CH", "R", "UW", "M"]  # read as two words
    with pytest.raises(ValueError, match="'Q9'"):
        to_arpabet("k_Q9")


def test_a_word_with_an_unknown_phoneme_is_left_out_and_named(monkeypatch, capsys):
    monkeypatch.setattr(g2p, "espeak_program", lambda: "espeak-ng")
    monkeypatch.setattr(g2p, "espeak_lines", lambda words: ["h_@_l_'oU", "k_Q9"][:len(words)])
    assert fallback_pronunciations(["HELO", "KQ"]) == {"HELO": ["HH", "AH", "L", "OW"]}
    assert "1 words left out" in capsys.readouterr().err


def test_every_mapped_phone_is_one_of_cmudicts_39():
    arpabet = {p for prons in cmu_pronunciations().values() for pron in prons for p in pron}
    assert len(arpabet) == 39
    assert {p for phones in ESPEAK_TO_ARPABET.values() for p in phones} <= arpabet


@needs_espeak
def test_fallback_agrees_with_cmudict_on_words_it_lists():
    """Against CMUdict itself on 400 random entries: phone error rate against the word's closest
    CMUdict pronunciation under 15 % (measured on 20,000: 10.1 %), and at least 45 % of the words
    exactly (59.4 %); every mnemonic espeak-ng writes for them is in the table."""
    prons = cmu_pronunciations()
    words = random.Random(0).sample(sorted(w for w in prons if w.isalpha()), 400)
    guessed = fallback_pronunciations(words)
    assert len(guessed) == len(words)
    errors = [min(edit_distance(guessed[w], p) for p in prons[w]) for w in words]
    reference = sum(len(min(prons[w], key=lambda p: edit_distance(guessed[w], p))) for w in words)
    assert sum(errors) / reference < 0.15, sum(errors) / reference
    assert sum(e == 0 for e in errors) / len(words) >= 0.45


@needs_espeak
def test_a_compound_outside_cmudict_is_spelled_like_its_parts():
    """NIGHTGLOW is not in CMUdict; its parts are: the fallback says NIGHT + GLOW. A word CMUdict
    lists keeps CMUdict's pronunciations, and the fallback is asked for nothing."""
    lex = cmu_lexicon()
    assert "NIGHTGLOW" not in lex
    lexicon, guessed = cmu_lexicon_for(["HELLO", "NIGHTGLOW", "HELLO"])
    assert guessed == {"NIGHTGLOW": lex["NIGHT"] + lex["GLOW"]} and lexicon["HELLO"] == lex["HELLO"]
    assert cmu_lexicon_for(["HELLO"])[1] == {}
    spell = phone_spellings(["HELLO", "NIGHTGLOW"])
    assert spell("NIGHTGLOW") == [lex["NIGHT"] + lex["GLOW"]] and spell("HELLO") == cmu_pronunciations()["HELLO"]
    assert phone_spellings(["NIGHTGLOW"], letter_to_sound=False)("NIGHTGLOW") == []


@needs_espeak
def test_phonemize_and_phone_lexicon_commands_keep_words_outside_cmudict(tmp_path, capsys):
    entries = [Entry(tmp_path / "a.flac", 16000, "HELLO NIGHTGLOW"), Entry(tmp_path / "b.flac", 16000, "HELLO")]
    write_manifest(tmp_path / "m.tsv", entries)
    assert main(["data", "phonemize", str(tmp_path / "m.tsv"), "--out", str(tmp_path / "p.tsv")]) == 0
    assert [e.text for e in read_manifest(tmp_path / "p.tsv")] == ["HH AH L OW | N AY T G L OW", "HH AH L OW"]
    assert "NIGHTGLOW (N AY T G L OW)" in capsys.readouterr().out
    assert main(["data", "phonemize", str(tmp_path / "m.tsv"), "--out", str(tmp_path / "q.tsv"),
                 "--letter-to-sound", "none"]) == 0
    assert [e.text for e in read_manifest(tmp_path / "q.tsv")] == ["HH AH L OW"]

    text = tmp_path / "text.txt"
    text.write_text("HELLO NIGHTGLOW\n")
    assert main(["lm", "build", "--text", str(text), "--order", "2", "--out", str(tmp_path / "lm.arpa"),
                 "--lexicon", str(tmp_path / "lex.txt"), "--phones", "--backend", "python"]) == 0
    assert read_lexicon(tmp_path / "lex.txt")["NIGHTGLOW"] == [["N", "AY", "T", "G", "L", "OW", "|"]]


def test_without_espeak_nothing_is_guessed_and_it_says_so(monkeypatch, capsys):
    monkeypatch.setattr(g2p, "espeak_program", lambda: None)
    assert fallback_pronunciations(["NIGHTGLOW", "XQZWV"]) == {}
    assert "espeak-ng not found: 2 words outside CMUdict" in capsys.readouterr().err
    assert cmu_lexicon_for(["NIGHTGLOW"])[1] == {}
