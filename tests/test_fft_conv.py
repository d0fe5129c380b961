"""The FFT positional convolution against conv1d (forward and both gradients) and its cost model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from w2v2.model.fft_conv import FFTGroupedConv, fft_is_faster, fft_size
from w2v2.model.transformer import ConvPositionalEmbedding


def direct(x: torch.Tensor, w: torch.Tensor, groups: int) -> torch.Tensor:
    k = w.shape[-1]
    y = F.conv1d(x.transpose(1, 2), w, padding=k // 2, groups=groups)
    return (y[:, :, :-1] if k % 2 == 0 else y).transpose(1, 2)


def test_fft_size_is_the_smallest_5_smooth_number():
    def smooth(n: int) -> bool:
        for p in (2, 3, 5):
            while n % p == 0:
                n //= p
        return n == 1
    for n in range(1, 400):
        m = fft_size(n)
        assert m >= n and smooth(m) and not any(smooth(j) for j in range(n, m))


@pytest.mark.parametrize("b,t,c,groups,k", [(3, 37, 32, 4, 8), (2, 50, 48, 16, 128), (1, 5, 16, 2, 7),
                                            (4, 19, 8, 1, 6), (2, 300, 64, 16, 128)])
def test_matches_conv1d_forward_and_gradients(b, t, c, groups, k):
    g = torch.Generator().manual_seed(b * t + k)
    x = torch.randn(b, t, c, generator=g, dtype=torch.float64).float().requires_grad_()
    w = torch.randn(c, c // groups, k, generator=g).mul(0.1).requires_grad_()
    grad = torch.randn(b, t, c, generator=g)
    y_ref = direct(x, w, groups)
    y = FFTGroupedConv.apply(x, w, groups)
    assert y.shape == y_ref.shape == (b, t, c)
    gx_ref, gw_ref = torch.autograd.grad(y_ref, (x, w), grad)
    gx, gw = torch.autograd.grad(y, (x, w), grad)
    for ours, ref in ((y, y_ref), (gx, gx_ref), (gw, gw_ref)):
        assert (ours - ref).abs().max() <= 1e-5 * ref.abs().max()


def test_positional_embedding_same_output_and_parameter_gradients_either_way():
    torch.manual_seed(0)
    pos = ConvPositionalEmbedding(64, 128, 16)
    with torch.no_grad():
        pos.bias.normal_()
    x = torch.randn(3, 90, 64)
    results = {}
    for method in ("direct", "fft"):
        pos.method = method
        pos.zero_grad()
        y = pos(x)
        y.square().sum().backward()
        results[method] = [y.detach()] + [p.grad.clone() for p in (pos.weight_v, pos.weight_g, pos.bias)]
    for ours, ref in zip(results["fft"], results["direct"]):
        assert (ours - ref).abs().max() <= 1e-5 * ref.abs().max()
    pos.method = "fft"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = pos(x.bfloat16())
    assert y.dtype == torch.float32  # the FFT path computes in float32 under autocast
    assert (y - results["direct"][0]).abs().max() <= 0.02 * results["direct"][0].abs().max()


def test_cost_model_prefers_direct_for_short_single_inputs_and_fft_for_large_batches():
    for width in (16, 48, 64):  # tiny, BASE, LARGE
        assert not fft_is_faster(1, 50, 128, width, backward=True, low_precision=False)
        assert not fft_is_faster(1, 1500, 128, width, backward=True, low_precision=False)  # spectrum grows with T
        assert fft_is_faster(16, 100, 128, width, backward=True, low_precision=False)
    assert fft_is_faster(8, 199, 128, 16, backward=True, low_precision=True)
    assert not fft_is_faster(2, 199, 128, 48, backward=True, low_precision=False)
    # a faster direct conv (bf16), no backward pass or wider groups never turn the choice towards the FFT
    for b, t in ((1, 50), (2, 199), (4, 299), (8, 199), (4, 780), (16, 100)):
        fp32 = fft_is_faster(b, t, 128, 48, backward=True, low_precision=False)
        assert fp32 or not fft_is_faster(b, t, 128, 48, backward=True, low_precision=True)
        assert fp32 or not fft_is_faster(b, t, 128, 48, backward=False, low_precision=False)
        assert fp32 or not fft_is_faster(b, t, 128, 64, backward=True, low_precision=False)
