"""Pre-training validation: every held-out clip is scored on its own (PretrainTask.validate)."""

from __future__ import annotations

import contextlib
import math
import dataclasses

import pytest
import torch
from train_utils import micro_config, write_corpus

from w2v2.data.manifest import read_manifest
from w2v2.model import build_pretraining_model
from w2v2.train.pretrain import PretrainTask


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    entries = read_manifest(write_corpus(tmp_path_factory.mktemp("corpus"), n=5, seed=3))
    torch.manual_seed(0)
    cfg = micro_config()
    model = build_pretraining_model(cfg).eval()
    return cfg, model, entries


def validate(cfg, model, entries, seed=1):
    return PretrainTask(cfg, entries, 64000, seed).validate(model, torch.device("cpu"), contextlib.nullcontext)


def test_a_clip_scores_the_same_whatever_else_is_held_out(setup):
    """The set's loss is the frame-weighted mean of each clip's loss alone, in any order: no clip's
    crop, masks or distractors depend on the others (batched validation cropped to the shortest
    clip of a batch, so a clip's figures moved with the batch size)."""
    cfg, model, entries = setup
    alone = [validate(cfg, model, [e]) for e in entries]
    together = validate(cfg, model, entries[::-1])
    frames = [a["masked_frames"] for a in alone]
    expected = sum(a["loss"] * n for a, n in zip(alone, frames)) / sum(frames)
    assert together["masked_frames"] == sum(frames)
    assert together["loss"] == pytest.approx(expected, rel=1e-5)
    assert len({round(a['loss'], 6) for a in alone}) == len(alone)  # the clips do differ


def test_validation_is_repeatable_and_follows_the_seed(setup):
    cfg, model, entries = setup
    assert validate(cfg, model, entries)["loss"] == validate(cfg, model, entries)["loss"]
    assert validate(cfg, model, entries, seed=1)["loss"] != validate(cfg, model, entries, seed=2)["loss"]


def test_a_continuous_target_model_reports_no_codes_and_no_codebook_collapse(setup):
    """Without a target quantizer (table 4's continuous targets, the demo and real budgets' choice)
    there are no codes: validation reports no code perplexity or temperature, and the collapse check
    stays quiet where, with a quantizer, a code perplexity under 2 per group is a collapse."""
    cfg, model, entries = setup
    cont = dataclasses.replace(cfg, quantize_targets=False)
    torch.manual_seed(0)
    row = validate(cont, build_pretraining_model(cont).eval(), entries)
    assert {"code_ppl", "prob_ppl", "temp"}.isdisjoint(row) and 0.0 <= row["acc"] <= 1.0
    assert PretrainTask(cont, entries, 64000, 1).check(row, 200) is None
    quantized = validate(cfg, model, entries)
    assert quantized["code_ppl"] >= 1.0 and quantized["temp"] > 0
    collapsed = {**quantized, "code_ppl": 1.0}
    assert "collapsed" in PretrainTask(cfg, entries, 64000, 1).check(collapsed, 200)


def test_no_learning_warning_waits_for_the_end_of_the_warm_up(setup):
    """A loss at log(K+1) during a long warm-up is expected (the rate is still small: the `real`
    budget's 4.8-minute warm-up drew the warning 12 times in row R6); after it, three logs in a row at
    chance are a run that does not learn."""
    cfg, model, entries = setup
    chance = {"contrastive": math.log(cfg.num_negatives + 1), "acc": 0.01}
    task = PretrainTask(cfg, entries, 64000, 1, warmup_updates=600)
    for update in range(100, 600, 10):
        task.on_update(model, update, float(update))
        assert task.check(chance, update) is None
    task.on_update(model, 600, 600.0)
    assert "log(K+1)" in task.check(chance, 600)
    task.on_update(model, 610, 610.0)
    assert task.check({**chance, "contrastive": 3.0}, 610) is None  # learning: quiet again
    eager = PretrainTask(cfg, entries, 64000, 1)  # no warm-up: three logs at chance from update 100 on
    for update in (80, 90, 100):
        eager.on_update(model, update, float(update))
        warning = eager.check(chance, update)
    assert "log(K+1)" in warning
