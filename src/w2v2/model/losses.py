"""The pre-training objective (paper section 3.2, eq. 2-4; fairseq's ``Wav2vecCriterion``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def contrastive_logits(context: Tensor, targets: Tensor, negatives: Tensor, temperature: float) -> Tensor:
    """sim(c_t, q) / kappa for the true q_t (index 0) and K distractors; cosine similarity in fp32.

    context, targets: (B, M, D); negatives: (B, M, K, D) -> logits (B, M, K + 1). A distractor
    identical to its target gets -inf (fairseq), so a collapsed codebook cannot be rewarded.
    """
    candidates = torch.cat([targets.unsqueeze(2), negatives], dim=2)
    logits = F.cosine_similarity(context.float().unsqueeze(2), candidates.float(), dim=-1) / temperature
    neg_is_pos = (negatives == targets.unsqueeze(2)).all(-1)
    if neg_is_pos.any():
        logits[..., 1:] = logits[..., 1:].masked_fill(neg_is_pos, float("-inf"))
    return logits


def contrastive_loss(logits: Tensor) -> Tensor:
    """Summed cross-entropy with the true target at index 0 (eq. 3)."""
    flat = logits.reshape(-1, logits.shape[-1])
    return F.cross_entropy(flat, torch.zeros(flat.shape[0], dtype=torch.long, device=flat.device), reduction="sum")


def contrastive_accuracy(logits: Tensor) -> tuple[int, int]:
    """(correct, count) as fairseq counts it: argmax is the target and not all logits are equal."""
    flat = logits.detach().reshape(-1, logits.shape[-1])
    is_max = flat.argmax(-1) == 0
    is_min = flat.argmin(-1) == 0
    return int(is_max.sum() - (is_max & is_min).sum()), flat.shape[0]


def diversity_loss(avg_probs: Tensor, prob_perplexity: Tensor, form: str = "perplexity") -> Tensor:
    """Per-step diversity term over G codebooks of V entries.

    "perplexity" (fairseq, transformers): (GV - sum_g exp(H(p_g))) / GV.
    "entropy" (paper eq. 4): (1 / GV) sum_g -H(p_g) = (1 / GV) sum_g sum_v p_gv log p_gv.
    """
    g, v = avg_probs.shape
    if form == "perplexity":
        return (g * v - prob_perplexity) / (g * v)
    if form == "entropy":
        return torch.sum(avg_probs * torch.log(avg_probs + 1e-7)) / (g * v)
    raise ValueError(f"diversity_form must be 'perplexity' or 'entropy', got {form!r}")
