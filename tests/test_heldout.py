"""The one held-out splitter (pre-training validation clips, LM sentences)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from w2v2.data.heldout import split_heldout


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 500), st.floats(0.001, 0.5), st.integers(0, 10))
def test_split_is_a_partition_in_order_of_the_asked_size(n, fraction, seed):
    items = [f"item{i}" for i in range(n)]
    kept, held = split_heldout(items, fraction, seed)
    assert sorted(kept + held) == sorted(items) and not set(kept) & set(held)
    assert kept == [x for x in items if x in set(kept)] and held == [x for x in items if x in set(held)]
    assert len(held) == max(1, round(fraction * n))
    assert split_heldout(items, fraction, seed) == (kept, held)


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 500), st.floats(0.001, 0.5), st.integers(0, 10), st.integers(1, 40))
def test_a_cap_bounds_the_held_out_part_and_takes_a_subset_of_the_uncapped_one(n, fraction, seed, cap):
    items = [f"item{i}" for i in range(n)]
    _, held = split_heldout(items, fraction, seed)
    kept_c, held_c = split_heldout(items, fraction, seed, max_items=cap)
    assert len(held_c) == min(max(1, round(fraction * n)), cap)
    assert set(held_c) <= set(held) and sorted(kept_c + held_c) == sorted(items)


def test_split_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="fraction must be in"):
        split_heldout([1, 2, 3], 1.5, 0)
    with pytest.raises(ValueError, match="only 1 items"):
        split_heldout([1], 0.03, 0)
    with pytest.raises(ValueError, match="cap must be at least 1"):
        split_heldout([1, 2, 3], 0.5, 0, max_items=0)
