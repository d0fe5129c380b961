"""Codebook-phone statistics on hand-computed examples; phone alignment readers; ``w2v2 analyze
codebook`` end to end on a tiny pre-training model."""

import csv
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from w2v2.analysis.align import model_input_of
from w2v2.analysis.codebook import (Cooccurrence, frame_codes, frame_labels, frame_vectors, heatmap_matrix,
                                    joint_codes, usage_perplexity)
from train_utils import TIMIT_PHONES, write_timit_tree
from w2v2.analysis.phones import read_alignments
from w2v2.cli import main
from w2v2.config import W2V2Config
from w2v2.data.manifest import Entry, read_manifest, write_manifest
from w2v2.interop.model_dir import save_model_dir
from w2v2.model import build_ctc_model, build_pretraining_model


def h2(*p):
    return -sum(x * math.log2(x) for x in p if x > 0)


def test_purity_and_mutual_information_by_hand():
    codes = np.array([0, 0, 0, 1, 1, 2])
    phones = ["a", "a", "b", "b", "b", "c"]
    co = Cooccurrence.count(codes, phones)
    # code 0: a a b; code 1: b b; code 2: c -> the most frequent phone per code covers 2 + 2 + 1 frames
    assert co.purity() == pytest.approx(5 / 6)
    h_phone = h2(2 / 6, 3 / 6, 1 / 6)
    h_phone_given_code = 3 / 6 * h2(2 / 3, 1 / 3)  # codes 1 and 2 are pure
    assert co.phone_entropy() == pytest.approx(h_phone)
    assert co.mutual_information() == pytest.approx(h_phone - h_phone_given_code)
    assert co.codes.tolist() == [0, 1, 2] and co.phones == ["b", "a", "c"]  # by decreasing frequency
    assert co.p_phone_given_code()[0].tolist() == pytest.approx([1 / 3, 2 / 3, 0])


def test_information_extremes():
    phones = ["a", "b", "c", "d"] * 5
    same = Cooccurrence.count(np.array([7, 3, 9, 1] * 5), phones)  # one code per phone
    assert same.purity() == 1.0 and same.mutual_information() == pytest.approx(2.0)  # log2 4
    indep = Cooccurrence.count(np.repeat(np.arange(4), 4), ["a", "b", "c", "d"] * 4)  # every pair once
    assert indep.mutual_information() == pytest.approx(0.0, abs=1e-12) and indep.purity() == 0.25


