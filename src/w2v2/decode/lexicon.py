"""The lexicon of lexicon-constrained beam search (flashlight / fairseq ``w2l_decoder``).

One line per word: ``WORD<TAB>W O R D |``, the word's letters followed by the word boundary "|"
(the CTC target units of section 4.3, :func:`w2v2.data.text.split_units`). The decoder only
emits words listed here, each spelled by the units of its line.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..data.text import Vocabulary
from ..interop.model_dir import atomic_write


def spell(word: str) -> list[str]:
    """The CTC units of one word: its letters, then the word boundary "|"."""
    return list(word) + [Vocabulary.BOUNDARY]


def build_lexicon(words: Iterable[str], out_path: str | Path, units: set[str] | None = None) -> int:
    """Write the lexicon of ``words`` (deduplicated, in first-seen order) to ``out_path``.

    ``units``: the acoustic model's letters; words spelled with a letter outside it are skipped
    (the decoder could never emit them). Returns the number of words written."""
    lines = []
    for word in dict.fromkeys(words):
        if not word or any(c.isspace() for c in word):
            raise ValueError(f"lexicon word {word!r}: empty or contains whitespace")
        if units is None or all(c in units for c in word):
            lines.append(f"{word}\t{' '.join(spell(word))}\n")
    atomic_write(Path(out_path), lambda p: p.write_text("".join(lines), encoding="utf-8"))
    return len(lines)


def read_lexicon(path: str | Path) -> dict[str, list[list[str]]]:
    """{word: [spelling, ...]} from a lexicon file (a word may have several spellings)."""
    lexicon: dict[str, list[list[str]]] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            word, *spelling = line.split()
            if not spelling:
                raise ValueError(f"{path}:{number}: word {word!r} has no spelling (expected 'WORD<TAB>W O R D |')")
            lexicon.setdefault(word, []).append(spelling)
    return lexicon
