"""Masking statistics of appendix A: with p = 0.065 and M = 10 (fairseq mask_prob = 0.65),
"about 49% of all time steps" are masked with "a mean span length of 14.7" steps.

Those figures are the independent-start model: each step starts a span with probability p, so a
step is unmasked when none of the M steps up to it starts one, masked fraction 1 - (1 - p)^M =
0.489; a run of masked steps begins at t when t starts a span and none of the M steps before it
does, p (1 - p)^M per step, so the mean run is (1 - (1 - p)^M) / (p (1 - p)^M) = 14.74.

compute_mask_indices (fairseq's semantics) draws instead a fixed number of starts,
int(mask_prob * L / M + U[0,1)), without replacement among the first L - M steps. For L = 1000 that
is 65 starts among 990 positions; the exact expectation of that scheme (hypergeometric, computed
below) is 0.4902 masked and a mean run of 14.70: 0.1 points and 0.04 steps from the paper.
The draws are single utterances (B = 1), so ``same_count`` plays no part. In a batch it does:
every row is cut down to the smallest row's count by dropping random masked steps (as fairseq's
2020 code did), which fragments the spans even for equal lengths; for B = 8 crops of 780 frames
about 46% of the steps stay masked in runs of 8 steps on average (B = 2: 48%, 11 steps).
"""

from math import exp, lgamma

import numpy as np

from w2v2.model.masking import compute_mask_indices

P, M = 0.065, 10
L, DRAWS = 1000, 500


def paper_figures(p: float, m: int) -> tuple[float, float]:
    masked = 1 - (1 - p) ** m
    return masked, masked / (p * (1 - p) ** m)


def log_comb(a: int, b: int) -> float:
    return lgamma(a + 1) - lgamma(b + 1) - lgamma(a - b + 1) if 0 <= b <= a else -np.inf


def fixed_count_expectation(length: int, starts: int, m: int) -> tuple[float, float]:
    """Masked fraction and mean run for ``starts`` distinct starts drawn uniformly from the first
    length - m steps, each masking m steps: P(t unmasked) = C(S - w, n) / C(S, n) with w the
    possible starts covering t; a run begins at t with probability (n / S) C(S - 1 - a, n - 1) /
    C(S - 1, n - 1), a the possible starts among the m steps before t."""
    s = length - m
    masked = runs = 0.0
    for t in range(length):
        w = max(0, min(t, s - 1) - max(0, t - m + 1) + 1)
        masked += 1 - exp(log_comb(s - w, starts) - log_comb(s, starts))
        if t < s:
            a = t - max(0, t - m)
            runs += starts / s * exp(log_comb(s - 1 - a, starts - 1) - log_comb(s - 1, starts - 1))
    return masked / length, masked / runs


def simulate(seed: int = 0) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    fractions, masked, runs = [], 0, 0
    for _ in range(DRAWS):
        row = compute_mask_indices([L], L, P * M, M, 2, rng)[0]
        fractions.append(row.mean())
        masked += int(row.sum())
        runs += int((np.diff(np.concatenate([[0], row.astype(np.int8)])) == 1).sum())
    return float(np.mean(fractions)), float(np.std(fractions) / np.sqrt(DRAWS)), masked / runs


def test_hand_computed_figures():
    masked, span = paper_figures(P, M)
    assert abs(masked - 0.49) < 0.005 and abs(span - 14.7) < 0.05  # the paper's rounded numbers
    fixed_masked, fixed_span = fixed_count_expectation(L, int(P * L), M)
    assert abs(fixed_masked - masked) < 0.002 and abs(fixed_span - span) < 0.1


def test_masked_fraction_and_mean_span_match_appendix_a():
    """Tolerances: over 500 utterances of 1000 frames the standard error of the masked fraction is
    about 0.001 and of the pooled mean run about 0.07 steps; the fixed-count scheme itself sits
    0.001 / 0.04 from the paper. 0.01 and 0.5 leave room for both, yet a mis-scaled mask_prob
    (0.65 used as the start probability: ~100% masked) or non-overlapping spans (65% masked, runs
    of 10-20) fail by far."""
    fraction, stderr, span = simulate()
    paper_masked, paper_span = paper_figures(P, M)
    assert abs(fraction - paper_masked) < 0.01
    assert abs(span - paper_span) < 0.5
    exact_masked, exact_span = fixed_count_expectation(L, int(P * L), M)
    assert abs(fraction - exact_masked) < 5 * stderr
    assert abs(span - exact_span) < 0.35
