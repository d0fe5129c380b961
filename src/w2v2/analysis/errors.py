"""Error analysis (paper appendix E, tables 11-12): the most frequent word substitutions,
deletions and insertions, character confusions, and errors on words inside / outside the language
model's vocabulary, for a system without and with a language model side by side.

Words and characters are aligned by minimum edit distance (jiwer's alignment, the same one its
WER uses); a substitution chunk of n words pairs the i-th reference word with the i-th hypothesis
word. Characters are aligned over the whole utterance, the space included (shown as "␣").
"""

from __future__ import annotations

import csv
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jiwer
import numpy as np
from matplotlib.figure import Figure

from ..decode.ngram import read_sentences
from .report import markdown_table, save_figure, write_text

SPACE = "␣"


@dataclass(frozen=True)
class Hypothesis:
    id: str
    ref: str
    hyp: str


def read_hypotheses(path: str | Path) -> list[Hypothesis]:
    """The TSV written by ``w2v2 evaluate``: header with (at least) ``id``, ``ref`` and ``hyp``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: hypotheses file not found")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None or not {"id", "ref", "hyp"} <= set(header):
            raise ValueError(f"{path}: first line must be a header with columns 'id', 'ref' and 'hyp' "
                             f"(got {header})")
        col = {name: i for i, name in enumerate(header)}
        out = []
        for lineno, row in enumerate(reader, start=2):
            if not row or not any(row):
                continue
            if len(row) != len(header):
                raise ValueError(f"{path}:{lineno}: expected {len(header)} tab-separated columns, got {len(row)}")
            out.append(Hypothesis(row[col["id"]], row[col["ref"]], row[col["hyp"]]))
    if not out:
        raise ValueError(f"{path}: no hypotheses")
    return out


def by_id(hyps: list[Hypothesis], path: str | Path) -> dict[str, Hypothesis]:
    """Hypotheses by utterance id, for pairing two systems; an id on two lines is refused (files
    of an older ``w2v2 evaluate``, which wrote file stems, can repeat one)."""
    out: dict[str, Hypothesis] = {}
    for h in hyps:
        if out.setdefault(h.id, h) is not h:
            raise ValueError(f"{path}: the id {h.id!r} is on two lines, so the utterances cannot be paired "
                             "(files from an older w2v2 evaluate name utterances by file stem: evaluate again)")
    return out


def read_lm_vocabulary(path: str | Path) -> set[str]:
    """The words of a language-model text (plain or .gz, one sentence per line)."""
    return {w for words in read_sentences(path) for w in words}


def edit_ops(ref: Sequence[str], hyp: Sequence[str]) -> list[tuple[str, str | None, str | None]]:
    """Minimum edit distance alignment as (op, ref token, hyp token), op one of "equal",
    "substitute", "delete" (hyp None) and "insert" (ref None). Tokens hold no whitespace."""
    if not ref and not hyp:
        return []
    out = jiwer.process_words([" ".join(ref)], [" ".join(hyp)])
    ops: list[tuple[str, str | None, str | None]] = []
    for c in out.alignments[0]:
        r, h = ref[c.ref_start_idx:c.ref_end_idx], hyp[c.hyp_start_idx:c.hyp_end_idx]
        if c.type in ("equal", "substitute"):
            ops += [(c.type, a, b) for a, b in zip(r, h)]
        elif c.type == "delete":
            ops += [("delete", a, None) for a in r]
        else:
            ops += [("insert", None, b) for b in h]
    return ops


def chars(text: str) -> list[str]:
    return [SPACE if c == " " else c for c in " ".join(text.split())]


@dataclass
class ErrorStats:
    """Counts over a set of hypotheses; ``lm_vocab`` splits reference words into in- and out-of-vocabulary."""

    ref_words: int = 0
    hits: int = 0
    substitutions: Counter = field(default_factory=Counter)  # (ref, hyp) -> n
    deletions: Counter = field(default_factory=Counter)  # ref -> n
    insertions: Counter = field(default_factory=Counter)  # hyp -> n
    ref_chars: int = 0
    char_errors: Counter = field(default_factory=Counter)  # (ref char or "", hyp char or "") -> n
    iv_words: int = 0
    iv_errors: int = 0
    oov_words: int = 0
    oov_errors: int = 0
    hyp_words: int = 0
    hyp_oov: int = 0

    @classmethod
    def collect(cls, hyps: Sequence[Hypothesis], lm_vocab: set[str] | None = None) -> ErrorStats:
        s = cls()
        for h in hyps:
            ref, hyp = h.ref.split(), h.hyp.split()
            s.ref_words += len(ref)
            s.hyp_words += len(hyp)
            for op, r, w in edit_ops(ref, hyp):
                if op == "equal":
                    s.hits += 1
                elif op == "substitute":
                    s.substitutions[r, w] += 1
                elif op == "delete":
                    s.deletions[r] += 1
                else:
                    s.insertions[w] += 1
                if lm_vocab is not None and r is not None:
                    iv, wrong = r in lm_vocab, op != "equal"
                    s.iv_words += iv
                    s.oov_words += not iv
                    s.iv_errors += iv and wrong
                    s.oov_errors += (not iv) and wrong
            if lm_vocab is not None:
                s.hyp_oov += sum(w not in lm_vocab for w in hyp)
            ref_c = chars(h.ref)
            s.ref_chars += len(ref_c)
            for op, r, w in edit_ops(ref_c, chars(h.hyp)):
                if op != "equal":
                    s.char_errors[r or "", w or ""] += 1
        return s

    @property
    def word_errors(self) -> int:
        return sum(self.substitutions.values()) + sum(self.deletions.values()) + sum(self.insertions.values())

    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {
            "reference words": self.ref_words,
            "WER %": 100 * self.word_errors / max(self.ref_words, 1),
            "substitutions": sum(self.substitutions.values()),
            "deletions": sum(self.deletions.values()),
            "insertions": sum(self.insertions.values()),
            "CER %": 100 * sum(self.char_errors.values()) / max(self.ref_chars, 1),
        }
        if self.iv_words + self.oov_words:
            out.update({
                "in-vocabulary reference words": self.iv_words,
                "error rate on IV words % (S+D)": 100 * self.iv_errors / max(self.iv_words, 1),
                "out-of-vocabulary reference words": self.oov_words,
                "error rate on OOV words % (S+D)": 100 * self.oov_errors / max(self.oov_words, 1),
                "hypothesis words outside the LM vocabulary": self.hyp_oov,
            })
        return out


def _show(c: str) -> str:
    return c if c else "∅"


def ranked(stats: dict[str, ErrorStats], kind: str, top: int) -> list[list[object]]:
    """Rows of the ``top`` most frequent errors of ``kind`` per system, side by side."""
    def label(item: tuple[object, int]) -> str:
        key, n = item
        if kind == "substitutions":
            return f"{key[0]} → {key[1]} ({n})"
        if kind == "char_errors":
            return f"{_show(key[0])} → {_show(key[1])} ({n})"
        return f"{key} ({n})"
    columns = [[label(i) for i in getattr(s, kind).most_common(top)] for s in stats.values()]
    depth = max((len(c) for c in columns), default=0)
    return [[k + 1] + [c[k] if k < len(c) else "" for c in columns] for k in range(depth)]


def plot_errors(stats: dict[str, ErrorStats]) -> Figure:
    """Error types per system, and (with an LM text) the error rate on IV vs OOV reference words."""
    with_vocab = any(s.iv_words + s.oov_words for s in stats.values())
    fig = Figure(figsize=(10 if with_vocab else 5.5, 4))
    names = list(stats)
    x = np.arange(3)
    ax = fig.add_subplot(1, 2 if with_vocab else 1, 1)
    width = 0.8 / len(names)
    for i, (name, s) in enumerate(stats.items()):
        summ = s.summary()
        ax.bar(x + i * width, [summ["substitutions"], summ["deletions"], summ["insertions"]], width, label=name)
    ax.set_xticks(x + width * (len(names) - 1) / 2, ["substitutions", "deletions", "insertions"])
    ax.set_ylabel("word errors")
    ax.legend()
    if with_vocab:
        ax2 = fig.add_subplot(1, 2, 2)
        for i, (name, s) in enumerate(stats.items()):
            rates = [100 * s.iv_errors / max(s.iv_words, 1), 100 * s.oov_errors / max(s.oov_words, 1)]
            ax2.bar(np.arange(2) + i * width, rates, width, label=name)
        ax2.set_xticks(np.arange(2) + width * (len(names) - 1) / 2, ["in LM vocabulary", "out of LM vocabulary"])
        ax2.set_ylabel("reference words in error (S+D) %")
        ax2.legend()
    fig.suptitle("Word errors (paper appendix E)")
    return fig


def analyze_errors(hypotheses: str | Path, out_dir: str | Path, lm_hypotheses: str | Path | None = None,
                   lm_text: str | Path | None = None, top: int = 20) -> dict[str, dict[str, object]]:
    """Writes ``errors.md`` and ``errors.png`` to ``out_dir``; returns the summary per system."""
    systems = {"no LM": read_hypotheses(hypotheses)}
    if lm_hypotheses is not None:
        no_lm, lm = by_id(systems["no LM"], hypotheses), by_id(read_hypotheses(lm_hypotheses), lm_hypotheses)
        common = [i for i in no_lm if i in lm]
        if not common:
            raise ValueError(f"{hypotheses} and {lm_hypotheses} have no utterance id in common")
        if len(no_lm) != len(common) or len(lm) != len(common):
            warnings.warn(f"{hypotheses} and {lm_hypotheses} hold different utterances: comparing the "
                          f"{len(common)} they share", stacklevel=2)
        systems = {"no LM": [no_lm[i] for i in common], "LM": [lm[i] for i in common]}
    vocab = read_lm_vocabulary(lm_text) if lm_text is not None else None
    stats = {name: ErrorStats.collect(h, vocab) for name, h in systems.items()}
    names = list(stats)
    summaries = {name: s.summary() for name, s in stats.items()}
    n_utts = len(next(iter(systems.values())))
    report = ["# Error analysis (paper appendix E)\n",
              f"{n_utts} utterances; " + ", ".join(f"{name}: `{p}`" for name, p in
                                                   zip(names, [hypotheses, lm_hypotheses]))
              + (f"; LM vocabulary: {len(vocab)} words from `{lm_text}`" if vocab is not None else "") + ".\n",
              "## Summary\n",
              markdown_table(["measure"] + names, [[k] + [summaries[n].get(k, "") for n in names]
                                                   for k in summaries[names[0]]], "l" + "r" * len(names)),
              "\n![word errors](errors.png)\n"]
    for kind, title in [("substitutions", "word substitutions (reference → hypothesis)"),
                        ("deletions", "deleted reference words"), ("insertions", "inserted hypothesis words"),
                        ("char_errors", "character errors (reference → hypothesis, ∅ = none, ␣ = space)")]:
        rows = ranked(stats, kind, top)
        report += [f"\n## Most frequent {title}\n",
                   markdown_table(["#"] + names, rows, "r") if rows else "none\n"]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_figure(plot_errors(stats), out / "errors.png")
    write_text(out / "errors.md", "\n".join(report))
    return summaries
