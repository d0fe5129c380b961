"""The lexicon of lexicon-constrained beam search (flashlight / fairseq ``w2l_decoder``).

One line per spelling: ``WORD<TAB>W O R D |``, the word's letters followed by the word boundary
"|" (the CTC target units of section 4.3, :func:`w2v2.data.text.split_units`), or for a phone
model its pronunciations, ``WORD<TAB>W ER D |`` (one line each). The decoder only emits words
listed here, each spelled by the units of one of its lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from ..data.text import Vocabulary
from ..interop.model_dir import atomic_write


def letters(word: str) -> list[list[str]]:
    """A word's one spelling in letters."""
    return [list(word)]


def build_lexicon(words: Iterable[str], out_path: str | Path, units: set[str] | None = None,
                  spellings: Callable[[str], list[list[str]]] = letters) -> int:
    """Write the lexicon of ``words`` (deduplicated, in first-seen order) to ``out_path``: each of
    a word's ``spellings`` (its letters by default; its pronunciations for a phone model), then
    the word boundary "|".

    ``units``: the acoustic model's units; spellings with a unit outside them are skipped (the
    decoder could never emit them), and so are words left without a spelling. Returns the number
    of words written."""
    lines, written = [], 0
    for word in dict.fromkeys(words):
        if not word or any(c.isspace() for c in word):
            raise ValueError(f"lexicon word {word!r}: empty or contains whitespace")
        kept = [s for s in spellings(word) if units is None or all(u in units for u in s)]
        lines += [f"{word}\t{' '.join([*s, Vocabulary.BOUNDARY])}\n" for s in kept]
        written += bool(kept)
    atomic_write(Path(out_path), lambda p: p.write_text("".join(lines), encoding="utf-8"))
    return written


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
