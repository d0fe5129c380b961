"""The pre-training objective (paper section 3.2, eq. 2-4; fairseq's ``Wav2vecCriterion``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import DIVERSITY_FORMS, one_of


def contrastive_logits(context: Tensor, targets: Tensor, negatives: Tensor, temperature: float,
                       eps: float = 1e-8) -> Tensor:
    """sim(c_t, q) / kappa for the true q_t (index 0) and K distractors; cosine similarity in fp32.

    context, targets: (B, M, D); negatives: (B, M, K) indices of the distractors among the M targets
    of the same utterance (fairseq samples them there) -> logits (B, M, K + 1). A distractor equal to
    its target gets -inf (fairseq), so a collapsed codebook cannot be rewarded.

    Rather than gathering a (B, M, K, D) tensor of distractors as fairseq does, all M x M cosines of
    an utterance come from one batched matmul of unit vectors and the K + 1 wanted ones are picked
    from it: K = 100 distractors from M ~ 100-500 masked steps make that 20-100x less memory traffic.
    Equal vectors are found exactly by ``unique`` over the rows.
    """
    b, m, _ = targets.shape
    with torch.autocast(context.device.type, enabled=False):  # autocast would run the bmm in bf16 / fp16
        unit_c = F.normalize(context.float(), dim=-1, eps=eps)
        unit_y = F.normalize(targets.float(), dim=-1, eps=eps)
        sims = torch.bmm(unit_c, unit_y.transpose(1, 2))  # (B, M, M)
    logits = torch.cat([sims.diagonal(dim1=1, dim2=2).unsqueeze(-1), sims.gather(2, negatives)], dim=-1) / temperature
    row_id = torch.unique(targets.detach().reshape(b * m, -1), dim=0, return_inverse=True)[1].view(b, m)
    neg_is_pos = row_id.gather(1, negatives.reshape(b, -1)).view_as(negatives) == row_id.unsqueeze(-1)
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


def unit_logits(context: Tensor, embeddings: Tensor, temperature: float, eps: float = 1e-8) -> Tensor:
    """cos(c_t, e_k) / tau against every unit's embedding, in fp32 (HuBERT, Hsu et al. 2021, eq. 1).

    context: (B, M, D); embeddings: (K, D) -> logits (B, M, K)."""
    with torch.autocast(context.device.type, enabled=False):
        unit_c = F.normalize(context.float(), dim=-1, eps=eps)
        unit_e = F.normalize(embeddings.float(), dim=-1, eps=eps)
        return unit_c @ unit_e.t() / temperature


def unit_loss(logits: Tensor, units: Tensor) -> Tensor:
    """Summed cross-entropy of the (B, M) target units under (B, M, K) logits."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), units.reshape(-1), reduction="sum")


def unit_accuracy(logits: Tensor, units: Tensor) -> tuple[int, int]:
    """(correct, count): the target unit has the highest logit."""
    return int((logits.detach().argmax(-1) == units).sum()), units.numel()


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
    raise ValueError(f"diversity_form {one_of(DIVERSITY_FORMS)}, got {form!r}")
