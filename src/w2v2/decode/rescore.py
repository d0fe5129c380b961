"""N-best rescoring with the Transformer LM (paper section 4.4, the cheap way to use it).

The first pass is the n-gram beam search; its ``nbest`` best hypotheses are re-ranked by

    first-pass score + lm_weight * log p_TransformerLM(words </s>) + word_score * |words|

(natural logs). With both weights at 0 the first pass's choice is kept, so weights tuned on dev
are never worse there than the n-gram search alone. Unlike the Transformer LM inside the beam
(:class:`w2v2.decode.beam.TransformerBeamLM`, one LM query per new word of every hypothesis),
this costs one batched LM pass over ``nbest`` sentences per utterance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

from .beam import BeamSearchDecoder
from .ctc import Hypothesis


@dataclass(frozen=True)
class NBest:
    """One utterance's first-pass hypotheses with their Transformer-LM log-probabilities."""

    hypotheses: list[Hypothesis]
    lm_scores: list[float]

    def best(self, lm_weight: float, word_score: float) -> Hypothesis:
        """The highest combined score; the earliest (the first pass's order) on ties."""
        if not self.hypotheses:
            return Hypothesis("", [], 0.0)
        totals = [h.score + lm_weight * s + word_score * len(h.text.split())
                  for h, s in zip(self.hypotheses, self.lm_scores)]
        return self.hypotheses[max(range(len(totals)), key=lambda i: (totals[i], -i))]


class NBestRescorer:
    """``first_pass`` must be configured with ``nbest`` > 1; ``lm`` is a
    :class:`w2v2.decode.transformer_lm.TransformerLM` (``score_sentences``)."""

    def __init__(self, first_pass: BeamSearchDecoder, lm, lm_weight: float, word_score: float) -> None:
        self.first_pass, self.lm = first_pass, lm
        self.lm_weight, self.word_score = lm_weight, word_score

    def nbest(self, emissions: Tensor) -> NBest:
        hyps = self.first_pass(emissions)
        return NBest(hyps, self.lm.score_sentences([h.text.split() for h in hyps]))

    def __call__(self, emissions: Tensor) -> list[Hypothesis]:
        return [self.nbest(emissions).best(self.lm_weight, self.word_score)]


def rescored_texts(lists: Sequence[NBest], lm_weight: float, word_score: float) -> list[str]:
    return [n.best(lm_weight, word_score).text for n in lists]
