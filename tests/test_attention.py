"""The explicit attention against torch's SDPA, and its dropout."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from w2v2.model.attention import attention, explicit_attention
from w2v2.model.dropout import LEVELS


def qkv_and_mask(b=3, h=4, t=30, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, h, t, d, generator=g, requires_grad=True) for _ in range(3))
    valid = torch.tensor([t, t - 7, 5])[:b]
    mask = (torch.arange(t)[None, :] < valid[:, None])[:, None, None, :]
    return q, k, v, mask


def test_explicit_equals_sdpa_with_padding_mask_values_and_gradients():
    q, k, v, mask = qkv_and_mask()
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    ours = explicit_attention(q, k, v, mask, 0.0)
    assert torch.allclose(ours, ref, atol=1e-6)
    g = torch.randn_like(ref)
    for a, r in zip(torch.autograd.grad(ours, (q, k, v), g), torch.autograd.grad(ref, (q, k, v), g)):
        assert torch.allclose(a, r, atol=1e-5)


def test_bf16_training_path_stays_close_to_fp32_sdpa():
    q, k, v, mask = qkv_and_mask(t=64)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), mask, 0.0)
    assert ours.dtype == torch.bfloat16
    assert (ours.float() - ref).abs().max() < 0.05 * ref.abs().max()


def test_attention_dropout_drops_probabilities_and_rescales_the_rest():
    torch.manual_seed(0)
    t, p = 64, 0.25
    q, k, _, _ = qkv_and_mask(b=2, h=2, t=t, d=8)
    v = torch.eye(t).expand(2, 2, t, t)  # y = the (dropped) attention probabilities themselves
    probs = torch.softmax(q @ k.transpose(-1, -2) / 8 ** 0.5, -1)
    y = attention(q, k, v, None, p)
    scale = LEVELS / (LEVELS - round(p * LEVELS))
    dropped = y == 0
    assert abs(dropped.float().mean().item() - p) < 0.02
    assert torch.allclose(y[~dropped], (probs * scale)[~dropped], atol=1e-6)
