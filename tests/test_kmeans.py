"""k-means (analysis units of models without a codebook) against hand examples and the fixed-point
property of Lloyd's algorithm."""

import numpy as np
import pytest

from w2v2.analysis.kmeans import kmeans


def test_kmeans_separates_far_blobs():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0, 0], [50, 0, 0], [0, 50, 0], [0, 0, 50]])
    x = np.concatenate([c + rng.standard_normal((40, 3)) for c in centres])
    labels = kmeans(x, 4, seed=3)
    blocks = labels.reshape(4, 40)
    assert all(len(set(b)) == 1 for b in blocks) and len(set(blocks[:, 0])) == 4


def test_kmeans_by_hand():
    labels = kmeans(np.array([[0.0], [1.0], [10.0], [11.0], [12.0]]), 2)
    assert labels[0] == labels[1] != labels[2] == labels[3] == labels[4]


def test_kmeans_ends_at_a_lloyd_fixed_point():
    """Every vector is nearest to the mean of its own cluster, and no cluster is empty."""
    x = np.random.default_rng(1).standard_normal((300, 5))
    labels = kmeans(x, 7, seed=2)
    means = np.stack([x[labels == j].mean(0) for j in range(7)])  # raises on an empty cluster
    dist = ((x[:, None] - means[None]) ** 2).sum(-1)
    assert np.array_equal(dist.argmin(1), labels)


def test_kmeans_with_repeated_vectors_and_bad_k():
    labels = kmeans(np.zeros((5, 2)), 3)  # one distinct vector: every centre repeats it
    assert len(set(labels)) == 1
    with pytest.raises(ValueError, match="k=6 for 5 vectors"):
        kmeans(np.zeros((5, 2)), 6)
