"""Word n-gram language model: interpolated modified Kneser-Ney in ARPA format (paper section 4.3's
4-gram; the estimator of KenLM's ``lmplz``, Heafield et al. 2013).

Chen & Goodman (1998) interpolated modified Kneser-Ney, as ``lmplz`` computes it:

* sentences are ``<s> w1 .. wk </s>``; n-grams of the highest order keep raw counts, lower orders
  keep continuation counts ``N1+(. w)`` except n-grams starting with ``<s>`` (raw counts);
* discounts D1, D2, D3+ per order from the count-of-counts t1..t4 of those adjusted counts
  (Chen & Goodman eq. 26): ``Y = t1 / (t1 + 2 t2)``, ``Dk = k - (k + 1) Y t(k+1) / tk``, or
  lmplz's ``--discount_fallback`` values (0.5, 1, 1.5) where a tk is 0 or a Dk out of [0, k];
* ``p(w|h) = (a(hw) - D(a(hw))) / sum_v a(hv) + gamma(h) p(w|h')`` with
  ``gamma(h) = (D1 N1(h.) + D2 N2(h.) + D3+ N3+(h.)) / sum_v a(hv)``; unigrams are interpolated
  with the uniform distribution over the vocabulary (``<unk>`` included, ``<s>`` excluded);
  ``<s>`` gets probability 1 and ``gamma(h)`` is the ARPA backoff of ``h``;
* pruning (lmplz ``--prune t1 t2 ...``): n-grams whose raw count is at most the threshold of their
  order are dropped, and so are n-grams with a word outside ``keep_words`` (``--limit_vocab_file``);
  discounts and denominators still see them and their mass moves to ``gamma`` of their context.

Implementation: every n-gram of order n gets an id, its index among the sorted distinct n-grams;
an n-gram is the pair (id of its first n-1 words, last word), so each order is one ``np.unique``
over the corpus positions, and the context/suffix of every n-gram are array lookups.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..interop.model_dir import atomic_write

UNK, BOS, EOS = "<unk>", "<s>", "</s>"
SPECIALS = (UNK, BOS, EOS)  # word ids 0, 1, 2 (as lmplz numbers them)
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)  # lmplz --discount_fallback


def read_sentences(path: str | Path) -> Iterator[list[str]]:
    """Words of each line of a text file (``.gz`` read as gzip); blank lines are empty sentences,
    as lmplz counts them. ``<s>``, ``</s>`` and ``<unk>`` in the text are refused."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such text file")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                words = line.split()
                if any(w in SPECIALS for w in words):
                    raise ValueError(f"{path}:{number}: the text contains a reserved token ({', '.join(SPECIALS)})")
                yield words
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as e:
        raise ValueError(f"{path}: not a readable UTF-8 text file: {e}") from e


@dataclass
class NGramModel:
    """An estimated back-off model: per order n, the kept n-grams as word-id rows with their log10
    probability and log10 backoff (0 where the n-gram is no context, and for the highest order)."""

    vocab: list[str]  # word of each id; 0 <unk>, 1 <s>, 2 </s>
    ngrams: list[np.ndarray]  # order n -> (count, n) int ids
    log10_prob: list[np.ndarray]
    log10_backoff: list[np.ndarray]

    @property
    def order(self) -> int:
        return len(self.ngrams)


@dataclass
class _Order:
    """The distinct n-grams of one order: id = row index, sorted by (context id, last word)."""

    context: np.ndarray  # id of the first n-1 words in the previous order (0 for unigrams)
    suffix: np.ndarray  # id of the last n-1 words in the previous order (0 for unigrams)
    words: np.ndarray  # (count, n) word ids
    raw: np.ndarray  # raw count


