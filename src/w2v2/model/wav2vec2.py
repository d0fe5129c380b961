"""The wav2vec 2.0 network: feature encoder -> feature projection -> (masking) -> Transformer."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import W2V2Config
from .dropout import Dropout
from .feature_encoder import FeatureEncoder, build_feature_encoder
from .masking import lengths_to_mask
from .transformer import TransformerEncoder, build_transformer


class GradMultiply(torch.autograd.Function):
    """Identity forward, gradient scaled by ``scale`` (feature-encoder gradient scaling, section 4.2)."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:  # type: ignore[override]
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return grad * ctx.scale, None


class FeatureProjection(nn.Module):
    """LayerNorm over the 512 conv channels, then Linear to the model width, then dropout."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float, eps: float = 1e-5) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(in_dim, eps=eps)
        self.projection = nn.Linear(in_dim, out_dim)
        self.dropout = Dropout(dropout)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Returns (projected, normalised): the quantizer reads the normalised, unprojected frames."""
        normed = self.layer_norm(z)
        return self.dropout(self.projection(normed)), normed


@dataclass
class Features:
    """Output of the feature encoder stage (before masking and the Transformer)."""

    projected: Tensor  # (B, T, D) Transformer input
    normed: Tensor  # (B, T, C) layer-normalised conv features (quantizer input)
    penalty: Tensor  # mean squared conv feature over valid frames (feature penalty, section 4.2)
    lengths: Tensor | None  # (B,) valid frames
    key_mask: Tensor | None  # (B, T) True on valid frames; None when nothing is padded

    def repeat(self, copies: int) -> Features:
        """Each clip ``copies`` times in a row (B * copies, ...): the multi-mask batch of data2vec 2.0
        (Baevski et al. 2022, section 3.1), one feature-encoder pass for several masked versions."""
        def rep(x: Tensor | None) -> Tensor | None:
            return None if x is None else x.repeat_interleave(copies, dim=0)
        return Features(rep(self.projected), rep(self.normed), self.penalty, rep(self.lengths), rep(self.key_mask))


@dataclass
class EncoderOutput:
    last_hidden_state: Tensor  # (B, T, D)
    hidden_states: list[Tensor]  # each block's output, when asked for
    lengths: Tensor | None
    key_mask: Tensor | None


class Wav2Vec2Model(nn.Module):
    """Feature encoder f, feature projection, learned mask embedding, context network g."""

    def __init__(self, feature_extractor: FeatureEncoder, feature_projection: FeatureProjection,
                 encoder: TransformerEncoder, feature_grad_mult: float = 1.0) -> None:
        super().__init__()
        self.feature_extractor = feature_extractor
        self.feature_projection = feature_projection
        self.encoder = encoder
        dim = feature_projection.projection.out_features
        self.mask_emb = nn.Parameter(torch.empty(dim).uniform_())
        self.feature_grad_mult = feature_grad_mult

    def features(self, waveform: Tensor, lengths: Tensor | None = None,
                 conv_features: tuple[Tensor, Tensor] | None = None) -> Features:
        """``conv_features``: the feature encoder's (B, T', C) output and frame counts, when they are
        already known (fine-tuning's feature cache); the waveform is then not encoded again."""
        if conv_features is not None:
            z, frame_lengths = conv_features
        elif self.feature_grad_mult > 0:
            z, frame_lengths = self.feature_extractor(waveform, lengths)
            if self.feature_grad_mult != 1.0 and z.requires_grad:
                z = GradMultiply.apply(z, self.feature_grad_mult)
        else:  # frozen feature encoder (fine-tuning, section 4.3): no autograd graph at all
            with torch.no_grad():
                z, frame_lengths = self.feature_extractor(waveform, lengths)
        key_mask = None  # an exported graph (ONNX) serves padded batches: it always has the mask
        if frame_lengths is not None and (torch.compiler.is_exporting() or bool((frame_lengths < z.shape[1]).any())):
            key_mask = lengths_to_mask(frame_lengths, z.shape[1])
        zf = z.float()
        if key_mask is None:
            penalty = zf.pow(2).mean()
        else:
            penalty = (zf.pow(2) * key_mask.unsqueeze(-1)).sum() / (key_mask.sum() * z.shape[-1])
        projected, normed = self.feature_projection(z)
        return Features(projected, normed, penalty, frame_lengths, key_mask)

    def apply_mask(self, x: Tensor, time_mask: Tensor | None, channel_mask: Tensor | None) -> Tensor:
        """Masked steps get the learned embedding; masked channels are zeroed (section 3.1)."""
        if time_mask is not None:
            x = torch.where(time_mask.unsqueeze(-1), self.mask_emb.to(x.dtype), x)
        if channel_mask is not None:
            x = x.masked_fill(channel_mask.unsqueeze(1), 0.0)
        return x

    def forward(self, waveform: Tensor, lengths: Tensor | None = None, time_mask: Tensor | None = None,
                channel_mask: Tensor | None = None, num_layers: int | None = None,
                return_hidden: bool = False) -> EncoderOutput:
        f = self.features(waveform, lengths)
        x = self.apply_mask(f.projected, time_mask, channel_mask)
        x, hidden = self.encoder(x, f.key_mask, num_layers=num_layers, return_hidden=return_hidden)
        return EncoderOutput(x, hidden, f.lengths, f.key_mask)


def build_model(cfg: W2V2Config) -> Wav2Vec2Model:
    fe = build_feature_encoder(cfg.conv_layers, cfg.extractor_mode, cfg.conv_bias)
    proj = FeatureProjection(fe.out_channels, cfg.encoder_embed_dim, cfg.dropout_input, cfg.layer_norm_eps)
    enc = build_transformer(cfg.encoder_embed_dim, cfg.encoder_layers, cfg.encoder_ffn_embed_dim,
                            cfg.encoder_attention_heads, cfg.conv_pos, cfg.conv_pos_groups, cfg.dropout,
                            cfg.attention_dropout, cfg.activation_dropout, cfg.encoder_layerdrop,
                            cfg.layer_norm_first, cfg.layer_norm_eps)
    return Wav2Vec2Model(fe, proj, enc, cfg.feature_grad_mult)
