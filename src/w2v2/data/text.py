"""Transcript normalisation and the letter vocabulary of CTC fine-tuning (paper section 4.3).

:func:`normalize_text` follows the convention of the shared data (LibriSpeech / LJ Speech style):
upper-case letters, apostrophes inside words, single spaces. In order:

1. Unicode: NFKD, combining marks (accents) dropped, upper-cased; ligatures and letters without a
   decomposition are spelled in ASCII (Æ -> AE, Œ -> OE, Ø -> O, Ł -> L, Ð/Đ -> D, Þ -> TH; ß -> SS
   by upper-casing). Other non-ASCII letters (Greek, Cyrillic, CJK, ...) are kept, so that the
   vocabulary check (:meth:`Vocabulary.encode`) reports them instead of losing them silently.
2. Abbreviations with a full stop, as in the LJ Speech README: MR. -> MISTER, MRS. -> MISSUS,
   DR. -> DOCTOR, ST. -> SAINT, ... ; ETC -> ET CETERA.
3. Symbols: & -> AND, % -> PERCENT, £N -> N POUNDS, $N -> N DOLLARS.
4. Numbers: 1100-1999 (four digits, no thousands separator) are years (1462 -> FOURTEEN SIXTY TWO,
   1803 -> EIGHTEEN OH THREE, 1800 -> EIGHTEEN HUNDRED); thousands separators are dropped
   (1,000 -> 1000); ordinals 1ST/2ND/3RD/4TH -> FIRST ...; decimals 3.25 -> THREE POINT TWO FIVE;
   runs of more than 15 digits are read digit by digit; other digits as cardinals
   (5719 -> FIVE THOUSAND SEVEN HUNDRED NINETEEN).
5. Hyphens, dashes, slashes and underscores become spaces; every other non-letter is dropped.
6. Apostrophes (' and the curly ones) are kept inside words (DON'T, O'BRIEN'S) and at the start of
   the elisions 'EM, 'TIS, 'TWAS, 'TWERE, 'TWILL, 'TWOULD, 'TWIXT; others are dropped.

The result is idempotent (normalising twice changes nothing) and uses only letters, "'" and " ".
On the shared data's transcripts, ``normalize_text(raw_text) == text`` for every kathleen and fsdd
utterance; the LJ Speech exceptions are roman numerals after names (GEORGE II -> GEORGE THE SECOND).
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Iterable

_ONES = ("ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN ELEVEN TWELVE THIRTEEN FOURTEEN FIFTEEN "
         "SIXTEEN SEVENTEEN EIGHTEEN NINETEEN").split()
_TENS = "_ _ TWENTY THIRTY FORTY FIFTY SIXTY SEVENTY EIGHTY NINETY".split()
_SCALES = [(10**12, "TRILLION"), (10**9, "BILLION"), (10**6, "MILLION"), (1000, "THOUSAND"), (100, "HUNDRED")]
_ORDINAL = {"ONE": "FIRST", "TWO": "SECOND", "THREE": "THIRD", "FIVE": "FIFTH", "EIGHT": "EIGHTH", "NINE": "NINTH",
            "TWELVE": "TWELFTH"}


def number_to_words(n: int) -> str:
    """Cardinal number in words, e.g. 1462 -> ONE THOUSAND FOUR HUNDRED SIXTY TWO."""
    if n < 0:
        return "MINUS " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for value, name in _SCALES:
        if n >= value:
            head = number_to_words(n // value) + " " + name
            return head if n % value == 0 else head + " " + number_to_words(n % value)
    raise AssertionError("unreachable")


def ordinal_to_words(n: int) -> str:
    words = number_to_words(n).split()
    last = words[-1]
    if last in _ORDINAL:
        words[-1] = _ORDINAL[last]
    elif last.endswith("Y"):
        words[-1] = last[:-1] + "IETH"
    else:
        words[-1] = last + "TH"
    return " ".join(words)


def two_digits(n: int) -> str:
    """Minutes and the second half of years as spoken: 5 -> OH FIVE, 30 -> THIRTY."""
    return f"OH {number_to_words(n)}" if n < 10 else number_to_words(n)


def year_to_words(year: int) -> str:
    """A year as read aloud: 1462 -> FOURTEEN SIXTY TWO, 1803 -> EIGHTEEN OH THREE, 1800 -> EIGHTEEN
    HUNDRED, 2007 -> TWO THOUSAND SEVEN, 2026 -> TWENTY TWENTY SIX."""
    if 2000 <= year < 2010:
        return number_to_words(year)
    head, tail = divmod(year, 100)
    return number_to_words(head) + " " + ("HUNDRED" if tail == 0 else two_digits(tail))


def _digits(run: str) -> str:
    return " ".join(_ONES[int(d)] for d in run)


def _cardinal(run: str) -> str:
    return _digits(run) if len(run) > 15 else number_to_words(int(run))


_ABBREVIATIONS = {"MRS": "MISSUS", "MR": "MISTER", "DR": "DOCTOR", "ST": "SAINT", "CO": "COMPANY", "JR": "JUNIOR",
                  "MAJ": "MAJOR", "GEN": "GENERAL", "DRS": "DOCTORS", "REV": "REVEREND", "LT": "LIEUTENANT",
                  "HON": "HONORABLE", "SGT": "SERGEANT", "CAPT": "CAPTAIN", "ESQ": "ESQUIRE", "LTD": "LIMITED",
                  "COL": "COLONEL", "FT": "FORT"}
_ABBREV_RE = re.compile(r"\b(" + "|".join(_ABBREVIATIONS) + r")\.")
_TRANSLIT = str.maketrans({"Æ": "AE", "Œ": "OE", "Ø": "O", "Ł": "L", "Ð": "D", "Đ": "D", "Þ": "TH", "Ħ": "H"})
_ELISIONS = {"EM", "TIS", "TWAS", "TWERE", "TWILL", "TWOULD", "TWIXT"}
_CURRENCY = {"£": ("POUND", "POUNDS"), "$": ("DOLLAR", "DOLLARS")}


def _money(m: re.Match) -> str:
    amount = m[2].replace(",", "")
    one, many = _CURRENCY[m[1]]
    return f" {_cardinal(amount)} {one if amount.lstrip('0') == '1' else many} "


def _spell_numbers(s: str) -> str:
    s = re.sub(r"([£$]) ?(\d[\d,]*\d|\d)", _money, s)
    s = re.sub(r"(?<![\d,.])(1[1-9]\d\d)(?!\d|[,.]\d)", lambda m: " " + year_to_words(int(m[1])) + " ", s)
    s = re.sub(r"(?<=\d),(?=\d{3})", "", s)  # 1,000 -> 1000
    s = re.sub(r"(\d+)\.(\d+)", lambda m: f" {_cardinal(m[1])} POINT {_digits(m[2])} ", s)
    s = re.sub(r"(\d+)(ST|ND|RD|TH)\b", lambda m: " " + ordinal_to_words(int(m[1])) + " "
               if len(m[1]) <= 15 else " " + _digits(m[1]) + " ", s)
    return re.sub(r"\d+", lambda m: " " + _cardinal(m[0]) + " ", s)


def _apostrophes(word: str) -> str:
    core = word.strip("'")
    return "'" + core if word.startswith("'") and core in _ELISIONS else core


def normalize_text(text: str) -> str:
    """The rules of the module docstring."""
    s = unicodedata.normalize("NFKD", text)
    s = "".join(c for c in s if not unicodedata.combining(c)).upper().translate(_TRANSLIT)
    s = unicodedata.normalize("NFKD", s)  # upper-casing can produce decomposable letters again
    s = "".join(c for c in s if not unicodedata.combining(c))
    s = s.replace("’", "'").replace("‘", "'").replace("ʼ", "'")
    s = _ABBREV_RE.sub(lambda m: " " + _ABBREVIATIONS[m[1]] + " ", s)
    s = re.sub(r"\bETC\b", " ET CETERA ", s)
    s = s.replace("&", " AND ").replace("%", " PERCENT ")
    s = _spell_numbers(s)
    s = re.sub(r"[-‐‑‒–—―/_]", " ", s)
    s = "".join(c if (c.isalpha() or c in " '") else " " for c in s)
    return " ".join(w for w in map(_apostrophes, s.split()) if w)


def split_units(text: str, units: str = "char") -> list[str]:
    """The CTC target units of a transcript: letters with "|" between words (``"char"``), or its
    space-separated units (``"token"``, words already separated by " | ")."""
    if units == "token":
        return text.split()
    return list(Vocabulary.BOUNDARY.join(text.split()))


class Vocabulary:
    """CTC vocabulary: the blank "<pad>" at index 0, "<unk>", the word boundary "|", then units.

    ``units="char"``: letters, words separated by spaces (the paper's letter targets).
    ``units="token"``: space-separated units (e.g. phones), words separated by " | ".
    """

    BLANK, UNK, BOUNDARY = "<pad>", "<unk>", "|"

    def __init__(self, tokens: list[str], units: str = "char") -> None:
        if units not in ("char", "token"):
            raise ValueError(f"units must be 'char' or 'token', got {units!r}")
        self.units = units
        if tokens[:1] != [self.BLANK]:
            raise ValueError("the CTC blank <pad> must be token 0")
        if len(set(tokens)) != len(tokens):
            raise ValueError("duplicate tokens in vocabulary")
        self.tokens = tokens
        self.index = {t: i for i, t in enumerate(tokens)}

    @classmethod
    def from_transcripts(cls, texts: Iterable[str], units: str = "char") -> Vocabulary:
        found = {u for t in texts for u in split_units(t, units)}
        return cls([cls.BLANK, cls.UNK, cls.BOUNDARY] + sorted(found - {cls.BOUNDARY}), units)

    @classmethod
    def from_dict(cls, d: dict[str, int], units: str = "char") -> Vocabulary:
        if sorted(d.values()) != list(range(len(d))):
            raise ValueError(f"vocabulary indices must be 0..{len(d) - 1}, each once; got {sorted(d.values())}")
        return cls(sorted(d, key=d.get), units)

    def units_of(self, text: str) -> list[str]:
        """The units of a transcript, with "|" between words."""
        return split_units(text, self.units)

    def to_dict(self) -> dict[str, int]:
        return dict(self.index)

    def __len__(self) -> int:
        return len(self.tokens)

    def missing(self, text: str) -> set[str]:
        return {u for u in self.units_of(text) if u not in self.index}

    def encode(self, text: str, unknown: str = "error", source: str = "") -> list[int]:
        """Letters with "|" between words. ``unknown``: "error" refuses characters the vocabulary
        lacks; "map" maps them to <unk> with a warning; "drop" removes them with a warning."""
        miss = self.missing(text)
        if miss:
            where = f"{source}: " if source else ""
            msg = f"{where}characters not in the vocabulary: {''.join(sorted(miss))!r} in {text!r}"
            if unknown == "error":
                raise ValueError(msg + " (normalise the text, or allow mapping to <unk>)")
            warnings.warn(msg + (" -> <unk>" if unknown == "map" else " -> dropped"), stacklevel=2)
        ids = []
        for u in self.units_of(text):
            if u in self.index:
                ids.append(self.index[u])
            elif unknown == "map":
                ids.append(self.index[self.UNK])
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Unit ids (already collapsed, blanks removed) -> text ("char": words separated by spaces;
        "token": units separated by spaces, words by " | ")."""
        units = [self.tokens[i] for i in ids if i != 0]
        if self.units == "token":
            return " ".join(units)
        return " ".join("".join(units).replace(self.BOUNDARY, " ").split())
