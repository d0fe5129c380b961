"""Analytic multiply-accumulate count of a wav2vec 2.0 forward pass (2 FLOPs per MAC).

Counts the matmul-like work only: the feature-encoder convolutions (paper section 2, "Feature
encoder"), the feature projection, the grouped positional convolution, and per Transformer block the
fused QKV / output projections, the two attention products (Q K^T and A V) and the feed-forward
network. Norms, GELU, softmax and residual adds (a fraction of a percent) are left out. A padded batch
costs its padded length: neither implementation skips padded frames.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from w2v2.config import W2V2Config


def encoder_frames(cfg: W2V2Config, samples: int) -> list[int]:
    """Output length of every conv block: floor((L - k) / s) + 1."""
    frames, length = [], samples
    for _, kernel, stride in cfg.conv_layers:
        length = (length - kernel) // stride + 1
        frames.append(length)
    return frames


def forward_flops(cfg: W2V2Config, batch: int, samples: int) -> dict[str, float]:
    """FLOPs by part for a (batch, samples) waveform."""
    frames = encoder_frames(cfg, samples)
    conv, in_ch = 0, 1
    for (ch, kernel, _), t in zip(cfg.conv_layers, frames):
        conv += 2 * ch * in_ch * kernel * t
        in_ch = ch
    t, d, f = frames[-1], cfg.encoder_embed_dim, cfg.encoder_ffn_embed_dim
    pos_out = t + 2 * (cfg.conv_pos // 2) - cfg.conv_pos + 1  # frames the "same"-padded conv computes
    per_block = {
        "qkv + out projections": 2 * t * d * 4 * d,
        "attention (QK^T, AV)": 2 * 2 * t * t * d,
        "feed-forward": 2 * 2 * t * d * f,
    }
    parts = {
        "feature encoder convs": conv,
        "feature projection": 2 * t * in_ch * d,
        "positional conv": 2 * pos_out * d * (d // cfg.conv_pos_groups) * cfg.conv_pos,
    }
    parts.update({k: v * cfg.encoder_layers for k, v in per_block.items()})
    return {k: float(batch * v) for k, v in parts.items()}


def counted_flops(model: torch.nn.Module, waveform: torch.Tensor) -> float:
    """torch's FlopCounterMode on the w2v2 model: convolutions and addmm. It has no formula for the
    CPU flash-attention kernel, so the attention products are missing from this figure."""
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(waveform)
    return float(counter.get_total_flops())
