"""Greedy (best-path / Viterbi without a language model) CTC decoding, paper section 4.4.

The best path takes the most probable unit in every frame; collapsing repeats and dropping blanks
(Graves et al. 2006, the CTC collapsing function B) gives the unit sequence. Each kept unit
remembers the frames it spanned, so word start and end times follow from the 20 ms frame rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..data.text import Vocabulary


@dataclass(frozen=True)
class TokenSpan:
    token: int
    start: int  # first frame
    end: int  # one past the last frame


@dataclass(frozen=True)
class Hypothesis:
    """A decoding result: the text, its units with their frames on the path, and the path score."""

    text: str
    spans: list[TokenSpan]
    score: float


@dataclass(frozen=True)
class WordTiming:
    word: str
    start: float  # seconds
    end: float
    confidence: float | None = None  # mean posterior of the path over the word's frames


def collapse(path: list[int], blank: int = 0) -> list[TokenSpan]:
    """The CTC collapsing function on a frame-level path, keeping each unit's frame span."""
    spans: list[TokenSpan] = []
    prev, start = None, 0
    for t, token in enumerate(path + [None]):  # sentinel closes the last run
        if token != prev:
            if prev is not None and prev != blank:
                spans.append(TokenSpan(prev, start, t))
            prev, start = token, t
    return spans


def best_path(emissions: Tensor, blank: int = 0) -> list[TokenSpan]:
    """Greedy CTC decoding of one utterance's frame scores ``(T, V)``."""
    if emissions.dim() != 2:
        raise ValueError(f"expected emissions of shape (T, V), got {tuple(emissions.shape)}")
    return collapse(emissions.argmax(-1).tolist(), blank)


def word_timings(spans: list[TokenSpan], vocab: Vocabulary, frame_seconds: float,
                 log_probs: Tensor | None = None) -> list[WordTiming]:
    """Words of a decoded unit sequence with start/end times: a word runs from the first frame of
    its first unit to the last frame of its last unit; "|" units separate words. With the frame
    log-probabilities ``(T, V)``, each word's confidence is the mean posterior, over its frames, of
    what the path emits there: the unit inside a unit's span, the blank between two units."""
    words: list[WordTiming] = []
    current: list[TokenSpan] = []

    def confidence() -> float | None:
        if log_probs is None:
            return None
        first, last = current[0].start, current[-1].end
        path = torch.zeros(last - first, dtype=torch.long)  # blank (index 0) between the units
        for s in current:
            path[s.start - first:s.end - first] = s.token
        frames = log_probs[first:last].float()
        return round(float(frames.gather(1, path[:, None]).exp().mean()), 4)

    def flush() -> None:
        if current:
            text = vocab.decode([s.token for s in current])
            if text:
                words.append(WordTiming(text, round(current[0].start * frame_seconds, 3),
                                        round(current[-1].end * frame_seconds, 3), confidence()))
            current.clear()

    boundary = vocab.index.get(Vocabulary.BOUNDARY)
    for s in spans:
        if s.token == boundary:
            flush()
        else:
            current.append(s)
    flush()
    return words


def greedy_decode(emissions: Tensor, vocab: Vocabulary) -> Hypothesis:
    """Best path of frame log-probabilities; its score is the path's log-probability."""
    spans = best_path(emissions)
    score = float(emissions.max(-1).values.sum()) if len(emissions) else 0.0
    return Hypothesis(vocab.decode([s.token for s in spans]), spans, score)

