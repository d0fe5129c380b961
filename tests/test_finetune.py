"""Fine-tuning options and health checks: the feature encoder trained when asked (the from-scratch
baseline), frozen by default (the paper), and the warning for the CTC blank plateau."""

import json

import torch

from train_utils import micro_config, write_corpus
from w2v2.cli import main
from w2v2.interop.model_dir import load_model_dir, save_model_dir
from w2v2.model import build_pretraining_model
from w2v2.train.finetune import blank_warning


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
