"""The text normaliser (against the shared data's own normalised transcripts and hand-worked
cases) and the CTC vocabulary's handling of characters it lacks."""

import csv
import warnings

import pytest

from w2v2.data.text import (Vocabulary, normalize_text, number_to_words, ordinal_to_words, split_units,
                            year_to_words)


def read_transcripts(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def test_matches_the_shared_data_normalisation(shared_data):
    """Every corpus ships raw_text and the normalised text: the normaliser must reproduce it,
    except for the one LJ Speech line with a roman numeral (GEORGE II -> GEORGE THE SECOND)."""
    differ = []
    for corpus in ("kathleen", "ljspeech", "fsdd"):
        for row in read_transcripts(shared_data / corpus / "transcripts.tsv"):
            if normalize_text(row["raw_text"]) != row["text"]:
                differ.append(row["id"])
    assert differ == ["LJ002-0199"]


@pytest.mark.parametrize("raw,expected", [
    ("Hello,  world!", "HELLO WORLD"),
    ("Café naïve RÉSUMÉ", "CAFE NAIVE RESUME"),
    ("Cæsar's œuvre, Straße, Łódź", "CAESAR'S OEUVRE STRASSE LODZ"),
    ("Mr. and Mrs. Smith met Dr. Who on St. Paul's day, etc.",
     "MISTER AND MISSUS SMITH MET DOCTOR WHO ON SAINT PAUL'S DAY ET CETERA"),
    ("salt & pepper, 50% off", "SALT AND PEPPER FIFTY PERCENT OFF"),
    ("£10 and $1", "TEN POUNDS AND ONE DOLLAR"),
    ("in 1462, 1803 and 1800", "IN FOURTEEN SIXTY TWO EIGHTEEN OH THREE AND EIGHTEEN HUNDRED"),
    ("5719 writs, 1,500 men, 2024", "FIVE THOUSAND SEVEN HUNDRED NINETEEN WRITS ONE THOUSAND FIVE HUNDRED MEN "
                                    "TWO THOUSAND TWENTY FOUR"),
    ("the 1st, 22nd and 103rd", "THE FIRST TWENTY SECOND AND ONE HUNDRED THIRD"),
    ("pi is 3.14", "PI IS THREE POINT ONE FOUR"),
    ("x" + "9" * 16, "X " + " ".join(["NINE"] * 16)),
    ("well-known and/or long—dash snake_case", "WELL KNOWN AND OR LONG DASH SNAKE CASE"),
    ("don’t 'quote' o'brien's", "DON'T QUOTE O'BRIEN'S"),
    ("God bless 'em, 'twas fine", "GOD BLESS 'EM 'TWAS FINE"),
    ("Ωmega 東京", "ΩMEGA 東京"),  # kept, so that the vocabulary reports them
    ("  \t\n ", ""),
])
def test_rules(raw, expected):
    assert normalize_text(raw) == expected
    assert normalize_text(expected) == expected


def test_number_words_by_hand():
    assert number_to_words(0) == "ZERO"
    assert number_to_words(1462) == "ONE THOUSAND FOUR HUNDRED SIXTY TWO"
    assert number_to_words(2_000_019) == "TWO MILLION NINETEEN"
    assert ordinal_to_words(12) == "TWELFTH" and ordinal_to_words(40) == "FORTIETH" and ordinal_to_words(3) == "THIRD"
    assert year_to_words(1905) == "NINETEEN OH FIVE" and year_to_words(1999) == "NINETEEN NINETY NINE"


def test_split_units():
    assert split_units("AB  C") == ["A", "B", "|", "C"]
    assert split_units("HH AH | L OW", "token") == ["HH", "AH", "|", "L", "OW"]


def vocab() -> Vocabulary:
    return Vocabulary.from_transcripts(["HELLO WORLD", "IT'S"])


def test_vocabulary_layout_and_round_trip():
    v = vocab()
    assert v.tokens[:3] == ["<pad>", "<unk>", "|"]
    assert set(v.tokens[3:]) == set("HELOWRDITS'")
    ids = v.encode("HELLO WORLD")
    assert len(ids) == len("HELLO|WORLD") and ids[5] == v.index["|"]
    assert v.decode(ids) == "HELLO WORLD"
    assert Vocabulary.from_dict(v.to_dict()).tokens == v.tokens


def test_encode_refuses_unknown_characters_by_default():
    with pytest.raises(ValueError, match=r"line 3: characters not in the vocabulary: 'Z' in 'HEZE'"):
        vocab().encode("HEZE", source="line 3")


def test_encode_maps_or_drops_with_a_warning():
    v = vocab()
    with pytest.warns(UserWarning, match="<unk>"):
        assert v.encode("HZE", unknown="map") == [v.index["H"], v.index["<unk>"], v.index["E"]]
    with pytest.warns(UserWarning, match="dropped"):
        assert v.encode("HZE", unknown="drop") == [v.index["H"], v.index["E"]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert v.encode("HE", unknown="map") == [v.index["H"], v.index["E"]]  # nothing unknown: no warning


def test_normalised_text_leaves_only_non_ascii_letters_for_the_vocabulary():
    letters = Vocabulary(["<pad>", "<unk>", "|", "'"] + [chr(c) for c in range(ord("A"), ord("Z") + 1)])
    text = normalize_text("Ωmega costs £5 — déjà vu!")
    assert letters.missing(text) == {"Ω"}
    assert letters.missing(normalize_text("Naïve café, 3rd & 4th")) == set()


def test_token_units():
    v = Vocabulary.from_transcripts(["HH AH | L OW"], units="token")
    assert v.decode(v.encode("HH AH | L OW")) == "HH AH | L OW"
    with pytest.raises(ValueError, match="'ZZ'"):
        v.encode("ZZ AH")


@pytest.mark.parametrize("tokens,units,message", [
    (["<unk>", "<pad>"], "char", "blank"), (["<pad>", "A", "A"], "char", "duplicate"),
    (["<pad>"], "phones", "units"),
])
def test_vocabulary_construction_errors(tokens, units, message):
    with pytest.raises(ValueError, match=message):
        Vocabulary(tokens, units)


def test_from_dict_needs_contiguous_indices():
    with pytest.raises(ValueError, match="indices"):
        Vocabulary.from_dict({"<pad>": 0, "A": 2})
