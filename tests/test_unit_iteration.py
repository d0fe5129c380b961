"""Second-iteration unit targets (``target_layer``): k-means units of a frozen copy of the model
that pre-training continues from (HuBERT, Hsu et al. 2021, section III-B), and their CLI wiring."""

import dataclasses

import numpy as np
import pytest
import torch

from train_utils import micro_config, tiny_train_args, write_corpus
from w2v2.cli import main
from w2v2.config import W2V2Config
from w2v2.interop.model_dir import load_model_dir, read_model_dir
from w2v2.model import build_pretraining_model
from w2v2.model.units import LayerFrames
from w2v2.train.units import copy_teacher, unit_centres


def second_iteration(layer: int = 1, **kw) -> W2V2Config:
    return micro_config(quantize_targets=False, target_units=8, target_layer=layer, **kw)


def test_layer_frames_are_the_copied_models_block_output_without_dropout():
    torch.manual_seed(0)
    cfg = second_iteration(layer=1, dropout=0.3, attention_dropout=0.3)
    model = build_pretraining_model(cfg)
    copy_teacher(model.units, model.wav2vec2)
    model.train()  # the frozen copy stays in eval mode: its output is deterministic
    wav = torch.randn(2, 8000)
    t = model.wav2vec2.features(wav).projected.shape[1]
    first, second = model.units.frames(wav, t), model.units.frames(wav, t)
    assert torch.equal(first, second) and first.shape == (2, t, cfg.encoder_embed_dim)
    model.wav2vec2.eval()
    hidden = model.wav2vec2(wav, return_hidden=True).hidden_states  # the input of block 1, then each block's output
    torch.testing.assert_close(first, hidden[1])
    assert not any(p.requires_grad for p in model.units.frames.parameters())
    assert len(model.units.frames.model.encoder.layers) == 1  # only the blocks the targets read


def test_padded_frames_do_not_change_the_valid_frames_vectors():
    """The key mask keeps padding out of self-attention and the positional convolution (with the
    layer-norm feature encoder, whose statistics are per frame; group norm's span the padding)."""
    torch.manual_seed(0)
    cfg = second_iteration(layer=2, extractor_mode="layer")
    model = build_pretraining_model(cfg)
    copy_teacher(model.units, model.wav2vec2)
    wav = torch.randn(1, 8000)
    t = model.wav2vec2.features(wav).projected.shape[1]
    alone = model.units.frames(wav, t)
    padded = torch.cat([wav, torch.zeros(1, 3200)], 1)
    tp = model.wav2vec2.features(padded).projected.shape[1]
    batch = model.units.frames(torch.cat([padded, torch.randn(1, 11200)]), tp, torch.tensor([t, tp]))
    torch.testing.assert_close(batch[0, :t], alone[0], atol=1e-4, rtol=1e-4)


def test_the_targets_are_the_nearest_centres_of_the_layer_and_stay_fixed_in_training():
    torch.manual_seed(0)
    cfg = second_iteration(layer=2, dropout=0.0, dropout_input=0.0, dropout_features=0.0, attention_dropout=0.0)
    model = build_pretraining_model(cfg)
    copy_teacher(model.units, model.wav2vec2)
    wav = torch.randn(2, 8000)
    t = model.wav2vec2.features(wav).projected.shape[1]
    feats = model.units.frames(wav, t)
    model.units.centres.copy_(unit_centres(feats.reshape(-1, cfg.encoder_embed_dim).numpy(), 8, 0))
    teacher_before = {k: v.clone() for k, v in model.units.frames.state_dict().items()}
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    for _ in range(3):
        out = model(wav, None, rng=np.random.default_rng(0))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    nearest = ((feats[:, :, None, :] - model.units.centres) ** 2).sum(-1).argmin(-1)
    masks = model.compute_masks([t, t], t, np.random.default_rng(0))
    assert torch.equal(out.codes[..., 0], nearest[masks].view(2, -1))  # the copy's units, though the model moved
    for k, v in model.units.frames.state_dict().items():
        assert torch.equal(v, teacher_before[k]), k


