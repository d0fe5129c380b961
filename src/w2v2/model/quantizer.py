"""Quantization module (paper section 2, eq. 1-2): Gumbel-softmax product quantization.

Semantics follow fairseq's ``GumbelVectorQuantizer``: G codebooks of V entries, logits from a
linear map of z, straight-through hard Gumbel-softmax in training, argmax in evaluation, the chosen
entries concatenated. Perplexities are computed over the frames given (the masked ones in
pre-training), with fairseq's log(p + 1e-7).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class QuantizerOutput:
    quantized: Tensor  # (N, G * d)
    codes: Tensor  # (N, G) chosen entry per group (argmax of the logits)
    code_perplexity: Tensor  # hard: exp(H) of the average one-hot choice, summed over groups
    prob_perplexity: Tensor  # soft: exp(H) of the average softmax, summed over groups
    avg_probs: Tensor  # (G, V) softmax averaged over frames (for the paper's entropy form)


def perplexity(avg_probs: Tensor) -> Tensor:
    """sum_g exp(-sum_v p_gv log(p_gv + 1e-7)) for average distributions p of shape (G, V)."""
    return torch.exp(-torch.sum(avg_probs * torch.log(avg_probs + 1e-7), dim=-1)).sum()


class GumbelVectorQuantizer(nn.Module):
    def __init__(self, in_dim: int, num_vars: int, groups: int, codevector_dim: int,
                 temp: tuple[float, float, float]) -> None:
        super().__init__()
        if codevector_dim % groups:
            raise ValueError(f"codevector dim {codevector_dim} is not divisible by {groups} groups")
        self.num_vars = num_vars
        self.groups = groups
        self.codevectors = nn.Parameter(torch.empty(1, groups * num_vars, codevector_dim // groups).uniform_())
        self.weight_proj = nn.Linear(in_dim, groups * num_vars)
        nn.init.normal_(self.weight_proj.weight, mean=0.0, std=1.0)
        nn.init.zeros_(self.weight_proj.bias)
        self.max_temp, self.min_temp, self.temp_decay = temp
        self.temperature = self.max_temp

    def set_num_updates(self, num_updates: int) -> None:
        """tau = max(tau_max * decay^updates, tau_min) (section 4.2)."""
        self.temperature = max(self.max_temp * self.temp_decay ** num_updates, self.min_temp)

    def forward(self, z: Tensor) -> QuantizerOutput:
        """z: (N, in_dim) frames -> quantized (N, G * d)."""
        n = z.shape[0]
        logits = self.weight_proj(z).float().view(n, self.groups, self.num_vars)
        codes = logits.argmax(dim=-1)
        hard = F.one_hot(codes, self.num_vars).to(logits.dtype)
        avg_probs = torch.softmax(logits, dim=-1).mean(dim=0)
        with torch.no_grad():
            code_ppl = perplexity(hard.mean(dim=0))
        prob_ppl = perplexity(avg_probs)
        if self.training:
            onehot = F.gumbel_softmax(logits, tau=self.temperature, hard=True)
        else:
            onehot = hard
        vars_ = self.codevectors.view(self.groups, self.num_vars, -1)
        quantized = torch.einsum("ngv,gvd->ngd", onehot.to(vars_.dtype), vars_).reshape(n, -1)
        return QuantizerOutput(quantized, codes, code_ppl, prob_ppl, avg_probs)
