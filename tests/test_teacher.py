"""Teacher targets (target_layers, not in the paper; data2vec's EMA teacher under the contrastive loss)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from train_utils import micro_config, write_corpus
from w2v2.config import W2V2Config
from w2v2.interop.hf import export_hf
from w2v2.interop.model_dir import load_model_dir
from w2v2.model import build_pretraining_model
from w2v2.model.teacher import instance_norm
from w2v2.train.pretrain import PretrainTask
from test_training import ENV, pretrain_cmd


def teacher_config(**kw) -> W2V2Config:
    return micro_config(**{"quantize_targets": False, "target_layers": 2, "encoder_layerdrop": 0.0, **kw})


def test_config_refuses_teacher_targets_with_a_quantizer_or_too_many_layers():
    with pytest.raises(ValueError, match="target_layers.*quantize_targets=False"):
        micro_config(target_layers=1)
    with pytest.raises(ValueError, match=r"target_layers=3.*encoder_layers=2"):
        micro_config(quantize_targets=False, target_layers=3)
    with pytest.raises(ValueError, match="ema_decay"):
        teacher_config(ema_decay=(0.99, 0.9, 10.0))
    cfg = teacher_config(ema_decay=(0.99, 0.999, 500.0))
    assert W2V2Config.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_decay_schedule_and_ema_step_follow_the_formula():
    """tau linear from start to end over the span (data2vec 3.3); theta_T <- tau theta_T + (1 - tau) theta_S."""
    torch.manual_seed(0)
    model = build_pretraining_model(teacher_config(ema_decay=(0.9, 0.99, 10.0)))
    teacher = model.teacher
    assert [teacher.decay_at(u) for u in (0, 5, 10, 50)] == pytest.approx([0.9, 0.945, 0.99, 0.99])
    student = model.wav2vec2.encoder
    with torch.no_grad():
        for p in student.parameters():
            p.add_(torch.randn_like(p))
    t0 = {n: p.clone() for n, p in teacher.encoder.named_parameters()}
    s = dict(student.named_parameters())
    model.update_teacher(5)
    for n, p in teacher.encoder.named_parameters():
        assert torch.allclose(p, 0.945 * t0[n] + 0.055 * s[n], atol=1e-6), n
    assert not any(p.requires_grad for p in teacher.parameters())


def test_teacher_stays_in_eval_mode_and_gets_no_gradient():
    torch.manual_seed(0)
    model = build_pretraining_model(teacher_config(dropout=0.5, attention_dropout=0.5)).train()
    assert not model.teacher.training and not model.teacher.encoder.layers[0].training
    x = torch.randn(1, 10, 32)
    assert torch.equal(model.teacher.targets(x), model.teacher.targets(x))  # no dropout
    out = model(torch.randn(2, 16000), rng=np.random.default_rng(0))
    out.loss.backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all(model.get_parameter(n).grad is not None for n in trainable)
    assert model.project_q.in_features == 32  # targets have the Transformer's width


def test_targets_are_instance_normalised_means_of_the_top_blocks():
    """top_k = 1: every channel of the target has zero mean and unit variance over the frames; the
    mean of two normalised blocks has zero mean and a variance of at most one."""
    torch.manual_seed(0)
    x = torch.randn(2, 40, 32)
    one = build_pretraining_model(teacher_config(target_layers=1)).teacher.targets(x)
    assert torch.allclose(one.mean(1), torch.zeros(2, 32), atol=1e-5)
    assert torch.allclose(one.var(1, unbiased=False), torch.ones(2, 32), atol=1e-3)
    two = build_pretraining_model(teacher_config()).teacher.targets(x)
    assert torch.allclose(two.mean(1), torch.zeros(2, 32), atol=1e-5)
    assert bool((two.var(1, unbiased=False) <= 1 + 1e-3).all())


def test_padded_targets_equal_the_unpadded_utterance():
    """A short utterance padded in a batch gets the targets it gets alone; padded frames are 0."""
    torch.manual_seed(0)
    teacher = build_pretraining_model(teacher_config()).teacher
    x = torch.randn(2, 30, 32)
    key_mask = torch.ones(2, 30, dtype=torch.bool)
    key_mask[1, 20:] = False
    batched = teacher.targets(x, key_mask)
    alone = teacher.targets(x[1:, :20])
    assert torch.allclose(batched[1, :20], alone[0], atol=1e-4)
    assert torch.equal(batched[1, 20:], torch.zeros(10, 32))
    assert torch.allclose(instance_norm(x[:1]), instance_norm(x[:1], key_mask[:1]), atol=1e-5)


def test_the_trainer_steps_the_teacher_after_each_update_not_at_the_start():
    torch.manual_seed(0)
    cfg = teacher_config(ema_decay=(0.5, 0.5, 0.0))
    model = build_pretraining_model(cfg)
    with torch.no_grad():
        for p in model.wav2vec2.encoder.parameters():
            p.add_(1.0)
    task = PretrainTask(cfg, [], 16000, 1)
    probe = lambda: next(model.teacher.encoder.parameters()).clone()  # noqa: E731
    start = probe()
    task.on_update(model, 7, 7.0)  # training starts (or resumes) at update 7
    assert torch.equal(probe(), start)
    task.on_update(model, 8, 8.0)
    student = next(model.wav2vec2.encoder.parameters())
    assert torch.allclose(probe(), 0.5 * start + 0.5 * student)


@pytest.mark.slow
def test_a_teacher_run_loads_as_a_model_directory_and_exports_without_its_teacher(tmp_path):
    """`w2v2 pretrain` with target_layers=2: the teacher moved away from the student and is in the
    saved model; the model directory loads; a transformers export leaves the teacher out.
    (Exact resume with a teacher: test_training's SIGKILL test.)"""
    manifest = write_corpus(tmp_path / "audio")
    cfg_path = tmp_path / "teacher.json"
    teacher_config().save(cfg_path)
    r = subprocess.run(pretrain_cmd(manifest, cfg_path, tmp_path / "run"), env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    saved = load_file(str(tmp_path / "run" / "last" / "model.safetensors"))
    name = "encoder.layers.0.feed_forward.intermediate_dense.weight"
    assert not torch.equal(saved["teacher." + name], saved["wav2vec2." + name])
    model, cfg, _ = load_model_dir(tmp_path / "run" / "last")
    assert model.teacher is not None and cfg.target_layers == 2
    assert torch.equal(model.teacher.encoder.get_parameter(name.removeprefix("encoder.")), saved["teacher." + name])
    export_hf(model, cfg, None, tmp_path / "hf")
    exported = load_file(str(tmp_path / "hf" / "model.safetensors"))
    assert exported and not any("teacher" in k for k in exported)
