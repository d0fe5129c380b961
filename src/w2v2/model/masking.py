"""Span masking and negative sampling (paper section 3.1 and appendix A; fairseq semantics)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def compute_mask_indices(lengths: list[int] | np.ndarray, total: int, mask_prob: float, mask_length: int,
                         min_masks: int, rng: np.random.Generator, same_count: bool = True) -> np.ndarray:
    """Boolean (B, total) mask of spans over valid steps only (padding never masked).

    Per utterance of valid length L: int(mask_prob * L / mask_length + U[0,1)) span starts (at least
    ``min_masks``), chosen without replacement; each masks ``mask_length`` steps; spans may overlap.
    ``mask_prob`` is fairseq's (start probability x span length: 0.65 for p = 0.065, M = 10). With
    ``same_count`` every row is subsampled to the smallest count, so all utterances in a batch
    have the same number of masked steps (the contrastive loss gathers them as a (B, M) block).
    """
    mask = np.zeros((len(lengths), total), dtype=bool)
    chosen = []
    for length in lengths:
        length = int(length)
        n = max(min_masks, int(mask_prob * length / mask_length + rng.random()))
        span = mask_length
        if length - span <= n:
            span = max(length - n - 1, 0)
        n = min(n, max(length - span, 0))
        if n == 0:
            chosen.append(np.zeros(0, dtype=np.int64))
            continue
        starts = rng.choice(length - span, n, replace=False)
        idx = (starts[:, None] + np.arange(mask_length)[None, :]).reshape(-1)
        chosen.append(np.unique(idx[idx < length]))
    if same_count and chosen:
        m = min(len(c) for c in chosen)
        chosen = [c if len(c) == m else rng.choice(c, m, replace=False) for c in chosen]
    for i, c in enumerate(chosen):
        mask[i, c] = True
    return mask


def sample_negatives(batch: int, num_masked: int, num_negatives: int, device: torch.device | str = "cpu",
                     generator: torch.Generator | None = None) -> Tensor:
    """(B, M, K) indices into the M masked steps of the same utterance, uniform over the other
    M - 1 steps: never the step itself (section 3.2, "K distractors ... from other masked time
    steps of the same utterance")."""
    if num_masked < 2:
        raise ValueError(f"need at least 2 masked steps per utterance to draw negatives, got {num_masked}")
    idx = torch.randint(0, num_masked - 1, (batch, num_masked, num_negatives), generator=generator)
    own = torch.arange(num_masked).view(1, -1, 1)
    idx = idx + (idx >= own).long()
    return idx.to(device)


def lengths_to_mask(lengths: Tensor, total: int) -> Tensor:
    """(B,) valid lengths -> (B, total) bool, True on valid steps."""
    return torch.arange(total, device=lengths.device)[None, :] < lengths[:, None]
