"""``w2v2 pretrain``'s options: which model, which training defaults, which seed; --init.

The wiring tests replace the trainer by a recorder (``recorded``): they check what ``cmd_pretrain``
hands it, without training. The continued pre-training tests train for real.
"""

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

from train_utils import micro_config, tiny_train_args, write_corpus
from w2v2.cli import main
from w2v2.config import W2V2Config
from w2v2.data.manifest import read_manifest, write_manifest
from w2v2.interop.model_dir import full_state_dict, save_model_dir
from w2v2.model import build_pretraining_model, preset
from w2v2.train import pretrain
from w2v2.train.distributed import DistInfo
from w2v2.train.pretrain import pretrain_defaults, recipe_name

SMALL = tiny_train_args(2)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus") / "audio")


@pytest.fixture
def recorded(monkeypatch):
    """Runs of ``w2v2 pretrain`` that stop where training would start: their model, configs, data."""
    runs = []

    class Recorder:
        def __init__(self, task, model, entries, cfg, run_dir, model_config_dict, resume=False):
            runs.append(dict(task=task, model=model, entries=entries, tcfg=cfg, model_config=model_config_dict))
            self.dist = DistInfo()

        def train(self):
            return {"num_updates": 0, "best": 0.0, "skipped_updates": 0, "dropped_short": 0}

    monkeypatch.setattr(pretrain, "Trainer", Recorder)
    return runs


def pretrain_main(manifest, out, *extra):
    return main(["pretrain", "--train", str(manifest), "--out", str(out), *SMALL, *extra])


def save_config(cfg: W2V2Config, path):
    cfg.save(path)
    return str(path)


# -- which recipe ---------------------------------------------------------------------------------
@pytest.mark.parametrize("cfg,recipe", [
    (preset("tiny"), "tiny"), (preset("base"), "base"), (preset("large_lv60"), "large_lv60"),
    (dataclasses.replace(preset("base"), origin="transformers"), "base"),  # sized by its width
    (dataclasses.replace(preset("large"), origin="fairseq"), "large"),
    (dataclasses.replace(preset("tiny"), origin="w2v2"), "tiny"),
    (dataclasses.replace(preset("tiny"), origin="preset:unknown", encoder_embed_dim=768), "base"),
])
def test_the_recipe_follows_the_model(cfg, recipe):
    assert recipe_name(cfg) == recipe


def test_a_base_config_gets_the_base_recipe(manifest, tmp_path, recorded):
    """A micro-sized config that says it comes from the BASE preset: BASE's defaults where no
    option is given (it used to get the tiny recipe whatever --config said)."""
    cfg = save_config(micro_config(), tmp_path / "c.json")
    base = json.loads((tmp_path / "c.json").read_text()) | {"origin": "preset:base"}
    (tmp_path / "c.json").write_text(json.dumps(base))
    assert pretrain_main(manifest, tmp_path / "run", "--config", cfg) == 0
    tcfg = recorded[0]["tcfg"]
    assert tcfg.lr == pretrain_defaults("base").lr and tcfg.weight_decay == pretrain_defaults("base").weight_decay
    assert tcfg.clip_norm == pretrain_defaults("base").clip_norm != pretrain_defaults("tiny").clip_norm
    assert tcfg.max_updates == 2  # explicit options still win


def test_preset_and_set_as_before(manifest, tmp_path, recorded):
    assert pretrain_main(manifest, tmp_path / "run", "--preset", "tiny", "--set", "mask_prob=0.5") == 0
    run = recorded[0]
    assert run["task"].cfg.mask_prob == 0.5 and run["tcfg"].lr == pretrain_defaults("tiny").lr
    assert run["task"].cfg.encoder_embed_dim == preset("tiny").encoder_embed_dim


@pytest.mark.parametrize("extra,message", [
    (["--preset", "base", "--config", "CFG"], "--preset and --config both give the model"),
    (["--config", "CFG", "--init", "INIT"], "--config and --init both give the model: choose one; --init continues"),
    (["--preset", "tiny", "--init", "INIT"], "--preset and --init both give the model"),
])
def test_two_sources_of_the_model_are_refused(manifest, tmp_path, recorded, capsys, extra, message):
    cfg = save_config(micro_config(), tmp_path / "c.json")
    save_model_dir(build_pretraining_model(micro_config()), micro_config(), tmp_path / "init")
    extra = [{"CFG": cfg, "INIT": str(tmp_path / "init")}.get(a, a) for a in extra]
    assert pretrain_main(manifest, tmp_path / "run", *extra) == 2
    assert message in capsys.readouterr().err and not recorded


