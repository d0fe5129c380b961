"""import / export / info / embed through the command line, checked against transformers."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from hf_oracle import build, padded_batch, transformers
from w2v2.cli import main
from w2v2.interop.model_dir import load_model_dir


def save_ctc(tmp_path):
    hf = build("Wav2Vec2ForCTC", "layer", vocab_size=8)
    src = tmp_path / "hf"
    hf.save_pretrained(src)
    # transformers' convention: <pad> (the CTC blank) at 0
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "A": 5, "B": 6, "C": 7}
    (src / "vocab.json").write_text(json.dumps(vocab))
    return hf, src, vocab


def test_import_ctc_gives_same_greedy_transcripts(tmp_path):
    hf, src, vocab = save_ctc(tmp_path)
    assert main(["import", "--from", "hf", str(src), str(tmp_path / "w2v2")]) == 0
    model, cfg, ours_vocab = load_model_dir(tmp_path / "w2v2")
    assert ours_vocab == vocab
    x, mask, lengths = padded_batch()
    with torch.no_grad():
        ref = hf(x, attention_mask=mask).logits.argmax(-1)
        out = model(x, lengths)
    ours = out.logits.argmax(-1)
    for i, n in enumerate(out.lengths.tolist()):
        assert ours[i, :n].tolist() == ref[i, :n].tolist()


@pytest.mark.parametrize("cls,layout", [("Wav2Vec2ForPreTraining", "group"), ("Wav2Vec2Model", "layer"),
                                        ("Wav2Vec2ForCTC", "layer")])
def test_export_loads_in_transformers_with_same_outputs(tmp_path, cls, layout):
    hf = build(cls, layout, vocab_size=8)
    hf.save_pretrained(tmp_path / "hf")
    if cls == "Wav2Vec2ForCTC":
        (tmp_path / "hf" / "vocab.json").write_text(json.dumps({f"t{i}": i for i in range(8)}))
    assert main(["import", "--from", "hf", str(tmp_path / "hf"), str(tmp_path / "w2v2")]) == 0
    assert main(["export", "--to", "hf", str(tmp_path / "w2v2"), str(tmp_path / "back")]) == 0
    again = getattr(transformers, cls).from_pretrained(tmp_path / "back").eval()
    x, mask, _ = padded_batch()
    with torch.no_grad():
        a, b = hf(x, attention_mask=mask), again(x, attention_mask=mask)
    key = {"Wav2Vec2ForPreTraining": "projected_quantized_states", "Wav2Vec2Model": "last_hidden_state",
           "Wav2Vec2ForCTC": "logits"}[cls]
    assert torch.equal(getattr(a, key), getattr(b, key))
    if cls == "Wav2Vec2ForPreTraining":
        assert torch.equal(a.projected_states, b.projected_states)


def test_info_and_embed(tmp_path, capsys):
    hf = build("Wav2Vec2Model", "group")
    hf.save_pretrained(tmp_path / "hf")
    main(["import", "--from", "hf", str(tmp_path / "hf"), str(tmp_path / "m")])
    capsys.readouterr()
    assert main(["info", str(tmp_path / "m")]) == 0
    info = capsys.readouterr().out
    n = sum(p.numel() for p in hf.parameters())
    assert f"{n:,}" in info and "transformers" in info and "group norm" in info
    rng = np.random.default_rng(0)
    wav8k = rng.standard_normal(8000).astype(np.float32) * 0.1
    sf.write(tmp_path / "a.wav", wav8k, 8000)  # resampled to 16 kHz on reading
    wav = rng.standard_normal(20000).astype(np.float32) * 0.1
    sf.write(tmp_path / "b.flac", wav, 16000)
    assert main(["embed", "--model", str(tmp_path / "m"), str(tmp_path / "b.flac"), "--out", str(tmp_path / "e.npy")]) == 0
    emb = np.load(tmp_path / "e.npy")
    ref_wav = sf.read(tmp_path / "b.flac", dtype="float32")[0]  # FLAC is 16-bit: compare on what was stored
    with torch.no_grad():
        ref = hf(torch.from_numpy(ref_wav)[None], output_hidden_states=True)
    assert np.abs(emb - ref.last_hidden_state[0].numpy()).max() <= 1e-5
    assert main(["embed", "--model", str(tmp_path / "m"), str(tmp_path / "b.flac"), "--layer", "2",
                 "--out", str(tmp_path / "l2.npy")]) == 0
    assert np.abs(np.load(tmp_path / "l2.npy") - ref.hidden_states[2][0].numpy()).max() <= 1e-5
    assert main(["embed", "--model", str(tmp_path / "m"), str(tmp_path / "a.wav"), str(tmp_path / "b.flac"),
                 "--out", str(tmp_path / "both.npy")]) == 0
    both = np.load(tmp_path / "both.npy")
    index = (tmp_path / "both.index.tsv").read_text().splitlines()
    assert len(index) == 3 and both.shape[0] == 49 + emb.shape[0]  # 1 s at 16 kHz -> 49 frames


def test_import_refuses_missing_and_corrupt(tmp_path, capsys):
    assert main(["import", "--from", "hf", str(tmp_path / "nothing"), str(tmp_path / "o")]) == 2
    assert "config.json" in capsys.readouterr().err
    hf = build("Wav2Vec2Model", "group")
    hf.save_pretrained(tmp_path / "hf")
    main(["import", "--from", "hf", str(tmp_path / "hf"), str(tmp_path / "m")])
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    assert main(["info", str(tmp_path / "m")]) == 2
    assert "truncated" in capsys.readouterr().err


def test_model_dir_with_weights_of_another_architecture_is_refused(tmp_path, capsys):
    hf = build("Wav2Vec2Model", "group")
    hf.save_pretrained(tmp_path / "hf")
    main(["import", "--from", "hf", str(tmp_path / "hf"), str(tmp_path / "m")])
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["encoder_layers"] += 1
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    assert main(["info", str(tmp_path / "m")]) == 2
    assert "do not fit the architecture" in capsys.readouterr().err