def _encode(sentences: Iterable[Sequence[str]]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Word ids of ``<s> w1 .. wk </s>`` for all sentences, concatenated; the vocabulary (specials
    first, then words as first seen); and for each position the position of its sentence's ``</s>``."""
    index = {w: i for i, w in enumerate(SPECIALS)}
    ids: list[int] = []
    ends: list[int] = []
    for words in tqdm(sentences, desc="reading text", unit=" lines", leave=False, mininterval=1.0):
        start = len(ids)
        ids.append(1)
        ids.extend(index.setdefault(w, len(index)) for w in words)
        ids.append(2)
        ends.extend([len(ids) - 1] * (len(ids) - start))
    if not ids:
        raise ValueError("no sentences to estimate a language model from")
    return list(index), np.asarray(ids, dtype=np.int64), np.asarray(ends, dtype=np.int64)


def _count(seq: np.ndarray, ends: np.ndarray, vocab_size: int, order: int) -> list[_Order]:
    """Distinct n-grams of orders 1..``order`` that lie inside a sentence, with raw counts."""
    positions = np.arange(len(seq))
    zeros = np.zeros(vocab_size, dtype=np.int64)
    orders = [_Order(zeros, zeros, np.arange(vocab_size)[:, None], np.bincount(seq, minlength=vocab_size))]
    pos_id = seq  # id of the n-gram starting at each position (-1: it would cross </s>)
    for n in range(2, order + 1):
        valid = np.flatnonzero((pos_id >= 0) & (positions + n - 1 <= ends))
        keys = pos_id[valid] * vocab_size + seq[valid + n - 1]
        uniq, first, inverse, raw = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
        context, last = np.divmod(uniq, vocab_size)
        words = np.concatenate([orders[-1].words[context], last[:, None]], axis=1)
        orders.append(_Order(context, pos_id[valid[first] + 1], words, raw))
        pos_id = np.full(len(seq), -1, dtype=np.int64)
        pos_id[valid] = inverse
    return orders


def _discounts(adjusted: np.ndarray, n: int) -> np.ndarray:
    """[0, D1, D2, D3+] from the count-of-counts of adjusted counts (Chen & Goodman eq. 26)."""
    t = np.bincount(np.minimum(adjusted, 5), minlength=6)[:5].astype(np.float64)
    if np.all(t[1:4] > 0):
        y = t[1] / (t[1] + 2 * t[2])
        d = np.array([0.0] + [k - (k + 1) * y * t[k + 1] / t[k] for k in (1, 2, 3)])
        if all(0 <= d[k] <= k for k in (1, 2, 3)):
            return d
    print(f"order {n}: modified Kneser-Ney discounts undefined on this data (t1..t4 = {t[1:].astype(int)}); "
          f"using lmplz's fallback D = {FALLBACK_DISCOUNTS}", file=sys.stderr)
    return np.array((0.0,) + FALLBACK_DISCOUNTS)


def _adjusted_counts(orders: list[_Order]) -> list[np.ndarray]:
    """Raw counts at the highest order and for n-grams starting with ``<s>``, else the number of
    distinct words seen before the n-gram, N1+(. w) (continuation counts); 0 for ``<s>``."""
    adjusted = []
    for n, o in enumerate(orders, 1):
        if n == len(orders):
            a = o.raw.copy()
        else:
            a = np.bincount(orders[n].suffix, minlength=len(o.raw)).astype(np.int64)
            if n > 1:
                a = np.where(o.words[:, 0] == 1, o.raw, a)
        adjusted.append(a)
    adjusted[0][1] = 0
    return adjusted


def _kept(orders: list[_Order], thresholds: list[int], bad_word: np.ndarray) -> list[np.ndarray]:
    """lmplz's pruning: raw count above the order's threshold and no word outside the kept
    vocabulary; the special unigrams always stay."""
    kept = []
    for o, threshold in zip(orders, thresholds):
        k = (o.raw > threshold) & ~bad_word[o.words].any(axis=1)
        kept.append(k)
    kept[0][: len(SPECIALS)] = True
    return kept


def _interpolate(orders: list[_Order], adjusted: list[np.ndarray],
                 kept: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Interpolated probabilities of every n-gram and gamma of every context, order by order."""
    probs, gammas = [], []
    for n, (o, a, k) in enumerate(zip(orders, adjusted, kept), 1):
        d = _discounts(a, n)
        contexts = len(orders[n - 2].raw) if n > 1 else 1
        denominator = np.maximum(np.bincount(o.context, weights=a, minlength=contexts), 1)
        mass = np.where(k, d[np.minimum(a, 3)], a)  # discounted mass; pruned n-grams give all theirs
        gamma = np.bincount(o.context, weights=mass, minlength=contexts) / denominator
        uninterp = (a - d[np.minimum(a, 3)]) / denominator[o.context]
        if n == 1:
            p = uninterp + gamma[0] / (np.count_nonzero(k) - 1)  # uniform over the vocabulary but <s>
            p[1] = 1.0
        else:
            p = uninterp + gamma[o.context] * probs[-1][o.suffix]
        probs.append(p)
        gammas.append(gamma)
    return probs, gammas


def estimate_kneser_ney(sentences: Iterable[Sequence[str]], order: int, prune: Sequence[int] = (),
                        keep_words: set[str] | None = None) -> NGramModel:
    """Interpolated modified Kneser-Ney estimate (module docstring). ``prune``: lmplz's thresholds
    per order (non-decreasing, the last one repeated). ``keep_words``: n-grams with any other word
    are pruned (lmplz ``--limit_vocab_file``)."""
    if order < 1:
        raise ValueError(f"n-gram order must be at least 1, got {order}")
    thresholds = list(prune or [0])[:order]
    if any(b < a for a, b in zip(thresholds, thresholds[1:])) or min(thresholds) < 0:
        raise ValueError(f"pruning thresholds must be non-negative and non-decreasing, got {list(prune)}")
    thresholds += [thresholds[-1]] * (order - len(thresholds))
    vocab, seq, ends = _encode(sentences)
    orders = _count(seq, ends, len(vocab), order)
    bad_word = np.zeros(len(vocab), dtype=bool)
    if keep_words is not None:
        bad_word[len(SPECIALS):] = [w not in keep_words for w in vocab[len(SPECIALS):]]
    kept = _kept(orders, thresholds, bad_word)
    probs, gammas = _interpolate(orders, _adjusted_counts(orders), kept)

    model = NGramModel(vocab, [], [], [])
    for n, (o, p, k) in enumerate(zip(orders, probs, kept), 1):
        backoff = np.zeros(len(o.raw))  # log10 gamma for contexts; none after </s> and <unk>
        if n < order:
            last = o.words[:, -1]
            is_context = (np.bincount(orders[n].context, minlength=len(o.raw)) > 0) & (last != 0) & (last != 2)
            backoff[is_context] = np.log10(gammas[n][is_context])
        model.ngrams.append(o.words[k])
        model.log10_prob.append(np.minimum(0.0, np.log10(p[k])))
        model.log10_backoff.append(backoff[k])
    return model


def write_arpa(model: NGramModel, path: str | Path) -> None:
    """ARPA text: header counts, then per order ``log10 p <TAB> w1 .. wn [<TAB> log10 backoff]``."""
    vocab = np.asarray(model.vocab, dtype=object)

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\\data\\\n")
            f.writelines(f"ngram {n}={len(g)}\n" for n, g in enumerate(model.ngrams, 1))
            for n, (grams, probs, backoffs) in enumerate(zip(model.ngrams, model.log10_prob, model.log10_backoff), 1):
                f.write(f"\n\\{n}-grams:\n")
                text = [" ".join(row) for row in vocab[grams]]
                if n < model.order:
                    f.writelines(f"{p:.7g}\t{t}\t{b:.7g}\n" for p, t, b in zip(probs.tolist(), text, backoffs.tolist()))
                else:
                    f.writelines(f"{p:.7g}\t{t}\n" for p, t in zip(probs.tolist(), text))
            f.write("\n\\end\\\n")

    atomic_write(Path(path), write)


def iter_arpa(path: str | Path, max_order: int = 0) -> Iterator[tuple[int, tuple[str, ...], float, float]]:
    """(order, n-gram, log10 prob, log10 backoff) for every entry of an ARPA file, section by section;
    with ``max_order`` the file is read only up to that order's section."""
    n = 0
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith(("ngram ", "\\data\\", "\\end\\")):
                continue
            if line.startswith("\\") and line.endswith("-grams:"):
                n = int(line[1:-7])
                if max_order and n > max_order:
                    return
                continue
            fields = line.split()
            if n == 0 or len(fields) not in (n + 1, n + 2):
                raise ValueError(f"{path}:{number}: not an ARPA {n}-gram line: {line[:80]!r}")
            backoff = float(fields[n + 1]) if len(fields) == n + 2 else 0.0
            yield n, tuple(fields[1: n + 1]), float(fields[0]), backoff
    if n == 0:
        raise ValueError(f"{path}: no n-gram sections (not an ARPA file)")


class ArpaLM:
    """An ARPA back-off model read into dictionaries, for scoring (small models, tests)."""

    def __init__(self, order: int, entries: list[dict[tuple[str, ...], tuple[float, float]]]) -> None:
        self.order = order
        self.entries = entries  # order n -> {ngram: (log10 prob, log10 backoff)}

    @classmethod
    def read(cls, path: str | Path) -> ArpaLM:
        entries: list[dict[tuple[str, ...], tuple[float, float]]] = []
        for n, gram, prob, backoff in iter_arpa(path):
            while len(entries) < n:
                entries.append({})
            entries[n - 1][gram] = (prob, backoff)
        return cls(len(entries), entries)

    def log10_prob(self, context: Sequence[str], word: str) -> float:
        """log10 p(word | context) by back-off from the longest known n-gram."""
        if (word,) not in self.entries[0]:
            if (UNK,) not in self.entries[0]:
                raise KeyError(f"{word!r} is not in the model's vocabulary and the model has no {UNK}")
            word = UNK
        context = tuple(context)[-(self.order - 1):] if self.order > 1 else ()
        backoff = 0.0
        while True:
            gram = context + (word,)
            if gram in self.entries[len(gram) - 1]:
                return backoff + self.entries[len(gram) - 1][gram][0]
            backoff += self.entries[len(context) - 1].get(context, (0.0, 0.0))[1]
            context = context[1:]

    def score(self, words: Sequence[str]) -> float:
        """log10 probability of ``<s> words </s>`` (the sentence end included), as kenlm's ``score``."""
        history = [BOS]
        total = 0.0
        for w in [*words, EOS]:
            total += self.log10_prob(history, w)
            history.append(w)
        return total


def kenlm_tool(name: str) -> str | None:
    """A KenLM program (``lmplz``, ``build_binary``) next to this Python (``make kenlm`` installs
    them into .venv/bin) or on PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if os.access(here, os.X_OK) else shutil.which(name)


def build_binary(arpa: str | Path, out: str | Path) -> None:
    """KenLM's binary format of an ARPA model (loads in a fraction of the time; flashlight and
    kenlm read both)."""
    tool = kenlm_tool("build_binary")
    if tool is None:
        raise FileNotFoundError("build_binary (KenLM) is not installed; `make kenlm` builds it into .venv/bin")
    proc = subprocess.run([tool, str(arpa), str(out) + ".tmp"], capture_output=True, text=True)
    if proc.returncode != 0:
        Path(str(out) + ".tmp").unlink(missing_ok=True)
        raise ValueError(f"build_binary failed on {arpa}:\n{proc.stderr[-2000:]}")
    os.replace(str(out) + ".tmp", out)


def run_lmplz(sentences: Iterable[Sequence[str]], order: int, out: str | Path, prune: Sequence[int] = (),
              keep_words: set[str] | None = None, memory: str = "1G") -> None:
    """Estimate with KenLM's ``lmplz`` (the model of :func:`estimate_kneser_ney`). ``memory``:
    lmplz's sort memory ``-S`` (a size or a share of RAM such as "20%"; lmplz fills it, so a large
    share costs seconds even on a tiny text; beyond it lmplz sorts on disk)."""
    lmplz = kenlm_tool("lmplz")
    if lmplz is None:
        raise FileNotFoundError("lmplz (KenLM) is not installed; `make kenlm` builds it into .venv/bin")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lmplz.") as tmp:
        cmd = [lmplz, "-o", str(order), "-S", memory, "-T", tmp, "--discount_fallback", "--arpa", str(out) + ".tmp"]
        if prune:
            cmd += ["--prune", *map(str, prune)]
        if keep_words is not None:
            (Path(tmp) / "vocab.txt").write_text("\n".join(sorted(keep_words)) + "\n", encoding="utf-8")
            cmd += ["--limit_vocab_file", str(Path(tmp) / "vocab.txt")]
        with open(Path(tmp) / "log.txt", "w+") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=log, stderr=log, text=True, encoding="utf-8")
            try:
                for words in tqdm(sentences, desc="lmplz", unit=" lines", mininterval=1.0):
                    proc.stdin.write(" ".join(words) + "\n")
                proc.stdin.close()
            except BrokenPipeError:
                pass
            except BaseException:  # the text could not be read: stop lmplz before it sees an end of input
                proc.kill()
                proc.wait()
                raise
            if proc.wait() != 0:
                log.seek(0)
                raise ValueError(f"lmplz failed ({' '.join(cmd)}):\n{log.read()[-2000:]}")
    os.replace(str(out) + ".tmp", out)


def top_words(path: str | Path, limit: int) -> set[str]:
    """The ``limit`` most frequent words of a text file (ties: first seen first)."""
    counts = Counter(w for words in read_sentences(path) for w in words)
    return {w for w, _ in counts.most_common(limit)}


def build_arpa(text: str | Path, order: int, out: str | Path, prune: Sequence[int] = (),
               vocab_limit: int | None = None, backend: str = "auto", memory: str = "1G") -> str:
    """The ``w2v2 lm build`` pipeline: read ``text``, keep the ``vocab_limit`` most frequent words
    (others pruned, as lmplz ``--limit_vocab_file``), estimate with ``backend`` ("lmplz",
    "python", or "auto": lmplz when installed) and write ARPA to ``out``. Returns the backend used."""
    if backend not in ("auto", "lmplz", "python"):
        raise ValueError(f"unknown n-gram backend {backend!r} (auto, lmplz or python)")
    if not Path(text).is_file():
        raise FileNotFoundError(f"{text}: no such text file")
    if backend == "auto":
        backend = "lmplz" if kenlm_tool("lmplz") else "python"
    keep = top_words(text, vocab_limit) if vocab_limit else None
    if backend == "lmplz":
        run_lmplz(read_sentences(text), order, out, prune, keep, memory)
    else:
        write_arpa(estimate_kneser_ney(read_sentences(text), order, prune, keep), out)
    return backend
