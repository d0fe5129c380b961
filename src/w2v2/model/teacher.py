"""EmaTeacher: contextualised pre-training targets from a moving average of the student's Transformer.

Not in the wav2vec 2.0 paper: the target of data2vec (Baevski et al. 2022, section 3.3, eq. 2-3),
kept here under wav2vec 2.0's contrastive loss (section 3.2) as the option ``target_layers``.
The teacher is an exponential moving average of the student's context network only (data2vec's
``ema_transformer_only``): it reads the student's unmasked feature-encoder output and its target
at a step is the mean of its top-K blocks' outputs, each instance-normalised over time.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .transformer import TransformerEncoder


class EmaTeacher(nn.Module):
    """An EMA copy of a TransformerEncoder; always in eval mode (no dropout, no LayerDrop)."""

    def __init__(self, student: TransformerEncoder, top_k: int, decay: tuple[float, float, float]) -> None:
        super().__init__()
        if not 1 <= top_k <= len(student.layers):
            raise ValueError(f"top_k={top_k}: the encoder has {len(student.layers)} blocks")
        self.encoder = copy.deepcopy(student)
        self.encoder.requires_grad_(False)
        self.top_k = top_k
        self.decay = decay
        self.train(False)

    def train(self, mode: bool = True) -> EmaTeacher:
        return super().train(False)

    def decay_at(self, num_updates: int) -> float:
        """tau: linear from ``decay[0]`` to ``decay[1]`` over ``decay[2]`` updates, then constant
        (data2vec section 3.3)."""
        start, end, span = self.decay
        if span <= 0 or num_updates >= span:
            return end
        return start + (end - start) * num_updates / span

    @torch.no_grad()
    def step(self, student: TransformerEncoder, num_updates: int) -> None:
        """teacher <- tau * teacher + (1 - tau) * student, parameters and buffers."""
        tau = self.decay_at(num_updates)
        for t, s in zip(self.encoder.parameters(), student.parameters(), strict=True):
            t.lerp_(s.detach().to(t.dtype), 1.0 - tau)
        for t, s in zip(self.encoder.buffers(), student.buffers(), strict=True):
            t.copy_(s)

    @torch.no_grad()
    def targets(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        """(B, T, D) targets for the Transformer input ``x`` (B, T, D): the mean of the top-K blocks'
        outputs, each normalised per channel over the utterance's frames (data2vec eq. 3), in fp32."""
        _, hidden = self.encoder(x, key_mask, return_hidden=True)
        top = [instance_norm(h.float(), key_mask) for h in hidden[-self.top_k:]]
        return torch.stack(top).mean(0)


def instance_norm(h: Tensor, key_mask: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """(B, T, D) -> zero mean, unit variance per utterance and channel over its valid frames."""
    if key_mask is None:
        return F.instance_norm(h.transpose(1, 2), eps=eps).transpose(1, 2)
    w = key_mask.unsqueeze(-1).to(h.dtype)
    n = w.sum(1, keepdim=True).clamp_min(1.0)
    mean = (h * w).sum(1, keepdim=True) / n
    var = (((h - mean) * w) ** 2).sum(1, keepdim=True) / n
    return (h - mean) / torch.sqrt(var + eps) * w
