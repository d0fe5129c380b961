"""Wav2Vec2ForPreTraining: the self-supervised model and its loss (paper section 3)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ..config import W2V2Config
from .dropout import Dropout
from .losses import (contrastive_accuracy, contrastive_logits, contrastive_loss, diversity_loss, unit_accuracy,
                     unit_logits, unit_loss)
from .masking import compute_mask_indices, sample_negatives
from .quantizer import GumbelVectorQuantizer
from .units import UnitTargets, build_unit_targets
from .wav2vec2 import Features, Wav2Vec2Model, build_model


@dataclass
class PretrainOutput:
    loss: Tensor  # per masked step: contrastive + a * diversity + b * feature penalty
    contrastive: Tensor  # summed over masked steps (eq. 3); unit targets: summed cross-entropy
    diversity: Tensor  # per step (eq. 4, fairseq's perplexity form by default)
    penalty: Tensor  # mean squared feature-encoder output
    sample_size: int  # number of masked steps (fairseq's sample_size)
    correct: int
    count: int
    code_perplexity: Tensor
    prob_perplexity: Tensor
    temperature: float
    logits: Tensor  # (B, M, K + 1); unit targets: (B, M, K units)
    codes: Tensor  # (B, M, G) codebook entries chosen at the masked steps; unit targets: (B, M, 1) units


class Wav2Vec2ForPreTraining(nn.Module):
    def __init__(self, cfg: W2V2Config, wav2vec2: Wav2Vec2Model, quantizer: GumbelVectorQuantizer | None,
                 input_quantizer: GumbelVectorQuantizer | None = None, units: UnitTargets | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.wav2vec2 = wav2vec2
        self.quantizer = quantizer
        self.input_quantizer = input_quantizer
        c = wav2vec2.feature_extractor.out_channels
        d = wav2vec2.feature_projection.projection.out_features
        self.dropout_features = Dropout(cfg.dropout_features)
        self.units = units
        self.project_q = None if units is not None else nn.Linear(
            cfg.codevector_dim if quantizer is not None else c, cfg.final_dim)
        self.unit_embeddings = None if units is None else nn.Parameter(torch.randn(cfg.target_units, cfg.final_dim))
        self.final_proj = nn.Linear(d, cfg.final_dim)
        self.project_inp = nn.Linear(cfg.codevector_dim, d) if input_quantizer is not None else None

    def set_num_updates(self, num_updates: int) -> None:
        for q in (self.quantizer, self.input_quantizer):
            if q is not None:
                q.set_num_updates(num_updates)

    def compute_masks(self, frame_lengths: list[int], total: int, rng: np.random.Generator) -> Tensor:
        cfg = self.cfg
        return torch.from_numpy(compute_mask_indices(frame_lengths, total, cfg.mask_prob, cfg.mask_length,
                                                     cfg.mask_min_masks, rng))

    def forward(self, waveform: Tensor, lengths: Tensor | None = None, mask_indices: Tensor | None = None,
                negatives: Tensor | None = None, rng: np.random.Generator | None = None,
                generator: torch.Generator | None = None) -> PretrainOutput:
        """``mask_indices`` (B, T) bool and ``negatives`` (B, M, K) indices into the masked steps
        may be given (tests, oracles); otherwise they are drawn from ``rng`` / ``generator``. In
        training with ``cfg.mask_copies`` = n > 1 each clip's features are repeated n times after
        the feature encoder (``Features.repeat``), each copy with its own masks and distractors, so
        B reads B * n here and in the output; evaluation always scores one copy."""
        cfg, w = self.cfg, self.wav2vec2
        f = w.features(waveform, lengths)
        if self.training and cfg.mask_copies > 1:
            f = f.repeat(cfg.mask_copies)
        b, t, _ = f.projected.shape
        if mask_indices is None:
            fl = [t] * b if f.lengths is None else f.lengths.tolist()
            mask_indices = self.compute_masks(fl, t, rng if rng is not None else np.random.default_rng())
        mask_indices = mask_indices.to(f.projected.device)
        m = int(mask_indices[0].sum())
        if bool((mask_indices.sum(1) != m).any()):
            raise ValueError("every utterance must have the same number of masked steps")
        x = f.projected
        in_div = None
        if self.input_quantizer is not None:  # ablation: quantized Transformer inputs (table 4)
            qi = self.input_quantizer(f.normed.reshape(b * t, -1))
            x = self.project_inp(qi.quantized.view(b, t, -1))
            in_div = diversity_loss(qi.avg_probs, qi.prob_perplexity, cfg.diversity_form)
        channel_mask = None
        if self.training and cfg.mask_channel_prob > 0:
            ch = compute_mask_indices([x.shape[-1]] * b, x.shape[-1], cfg.mask_channel_prob,
                                      cfg.mask_channel_length, 0, rng or np.random.default_rng(), same_count=False)
            channel_mask = torch.from_numpy(ch).to(x.device)
        x = w.apply_mask(x, mask_indices, channel_mask)
        x, _ = w.encoder(x, f.key_mask)
        c = self.final_proj(x[mask_indices].view(b, m, -1))
        if self.units is not None:
            return self.unit_objective(waveform, f, mask_indices, c, in_div)
        z = self.dropout_features(f.normed)[mask_indices]  # (B*M, C): the quantizer sees unmasked z
        if self.quantizer is not None:
            q = self.quantizer(z)
            y, codes = q.quantized, q.codes.view(b, m, -1)
            code_ppl, prob_ppl = q.code_perplexity, q.prob_perplexity
            div = diversity_loss(q.avg_probs, q.prob_perplexity, cfg.diversity_form)
            temperature = self.quantizer.temperature
        else:  # ablation: continuous targets
            y, codes = z, torch.zeros(b, m, 0, dtype=torch.long, device=z.device)
            code_ppl = prob_ppl = torch.zeros((), device=z.device)
            div, temperature = torch.zeros((), device=z.device), 0.0
        if in_div is not None:
            div = div + in_div
        assert self.project_q is not None
        y = self.project_q(y).view(b, m, -1)
        if negatives is None:
            negatives = sample_negatives(b, m, cfg.num_negatives, generator=generator)
        logits = contrastive_logits(c, y, negatives.to(y.device), cfg.logit_temp)
        contrastive = contrastive_loss(logits)
        n = b * m
        loss = contrastive / n + cfg.diversity_weight * div + cfg.feature_pen_weight * f.penalty
        correct, count = contrastive_accuracy(logits)
        return PretrainOutput(loss, contrastive, div, f.penalty, n, correct, count, code_ppl, prob_ppl,
                              temperature, logits, codes)

    def unit_objective(self, waveform: Tensor, f: Features, mask_indices: Tensor, c: Tensor,
                       in_div: Tensor | None) -> PretrainOutput:
        """HuBERT's masked prediction (Hsu et al. 2021, eq. 1-2, masked frames only) of each masked
        frame's k-means unit of MFCCs; ``contrastive`` holds the summed cross-entropy and ``codes``
        the (B, M, 1) target units."""
        assert self.units is not None and self.unit_embeddings is not None
        b, m, _ = c.shape
        units = self.units(waveform, mask_indices.shape[1], f.lengths)[mask_indices].view(b, m)
        logits = unit_logits(c, self.unit_embeddings, self.cfg.logit_temp)
        ce = unit_loss(logits, units)
        zero = torch.zeros((), device=c.device)
        div = zero if in_div is None else in_div
        n = b * m
        loss = ce / n + self.cfg.diversity_weight * div + self.cfg.feature_pen_weight * f.penalty
        correct, count = unit_accuracy(logits, units)
        return PretrainOutput(loss, ce, div, f.penalty, n, correct, count, zero, zero, 0.0, logits,
                              units.unsqueeze(-1))


def build_pretraining_model(cfg: W2V2Config) -> Wav2Vec2ForPreTraining:
    w = build_model(cfg)
    c = w.feature_extractor.out_channels

    def quantizer() -> GumbelVectorQuantizer:
        return GumbelVectorQuantizer(c, cfg.latent_vars, cfg.latent_groups, cfg.codevector_dim, cfg.latent_temp)

    return Wav2Vec2ForPreTraining(cfg, w, quantizer() if cfg.quantize_targets else None,
                                  quantizer() if cfg.quantize_input else None,
                                  build_unit_targets(cfg) if cfg.target_units > 0 else None)
