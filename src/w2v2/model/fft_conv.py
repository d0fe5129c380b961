"""The positional embedding's grouped convolution through the FFT (convolution theorem).

The convolutional positional embedding (paper section 2; fairseq: kernel 128, 16 groups) is a
long-kernel grouped conv: direct evaluation costs B*T*C*(C/G)*K multiply-adds, and oneDNN runs the
grouped case well below its dense-matmul speed. In the frequency domain every group becomes one small
complex matmul per frequency bin, B*C*(C/G)*(N/2+1) complex multiply-adds with N >= T + K - 1, plus
the FFTs: for the ``tiny`` preset (256 channels, 16 per group) a forward + backward on 8 x 4 s takes
a fifth of the direct conv's time on this CPU. The weight's spectrum (C*(C/G)*(N/2+1) values) is
the fixed cost, so small batches of wide models stay on the direct conv: ``fft_is_faster`` holds
the cost model fitted on CPU (benchmarks/README.md, "positional convolution"). Results agree with
``conv1d`` to float32 round-off (relative 1e-6; tests/test_fft_conv.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def fft_size(n: int) -> int:
    """The smallest 5-smooth integer >= n (sizes the FFT libraries transform fastest)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def fft_is_faster(batch: int, frames: int, kernel: int, group_width: int, backward: bool,
                  low_precision: bool) -> bool:
    """CPU cost model, per (output channel x input channel of a group), fitted on fp32 timings of
    C in {256, 768, 1024}, B*T from 50 to 3,120 frames (benchmarks/pos_conv.py): FFT ~ N (19 log2 N
    + 8 B) (weight spectrum + per-bin matmuls), direct ~ B T K sqrt(48 / group width) (oneDNN's
    grouped conv gets slower per multiply-add as groups narrow: 53 GFLOP/s at 16 channels per group,
    98 at 48); the FFT must win by 20 %. Without a backward pass the weight's spectrum is a larger
    share (29 instead of 19); under bf16 / fp16 autocast the direct conv runs about 1.6x faster while
    the FFT stays in float32."""
    n = fft_size(frames + kernel - 1)
    fft_cost = n * ((19 if backward else 29) * math.log2(n) + 8 * batch)
    direct_cost = 0.8 * batch * frames * kernel * math.sqrt(48 / group_width) / (1.6 if low_precision else 1.0)
    return fft_cost < direct_cost


class FFTGroupedConv(torch.autograd.Function):
    """y[b, t, o] = sum_{i in group(o)} sum_k w[o, i, k] x[b, t + k - s, i], s = K // 2 - 1 + K % 2:
    ``conv1d(x, w, padding=K // 2, groups=G)`` with the extra last frame of an even K dropped.
    x: (B, T, C) float32, w: (C, C // G, K) float32; returns (B, T, C), without bias.

    Linear (not circular) convolution because N >= T + K - 1; the backward pass uses the adjoint
    relations of the same spectra: dx = dz (correlated with) w, dw = sum_b dz (correlated with) x."""

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor, groups: int) -> Tensor:  # type: ignore[override]
        b, t, c = x.shape
        co, k = w.shape[1], w.shape[2]
        shift = k // 2 - 1 + k % 2
        n = fft_size(t + k - 1)
        spec_x = torch.fft.rfft(x, n=n, dim=1).view(b, -1, groups, co).permute(1, 2, 0, 3).contiguous()  # F G B ci
        # (G, out, in, K) -> (K, G, in, out), flipped in time: conv1d is a correlation
        spec_w = torch.fft.rfft(w.view(groups, co, co, k).permute(3, 0, 2, 1).flip(0), n=n, dim=0)  # F G ci co
        y = torch.fft.irfft(torch.matmul(spec_x, spec_w), n=n, dim=0)[shift:shift + t]  # T G B co
        ctx.save_for_backward(spec_x, spec_w)
        ctx.dims = (b, t, c, groups, co, k, n, shift)
        return y.permute(2, 0, 1, 3).reshape(b, t, c)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:  # type: ignore[override]
        spec_x, spec_w = ctx.saved_tensors
        b, t, c, groups, co, k, n, shift = ctx.dims
        spec_g = torch.fft.rfft(F.pad(grad, (0, 0, shift, n - shift - t)), dim=1)
        # conjugated gradient spectrum, F G B co: conj(a) conj(b) = conj(ab) keeps the big spectra unconjugated
        spec_gc = spec_g.view(b, -1, groups, co).permute(1, 2, 0, 3).conj().resolve_conj()
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            gx = torch.fft.irfft(torch.matmul(spec_gc, spec_w.transpose(-1, -2)).conj(), n=n, dim=0)[:t]
            grad_x = gx.permute(2, 0, 1, 3).reshape(b, t, c)
        if ctx.needs_input_grad[1]:
            gw = torch.fft.irfft(torch.matmul(spec_x.transpose(-1, -2), spec_gc).conj(), n=n, dim=0)[:k]
            grad_w = gw.flip(0).permute(1, 3, 2, 0).reshape(c, co, k)
        return grad_x, grad_w, None


def fft_grouped_conv(x: Tensor, w: Tensor, groups: int) -> Tensor:
    """``FFTGroupedConv`` in float32 whatever the autocast state."""
    with torch.autocast(x.device.type, enabled=False):
        return FFTGroupedConv.apply(x.float(), w.float(), groups)
