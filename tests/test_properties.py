"""Property-based tests (hypothesis): invariants of span masking (appendix A), negative sampling
(section 3.2), length bookkeeping through the feature encoder (section 2), manifest round trips
and the text normaliser. Example counts are kept modest so that the file runs in seconds."""

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from w2v2.config import BASE_CONV
from w2v2.data.manifest import Entry, ManifestError, read_manifest, write_manifest
from w2v2.data.text import normalize_text
from w2v2.model.feature_encoder import build_feature_encoder, conv_output_lengths
from w2v2.model.masking import compute_mask_indices, sample_negatives

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

mask_args = st.fixed_dictionaries({
    "lengths": st.lists(st.integers(1, 300), min_size=1, max_size=5),
    "mask_prob": st.floats(0.0, 0.9),
    "mask_length": st.integers(1, 15),
    "min_masks": st.integers(0, 4),
    "seed": st.integers(0, 2**32 - 1),
})


def masks(a: dict, same_count: bool) -> np.ndarray:
    total = max(a["lengths"]) + 7  # some padding after the longest row too
    return compute_mask_indices(a["lengths"], total, a["mask_prob"], a["mask_length"], a["min_masks"],
                                np.random.default_rng(a["seed"]), same_count=same_count)


def runs(row: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of the maximal runs of True."""
    padded = np.concatenate([[False], row, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2], edges[1::2]))


@FAST
@given(mask_args)
def test_padding_is_never_masked(a):
    for same_count in (False, True):
        m = masks(a, same_count)
        for row, length in zip(m, a["lengths"]):
            assert not row[length:].any()


@FAST
@given(mask_args)
def test_same_count_gives_equal_rows_drawn_from_the_unsubsampled_spans(a):
    free, same = masks(a, False), masks(a, True)
    counts = same.sum(axis=1)
    assert (counts == counts[0]).all()
    assert counts[0] == free.sum(axis=1).min()
    assert not (same & ~free).any()  # same rng draws: subsampling only removes steps


@FAST
@given(mask_args)
def test_at_least_min_masks_spans_when_the_length_allows(a):
    m = masks(a, False)
    M, k = a["mask_length"], a["min_masks"]
    for row, length in zip(m, a["lengths"]):
        assert row.sum() >= min(k, length)  # k distinct span starts, each masks itself
        if k and length - M > k:  # room for k full spans: distinct starts cover at least k + M - 1 steps
            assert row.sum() >= k + M - 1


@FAST
@given(mask_args)
def test_spans_are_contiguous_mask_length_runs(a):
    m = masks(a, False)
    for row, length in zip(m, a["lengths"]):
        for start, end in runs(row[:length]):
            assert end - start >= a["mask_length"] or end == length  # only cut short by the end


@FAST
@given(st.integers(1, 4), st.integers(2, 40), st.integers(1, 50), st.integers(0, 2**31))
def test_negatives_are_other_masked_steps(batch, num_masked, num_negatives, seed):
    idx = sample_negatives(batch, num_masked, num_negatives, generator=torch.Generator().manual_seed(seed))
    assert idx.shape == (batch, num_masked, num_negatives)
    assert idx.min() >= 0 and idx.max() < num_masked
    assert (idx != torch.arange(num_masked).view(1, -1, 1)).all()


def test_negatives_need_two_masked_steps():
    with pytest.raises(ValueError, match="at least 2"):
        sample_negatives(1, 1, 5)


def small_encoder(mode: str) -> torch.nn.Module:
    torch.manual_seed(0)
    conv = tuple((4, k, s) for _, k, s in BASE_CONV)  # the paper's kernels and strides, 4 channels
    return build_feature_encoder(conv, mode, bias=mode == "layer").eval()


ENCODERS = {mode: small_encoder(mode) for mode in ("group", "layer")}


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 4000), min_size=1, max_size=4), st.sampled_from(["group", "layer"]))
def test_conv_lengths_match_running_the_convs(lengths, mode):
    enc = ENCODERS[mode]
    # the paper's stack (section 2): a frame every 320 samples, each reading 400
    expected = torch.tensor([max((n - 400) // 320 + 1, 0) for n in lengths])
    assert torch.equal(enc.output_lengths(torch.tensor(lengths)), expected)
    with torch.inference_mode():
        own = []
        for n in lengths:
            if n < 400:  # no output frame: PyTorch refuses an input shorter than the kernel somewhere
                own.append(0)
                continue
            own.append(enc(torch.randn(1, n))[0].shape[1])
        assert own == expected.tolist()
        batch = torch.zeros(len(lengths), max(lengths))
        for i, n in enumerate(lengths):
            batch[i, :n] = torch.randn(n)
        if max(lengths) >= 400:
            out, valid = enc(batch, torch.tensor(lengths))
            assert valid.tolist() == own and out.shape[1] == max(own)
            if mode == "layer":  # no norm across time: padding does not change the valid frames
                for i, n in enumerate(lengths):
                    if own[i]:
                        alone = enc(batch[i:i + 1, :n])[0]
                        torch.testing.assert_close(out[i:i + 1, :own[i]], alone, atol=1e-5, rtol=1e-4)


tsv_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\t\n\r"), max_size=40)
name = st.text(st.characters(whitelist_categories=("L", "N", "Zs"), whitelist_characters="-_.'()"),
               min_size=1, max_size=12).map(str.strip).filter(lambda s: s not in ("", ".", ".."))


@FAST
@given(st.lists(st.tuples(st.lists(name, min_size=1, max_size=3), st.integers(0, 10**9), st.none() | tsv_text),
                max_size=6), st.booleans())
def test_manifest_round_trip(tmp_path, rows, outside):
    root = tmp_path / "m dir"
    base = tmp_path / "other place" if outside else root
    entries = [Entry(base.joinpath(*parts).with_suffix(".flac"), n, t) for parts, n, t in rows]
    assume(all(e.path.name not in ("", ".flac") for e in entries))
    write_manifest(root / "list.tsv", entries)
    back = read_manifest(root / "list.tsv")
    with_text = any(e.text is not None for e in entries)
    assert [(Path(b.path).resolve(), b.samples) for b in back] == [(e.path.resolve(), e.samples) for e in entries]
    assert [b.text for b in back] == [(e.text or "") if with_text else None for e in entries]


@FAST
@given(st.tuples(st.text(max_size=10), st.sampled_from("\t\n\r"), st.text(max_size=10)).map("".join))
def test_manifest_refuses_tabs_and_line_breaks(tmp_path, text):
    with pytest.raises(ManifestError, match="tab or line break"):
        write_manifest(tmp_path / "x.tsv", [Entry(tmp_path / "a.wav", 1, text)])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60) | st.from_regex(r"[A-Za-z0-9 ,.'£$%&-]{0,40}", fullmatch=True))
def test_normalisation_is_idempotent_with_a_small_alphabet(text):
    out = normalize_text(text)
    assert normalize_text(out) == out
    assert all(c.isalpha() or c in " '" for c in out)
    assert out == " ".join(out.split())  # single spaces, none at the ends
    assert all(w.strip("'") and (not w.startswith("'") or w[1:] in {"EM", "TIS", "TWAS", "TWERE", "TWILL", "TWOULD",
                                                                     "TWIXT"}) and not w.endswith("'")
               for w in out.split())
    assert not any(c.isascii() and c.isalpha() and not c.isupper() for c in out)
