"""CTC beam search with a language model through flashlight-text (paper section 4.4).

The search maximises ``log p_CTC(y|x) + lm_weight * log p_LM(y) + word_score * |y|`` (plus
``sil_score`` per word boundary and ``unk_score`` per out-of-lexicon word), the objective of
wav2letter / fairseq's ``W2lKenLMDecoder`` whose weights the paper tunes on dev data.

* lexicon-constrained (:class:`~flashlight.lib.text.decoder.LexiconDecoder`): hypotheses are
  spellings of lexicon words, stored in a trie whose nodes carry the best unigram score below
  them (LM look-ahead, "smearing"); the LM is a word model (KenLM scores are log10).
* lexicon-free (:class:`~flashlight.lib.text.decoder.LexiconFreeDecoder`): any unit sequence; the
  LM, if any, is a model over the CTC units (an ARPA whose words are the vocabulary's tokens).
* Transformer LM: :class:`TransformerBeamLM` plugs a word-level neural LM into the same lexicon
  search through flashlight's custom ``LM`` interface (natural-log scores, as fairseq's FairseqLM).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from flashlight.lib.text.decoder import (
    LM,
    CriterionType,
    LexiconDecoder,
    LexiconDecoderOptions,
    LexiconFreeDecoder,
    LexiconFreeDecoderOptions,
    LMState,
    SmearingMode,
    Trie,
    ZeroLM,
)
from flashlight.lib.text.decoder.kenlm import KenLM
from flashlight.lib.text.dictionary import Dictionary
from torch import Tensor

from ..data.text import Vocabulary
from .ctc import Hypothesis, collapse
from .lexicon import read_lexicon

UNK_WORD = "<unk>"


@dataclass
class BeamSearchConfig:
    """Search settings (names as in flashlight / torchaudio's ``ctc_decoder``)."""

    beam_size: int = 50  # fairseq's default; the paper used 500
    beam_size_token: int = 0  # units tried per frame; 0 = all
    beam_threshold: float = 25.0  # drop hypotheses this far below the best
    lm_weight: float = 2.0
    word_score: float = 0.0  # word insertion bonus (negative: penalty)
    sil_score: float = 0.0
    unk_score: float = -math.inf  # out-of-lexicon words; -inf forbids them
    nbest: int = 1

    def to_dict(self) -> dict:
        return asdict(self)


def word_dictionary(lexicon: dict[str, list[list[str]]]) -> Dictionary:
    """Word index space of the search: the lexicon's words in file order, then <unk>."""
    words = list(lexicon)
    return Dictionary(words if UNK_WORD in lexicon else words + [UNK_WORD])


def boundary_index(vocab: Vocabulary) -> int:
    if Vocabulary.BOUNDARY not in vocab.index:
        raise ValueError("beam search needs the word boundary unit '|' in the model's vocabulary")
    return vocab.index[Vocabulary.BOUNDARY]


def build_trie(lexicon: dict[str, list[list[str]]], vocab: Vocabulary, words: Dictionary, lm: LM) -> Trie:
    """Spelling trie with each word's unigram LM score, smeared (max) towards the root."""
    trie = Trie(len(vocab), boundary_index(vocab))
    start = lm.start(False)
    inserted = 0
    for word, spellings in lexicon.items():
        index = words.get_index(word)
        _, score = lm.score(start, index)
        for spelling in spellings:
            if all(u in vocab.index for u in spelling):
                trie.insert([vocab.index[u] for u in spelling], index, score)
                inserted += 1
    if inserted == 0:
        raise ValueError("no lexicon spelling uses only units of the model's vocabulary")
    trie.smear(SmearingMode.MAX)
    return trie


@dataclass
class SearchModel:
    """What a search needs besides its weights: the LM and, for lexicon search, the word
    dictionary (the LM's index space) and the spelling trie. Built once, shared by many searches
    (e.g. the trials of tune-decoder)."""

    vocab: Vocabulary
    lm: LM
    words: Dictionary | None = None
    trie: Trie | None = None


class BeamSearchDecoder:
    """Beam search over one utterance's frame log-probabilities ``(T, V)``."""

    def __init__(self, model: SearchModel, config: BeamSearchConfig) -> None:
        vocab = model.vocab
        self.model, self.config = model, config
        sil, blank = boundary_index(vocab), vocab.index[Vocabulary.BLANK]
        beam_token = config.beam_size_token or len(vocab)
        if model.trie is None:
            opts = LexiconFreeDecoderOptions(
                beam_size=config.beam_size, beam_size_token=beam_token, beam_threshold=config.beam_threshold,
                lm_weight=config.lm_weight, sil_score=config.sil_score, log_add=False,
                criterion_type=CriterionType.CTC)
            self.decoder = LexiconFreeDecoder(opts, model.lm, sil, blank, [])
        else:
            opts = LexiconDecoderOptions(
                beam_size=config.beam_size, beam_size_token=beam_token, beam_threshold=config.beam_threshold,
                lm_weight=config.lm_weight, word_score=config.word_score, unk_score=config.unk_score,
                sil_score=config.sil_score, log_add=False, criterion_type=CriterionType.CTC)
            unk = model.words.get_index(UNK_WORD)
            self.decoder = LexiconDecoder(opts, model.trie, model.lm, sil, blank, unk, [], False)

    def __call__(self, emissions: Tensor) -> list[Hypothesis]:
        """The ``nbest`` best hypotheses. A lexicon search only counts a word once its spelling,
        which ends in "|", is complete; models trained without a final "|" would lose their last
        word, so one frame that is certainly "|" is appended (it costs nothing: it repeats or
        follows the path's last unit)."""
        vocab = self.model.vocab
        if emissions.dim() != 2 or emissions.shape[1] != len(vocab):
            raise ValueError(f"expected emissions (T, {len(vocab)}), got {tuple(emissions.shape)}")
        frames = emissions.shape[0]
        if frames == 0:
            return [Hypothesis("", [], 0.0)]
        em = emissions.detach().to(torch.float32).cpu()
        if self.model.trie is not None:
            end = torch.full((1, len(vocab)), -1e4)
            end[0, boundary_index(vocab)] = 0.0
            em = torch.cat([em, end])
        em = em.contiguous()
        results = self.decoder.decode(em.data_ptr(), em.shape[0], em.shape[1])
        return [self._hypothesis(r, frames) for r in results[: self.config.nbest]]

    def _hypothesis(self, result, frames: int) -> Hypothesis:
        spans = collapse(list(result.tokens)[1:frames + 1])  # tokens: start silence, then one per frame
        words = self.model.words
        if words is None:
            text = self.model.vocab.decode([s.token for s in spans])
        else:
            text = " ".join(words.get_entry(w) for w in result.words if w >= 0)
        return Hypothesis(text, spans, float(result.score))


def lexicon_search_model(vocab: Vocabulary, lexicon_path: str | Path, make_lm) -> SearchModel:
    """``make_lm(words)`` builds the word LM over the lexicon's word dictionary."""
    if not Path(lexicon_path).is_file():
        raise FileNotFoundError(f"{lexicon_path}: lexicon not found")
    lexicon = read_lexicon(lexicon_path)
    if not lexicon:
        raise ValueError(f"{lexicon_path}: empty lexicon")
    words = word_dictionary(lexicon)
    lm = make_lm(words)
    return SearchModel(vocab, lm, words, build_trie(lexicon, vocab, words, lm))


def ngram_search_model(vocab: Vocabulary, lm_path: str | Path | None = None,
                       lexicon_path: str | Path | None = None) -> SearchModel:
    """KenLM (ARPA or binary) search; with a lexicon the LM is over words, without it over units.
    No LM: a lexicon-constrained or free search on the acoustic scores alone."""
    if lm_path is not None and not Path(lm_path).is_file():
        raise FileNotFoundError(f"{lm_path}: language model not found")

    def make_lm(index: Dictionary) -> LM:
        if not lm_path:
            return ZeroLM()
        try:
            return KenLM(str(lm_path), index)
        except RuntimeError as e:
            reason = str(e).strip().splitlines()[-1]
            raise ValueError(f"{lm_path}: not a KenLM model (ARPA with at least bigrams, or binary): {reason}") from e

    if lexicon_path is None:
        return SearchModel(vocab, make_lm(Dictionary(vocab.tokens)))
    return lexicon_search_model(vocab, lexicon_path, make_lm)


class TransformerBeamLM(LM):
    """flashlight ``LM`` backed by a word-level neural LM (:class:`w2v2.decode.transformer_lm.TransformerLM`:
    ``vocab`` {word: id}, ``eos_id``, ``unk_id``, ``next_log_probs(histories) -> (B, V)`` natural-log
    probabilities of the next word after histories of word ids that start after the sentence start).

    Every beam state is a word history; the next-word distribution of a state is computed once and
    cached (flashlight asks for many words after the same history), and the cache is cleared when
    a new utterance starts.
    """

    def __init__(self, model, words: Dictionary) -> None:
        super().__init__()
        self.model = model
        self.eos = model.eos_id
        self.to_lm = [model.vocab.get(words.get_entry(i), model.unk_id) for i in range(words.index_size())]
        self.histories: dict[LMState, tuple[int, ...]] = {}
        self.cache: dict[tuple[int, ...], Tensor] = {}

    def _next(self, state: LMState) -> Tensor:
        history = self.histories[state]
        if history not in self.cache:
            with torch.inference_mode():
                self.cache[history] = self.model.next_log_probs([list(history)])[0].float().cpu()
        return self.cache[history]

    def start(self, start_with_nothing: bool) -> LMState:
        self.histories.clear()
        self.cache.clear()
        state = LMState()
        self.histories[state] = ()
        return state

    def score(self, state: LMState, word: int) -> tuple[LMState, float]:
        child = state.child(word)
        lm_word = self.to_lm[word]
        self.histories.setdefault(child, self.histories[state] + (lm_word,))
        return child, float(self._next(state)[lm_word])

    def finish(self, state: LMState) -> tuple[LMState, float]:
        return state.child(-1), float(self._next(state)[self.eos])


def transformer_search_model(vocab: Vocabulary, lm_model, lexicon_path: str | Path) -> SearchModel:
    return lexicon_search_model(vocab, lexicon_path, lambda words: TransformerBeamLM(lm_model, words))
