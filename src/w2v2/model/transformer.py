"""Context network g: C (paper section 2, "Contextualized representations with Transformers").

A convolutional relative positional embedding followed by Transformer blocks, in the post-LN
layout of BASE or the pre-LN ("layer_norm_first") layout of LV60 / XLS-R.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import attention
from .dropout import Dropout
from .fft_conv import fft_grouped_conv, fft_is_faster


def bert_init(linear: nn.Linear) -> nn.Linear:
    """The Transformer's linear layers start as in BERT (fairseq's init_bert_params): N(0, 0.02), zero bias."""
    nn.init.normal_(linear.weight, mean=0.0, std=0.02)
    nn.init.zeros_(linear.bias)
    return linear


class ConvPositionalEmbedding(nn.Module):
    """Grouped 1-D conv (kernel K, G groups) weight-normalised over dim 2, "same" padding with the
    last frame dropped for even K, then GELU. Its output is added to the input (section 2)."""

    def __init__(self, dim: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.kernel = kernel
        self.groups = groups
        v = torch.empty(dim, dim // groups, kernel)
        nn.init.normal_(v, mean=0.0, std=math.sqrt(4.0 / (kernel * dim)))
        self.weight_v = nn.Parameter(v)
        self.weight_g = nn.Parameter(torch.linalg.vector_norm(v, dim=(0, 1), keepdim=True))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.method = "auto"

    def weight(self) -> Tensor:
        return torch._weight_norm(self.weight_v, self.weight_g, 2)

    def use_fft(self, x: Tensor, w: Tensor) -> bool:
        if self.method != "auto":
            return self.method == "fft"
        if torch.compiler.is_exporting():  # a graph for every length (ONNX): the direct conv
            return False
        backward = torch.is_grad_enabled() and (x.requires_grad or w.requires_grad)
        return x.device.type == "cpu" and fft_is_faster(x.shape[0], x.shape[1], self.kernel, w.shape[1], backward,
                                                        torch.is_autocast_enabled("cpu"))

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, C) -> (B, T, C). On CPU the conv runs through the FFT where the cost model says
        it is faster (``fft_conv``), except in an exported graph; ``method`` ("auto", "direct", "fft")
        overrides the choice."""
        w = self.weight()
        if self.use_fft(x, w):
            return F.gelu(fft_grouped_conv(x, w, self.groups) + self.bias)
        y = F.conv1d(x.transpose(1, 2), w, self.bias, padding=self.kernel // 2, groups=self.groups)
        if self.kernel % 2 == 0:
            y = y[:, :, :-1]
        return F.gelu(y).transpose(1, 2)


class SelfAttention(nn.Module):
    """Multi-head self-attention (``attention.py``: SDPA, or its explicit form where that is faster on
    CPU); one fused QKV matmul."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"embedding dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.dropout = dropout
        self.qkv = bert_init(nn.Linear(dim, 3 * dim))
        self.out_proj = bert_init(nn.Linear(dim, dim))

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        """``key_mask``: (B, T) bool, True for valid frames; None when nothing is padded."""
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        y = attention(q, k, v, mask, self.dropout if self.training else 0.0)
        return self.out_proj(y.transpose(1, 2).reshape(b, t, d))


class FeedForward(nn.Module):
    def __init__(self, dim: int, ffn_dim: int, activation_dropout: float, dropout: float) -> None:
        super().__init__()
        self.intermediate_dense = bert_init(nn.Linear(dim, ffn_dim))
        self.output_dense = bert_init(nn.Linear(ffn_dim, dim))
        self.activation_dropout = Dropout(activation_dropout)
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.activation_dropout(F.gelu(self.intermediate_dense(x)))
        return self.dropout(self.output_dense(x))


class EncoderLayer(nn.Module):
    """One Transformer block; ``layer_norm_first`` selects pre-LN (LV60) over post-LN (BASE)."""

    def __init__(self, attention: SelfAttention, feed_forward: FeedForward, dim: int, dropout: float,
                 layer_norm_first: bool, eps: float = 1e-5) -> None:
        super().__init__()
        self.attention = attention
        self.feed_forward = feed_forward
        self.dropout = Dropout(dropout)
        self.layer_norm = nn.LayerNorm(dim, eps=eps)
        self.final_layer_norm = nn.LayerNorm(dim, eps=eps)
        self.layer_norm_first = layer_norm_first

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        if self.layer_norm_first:
            x = x + self.dropout(self.attention(self.layer_norm(x), key_mask))
            return x + self.feed_forward(self.final_layer_norm(x))
        x = self.layer_norm(x + self.dropout(self.attention(x, key_mask)))
        return self.final_layer_norm(x + self.feed_forward(x))


class TransformerEncoder(nn.Module):
    """Positional conv + blocks with LayerDrop. Padded frames are zeroed before the positional conv."""

    def __init__(self, pos_conv: ConvPositionalEmbedding, layers: list[EncoderLayer], dim: int,
                 dropout: float, layerdrop: float, layer_norm_first: bool, eps: float = 1e-5) -> None:
        super().__init__()
        self.pos_conv = pos_conv
        self.layers = nn.ModuleList(layers)
        self.layer_norm = nn.LayerNorm(dim, eps=eps)
        self.dropout = Dropout(dropout)
        self.layerdrop = layerdrop
        self.layer_norm_first = layer_norm_first

    def forward(self, x: Tensor, key_mask: Tensor | None = None, num_layers: int | None = None,
                return_hidden: bool = False) -> tuple[Tensor, list[Tensor]]:
        """Returns the output and, with ``return_hidden``, the L + 1 hidden states of transformers'
        convention: the input of block 1, then each block's raw output (before the final LayerNorm
        of the pre-LN layout). ``num_layers`` stops after that many blocks; the pre-LN final
        LayerNorm is applied only when all blocks ran."""
        if key_mask is not None:
            x = x.masked_fill(~key_mask.unsqueeze(-1), 0.0)
        x = x + self.pos_conv(x)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        x = self.dropout(x)
        n = len(self.layers) if num_layers is None else num_layers
        hidden: list[Tensor] = [x] if return_hidden else []
        for layer in self.layers[:n]:
            if not (self.training and self.layerdrop > 0 and torch.rand(()) < self.layerdrop):
                x = layer(x, key_mask)
            if return_hidden:
                hidden.append(x)
        if self.layer_norm_first and n == len(self.layers):
            x = self.layer_norm(x)
        return x, hidden


def build_transformer(dim: int, layers: int, ffn_dim: int, heads: int, conv_pos: int, conv_pos_groups: int,
                      dropout: float, attention_dropout: float, activation_dropout: float, layerdrop: float,
                      layer_norm_first: bool, eps: float = 1e-5) -> TransformerEncoder:
    blocks = [
        EncoderLayer(SelfAttention(dim, heads, attention_dropout),
                     FeedForward(dim, ffn_dim, activation_dropout, dropout), dim, dropout, layer_norm_first, eps)
        for _ in range(layers)
    ]
    return TransformerEncoder(ConvPositionalEmbedding(dim, conv_pos, conv_pos_groups), blocks, dim, dropout,
                              layerdrop, layer_norm_first, eps)
