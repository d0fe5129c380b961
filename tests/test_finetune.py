"""Fine-tuning options and health checks: the feature encoder trained when asked (the from-scratch
baseline), frozen by default (the paper), and the warning for the CTC blank plateau."""

import json

import pytest
import torch
from train_utils import micro_config, write_corpus
from w2v2.cli import main
from w2v2.data.manifest import read_manifest
from w2v2.data.text import Vocabulary
from w2v2.interop.model_dir import load_model_dir, save_model_dir
from w2v2.model import build_model, build_pretraining_model
from w2v2.model.ctc import Wav2Vec2ForCTC
from w2v2.train.config import TrainConfig
from w2v2.train.finetune import FinetuneTask, blank_warning, reinit_top_blocks
from w2v2.train.loop import Trainer


def test_blank_warning_by_hand():
    assert blank_warning(0.995, 1.0, 50, 40, 0).startswith("dev output is (almost) all blank: 99.5% of the frames, 100%")
    assert "frozen-Transformer phase (30 updates" in blank_warning(0.99, 0.95, 50, 40, 30)
    assert blank_warning(0.995, 1.0, 39, 40, 0) is None  # still warming up
    assert blank_warning(0.80, 0.1, 500, 40, 0) is None  # emits letters


def finetune(tmp_path, name, init, *extra):
    corpus = write_corpus(tmp_path / "c", n=6, texts=["AB", "BA AB", "A B"])
    out = tmp_path / name
    assert main(["finetune", "--train", str(corpus), "--valid", str(corpus), "--out", str(out), "--init", init,
                 "--max-updates", "3", "--validate-every", "3", "--save-every", "3", "--lr", "1e-3",
                 "--max-tokens", "80000", "--precision", "fp32", "--num-workers", "0", *extra]) == 0
    return out


def test_feature_encoder_trains_only_when_asked(tmp_path):
    torch.manual_seed(0)
    cfg = micro_config()
    save_model_dir(build_pretraining_model(cfg), cfg, tmp_path / "pre")
    before = load_model_dir(tmp_path / "pre")[0].wav2vec2.feature_extractor.state_dict()
    conv = lambda out: load_model_dir(out / "last")[0].wav2vec2.feature_extractor.state_dict()  # noqa: E731
    frozen = conv(finetune(tmp_path, "frozen", str(tmp_path / "pre")))
    assert all(torch.equal(before[k], frozen[k]) for k in before)  # the paper: frozen
    trained = conv(finetune(tmp_path, "trained", str(tmp_path / "pre"), "--set", "feature_grad_mult=1.0"))
    assert any(not torch.equal(before[k], trained[k]) for k in before)
    log = [json.loads(line) for line in (tmp_path / "trained" / "log.jsonl").read_text().splitlines()]
    valid = [r for r in log if r["kind"] == "valid"]
    assert valid and 0.0 <= valid[-1]["blank"] <= 1.0  # blank share of dev frames is logged


def test_set_shapes_the_scratch_encoder_and_is_refused_for_a_loaded_one(tmp_path, capsys):
    """--init none: --set gives the random encoder that architecture (a scratch baseline for a
    pre-trained model of another conv stack), and the saved model reloads with it; a pre-trained
    --init keeps its architecture: such a --set is refused, naming the field, before any training."""
    frame = "conv_layers=((64,80,40),(32,9,8))"  # two layers, the same 400-sample field and 320 hop
    out = finetune(tmp_path, "scratch", "none", "--set", frame, "--set", "encoder_layers=1")
    model, cfg, _ = load_model_dir(out / "last")
    assert cfg.conv_layers == ((64, 80, 40), (32, 9, 8)) and cfg.encoder_layers == 1
    assert [c.conv.out_channels for c in model.wav2vec2.feature_extractor.conv_layers] == [64, 32]
    cfg = micro_config()
    save_model_dir(build_pretraining_model(cfg), cfg, tmp_path / "pre")
    corpus = write_corpus(tmp_path / "c2", n=2, texts=["AB"])
    assert main(["finetune", "--train", str(corpus), "--valid", str(corpus), "--out", str(tmp_path / "bad"),
                 "--init", str(tmp_path / "pre"), "--set", frame]) == 2
    assert "--set conv_layers: would change the architecture" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_head_rate_and_encoder_ramp_after_the_frozen_phase(tmp_path):
    """lr_groups + the Trainer's schedule: the output layer runs at head_lr_scale x the schedule;
    the encoder gets 0 while frozen, then ramps linearly over unfreeze_warmup_updates (hand values
    on a constant schedule: tri-stage with no warm-up and no decay)."""
    cfg = micro_config(vocab_size=5)
    model = Wav2Vec2ForCTC(cfg, build_model(cfg))
    vocab = Vocabulary(["<pad>", "<unk>", "|", "A", "B"])
    task = FinetuneTask(cfg, vocab, [], freeze_updates=10, unknown="map", head_lr_scale=20.0,
                        unfreeze_warmup_updates=4)
    tcfg = TrainConfig(lr=1e-3, schedule="tri_stage", tri_stage=(0.0, 1.0, 0.0), max_updates=100,
                       min_sample_size=0, device="cpu")
    entries = read_manifest(write_corpus(tmp_path / "c", n=2))
    trainer = Trainer(task, model, entries, tcfg, tmp_path / "run", cfg.to_dict())
    rates = []
    for u in range(16):
        trainer.num_updates, trainer.schedule_at = u, float(u)
        trainer.set_lr()
        rates.append([g["lr"] for g in trainer.optimizer.param_groups])
    encoder, head = zip(*rates)
    assert head == pytest.approx([2e-2] * 16)
    assert encoder == pytest.approx([0.0] * 10 + [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])
    grouped = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert grouped == {id(p) for p in model.parameters() if p.requires_grad}


def test_reinit_top_blocks_gives_the_fresh_initialisation_back():
    """The top block equals a fresh model's (same seed), the others keep the pre-trained weights."""
    cfg = micro_config()
    torch.manual_seed(5)
    trained = build_model(cfg)
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    reinit_top_blocks(trained, cfg, 1, seed=3)
    torch.manual_seed(3)
    fresh = build_model(cfg)
    top = len(trained.encoder.layers) - 1
    for k, v in trained.state_dict().items():
        expected = fresh.state_dict()[k] if k.startswith(f"encoder.layers.{top}.") else before[k]
        assert torch.equal(v, expected), k
    top_keys = [k for k in before if k.startswith(f"encoder.layers.{top}.")]
    assert top_keys and any(not torch.equal(before[k], trained.state_dict()[k]) for k in top_keys)
    with pytest.raises(ValueError, match="has 2 Transformer blocks"):
        reinit_top_blocks(trained, cfg, 3, seed=3)
