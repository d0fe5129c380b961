"""The CPU dropout: drop rate, unbiasedness, gradient, eval identity, reproducibility."""

from __future__ import annotations

import math

import pytest
import torch

from w2v2.model.dropout import LEVELS, Dropout, dropout


@pytest.mark.parametrize("p", [0.05, 0.1, 0.5])
def test_drop_rate_and_scale(p):
    torch.manual_seed(0)
    x = torch.ones(1_000_003)
    y = dropout(x, p, training=True)
    p_eff = round(p * LEVELS) / LEVELS
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - p_eff) < 5 * math.sqrt(p_eff * (1 - p_eff) / x.numel())  # 5 sigma
    kept = y[y != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / (1 - p_eff)))
    assert abs(y.mean().item() - 1.0) < 5 * math.sqrt(p_eff / (1 - p_eff) / x.numel())  # unbiased


def test_masks_are_independent_across_positions_and_calls():
    torch.manual_seed(1)
    a = dropout(torch.ones(200_000), 0.5, True) == 0
    b = dropout(torch.ones(200_000), 0.5, True) == 0
    # P(both dropped) = 1/4 for independent masks; neighbours too (the four uniforms of one word)
    for both in ((a & b).float().mean(), (a[:-1] & a[1:]).float().mean(), (a[::4] & a[1::4]).float().mean()):
        assert abs(both.item() - 0.25) < 0.01


def test_gradient_is_the_mask_times_the_scale_and_eval_is_identity():
    torch.manual_seed(2)
    x = torch.randn(4, 50, 16, requires_grad=True)
    layer = Dropout(0.2)
    y = layer(x)
    (g,) = torch.autograd.grad(y, x, torch.ones_like(y))
    scale = LEVELS / (LEVELS - round(0.2 * LEVELS))
    assert torch.allclose(g, (y != 0).float() * scale)
    assert torch.allclose(y, x.detach() * g)
    layer.eval()
    assert layer(x) is x


def test_same_seed_same_mask_and_bf16():
    x = torch.randn(1000, dtype=torch.bfloat16)
    torch.manual_seed(3)
    a = dropout(x, 0.3, True)
    torch.manual_seed(3)
    b = dropout(x, 0.3, True)
    assert a.dtype == torch.bfloat16 and torch.equal(a, b)
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.5)
