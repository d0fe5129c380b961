"""Transcript normalisation and the letter vocabulary of CTC fine-tuning (paper section 4.3).

The normaliser follows the LibriSpeech convention of the shared data: upper-case A-Z, apostrophes
inside words, single spaces; accents are stripped (NFKD), digits are spelled out as words
(cardinals, "1ST" -> "FIRST"), "&" -> "AND", "%" -> "PERCENT", hyphens, dashes and slashes
become spaces, other punctuation is dropped. Letters that have no ASCII form (e.g. "ß", Greek,
CJK) are kept, so that the vocabulary check can report them rather than silently lose them.
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


def _spell_numbers(text: str) -> str:
    text = re.sub(r"(\d+)(ST|ND|RD|TH)\b", lambda m: " " + ordinal_to_words(int(m[1])) + " ", text)
    return re.sub(r"\d+", lambda m: " " + number_to_words(int(m[0])) + " ", text)


def normalize_text(text: str) -> str:
    s = unicodedata.normalize("NFKD", text)
    s = "".join(c for c in s if not unicodedata.combining(c)).upper()
    s = s.replace("’", "'").replace("‘", "'").replace("&", " AND ").replace("%", " PERCENT ")
    s = re.sub(r"(?<=\d),(?=\d{3})", "", s)  # 1,000 -> 1000
    s = _spell_numbers(s)
    s = re.sub(r"[-‐‑‒–—―/_]", " ", s)
    s = "".join(c if (c.isalpha() or c in " '") else " " for c in s)
    s = re.sub(r"(?<![A-Z])'|'(?![A-Z])", " ", s)  # apostrophes only inside words
    return " ".join(s.split())


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
        found = {u for t in texts for u in (t.split() if units == "token" else t.replace(" ", ""))}
        return cls([cls.BLANK, cls.UNK, cls.BOUNDARY] + sorted(found - {cls.BOUNDARY}), units)

    @classmethod
    def from_dict(cls, d: dict[str, int], units: str = "char") -> Vocabulary:
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
