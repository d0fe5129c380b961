"""``w2v2 pretrain --init`` from a released (here: random, tiny) transformers Wav2Vec2ForPreTraining,
imported with ``w2v2 import --from hf``: the trainer starts from the imported quantizer and
codebook (its contrastive loss at step 0 is transformers' on the same masks and negatives), with
the model's own masking and loss settings, a tenth of the recipe's peak LR and a fresh warm-up,
and trains finitely. Directories without a quantizer are refused."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from hf_oracle import build, padded_batch
from test_hf_parity import hf_pretrain_inputs
from train_utils import tiny_train_args, write_corpus
from w2v2.cli import main
from w2v2.train import pretrain
from w2v2.train.pretrain import pretrain_defaults

TRAIN = tiny_train_args(4)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus") / "audio")


def imported(tmp_path, cls: str, layout: str, **kw):
    hf = build(cls, layout, **kw)
    hf.save_pretrained(tmp_path / "hf")
    if cls == "Wav2Vec2ForCTC":
        (tmp_path / "hf" / "vocab.json").write_text(json.dumps({f"t{i}": i for i in range(8)}))
    assert main(["import", "--from", "hf", str(tmp_path / "hf"), str(tmp_path / "w2v2")]) == 0
    return hf, tmp_path / "w2v2"


@pytest.mark.parametrize("layout", ["group", "layer"])
def test_continues_from_the_imported_quantizer(layout, tmp_path, manifest, monkeypatch):
    hf, model_dir = imported(tmp_path, "Wav2Vec2ForPreTraining", layout)
    x, _, lengths = padded_batch((12000, 12000, 12000))
    mask, hf_neg, neg = hf_pretrain_inputs(hf, x, lengths)
    with torch.no_grad():
        ref = hf(x, mask_time_indices=mask, sampled_negative_indices=hf_neg)
    at_start = {}

    class StepZero(pretrain.Trainer):
        """The trainer's own model, before its first update (after resume and on_update(0))."""

        def optimizer_step(self, results, acc):
            if "codevectors" not in at_start:
                at_start["codevectors"] = self.model.quantizer.codevectors.detach().clone()
                at_start["lr"] = self.optimizer.param_groups[0]["lr"]
            super().optimizer_step(results, acc)

        def train(self):
            self.model.eval()
            with torch.no_grad():
                at_start["contrastive"] = self.model(x, mask_indices=mask, negatives=neg).contrastive.item()
            return super().train()

    monkeypatch.setattr(pretrain, "Trainer", StepZero)
    run = tmp_path / "run"
    assert main(["pretrain", "--init", str(model_dir), "--train", str(manifest), "--out", str(run), *TRAIN,
                 "--warmup-fraction", "0.5"]) == 0
    assert at_start["contrastive"] == pytest.approx(ref.contrastive_loss.item(), rel=1e-5, abs=1e-4)
    assert torch.equal(at_start["codevectors"], hf.quantizer.codevectors.detach())  # at the first update
    imported_cfg = json.loads((model_dir / "config.json").read_text())
    trained_cfg = json.loads((run / "last" / "config.json").read_text())
    for key in ("mask_prob", "mask_length", "num_negatives", "diversity_weight", "feature_pen_weight", "normalize"):
        assert trained_cfg[key] == imported_cfg[key], key  # the model's own masking and loss
    tcfg = json.loads((run / "train_config.json").read_text())
    assert tcfg["lr"] == pytest.approx(pretrain_defaults("tiny").lr / 10)  # 64 wide: the tiny recipe
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["kind"] == "train"]
    assert len(train) == 4 and all(math.isfinite(r["loss"]) for r in train)
    assert at_start["lr"] == pytest.approx(tcfg["lr"] / 2)  # a fresh schedule: the first of 2 warm-up updates
    last = load_file(str(run / "last" / "model.safetensors"))
    assert all(torch.isfinite(v).all() for v in last.values())
    assert not torch.equal(last["quantizer.codevectors"], hf.quantizer.codevectors.detach())  # it trained


@pytest.mark.parametrize("cls,what", [("Wav2Vec2ForCTC", "a fine-tuned CTC model"),
                                      ("Wav2Vec2Model", "a bare encoder")])
def test_a_model_without_quantizer_is_refused(cls, what, tmp_path, manifest, capsys):
    _, model_dir = imported(tmp_path, cls, "layer", vocab_size=8)
    capsys.readouterr()
    assert main(["pretrain", "--init", str(model_dir), "--train", str(manifest), "--out", str(tmp_path / "run"),
                 *TRAIN]) == 2
    err = capsys.readouterr().err
    assert f"holds {what}" in err and "needs the quantizer" in err and "Wav2Vec2ForPreTraining" in err
    assert not (tmp_path / "run").exists()
