"""k-means clustering of frame vectors: discrete units for models without a codebook (the
continuous-target variant of the paper's table 4), as HuBERT (Hsu et al. 2021, section IV-F)
clusters a model's features to measure their phone information."""

from __future__ import annotations

import numpy as np
import torch


def kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """(k, D) initial centres: the first drawn uniformly, each next one with probability
    proportional to its squared distance from the nearest centre chosen so far (Arthur and
    Vassilvitskii 2007)."""
    first = int(torch.randint(len(x), (1,), generator=generator))
    centres = [x[first]]
    nearest = ((x - x[first]) ** 2).sum(1)
    for _ in range(1, k):
        if float(nearest.sum()) <= 0:  # fewer distinct vectors than k: the rest repeat a centre
            i = int(torch.randint(len(x), (1,), generator=generator))
        else:
            i = int(torch.multinomial(nearest, 1, generator=generator))
        centres.append(x[i])
        nearest = torch.minimum(nearest, ((x - x[i]) ** 2).sum(1))
    return torch.stack(centres)


def kmeans(vectors: np.ndarray, k: int, seed: int = 0, iterations: int = 100) -> np.ndarray:
    """(N,) cluster index of each of the (N, D) ``vectors`` (:func:`kmeans_fit`'s labels)."""
    return kmeans_fit(vectors, k, seed, iterations)[0]


def kmeans_fit(vectors: np.ndarray, k: int, seed: int = 0, iterations: int = 100) -> tuple[np.ndarray, torch.Tensor]:
    """(N,) cluster index of each of the (N, D) ``vectors`` and the (k, D) float64 centres: Lloyd's
    algorithm from a k-means++ start, until no vector changes cluster (at most ``iterations``
    rounds). A cluster left empty keeps its previous centre."""
    if not 1 <= k <= len(vectors):
        raise ValueError(f"k-means needs 1 <= k <= the number of vectors, got k={k} for {len(vectors)} vectors")
    x = torch.as_tensor(vectors, dtype=torch.float64)
    centres = kmeans_plus_plus(x, k, torch.Generator().manual_seed(seed))
    labels = torch.full((len(x),), -1, dtype=torch.long)
    for _ in range(iterations):
        new = torch.cdist(x, centres).argmin(1)
        if torch.equal(new, labels):
            break
        labels = new
        sums = torch.zeros_like(centres).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None].to(x.dtype)
    return labels.numpy(), centres
