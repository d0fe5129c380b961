"""Letter-to-sound fallback for words outside CMUdict: espeak-ng's English pronunciation rules
(``espeak-ng -x``, its phoneme mnemonics), mapped onto the 39 ARPAbet phones of
:mod:`w2v2.analysis.phones`.

CMUdict stays the lexicon; espeak-ng is asked only for the words it lacks (names, rare words,
coinages), so that a phone model's transcripts keep their utterances and its decoding lexicon keeps
every word of the language model. Against CMUdict itself (20,000 random entries, the closest of a
word's pronunciations), the mapped espeak-ng pronunciations have a phone error rate of 10 % and 59 %
of the words come out exactly. espeak-ng is a system program (Debian's ``espeak-ng``, which the
demo's synthesis needs too); without it :func:`fallback_pronunciations` returns nothing and says so.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import subprocess
import sys
from collections.abc import Iterable

VOICE = "en-us"

# espeak-ng's English phoneme mnemonics (``-x`` output, stress marks removed) -> ARPAbet. The
# reduced and variant vowels (I2, I#, a#, @-) take their nearest full phone; the r-coloured
# diphthongs (A@, o@, O@, e@, U@, i@3) carry their R unless espeak writes an r after them; the
# syllabic consonants (@L, n-) are CMUdict's AH L / AH N; the nasal vowels of French loans (A~, O~)
# a vowel and N; a flap (t#), a glottal stop (?) and t2 are T; the palatalisation mark (;), the
# linking r (r-) and a word break (|) are dropped. Every mnemonic espeak-ng 1.51 writes for the
# 140,546 words of CMUdict and the shared 4-gram is here.
ESPEAK_TO_ARPABET: dict[str, tuple[str, ...]] = {
    "p": ("P",), "b": ("B",), "t": ("T",), "t#": ("T",), "t2": ("T",), "?": ("T",), "d": ("D",),
    "k": ("K",), "x": ("K",), "g": ("G",), "f": ("F",), "v": ("V",), "T": ("TH",), "D": ("DH",),
    "s": ("S",), "z": ("Z",), "S": ("SH",), "Z": ("ZH",), "h": ("HH",), "tS": ("CH",), "dZ": ("JH",),
    "m": ("M",), "n": ("N",), "N": ("NG",), "l": ("L",), "r": ("R",), "w": ("W",), "j": ("Y",),
    "l#": ("L",), "n-": ("AH", "N"), "@L": ("AH", "L"), "r-": (), ";": (), "|": (),
    "i": ("IY",), "i:": ("IY",), "I": ("IH",), "I2": ("IH",), "I#": ("IH",), "E": ("EH",),
    "i::": ("IY",), "e": ("EY",), "a": ("AE",), "aa": ("AE",), "a#": ("AH",), "@": ("AH",),
    "@2": ("AH",), "@-": ("AH",), "V": ("AH",), "3": ("ER",), "3:": ("ER",), "A:": ("AA",), "0": ("AA",),
    "A~": ("AA", "N"), "O": ("AO",), "O:": ("AO",), "O2": ("AO",), "O~": ("AO", "N"), "U": ("UH",),
    "u:": ("UW",), "eI": ("EY",), "aI": ("AY",), "aU": ("AW",), "o": ("OW",), "oU": ("OW",), "OI": ("OY",),
    "i@": ("IY", "AH"), "aI@": ("AY", "AH"), "aI3": ("AY", "ER"),
    "A@": ("AA", "R"), "o@": ("AO", "R"), "O@": ("AO", "R"), "e@": ("EH", "R"), "U@": ("UH", "R"),
    "i@3": ("IH", "R"),
}
RHOTIC_NEXT = frozenset({"r", "r-"})


def to_arpabet(mnemonics: str) -> list[str]:
    """One word of ``espeak-ng -x --sep=_`` output, ``"h_@_l_'oU"``, in ARPAbet: ``HH AH L OW``
    (a word espeak reads as several, ``"l_'V_n_tS r_u:_m"``, is their phones in a row). An r-coloured
    vowel followed by espeak's own r gives its R once. Unknown mnemonics raise."""
    seq = mnemonics.replace("'", "").replace(",", "").replace("_", " ").split()
    phones: list[str] = []
    for k, m in enumerate(seq):
        if m not in ESPEAK_TO_ARPABET:
            raise ValueError(f"espeak-ng phoneme {m!r} (in {mnemonics!r}) has no ARPAbet equivalent")
        mapped = ESPEAK_TO_ARPABET[m]
        if len(mapped) > 1 and mapped[-1] == "R" and k + 1 < len(seq) and seq[k + 1] in RHOTIC_NEXT:
            mapped = mapped[:-1]
        phones += mapped
    return phones


@functools.lru_cache(maxsize=1)
def espeak_program() -> str | None:
    return shutil.which("espeak-ng")


def espeak_lines(words: list[str]) -> list[str]:
    """espeak-ng's mnemonics for each word, one call for all of them (one input line, one output
    line); a word whose line is missing gets a call of its own."""
    program = espeak_program()
    assert program is not None
    cmd = [program, "-q", "-v", VOICE, "-x", "--sep=_"]
    out = subprocess.run(cmd, input="\n".join(words) + "\n", capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    if len(lines) == len(words):
        return lines
    return [subprocess.run([*cmd, w], capture_output=True, text=True, check=True).stdout.strip() for w in words]


def fallback_pronunciations(words: Iterable[str]) -> dict[str, list[str]]:
    """Word -> its espeak-ng pronunciation in ARPAbet, for words of letters and apostrophes
    (others are left out, as are words espeak-ng gives no phones). Empty, with a message on
    stderr, when espeak-ng is not installed."""
    wanted = sorted({w for w in words if w and w.replace("'", "").isalpha()})
    if not wanted:
        return {}
    if espeak_program() is None:
        print(f"espeak-ng not found: {len(wanted)} words outside CMUdict have no pronunciation "
              "(install Debian's espeak-ng for the letter-to-sound fallback)", file=sys.stderr)
        return {}
    # lower case: espeak-ng spells out an upper-case word as an acronym
    prons, unknown = {}, {}
    for word, line in zip(wanted, espeak_lines([w.lower() for w in wanted])):
        try:
            prons[word] = to_arpabet(line)
        except ValueError as e:
            unknown[word] = str(e)
    if unknown:
        print(f"{len(unknown)} words left out, their espeak-ng phonemes have no ARPAbet equivalent: "
              + "; ".join(list(unknown.values())[:3]), file=sys.stderr)
    return {w: p for w, p in prons.items() if p}


def add_letter_to_sound_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--letter-to-sound", choices=("espeak", "none"), default="espeak",
                   help="pronounce words missing from CMUdict with espeak-ng's rules mapped to ARPAbet "
                        "(default; skipped with a message when espeak-ng is not installed), or leave them out")
