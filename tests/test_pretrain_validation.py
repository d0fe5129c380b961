"""Pre-training validation: every held-out clip is scored on its own (PretrainTask.validate)."""

from __future__ import annotations

import contextlib
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
