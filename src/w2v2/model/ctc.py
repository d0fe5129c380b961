"""Wav2Vec2ForCTC: the encoder with a linear head over a letter vocabulary (paper section 4.3)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ..config import W2V2Config
from .dropout import Dropout
from .masking import compute_mask_indices
from .wav2vec2 import Wav2Vec2Model, build_model


@dataclass
class CTCOutput:
    logits: Tensor  # (B, T, V)
    lengths: Tensor | None  # (B,) valid frames


class Wav2Vec2ForCTC(nn.Module):
    """In training, time masks (mask_prob, mask_length) and channel masks (mask_channel_prob,
    mask_channel_length) are drawn from ``rng``, as SpecAugment-style regularisation (section 4.3)."""

    def __init__(self, cfg: W2V2Config, wav2vec2: Wav2Vec2Model) -> None:
        super().__init__()
        if cfg.vocab_size <= 0:
            raise ValueError("a CTC model needs vocab_size > 0")
        self.cfg = cfg
        self.wav2vec2 = wav2vec2
        self.dropout = Dropout(cfg.final_dropout)
        self.lm_head = nn.Linear(wav2vec2.feature_projection.projection.out_features, cfg.vocab_size)
        nn.init.xavier_uniform_(self.lm_head.weight)  # fairseq's Wav2VecCtc output layer
        nn.init.zeros_(self.lm_head.bias)

    def forward(self, waveform: Tensor, lengths: Tensor | None = None,
                rng: np.random.Generator | None = None, freeze_encoder: bool = False,
                conv_features: tuple[Tensor, Tensor] | None = None) -> CTCOutput:
        """``freeze_encoder``: run the encoder without autograd (the first fine-tuning updates,
        where only the output layer trains). ``conv_features``: see ``Wav2Vec2Model.features``."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not freeze_encoder):
            x, lengths = self.encode(waveform, lengths, rng, conv_features)
        return CTCOutput(self.lm_head(self.dropout(x)), lengths)

    def encode(self, waveform: Tensor, lengths: Tensor | None, rng: np.random.Generator | None,
               conv_features: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor | None]:
        cfg, w = self.cfg, self.wav2vec2
        f = w.features(waveform, lengths, conv_features)
        x = f.projected
        b, t, d = x.shape
        time_mask = channel_mask = None
        if self.training and (cfg.mask_prob > 0 or cfg.mask_channel_prob > 0):
            rng = rng if rng is not None else np.random.default_rng()
            if cfg.mask_prob > 0:
                fl = [t] * b if f.lengths is None else f.lengths.tolist()
                tm = compute_mask_indices(fl, t, cfg.mask_prob, cfg.mask_length, cfg.mask_min_masks, rng,
                                          same_count=False)
                time_mask = torch.from_numpy(tm).to(x.device)
            if cfg.mask_channel_prob > 0:
                cm = compute_mask_indices([d] * b, d, cfg.mask_channel_prob, cfg.mask_channel_length, 0, rng,
                                          same_count=False)
                channel_mask = torch.from_numpy(cm).to(x.device)
        x = w.apply_mask(x, time_mask, channel_mask)
        x, _ = w.encoder(x, f.key_mask)
        return x, f.lengths


def build_ctc_model(cfg: W2V2Config) -> Wav2Vec2ForCTC:
    return Wav2Vec2ForCTC(cfg, build_model(cfg))
