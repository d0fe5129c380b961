"""The lexicon of lexicon-constrained beam search (flashlight / fairseq ``w2l_decoder``).

One line per word: ``WORD<TAB>W O R D |``, the word's letters followed by the word boundary "|"
(the CTC target units of section 4.3, :func:`w2v2.data.text.split_units`). The decoder only
emits words listed here, each spelled by the units of its line.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def spell(word: str) -> list[str]:
    """The CTC units of one word: its letters, then the word boundary "|"."""
    raise NotImplementedError


def build_lexicon(words: Iterable[str], out_path: str | Path, units: set[str] | None = None) -> int:
    """Write the lexicon of ``words`` (deduplicated, in first-seen order) to ``out_path``.

    ``units``: the acoustic model's letters; words spelled with a letter outside it are skipped
    (the decoder could never emit them). Returns the number of words written."""
    raise NotImplementedError


def read_lexicon(path: str | Path) -> dict[str, list[list[str]]]:
    """{word: [spelling, ...]} from a lexicon file (a word may have several spellings)."""
    raise NotImplementedError
