"""Compute planning: the FLOP count of the BASE encoder against a hand count (~148 GFLOP / 10 s)."""

import pytest

from w2v2.train.estimate import forward_flops


def hand_count_base(samples: int) -> float:
    flops, length, c_in = 0.0, samples, 1
    for c, k, s in ((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2:
        length = (length - k) // s + 1
        flops += 2 * c * c_in * k * length
        c_in = c
    t, d = length, 768
    flops += 2 * 512 * d * t  # feature projection
    flops += 2 * d * (d // 16) * 128 * (t + 1)  # grouped positional conv (output t + 1, last frame dropped)
    per_layer = 2 * t * d * 3 * d + 2 * t * d * d + 2 * 2 * t * t * d + 2 * 2 * t * d * 3072
    return flops + 12 * per_layer


def test_base_forward_flops_match_hand_count():
    counted = forward_flops("base", 10.0)
    assert counted == pytest.approx(hand_count_base(160000), rel=0.005)
    assert 145e9 < counted < 151e9  # the issue's ~148 GFLOP for 10 s
