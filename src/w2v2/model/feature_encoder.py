"""Feature encoder f: X -> Z (paper section 2): a stack of temporal convolutions over raw audio.

Padded batches: the valid output frames of an unpadded convolution read only valid input samples,
so every block runs on the whole padded batch. The one norm that pools over time, the BASE
layout's GroupNorm in the first block, takes its statistics over each utterance's valid frames
only (``masked_group_norm``) when the valid lengths are given: padding never enters them, and an
utterance's features do not depend on its batch (fairseq's and transformers' batched inference let
it in; torchaudio issue 2242). Without lengths the batch is taken as unpadded and the plain
GroupNorm runs. In an exported graph its statistics are masked sums, with no data-dependent
control flow, so the encoder exports to ONNX.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import EXTRACTOR_MODES, one_of
from .masking import lengths_to_mask


def conv_output_lengths(lengths: Tensor, kernel: int, stride: int) -> Tensor:
    """Valid output frames of an unpadded 1-D convolution: floor((L - k) / s) + 1, clamped at 0."""
    return torch.clamp(torch.div(lengths - kernel, stride, rounding_mode="floor") + 1, min=0)


def stack_output_lengths(conv_layers: Sequence[tuple[int, int, int]], lengths: Tensor) -> Tensor:
    """Valid frames after a stack of (channels, kernel, stride) convolutions (section 2: 20 ms frames
    with a 25 ms receptive field for the paper's stack)."""
    for _, kernel, stride in conv_layers:
        lengths = conv_output_lengths(lengths, kernel, stride)
    return lengths


def num_frames(conv_layers: Sequence[tuple[int, int, int]], samples: int) -> int:
    """Frames of one utterance of ``samples`` samples."""
    return int(stack_output_lengths(conv_layers, torch.tensor(samples)))


def masked_group_norm(x: Tensor, lengths: Tensor, norm: nn.GroupNorm) -> Tensor:
    """``norm`` (B, C, T) -> (B, C, T) with each utterance's statistics (biased variance, as GroupNorm)
    taken over its first ``lengths`` frames only; frames past them are meaningless. Computed in
    float32, as GroupNorm is under autocast.

    These are the network's largest activations: eagerly, each utterance's valid frames go through
    torch's fused GroupNorm kernel (padding set to 0), which reads them twice and writes once, where
    masked sums take several passes (benchmarks/README.md; measured on CPU: on a GPU this form costs a
    host read of ``lengths`` and one kernel per utterance, not measured). An exported graph (ONNX)
    serves any batch with no data-dependent shapes: there, the moments are masked sums
    (:func:`masked_moments`)."""
    b, c, t = x.shape
    groups = norm.num_groups
    weight, bias = (norm.weight.float(), norm.bias.float()) if norm.affine else (None, None)
    if not torch.compiler.is_exporting():
        valid = [max(n, 1) for n in lengths.tolist()]
        # the aten op: F.group_norm refuses one value a group
        pieces = [torch.native_group_norm(x[i:i + 1, :, :n].float().contiguous(), weight, bias, 1, c, n, groups,
                                          norm.eps)[0] for i, n in enumerate(valid)]
        if torch.is_grad_enabled():  # writing into slices would make a slow backward
            return torch.cat([F.pad(p, (0, t - n)) for p, n in zip(pieces, valid)]).to(x.dtype)
        out = x.new_zeros(x.shape, dtype=torch.float32)
        for i, (p, n) in enumerate(zip(pieces, valid)):
            out[i, :, :n] = p[0]
        return out.to(x.dtype)
    xf = x.float().view(b, groups, c // groups, t)
    mean, var = masked_moments(xf, lengths)
    y = (xf - mean) * torch.rsqrt(var + norm.eps)  # (B, G, C/G, T)
    if norm.affine:
        y = torch.addcmul(bias.view(1, groups, -1, 1), y, weight.view(1, groups, -1, 1))
    return y.view(b, c, t).to(x.dtype)


def masked_moments(x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and biased variance (B, G, 1, 1) of grouped activations (B, G, C/G, T) over each
    utterance's first ``lengths`` frames, as masked sums over the padded batch, without data-dependent
    shapes: the mean as batched matrix-vector products with the frame mask, the variance as a
    batched dot product of the centred activations with their masked copy (two passes, for precision)."""
    b, groups, per, t = x.shape
    mask = lengths_to_mask(lengths, t).to(x.dtype)
    count = (lengths.clamp(min=1) * per).to(x.dtype).view(b, 1, 1, 1)
    mean = torch.bmm(x.reshape(b, groups * per, t), mask.view(b, t, 1)).view(b, groups, per, 1).sum(2, keepdim=True)
    mean = mean / count
    centered = x - mean
    var = torch.linalg.vecdot(centered, centered * mask.view(b, 1, 1, t)).sum(2)[..., None, None] / count
    return mean, var


class ConvLayerBlock(nn.Module):
    """Conv1d -> optional norm -> GELU.

    ``norm`` is a GroupNorm (applied on channels-first input, over the valid frames when the
    lengths are given) or a LayerNorm over channels (applied channels-last), or None.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, bias: bool,
                 norm: nn.Module | None) -> None:
        super().__init__()
        self.kernel = kernel
        self.stride = stride
        self.conv = nn.Conv1d(in_channels, out_channels, kernel, stride=stride, bias=bias)
        nn.init.kaiming_normal_(self.conv.weight)  # fairseq and transformers: keeps the scale through 7 blocks
        self.norm = norm

    def forward(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        x = self.conv(x)
        if lengths is not None:
            lengths = conv_output_lengths(lengths, self.kernel, self.stride)
        if isinstance(self.norm, nn.LayerNorm):
            x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        elif isinstance(self.norm, nn.GroupNorm):
            x = self.norm(x) if lengths is None else masked_group_norm(x, lengths, self.norm)
        elif self.norm is not None:
            x = self.norm(x)
        # Without autograd (inference, frozen encoder) GELU runs in place: these are the largest
        # activations of the network (512 x 32k frames for 10 s), and a fresh output each costs page faults.
        x = F.gelu(x) if torch.is_grad_enabled() else torch.ops.aten.gelu_(x)
        return x, lengths


class FeatureEncoder(nn.Module):
    """Raw waveform (B, T) -> latent frames (B, T', C), valid lengths carried through every block."""

    def __init__(self, blocks: list[ConvLayerBlock]) -> None:
        super().__init__()
        self.conv_layers = nn.ModuleList(blocks)

    @property
    def out_channels(self) -> int:
        return self.conv_layers[-1].conv.out_channels

    @property
    def spec(self) -> tuple[tuple[int, int, int], ...]:
        return tuple((b.conv.out_channels, b.kernel, b.stride) for b in self.conv_layers)

    def output_lengths(self, lengths: Tensor) -> Tensor:
        return stack_output_lengths(self.spec, lengths)

    def forward(self, waveform: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """(B, samples) -> (B, T', C) and the valid frames (``lengths``: valid samples, or None for an
        unpadded batch). Frames past an utterance's valid ones hold meaningless values (module
        docstring); the valid ones do not depend on the rest of the batch."""
        if waveform.dim() != 2:
            raise ValueError(f"expected a (batch, samples) waveform, got shape {tuple(waveform.shape)}")
        x = waveform.unsqueeze(1)
        for block in self.conv_layers:
            x, lengths = block(x, lengths)
        return x.transpose(1, 2), lengths


def build_feature_encoder(conv_layers: tuple[tuple[int, int, int], ...], mode: str,
                          bias: bool) -> FeatureEncoder:
    """``mode`` "group": GroupNorm(C, C) on the first block only (BASE); "layer": LayerNorm after
    every conv (LARGE-LV60, XLS-R)."""
    if mode not in EXTRACTOR_MODES:
        raise ValueError(f"extractor_mode {one_of(EXTRACTOR_MODES)}, got {mode!r}")
    blocks, in_ch = [], 1
    for i, (ch, k, s) in enumerate(conv_layers):
        norm: nn.Module | None = None
        if mode == "layer":
            norm = nn.LayerNorm(ch)
        elif i == 0:
            norm = nn.GroupNorm(ch, ch, affine=True)
        blocks.append(ConvLayerBlock(in_ch, ch, k, s, bias, norm))
        in_ch = ch
    return FeatureEncoder(blocks)