def test_top_codes_merges_the_rest_by_hand():
    co = Cooccurrence.count(np.array([5, 5, 5, 7, 7, 9, 3]), ["a", "a", "b", "b", "b", "c", "a"])
    top = co.top_codes(2)  # codes 5 (3 frames) and 7 (2), then 9 and 3 merged into -1
    assert top.codes.tolist() == [5, 7, -1] and top.phones == co.phones == ["a", "b", "c"]
    assert top.counts.tolist() == [[2, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert top.counts.sum() == 7 and co.top_codes(4) is co
    # merging can only lose information (data processing inequality)
    assert top.mutual_information() <= co.mutual_information() + 1e-12


def test_chance_information_removes_the_small_sample_bias():
    """Independent codes and phones: the empirical MI is far above 0 with 300 codes over 3,000
    frames (bias about (K-1)(P-1) / (2 N ln 2) = 0.93 bits), MI above chance is about 0. Codes
    that determine the phone keep about H(phone) above chance."""
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 300, 3000)
    phones = [f"p{i}" for i in rng.integers(0, 10, 3000)]
    co = Cooccurrence.count(codes, phones)
    assert co.mutual_information() > 0.5
    assert abs(co.mutual_information() - co.chance_information()) < 0.05
    tied = Cooccurrence.count(codes, [f"p{c % 10}" for c in codes])
    above = tied.mutual_information() - tied.chance_information()
    assert above == pytest.approx(tied.phone_entropy() - tied.chance_information(), abs=1e-9)
    assert above > 0.6 * tied.phone_entropy()


def test_usage_perplexity_and_joint_codes():
    assert usage_perplexity(np.arange(4)) == pytest.approx(4.0)
    assert usage_perplexity(np.array([5, 5, 5, 2])) == pytest.approx(math.exp(-(0.75 * math.log(0.75)
                                                                                  + 0.25 * math.log(0.25))))
    assert joint_codes(np.array([[1, 2], [0, 7], [7, 0]]), 8).tolist() == [10, 7, 56]
    assert joint_codes(np.array([[1, 2, 3]]), 10).tolist() == [123]


def test_frame_labels_by_frame_centre():
    segs = [(0.0, 0.05, "a"), (0.05, 0.1, "b")]
    # centres 12.5, 32.5, 52.5, 72.5, 92.5, 112.5 ms
    assert frame_labels(segs, 6, 0.02, 0.0125) == ["a", "a", "b", "b", "b", None]
    ctc_spans = [(0.04, 0.08, "x")]  # frames [2, 4) of a CTC alignment
    assert frame_labels(ctc_spans, 6, 0.02, 0.0125) == [None, None, "x", "x", None, None]


def test_heatmap_columns_ordered_by_dominant_phone():
    codes = np.array([5] * 4 + [6] * 3 + [7] * 2 + [8])
    phones = ["b"] * 3 + ["a"] + ["a"] * 3 + ["b"] * 2 + ["a"]
    co = Cooccurrence.count(codes, phones)
    p, cols = heatmap_matrix(co, ["a", "b"], top=3)
    # dominant phone a: code 6 (P=1); then b: code 7 (P=1), code 5 (P=0.75); code 8 is not in the top 3
    assert cols.tolist() == [6, 7, 5]
    np.testing.assert_allclose(p, [[1, 0, 0.25], [0, 1, 0.75]])


def test_read_alignments(tmp_path):
    (tmp_path / "phn").mkdir()
    (tmp_path / "phn" / "sa1.phn").write_text("0 3200 h#\n3200 4800 sh\n")
    assert read_alignments(tmp_path / "phn") == {"sa1": [(0.0, 0.2, "h#"), (0.2, 0.3, "sh")]}
    (tmp_path / "a.tsv").write_text("id\tstart\tend\tlabel\nu1\t0.00\t0.04\tAH\nu1\t0.04\t0.10\tB\nu2\t0\t1\tK\n")
    assert read_alignments(tmp_path / "a.tsv") == {"u1": [(0.0, 0.04, "AH"), (0.04, 0.1, "B")],
                                                  "u2": [(0.0, 1.0, "K")]}
    (tmp_path / "bad.tsv").write_text("u1\t0.0\t0.1\tAH\nu1\t0.1\tx\tB\n")
    with pytest.raises(ValueError, match=r"bad.tsv:2: start and end"):
        read_alignments(tmp_path / "bad.tsv")
    (tmp_path / "bad.phn").write_text("0 10\n")
    with pytest.raises(ValueError, match=r"bad.phn:1"):
        read_alignments(tmp_path / "bad.phn")


def tiny_config(**kw):
    return W2V2Config(conv_layers=((8, 10, 5),) + ((8, 3, 2),) * 4 + ((8, 2, 2),) * 2, encoder_embed_dim=16,
                      encoder_layers=1, encoder_ffn_embed_dim=32, encoder_attention_heads=2, conv_pos=8,
                      conv_pos_groups=2, latent_vars=8, final_dim=8, **kw)


def test_frame_codes_are_the_quantizer_argmax():
    torch.manual_seed(0)
    model = build_pretraining_model(tiny_config()).eval()
    wav = torch.randn(1, 8000)
    codes = frame_codes(model, wav)
    with torch.no_grad():
        normed = model.wav2vec2.feature_projection.layer_norm(model.wav2vec2.feature_extractor(wav)[0])
        logits = model.quantizer.weight_proj(normed[0]).view(-1, 2, 8)
    assert codes.shape == (24, 2) and codes.tolist() == logits.argmax(-1).tolist()


def test_analyze_codebook_command(tmp_path, capsys):
    torch.manual_seed(1)
    cfg = tiny_config()
    model = build_pretraining_model(cfg).eval()
    save_model_dir(model, cfg, tmp_path / "pt")
    rng = np.random.default_rng(0)
    entries, rows = [], ["id\tstart\tend\tphone"]
    for i, n in enumerate([16000, 12000]):
        sf.write(tmp_path / f"u{i}.wav", (0.1 * rng.standard_normal(n)).astype(np.float32), 16000)
        entries.append(Entry(tmp_path / f"u{i}.wav", n, None))
        rows += [f"u{i}\t0.0\t0.3\tAA", f"u{i}\t0.3\t0.5\tB", f"u{i}\t0.5\t0.7\tAA"]
    entries.append(Entry(tmp_path / "missing.wav", 100, None))  # no phones: not analysed
    # phones keyed "u0" (an older w2v2 align) match the id "u0.wav" without its extension
    write_manifest(tmp_path / "m.tsv", entries)
    (tmp_path / "phones.tsv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "report"
    assert main(["analyze", "codebook", str(tmp_path / "pt"), str(tmp_path / "m.tsv"), "--phones",
                 str(tmp_path / "phones.tsv"), "--out-dir", str(out), "--top", "10"]) == 0
    assert "phone purity" in capsys.readouterr().out
    png = (out / "codebook_heatmap.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    report = (out / "codebook.md").read_text()
    assert "| statistic | pre-trained | random init (seed 0) |" in report and "PNMI" in report
    with open(out / "codes.tsv", newline="") as f:
        table = list(csv.DictReader(f, delimiter="\t"))
    assert len(table) == 49 + 37
    ref = frame_codes(model, model_input_of(tmp_path / "u0.wav", cfg))
    got = np.array([[int(r["pre-trained: g0"]), int(r["pre-trained: g1"])] for r in table if r["id"] == "u0.wav"])
    assert got.tolist() == ref.tolist()
    assert [r["pre-trained: joint"] for r in table[:3]] == [str(8 * a + b) for a, b in ref[:3].tolist()]
    # phones by frame centre: frames 0-14 AA (centre < 0.3 s), 15-24 B, 25-34 AA, then none
    assert [r["phone"] for r in table if r["id"] == "u0.wav"] == ["AA"] * 15 + ["B"] * 10 + ["AA"] * 10 + [""] * 14
    rand = [r["random init (seed 0): g0"] for r in table]
    assert rand != [r["pre-trained: g0"] for r in table]


def test_analyze_codebook_on_a_timit_style_tree(tmp_path, capsys):
    """TIMIT names a file SA1 for every speaker: the keys of a folder of .phn files are their paths
    below it without extension, and every utterance gets its own speaker's phones, whether the
    manifest lies at the top of the tree (ids dr1/<speaker>/SA1.WAV) or elsewhere (absolute paths,
    matched by their path below the .phn folder)."""
    manifest = write_timit_tree(tmp_path / "timit")
    times = [(0.0, 0.2), (0.2, 0.6), (0.6, 1.0)]
    assert read_alignments(tmp_path / "timit") == {
        f"dr1/{spk}/SA1": [(a, b, p) for (a, b), p in zip(times, phones)] for spk, phones in TIMIT_PHONES.items()}
    elsewhere = tmp_path / "lists" / "m.tsv"
    write_manifest(elsewhere, [Entry(e.path, e.samples) for e in read_manifest(manifest)])
    torch.manual_seed(1)
    cfg = tiny_config()
    save_model_dir(build_pretraining_model(cfg).eval(), cfg, tmp_path / "pt")
    for m in (manifest, elsewhere):
        out = tmp_path / "report" / m.parent.name
        assert main(["analyze", "codebook", str(tmp_path / "pt"), str(m), "--phones", str(tmp_path / "timit"),
                     "--out-dir", str(out)]) == 0
        with open(out / "codes.tsv", newline="") as f:
            phones: dict[str, set[str]] = {}
            for r in csv.DictReader(f, delimiter="\t"):
                phones.setdefault(r["id"], set()).add(r["phone"])
        assert phones == {e.id: set(TIMIT_PHONES[e.path.parent.name]) for e in read_manifest(m)}, m
    assert "2 utterances with phone segments" in (out / "codebook.md").read_text()


def test_analyze_codebook_refuses_ctc_model(tmp_path, capsys):
    cfg = tiny_config(vocab_size=5)
    save_model_dir(build_ctc_model(cfg), cfg, tmp_path / "ctc", {"<pad>": 0, "<unk>": 1, "|": 2, "A": 3, "B": 4})
    (tmp_path / "m.tsv").write_text("path\tsamples\n")
    (tmp_path / "p.tsv").write_text("u\t0\t1\tA\n")
    assert main(["analyze", "codebook", str(tmp_path / "ctc"), str(tmp_path / "m.tsv"), "--phones",
                 str(tmp_path / "p.tsv"), "--out-dir", str(tmp_path / "o")]) == 2
    assert "pre-trained model with its quantizer" in capsys.readouterr().err


def test_analyze_codebook_refuses_a_continuous_target_model_by_name(tmp_path, capsys):
    cfg = tiny_config(quantize_targets=False)
    save_model_dir(build_pretraining_model(cfg), cfg, tmp_path / "cont")
    (tmp_path / "m.tsv").write_text("path\tsamples\n")
    (tmp_path / "p.tsv").write_text("u\t0\t1\tA\n")
    assert main(["analyze", "codebook", str(tmp_path / "cont"), str(tmp_path / "m.tsv"), "--phones",
                 str(tmp_path / "p.tsv"), "--out-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "cont") in err and "quantize_targets=True" in err and "--kmeans K" in err


def test_frame_vectors_are_the_latents_and_the_context():
    torch.manual_seed(0)
    model = build_pretraining_model(tiny_config(quantize_targets=False)).eval()
    wav = torch.randn(1, 8000)
    with torch.no_grad():
        z = model.wav2vec2.feature_projection.layer_norm(model.wav2vec2.feature_extractor(wav)[0])
        x = model.wav2vec2.feature_projection(model.wav2vec2.feature_extractor(wav)[0])[0]
        c = model.wav2vec2.encoder(x, None)[0]
    assert np.allclose(frame_vectors(model, wav, "latent"), z[0].numpy(), atol=1e-6)
    assert np.allclose(frame_vectors(model, wav, "context"), c[0].numpy(), atol=1e-6)
    mfcc = frame_vectors(model, wav, "mfcc")  # one 39-value vector per encoder frame, whatever the weights
    assert mfcc.shape == (z.shape[1], 39)
    torch.manual_seed(1)
    other = build_pretraining_model(tiny_config(quantize_targets=False)).eval()
    assert np.array_equal(frame_vectors(other, wav, "mfcc"), mfcc)
    with pytest.raises(ValueError, match="representation"):
        frame_vectors(model, wav, "conv")


def test_analyze_codebook_clusters_a_continuous_target_model(tmp_path, capsys):
    torch.manual_seed(1)
    cfg = tiny_config(quantize_targets=False)
    save_model_dir(build_pretraining_model(cfg).eval(), cfg, tmp_path / "cont")
    rng = np.random.default_rng(0)
    entries, rows = [], ["id\tstart\tend\tphone"]
    for i in range(2):
        sf.write(tmp_path / f"u{i}.wav", (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)
        entries.append(Entry(tmp_path / f"u{i}.wav", 16000, None))
        rows += [f"u{i}\t0.0\t0.5\tAA", f"u{i}\t0.5\t1.0\tB"]
    write_manifest(tmp_path / "m.tsv", entries)
    (tmp_path / "phones.tsv").write_text("\n".join(rows) + "\n")
    for representation in ("context", "latent", "mfcc"):
        out = tmp_path / representation
        assert main(["analyze", "codebook", str(tmp_path / "cont"), str(tmp_path / "m.tsv"), "--phones",
                     str(tmp_path / "phones.tsv"), "--out-dir", str(out), "--kmeans", "6",
                     "--representation", representation]) == 0
        assert "k-means clusters (K=6) of each model's " + representation in (out / "codebook.md").read_text()
        with open(out / "codes.tsv", newline="") as f:
            table = list(csv.DictReader(f, delimiter="\t"))
        assert len(table) == 2 * 49
        for name in ("pre-trained", "random init (seed 0)"):
            codes = [int(r[f"{name}: g0"]) for r in table]
            assert codes == [int(r[f"{name}: joint"]) for r in table] and set(codes) <= set(range(6))
            assert len(set(codes)) == 6  # k-means++ starts from 6 distinct vectors: no cluster is empty
        if representation == "mfcc":  # no weights involved: both models get the same units
            assert all(r["pre-trained: g0"] == r["random init (seed 0): g0"] for r in table)
