"""Word and character error rates: Levenshtein distance between reference and hypothesis, summed
over a test set and divided by the number of reference words (characters), as in the paper's
tables. Characters include the spaces between words, as jiwer counts them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Minimum number of substitutions, deletions and insertions turning ``ref`` into ``hyp``."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


@dataclass
class ErrorCounts:
    errors: int = 0
    ref_len: int = 0

    def add(self, ref: Sequence, hyp: Sequence) -> None:
        self.errors += edit_distance(ref, hyp)
        self.ref_len += len(ref)

    @property
    def rate(self) -> float:
        if self.ref_len == 0:
            raise ValueError("error rate of an empty reference set")
        return self.errors / self.ref_len


def words_of(text: str) -> list[str]:
    return text.split()


def chars_of(text: str) -> list[str]:
    return list(" ".join(text.split()))


def word_error_rate(refs: Sequence[str], hyps: Sequence[str]) -> float:
    return _rate(refs, hyps, words_of)


def char_error_rate(refs: Sequence[str], hyps: Sequence[str]) -> float:
    return _rate(refs, hyps, chars_of)


def _rate(refs: Sequence[str], hyps: Sequence[str], units) -> float:
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    counts = ErrorCounts()
    for r, h in zip(refs, hyps):
        counts.add(units(r), units(h))
    return counts.rate
