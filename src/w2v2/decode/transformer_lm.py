"""Word-level Transformer language model (the paper's second LM, section 4.3 / appendix C; the
fairseq ``transformer_lm`` of Baevski & Auli 2019, much smaller here).

Causal pre-LN Transformer over words with learned positions and tied input/output embeddings.
Vocabulary: the most frequent words, ``<unk>`` and ``</s>``; ``</s>`` marks both sentence ends
(as fairseq, the model reads ``</s> w1 .. wk`` and predicts ``w1 .. wk </s>``).

Stable API for decoders: :func:`load_transformer_lm` and :class:`TransformerLM`
(``vocab``, ``bos_id``/``eos_id``/``unk_id``, :meth:`TransformerLM.score_sentences`,
:meth:`TransformerLM.next_log_probs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

UNK, EOS = "<unk>", "</s>"


@dataclass
class TransformerLMConfig:
    vocab_size: int
    dim: int = 256
    layers: int = 2
    heads: int = 4
    ffn_dim: int = 1024
    context: int = 48  # words of history the model sees
    dropout: float = 0.1


class TransformerLM(nn.Module):
    def __init__(self, cfg: TransformerLMConfig, vocab: dict[str, int]) -> None:
        super().__init__()
        raise NotImplementedError

    def forward(self, tokens: Tensor) -> Tensor:
        """(B, T) token ids -> (B, T, V) next-token logits; position t sees tokens 0..t only."""
        raise NotImplementedError

    def ids(self, words: list[str]) -> list[int]:
        """Word ids, unknown words -> ``unk_id``."""
        raise NotImplementedError

    @torch.no_grad()
    def score_sentences(self, sentences: list[list[str]]) -> list[float]:
        """Natural-log probability of each ``w1 .. wk </s>`` given the sentence start (batched)."""
        raise NotImplementedError

    @torch.no_grad()
    def next_log_probs(self, histories: list[list[int]]) -> Tensor:
        """(B, V) log-probabilities of the next word after each history (word ids so far, without
        the sentence start, which is prepended; only the last ``context`` tokens are used)."""
        raise NotImplementedError


def load_transformer_lm(path: str | Path) -> TransformerLM:
    """Load ``config.json`` + ``model.safetensors`` + ``vocab.json`` written by ``w2v2 lm train``."""
    raise NotImplementedError