@pytest.mark.parametrize("change,message", [
    ({"target_layer": 3}, "1 to encoder_layers"), ({"target_layer": -1}, "1 to encoder_layers"),
    ({"target_units": 0}, "needs unit targets")])
def test_the_config_refuses_a_block_it_cannot_read(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(second_iteration(layer=1), **change)
    with pytest.raises(ValueError, match="layer 3"):
        LayerFrames(build_pretraining_model(micro_config()).wav2vec2, 3)


def test_pretrain_cli_continues_with_units_of_the_first_runs_block(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "audio", n=8)
    micro_config(quantize_targets=False, target_units=8).save(tmp_path / "cfg.json")
    assert main(["pretrain", "--train", str(corpus), "--out", str(tmp_path / "it1"), "--config",
                 str(tmp_path / "cfg.json"), *tiny_train_args(2)]) == 0
    _, first, _ = read_model_dir(tmp_path / "it1" / "best")
    assert main(["pretrain", "--train", str(corpus), "--out", str(tmp_path / "it2"), "--init",
                 str(tmp_path / "it1" / "best"), "--set", "target_layer=1", *tiny_train_args(3)]) == 0
    cfg, second, _ = read_model_dir(tmp_path / "it2" / "best")
    assert (cfg.target_layer, cfg.target_units) == (1, 8)
    teacher = {k.removeprefix("units.frames.model."): v for k, v in second.items()
               if k.startswith("units.frames.model.")}
    assert teacher and all(torch.equal(v, first["wav2vec2." + k]) for k, v in teacher.items())  # never trained
    assert second["units.centres"].shape == (8, cfg.encoder_embed_dim)
    assert not torch.equal(second["unit_embeddings"], first["unit_embeddings"])  # new units, new embeddings
    moved = [k for k in first if k.startswith("wav2vec2.") and not torch.equal(first[k], second[k])]
    assert moved  # the model itself trained on
    model, _, _ = load_model_dir(tmp_path / "it2" / "best")  # a checkpoint rebuilds with its frozen copy
    assert isinstance(model.units.frames, LayerFrames) and model.units.fitted
    # resumed, the copy and the centres come from the checkpoint: no k-means again
    capsys.readouterr()
    assert main(["pretrain", "--train", str(corpus), "--out", str(tmp_path / "it2"), "--init",
                 str(tmp_path / "it1" / "best"), "--set", "target_layer=1", "--resume", *tiny_train_args(4)]) == 0
    assert "centres fitted" not in capsys.readouterr().out
    _, resumed, _ = read_model_dir(tmp_path / "it2" / "last")
    assert torch.equal(resumed["units.centres"], second["units.centres"])


def test_pretrain_cli_refuses_block_units_without_a_unit_model_to_continue_from(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "audio", n=4)
    second_iteration(layer=1).save(tmp_path / "cfg.json")
    assert main(["pretrain", "--train", str(corpus), "--out", str(tmp_path / "x"), "--config",
                 str(tmp_path / "cfg.json"), *tiny_train_args(1)]) == 2
    assert "--init RUN/best" in capsys.readouterr().err
    micro_config(quantize_targets=False).save(tmp_path / "latents.json")
    assert main(["pretrain", "--train", str(corpus), "--out", str(tmp_path / "lat"), "--config",
                 str(tmp_path / "latents.json"), *tiny_train_args(1)]) == 0
    capsys.readouterr()
    assert main(["pretrain", "--train", str(corpus), "--out", str(tmp_path / "y"), "--init",
                 str(tmp_path / "lat" / "best"), "--set", "target_units=8", "--set", "target_layer=1",
                 *tiny_train_args(1)]) == 2
    assert "--set target_layer, target_units: would change the architecture" in capsys.readouterr().err
