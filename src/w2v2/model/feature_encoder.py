"""Feature encoder f: X -> Z (paper section 2): a stack of temporal convolutions over raw audio."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pad_sequence


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


class ConvLayerBlock(nn.Module):
    """Conv1d -> optional norm -> GELU.

    ``norm`` is a GroupNorm (applied on channels-first input) or a LayerNorm over channels
    (applied channels-last), or None.
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
        if isinstance(self.norm, nn.LayerNorm):
            x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        elif self.norm is not None:
            x = self.norm(x)
        # Without autograd (inference, frozen encoder) GELU runs in place: these are the largest
        # activations of the network (512 x 32k frames for 10 s), and a fresh output each costs page faults.
        x = F.gelu(x) if torch.is_grad_enabled() else torch.ops.aten.gelu_(x)
        if lengths is not None:
            lengths = conv_output_lengths(lengths, self.kernel, self.stride)
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

    @property
    def normalizes_over_time(self) -> bool:
        """True for the BASE layout: the first block's GroupNorm takes its statistics over time."""
        return any(isinstance(b.norm, nn.GroupNorm) for b in self.conv_layers)

    def forward(self, waveform: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """(B, samples) -> (B, T', C) and the valid frames. A padded batch of the BASE layout is
        encoded one utterance at a time on its valid samples: the GroupNorm would otherwise take
        the padding into its statistics, and an utterance's features would depend on its batch."""
        if waveform.dim() != 2:
            raise ValueError(f"expected a (batch, samples) waveform, got shape {tuple(waveform.shape)}")
        if lengths is not None and self.normalizes_over_time and bool((lengths < waveform.shape[1]).any()):
            frames = self.output_lengths(lengths)
            feats = {i: self(waveform[i, :n].unsqueeze(0))[0][0]
                     for i, (n, f) in enumerate(zip(lengths.tolist(), frames.tolist())) if f > 0}
            if feats:  # an utterance shorter than the receptive field has no frame
                empty = next(iter(feats.values()))[:0]
                return pad_sequence([feats.get(i, empty) for i in range(len(frames))], batch_first=True), frames
        x = waveform.unsqueeze(1)
        for block in self.conv_layers:
            x, lengths = block(x, lengths)
        return x.transpose(1, 2), lengths


def build_feature_encoder(conv_layers: tuple[tuple[int, int, int], ...], mode: str,
                          bias: bool) -> FeatureEncoder:
    """``mode`` "group": GroupNorm(C, C) on the first block only (BASE); "layer": LayerNorm after
    every conv (LARGE-LV60, XLS-R)."""
    if mode not in ("group", "layer"):
        raise ValueError(f"extractor_mode must be 'group' or 'layer', got {mode!r}")
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
