"""``w2v2 lm build`` (modified Kneser-Ney n-gram in ARPA + lexicon) and ``w2v2 lm train``
(word-level Transformer LM)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    raise NotImplementedError
