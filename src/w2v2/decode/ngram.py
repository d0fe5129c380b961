"""Word n-gram language model: interpolated modified Kneser-Ney in ARPA format (paper section 4.3's
4-gram; the estimator of KenLM's ``lmplz``, Heafield et al. 2013).

Chen & Goodman (1998) interpolated modified Kneser-Ney, as ``lmplz`` computes it:

* sentences are ``<s> w1 .. wk </s>``; n-grams of the highest order keep raw counts, lower orders
  keep continuation counts ``N1+(. w)`` except n-grams starting with ``<s>`` (raw counts);
* discounts D1, D2, D3+ per order from the count-of-counts t1..t4 of those adjusted counts
  (Chen & Goodman eq. 26): ``Y = t1 / (t1 + 2 t2)``, ``Dk = k - (k + 1) Y t(k+1) / tk``;
* ``p(w|h) = (a(hw) - D(a(hw))) / sum_v a(hv) + gamma(h) p(w|h')`` with
  ``gamma(h) = (D1 N1(h.) + D2 N2(h.) + D3+ N3+(h.)) / sum_v a(hv)``; unigrams are interpolated
  with the uniform distribution over the vocabulary (``<unk>`` included, ``<s>`` excluded);
* pruning (``--prune t1 t2 ...``): n-grams whose raw count is at most the threshold of their order
  are dropped and their mass moves to the backoff of their context, as ``lmplz --prune``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

UNK, BOS, EOS = "<unk>", "<s>", "</s>"
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)  # lmplz --discount_fallback


def read_sentences(path: str | Path) -> Iterator[list[str]]:
    """Words of each line of a text file (``.gz`` read as gzip); blank lines are empty sentences."""
    raise NotImplementedError


@dataclass
class NGramModel:
    """An estimated back-off model: per order n, the n-grams as word-id rows and their log10
    probability and backoff (0 where the n-gram is no context, and for the highest order)."""

    vocab: list[str]  # word of each id; 0 <unk>, 1 <s>, 2 </s>
    ngrams: list[np.ndarray]  # order n -> (count, n) int ids
    log10_prob: list[np.ndarray]
    log10_backoff: list[np.ndarray]

    @property
    def order(self) -> int:
        return len(self.ngrams)


def estimate_kneser_ney(sentences: Iterable[Sequence[str]], order: int, prune: Sequence[int] = (),
                        keep_words: set[str] | None = None) -> NGramModel:
    """Interpolated modified Kneser-Ney estimate (module docstring). ``keep_words``: n-grams with
    any other word are pruned (lmplz ``--limit_vocab_file``)."""
    raise NotImplementedError


def write_arpa(model: NGramModel, path: str | Path) -> None:
    raise NotImplementedError


class ArpaLM:
    """An ARPA back-off model read into dictionaries, for scoring (small models, tests)."""

    def __init__(self, order: int, entries: list[dict[tuple[str, ...], tuple[float, float]]]) -> None:
        self.order = order
        self.entries = entries  # order n -> {ngram: (log10 prob, log10 backoff)}

    @classmethod
    def read(cls, path: str | Path) -> ArpaLM:
        raise NotImplementedError

    def log10_prob(self, context: Sequence[str], word: str) -> float:
        """log10 p(word | context) by back-off (Katz form of the interpolated model)."""
        raise NotImplementedError

    def score(self, words: Sequence[str]) -> float:
        """log10 probability of ``<s> words </s>`` (the sentence end included), as kenlm's ``score``."""
        raise NotImplementedError


def lmplz_path() -> str | None:
    """KenLM's ``lmplz`` on PATH or next to this Python (the Makefile installs it into .venv/bin)."""
    raise NotImplementedError


def run_lmplz(sentences: Iterable[Sequence[str]], order: int, out: str | Path, prune: Sequence[int] = (),
              keep_words: set[str] | None = None, memory: str = "20%") -> None:
    """Estimate with KenLM's ``lmplz`` (same model as :func:`estimate_kneser_ney`)."""
    raise NotImplementedError


def build_arpa(text: str | Path, order: int, out: str | Path, prune: Sequence[int] = (),
               vocab_limit: int | None = None, backend: str = "auto") -> str:
    """The ``w2v2 lm build`` pipeline: read ``text``, keep the ``vocab_limit`` most frequent words
    (others pruned, as lmplz ``--limit_vocab_file``), estimate with ``backend`` ("lmplz",
    "python", or "auto": lmplz when installed) and write ARPA to ``out``. Returns the backend used."""
    raise NotImplementedError
