"""Scaled dot-product attention: ``F.scaled_dot_product_attention``, or the explicit form on CPU
where that is faster.

On CPU, SDPA with attention dropout (pre-training: 0.1) already falls back to the explicit
matmul-softmax-matmul, drawing its dropout mask with ``bernoulli_``; the explicit form here uses the
cheaper mask of ``dropout.py`` instead. Under bf16 / fp16 autocast, for the sequence lengths of
training crops, the explicit form with its two AMX matmuls was also faster than SDPA's CPU flash
kernel, forward + backward (8 x 4 heads x 199 frames: 1.6x; 2 x 12 x 199: 2.3x; 4 x 12 x 299:
1.15x; 4 x 16 x 400: 0.85x; benchmarks/README.md), but it keeps the B x H x T x T probabilities
for the backward pass (BASE fine-tuning on 4 x 6 s: +200 MB for 5 %), so without dropout it is used
only up to ``MAX_EXPLICIT_SCORES`` of them per layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .dropout import dropout

MAX_EXPLICIT_SCORES = 2**21


def explicit_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float) -> Tensor:
    """softmax(q k^T / sqrt(d) + mask) v with the softmax in float32; ``mask`` True where allowed."""
    scores = torch.matmul(q * q.shape[-1] ** -0.5, k.transpose(-1, -2))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    probs = torch.softmax(scores.float(), dim=-1).to(v.dtype)
    return torch.matmul(dropout(probs, dropout_p, dropout_p > 0), v)


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float) -> Tensor:
    """q, k, v: (B, H, T, d); ``mask``: (B, 1, 1, T) bool or None; ``dropout_p`` 0 outside training."""
    if q.device.type == "cpu" and torch.is_grad_enabled():
        low_precision = torch.is_autocast_enabled("cpu") or q.dtype in (torch.bfloat16, torch.float16)
        b, h, t, _ = q.shape
        if dropout_p > 0 or (low_precision and b * h * t * t <= MAX_EXPLICIT_SCORES):
            return explicit_attention(q, k, v, mask, dropout_p)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