# -- one seed ------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["option", "train-config"])
def test_one_seed_for_the_initialisation_and_the_data(manifest, tmp_path, recorded, how):
    """--seed 7, or seed 7 in --train-config: the initial weights are those of seed 7, and the data
    (the validation split, the trainer's batches) use seed 7 too."""
    cfg = micro_config()
    (tmp_path / "t.json").write_text(json.dumps({"seed": 7}))
    extra = ["--seed", "7"] if how == "option" else ["--train-config", str(tmp_path / "t.json")]
    assert pretrain_main(manifest, tmp_path / "run", "--config", save_config(cfg, tmp_path / "c.json"), *extra) == 0
    run = recorded[0]
    assert run["tcfg"].seed == 7 and run["task"].seed == 7
    torch.manual_seed(7)
    expected = build_pretraining_model(cfg).state_dict()
    for k, v in run["model"].state_dict().items():
        assert torch.equal(v, expected[k]), k


# -- the held-out split --------------------------------------------------------------------------
def test_the_held_out_part_of_train_is_capped_in_clips(manifest, tmp_path, recorded):
    """Without --valid, 3 % of a 100-clip pool is held out (3 clips); --valid-max-clips 2 holds out
    2 of those 3, and the rest is trained on."""
    clips = read_manifest(manifest)
    pool = [dataclasses.replace(clips[i % len(clips)], uid=f"u{i}") for i in range(100)]
    write_manifest(tmp_path / "pool.tsv", pool)
    assert pretrain_main(tmp_path / "pool.tsv", tmp_path / "a") == 0
    assert pretrain_main(tmp_path / "pool.tsv", tmp_path / "b", "--valid-max-clips", "2") == 0
    (uncapped, capped) = recorded
    ids = lambda entries: {e.id for e in entries}  # noqa: E731
    assert len(uncapped["task"].valid) == 3 and len(capped["task"].valid) == 2
    assert ids(capped["task"].valid) < ids(uncapped["task"].valid)
    assert ids(capped["entries"]) | ids(capped["task"].valid) == ids(pool) and len(capped["entries"]) == 98


# -- --init ---------------------------------------------------------------------------------------
@pytest.fixture
def init_dir(tmp_path):
    torch.manual_seed(3)
    cfg = micro_config()
    save_model_dir(build_pretraining_model(cfg), cfg, tmp_path / "init")
    return tmp_path / "init"


def test_init_keeps_its_weights_and_takes_training_fields_from_set(manifest, tmp_path, init_dir, recorded):
    """--set on top of --init: masking, loss and dropout change (the model is built with them),
    the weights are the directory's; the peak LR is a tenth of the recipe's."""
    assert pretrain_main(manifest, tmp_path / "run", "--init", str(init_dir), "--set", "mask_prob=0.3",
                         "--set", "dropout_features=0.25", "--set", "diversity_weight=0.2") == 0
    run = recorded[0]
    cfg = run["task"].cfg
    assert (cfg.mask_prob, cfg.dropout_features, cfg.diversity_weight) == (0.3, 0.25, 0.2)
    assert run["model"].cfg is cfg and run["model"].dropout_features.p == 0.25
    assert run["model_config"]["mask_prob"] == 0.3  # what a resumed run compares against
    saved = load_file(str(init_dir / "model.safetensors"))
    ours = full_state_dict(run["model"])
    assert ours.keys() == saved.keys() and all(torch.equal(ours[k], saved[k]) for k in saved)
    assert run["tcfg"].lr == pytest.approx(pretrain_defaults("tiny").lr / 10)


def test_init_lr_can_be_given(manifest, tmp_path, init_dir, recorded):
    assert pretrain_main(manifest, tmp_path / "run", "--init", str(init_dir), "--lr", "1e-3") == 0
    assert recorded[0]["tcfg"].lr == 1e-3


@pytest.mark.parametrize("assignment", ["encoder_layers=3", "latent_vars=8", "normalize=True", "origin=x"])
def test_init_refuses_set_of_the_architecture(manifest, tmp_path, init_dir, recorded, capsys, assignment):
    assert pretrain_main(manifest, tmp_path / "run", "--init", str(init_dir), "--set", assignment) == 2
    err = capsys.readouterr().err
    assert f"--set {assignment.split('=')[0]}: would change the architecture" in err and "mask_prob" in err
    assert not recorded


def test_init_accepts_set_to_the_same_value(manifest, tmp_path, init_dir, recorded):
    assert pretrain_main(manifest, tmp_path / "run", "--init", str(init_dir), "--set", "encoder_layers=2") == 0
