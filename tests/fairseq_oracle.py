"""Small fairseq wav2vec 2.0 models written as fairseq checkpoints (the oracle of test_fairseq.py;
needs the optional ``fairseq`` extra)."""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

_root = logging.getLogger()
_level, _handlers = _root.level, list(_root.handlers)
try:  # importing fairseq configures the root logger (DEBUG, to stderr): undo it for the other tests
    fairseq = pytest.importorskip("fairseq")
    from fairseq.logging.meters import AverageMeter
    from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Config, Wav2Vec2Model
    from fairseq.models.wav2vec.wav2vec2_asr import Wav2Vec2CtcConfig, Wav2VecCtc, Wav2VecEncoder
    from omegaconf import OmegaConf
finally:
    _root.setLevel(_level)
    _root.handlers[:] = _handlers

LOG_KEYS = ["prob_perplexity", "code_perplexity", "temp"]


def model_config(layout: str) -> Wav2Vec2Config:
    """BASE-like ("group": group norm, post-LN, conv width = model width so no post_extract_proj)
    or LV60-like ("layer": layer norms, conv bias, pre-LN) at toy size."""
    layer = layout == "layer"
    ch = 32 if layer else 48
    return Wav2Vec2Config(
        extractor_mode="layer_norm" if layer else "default", conv_bias=layer, layer_norm_first=layer,
        conv_feature_layers=f"[({ch}, 10, 5)] + [({ch}, 3, 2)] * 4 + [({ch}, 2, 2)] * 2",
        encoder_layers=2, encoder_embed_dim=48, encoder_ffn_embed_dim=64, encoder_attention_heads=4,
        conv_pos=16, conv_pos_groups=4, latent_vars=12, latent_groups=2, final_dim=16,
        latent_temp=(2.0, 0.1 if layer else 0.5, 0.999995), quantize_targets=True, num_negatives=5,
        feature_grad_mult=1.0 if layer else 0.1, dropout=0.1, attention_dropout=0.1, dropout_input=0.1,
        dropout_features=0.1, encoder_layerdrop=0.05, mask_prob=0.65, mask_length=4)


def perturb(module: torch.nn.Module, seed: int) -> None:
    """Norm weights start at 1 and biases at 0: make them non-trivial so that a swapped or missing
    tensor shows in the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name or name.endswith(("bias", "weight_g")):
                p.add_(0.1 * torch.randn(p.shape, generator=g))


def build_pretraining(layout: str, seed: int = 0) -> Wav2Vec2Model:
    torch.manual_seed(seed)
    model = Wav2Vec2Model(model_config(layout))
    perturb(model, seed)
    return model.eval()


def model_section(cfg: Wav2Vec2Config, name: str = "wav2vec2") -> dict:
    return {**OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True, enum_to_str=True), "_name": name}


def pretraining_cfg(layout: str) -> dict:
    """What fairseq's trainer saves under "cfg" (model, task, criterion sections)."""
    return {"model": model_section(model_config(layout)),
            "task": {"_name": "audio_pretraining", "data": "/data", "normalize": layout == "layer"},
            "criterion": {"_name": "wav2vec", "infonce": True, "log_keys": LOG_KEYS,
                          "loss_weights": [0.1, 0.0] if layout == "layer" else [0.1, 10.0]}}


