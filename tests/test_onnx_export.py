"""``w2v2 export --to onnx`` and ``transcribe --backend onnx`` on tiny random CTC models of both
layouts, against PyTorch's own forward pass (the reference)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from decode_testkit import LETTERS, write_manifest_tsv, write_noise
from w2v2.cli import main
from w2v2.config import W2V2Config
from w2v2.interop import onnx as onnx_export
from w2v2.interop.model_dir import load_ctc, save_model_dir
from w2v2.model import build_ctc_model, build_model
from w2v2.model.feature_encoder import num_frames

pytest.importorskip("onnxruntime")

TOL = 1e-4  # max abs logit difference over valid frames (the documented parity bound)
LENGTHS = [400, 401, 719, 3200, 16000, 23457]  # from the receptive field up; not multiples of the stride


def tiny_config(layout: str) -> W2V2Config:
    """BASE layout ("group": GroupNorm in the first conv block, post-LN, raw input) or LV60 layout
    ("layer": LayerNorm conv blocks with bias, pre-LN, normalised input)."""
    layer = layout == "layer"
    return W2V2Config(conv_layers=((16, 10, 5),) + ((16, 3, 2),) * 4 + ((16, 2, 2),) * 2, extractor_mode=layout,
                      conv_bias=layer, encoder_embed_dim=32, encoder_layers=2, encoder_ffn_embed_dim=64,
                      encoder_attention_heads=2, conv_pos=16, conv_pos_groups=4, layer_norm_first=layer,
                      normalize=layer, vocab_size=len(LETTERS))


def write_model_dir(path: Path, layout: str, seed: int = 0) -> Path:
    """A random CTC model directory whose norms and biases are not at their initial 1 / 0 and whose
    head is sharp enough that greedy decoding has no near-ties (and never emits <unk>)."""
    cfg = tiny_config(layout)
    torch.manual_seed(seed)
    model = build_ctc_model(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
        model.lm_head.weight.mul_(5.0)  # logits of a few tens, as a fine-tuned model has
        model.lm_head.bias[LETTERS.index["<unk>"]] = -100.0
    save_model_dir(model, cfg, path, LETTERS.to_dict())
    return path


@pytest.fixture(scope="module", params=["group", "layer"])
def exported(request, tmp_path_factory):
    """(model dir, ONNX file, CLI output) per layout, exported by the command line; the BASE one to
    the cache location MODEL_DIR/model.onnx that ``--backend onnx`` uses without ``--onnx``."""
    tmp = tmp_path_factory.mktemp(request.param)
    model_dir = write_model_dir(tmp / "model", request.param)
    out = model_dir / "model.onnx" if request.param == "group" else tmp / "exported" / "ctc.onnx"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["export", "--to", "onnx", str(model_dir), str(out)]) == 0
    return model_dir, out, printed.getvalue()


def padded(waves: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(w) for w in waves])
    x = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        x[i, : len(w)] = torch.from_numpy(w)
    return x, lengths


def random_waves(lengths: list[int], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.3 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


def max_valid_difference(a: torch.Tensor, b: torch.Tensor, frames: torch.Tensor) -> float:
    return max(float((a[i, :f] - b[i, :f]).abs().max()) for i, f in enumerate(frames.tolist()))


def test_export_command_writes_one_self_contained_file(exported):
    model_dir, out, printed = exported
    assert f"exported {model_dir} -> {out}" in printed
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith((".", out.name))) == [out.name]
    onnx_model = onnx_export.OnnxAcousticModel(out)
    _, cfg, vocab = load_ctc(model_dir)
    assert onnx_model.cfg == cfg and onnx_model.vocab.tokens == vocab.tokens
    onnx = pytest.importorskip("onnx")
    graph = onnx.load(str(out)).graph
    assert [i.name for i in graph.input] == ["waveform", "lengths"]
    assert [o.name for o in graph.output] == ["logits", "frame_lengths"]
    dims = [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input]
    assert dims == [["batch", "samples"], ["batch"]]  # dynamic batch and length


def test_logits_and_frame_lengths_equal_pytorch_for_each_length(exported):
    model_dir, out, _ = exported
    model, cfg, _ = load_ctc(model_dir)
    onnx_model = onnx_export.OnnxAcousticModel(out)
    for wave in random_waves(LENGTHS, seed=1):
        x, lengths = padded([wave])
        with torch.no_grad():
            ref = model(x, lengths)
        got = onnx_model(x, lengths)
        assert got.logits.shape == ref.logits.shape
        assert got.lengths.tolist() == ref.lengths.tolist() == [num_frames(cfg.conv_layers, len(wave))]
        assert max_valid_difference(got.logits, ref.logits, ref.lengths) <= TOL


def test_padded_batch_equals_pytorch_batched_and_alone(exported):
    """One padded batch through the graph: each row's valid frames equal PyTorch's on the same batch
    and on the utterance alone (padding never enters the BASE layout's group norm)."""
    model_dir, out, _ = exported
    model, _, _ = load_ctc(model_dir)
    onnx_model = onnx_export.OnnxAcousticModel(out)
    waves = random_waves(LENGTHS[::-1], seed=2)
    x, lengths = padded(waves)
    with torch.no_grad():
        ref = model(x, lengths)
        alone = [model(*padded([w])).logits for w in waves]
        unmasked = model(x).logits  # the batch taken as unpadded: padding in the norm / attention
    got = onnx_model(x, lengths)
    assert got.lengths.tolist() == ref.lengths.tolist()
    assert max_valid_difference(got.logits, ref.logits, ref.lengths) <= TOL
    for i, a in enumerate(alone):
        assert a.shape[1] == ref.lengths[i]
        assert float((got.logits[i, : a.shape[1]] - a[0]).abs().max()) <= TOL
    short = alone[2][0]  # 3200 samples in a batch padded to 23457: the comparison is not vacuous
    assert float((unmasked[2, : len(short)] - short).abs().max()) > 10 * TOL


def transcripts(argv: list[str], capsys) -> list[dict]:
    assert main(argv) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_transcribe_onnx_backend_prints_the_torch_text_and_word_times(exported, tmp_path, capsys):
    model_dir, out, _ = exported
    audio = [str(write_noise(tmp_path / f"u{i}.wav", s, seed=i)) for i, s in enumerate([1.6, 0.45, 2.3, 1.05])]
    torch_out = transcripts(["transcribe", str(model_dir), *audio, "--json"], capsys)
    onnx_args = [] if out == model_dir / "model.onnx" else ["--onnx", str(out)]
    mtime = out.stat().st_mtime_ns
    onnx_out = transcripts(["transcribe", str(model_dir), *audio, "--json", "--backend", "onnx", *onnx_args], capsys)
    assert out.stat().st_mtime_ns == mtime  # the exported file was used, not exported again
    assert [t["path"] for t in onnx_out] == audio
    assert [t["text"] for t in onnx_out] == [t["text"] for t in torch_out]
    assert sum(len(t["words"]) for t in torch_out) >= 4  # real words to compare
    for a, b in zip(onnx_out, torch_out):
        assert [(w["word"], w["start"], w["end"]) for w in a["words"]] == \
               [(w["word"], w["start"], w["end"]) for w in b["words"]]
        assert [w["confidence"] for w in a["words"]] == pytest.approx([w["confidence"] for w in b["words"]],
                                                                      abs=1e-4)


def test_evaluate_onnx_backend_scores_the_torch_hypotheses(exported, tmp_path, capsys):
    model_dir, out, _ = exported
    rows = [(write_noise(tmp_path / f"e{i}.wav", s, seed=10 + i), "AB CAT") for i, s in enumerate([1.2, 0.8, 1.9])]
    manifest = write_manifest_tsv(tmp_path / "test.tsv", rows)
    runs = {}
    for backend in ("torch", "onnx"):
        assert main(["evaluate", str(model_dir), str(manifest), "--out", str(tmp_path / backend),
                     "--backend", backend, *(["--onnx", str(out)] if backend == "onnx" else [])]) == 0
        runs[backend] = json.loads((tmp_path / backend / "metrics.json").read_text())
    capsys.readouterr()
    assert (tmp_path / "onnx" / "hyps.tsv").read_text() == (tmp_path / "torch" / "hyps.tsv").read_text()
    assert runs["onnx"]["wer"] == runs["torch"]["wer"] and runs["onnx"]["cer"] == runs["torch"]["cer"]
    assert (runs["torch"]["backend"], runs["onnx"]["backend"]) == ("torch", "onnx")


def test_an_onnx_path_needs_the_onnx_backend(exported, tmp_path, capsys):
    model_dir, out, _ = exported
    assert main(["transcribe", str(model_dir), str(write_noise(tmp_path / "a.wav", 0.5, seed=0)),
                 "--onnx", str(out)]) == 2
    assert f"{out}: an ONNX file is run by the onnx backend" in capsys.readouterr().err


def test_cached_export_is_made_when_missing_or_stale(tmp_path, monkeypatch):
    model_dir = write_model_dir(tmp_path / "m", "group")
    calls = []

    def fake_export(src, out):
        calls.append(Path(out))
        Path(out).write_bytes(b"onnx")
        return Path(out)

    monkeypatch.setattr(onnx_export, "export_model_dir", fake_export)
    path = onnx_export.cached_export(model_dir)
    assert path == model_dir / "model.onnx" and calls == [path]
    assert onnx_export.cached_export(model_dir) == path and len(calls) == 1  # fresh: reused
    stamp = path.stat().st_mtime + 10
    os.utime(model_dir / "model.safetensors", (stamp, stamp))  # weights rewritten after the export
    onnx_export.cached_export(model_dir)
    assert len(calls) == 2


def test_refuses_a_model_dir_without_a_ctc_head(tmp_path, capsys):
    cfg = dataclasses.replace(tiny_config("group"), vocab_size=0)
    save_model_dir(build_model(cfg), cfg, tmp_path / "encoder")
    out = tmp_path / "enc.onnx"
    assert main(["export", "--to", "onnx", str(tmp_path / "encoder"), str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'encoder'}: not a CTC model directory" in err
    assert not out.exists()
    with pytest.raises(ValueError, match="not a CTC model directory"):
        onnx_export.export_model_dir(tmp_path / "encoder", out)


def test_refuses_an_onnx_file_without_w2v2_metadata(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), tmp_path / "other.onnx")
    with pytest.raises(ValueError, match="other.onnx: no w2v2 config"):
        onnx_export.OnnxAcousticModel(tmp_path / "other.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="junk.onnx: not a readable ONNX model"):
        onnx_export.OnnxAcousticModel(tmp_path / "junk.onnx")
