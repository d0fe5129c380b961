"""Held-out splits: the pre-training validation clips and the LM's held-out sentences."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def split_heldout(items: Sequence[T], fraction: float, seed: int) -> tuple[list[T], list[T]]:
    """(kept, held out): a random ``fraction`` of the items (at least one) is held out; both parts
    keep the items' order, and the same seed gives the same split."""
    if not 0 < fraction < 1:
        raise ValueError(f"held-out fraction must be in (0, 1), got {fraction}")
    n = max(1, int(round(fraction * len(items))))
    if n >= len(items):
        raise ValueError(f"only {len(items)} items: too few to hold out {fraction:.1%} and keep some")
    held = set(np.random.default_rng(seed).permutation(len(items))[:n].tolist())
    return [x for i, x in enumerate(items) if i not in held], [x for i, x in enumerate(items) if i in held]