def build_ctc(layout: str, vocab_size: int, seed: int = 0, blank_weight: float = 0.0) -> tuple[Wav2VecCtc, dict]:
    """fairseq's own Wav2VecCtc (encoder without the pre-training modules + ``w2v_encoder.proj``)
    and the fine-tuning cfg it is saved with (``w2v_args`` = the pre-training cfg)."""
    torch.manual_seed(seed)
    pre = pretraining_cfg(layout)
    pre["criterion"] = None  # as Wav2VecEncoder stores it
    ft = OmegaConf.structured(Wav2Vec2CtcConfig(w2v_path="pretrained.pt", normalize=layout == "layer", data="/data",
                                                apply_mask=True, mask_prob=0.5, mask_channel_prob=0.25,
                                                mask_channel_length=8, layerdrop=0.1, final_dropout=0.05,
                                                blank_weight=blank_weight))
    ft.w2v_args = OmegaConf.create(pre)
    model = Wav2VecCtc(ft, Wav2VecEncoder(ft, output_size=vocab_size))
    perturb(model, seed)
    section = {**OmegaConf.to_container(ft, resolve=False, enum_to_str=True), "_name": "wav2vec_ctc"}
    section["normalize"] = "${task.normalize}"  # as the dataclass declares it: II("task.normalize")
    cfg = {"model": section, "task": {"_name": "audio_finetuning", "normalize": layout == "layer", "labels": "ltr"},
           "criterion": {"_name": "ctc", "zero_infinity": True}, "distributed_training": {"ddp_backend": "legacy_ddp"}}
    return model.eval(), cfg


def save_checkpoint(path: Path, state: dict, cfg: dict, style: str = "container", legacy_zip: bool = False) -> Path:
    """A checkpoint as fairseq writes it. ``style``: "container" (fairseq 0.12: cfg as plain
    containers), "dictconfig" (earlier hydra versions: an omegaconf DictConfig, struct mode) or
    "args" (argparse era: a flat Namespace, list values as strings)."""
    ckpt = {"model": state, "args": None, "cfg": None,
            "optimizer_history": [{"criterion_name": "Wav2vecCriterion", "optimizer_name": "FairseqAdam",
                                   "lr_scheduler_state": {"best": np.float64(3.25)}, "num_updates": 7}],
            "extra_state": {"train_iterator": {"epoch": 1, "iterations_in_epoch": 0}, "meter": AverageMeter()}}
    if style == "container":
        ckpt["cfg"] = cfg
    elif style == "dictconfig":
        ckpt["cfg"] = OmegaConf.create(cfg)
        OmegaConf.set_struct(ckpt["cfg"], True)
    elif style == "args":
        ckpt["args"] = legacy_args(cfg)
    else:
        raise ValueError(style)
    torch.save(ckpt, path, _use_new_zipfile_serialization=not legacy_zip)
    return path


def legacy_args(cfg: dict) -> argparse.Namespace:
    """The argparse-era form of a cfg: one flat Namespace, list-valued options as strings."""
    criterion = cfg.get("criterion") or {}
    flat = {}
    for section in (cfg["task"], criterion, cfg["model"]):  # interpolations did not exist then
        flat.update({k: v for k, v in section.items() if not (isinstance(v, str) and v.startswith("${"))})
    flat.update(arch=cfg["model"]["_name"], task=cfg["task"]["_name"], criterion=criterion.get("_name"))
    flat.pop("_name")
    for key in ("latent_temp", "loss_weights"):
        if flat.get(key) is not None:
            flat[key] = str(tuple(flat[key]))
    if isinstance(flat.get("w2v_args"), dict):
        flat["w2v_args"] = legacy_args(flat["w2v_args"])
    return argparse.Namespace(**flat)


def import_without_fairseq(jobs: list[tuple[Path, Path, list[str]]]) -> subprocess.CompletedProcess:
    """``w2v2 import --from fairseq SRC OUT [EXTRA]`` for each job, in one fresh interpreter where
    fairseq, omegaconf and hydra cannot be imported."""
    code = ("import sys\n"
            "for m in ('fairseq', 'omegaconf', 'hydra'): sys.modules[m] = None\n"
            "from w2v2.cli import main\n"
            f"for src, out, extra in {[(str(s), str(o), e) for s, o, e in jobs]!r}:\n"
            "    if main(['import', '--from', 'fairseq', src, out, *extra]) != 0:\n"
            "        sys.exit(1)\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def padded_batch(lengths=(8000, 6400, 5000), seed: int = 1):
    """Waveforms (B, T), fairseq's padding mask (True = padding) and the lengths."""
    from hf_oracle import padded_batch as attention_masked_batch

    x, attention_mask, lengths = attention_masked_batch(lengths, seed)
    return x, attention_mask == 0, lengths
