"""Held-out splits: the pre-training validation clips and the LM's held-out sentences."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def split_heldout(items: Sequence[T], fraction: float, seed: int,
                  max_items: int | None = None) -> tuple[list[T], list[T]]:
    """(kept, held out): a random ``fraction`` of the items (at least one, at most ``max_items``) is
    held out; both parts keep the items' order, and the same seed gives the same split. A cap keeps
    the held-out part's size (and the cost of scoring it) fixed as the pool grows; the capped part
    is the first ``max_items`` of the uncapped one's draw, so raising the cap only adds items."""
    if not 0 < fraction < 1:
        raise ValueError(f"held-out fraction must be in (0, 1), got {fraction}")
    if max_items is not None and max_items < 1:
        raise ValueError(f"held-out cap must be at least 1, got {max_items}")
    n = max(1, int(round(fraction * len(items))))
    n = n if max_items is None else min(n, max_items)
    if n >= len(items):
        raise ValueError(f"only {len(items)} items: too few to hold out {fraction:.1%} and keep some")
    held = set(np.random.default_rng(seed).permutation(len(items))[:n].tolist())
    return [x for i, x in enumerate(items) if i not in held], [x for i, x in enumerate(items) if i in held]
