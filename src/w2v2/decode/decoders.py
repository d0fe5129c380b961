"""Decoders of a model directory: greedy, n-gram or Transformer-LM beam search, n-best rescoring.

A decoder's settings come from explicit overrides over MODEL_DIR/decoder.json (written by
``w2v2 tune-decoder``) over the defaults of :class:`BeamSearchConfig`; ``transcribe``,
``evaluate``, ``tune-decoder`` and ``serve`` all build their decoder here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from torch import Tensor

from ..data.text import Vocabulary
from .beam import BeamSearchConfig, BeamSearchDecoder, SearchModel, ngram_search_model, transformer_search_model
from .ctc import Hypothesis, greedy_decode
from .rescore import NBestRescorer
from .tune import read_decoder_json

DECODERS = ("greedy", "ngram", "transformer", "rescore")
BEAM_FIELDS = [f.name for f in dataclasses.fields(BeamSearchConfig)]
RESCORE_NBEST = 16


def given(overrides: dict | None) -> dict:
    """The overrides that were actually given (``None`` means 'not given')."""
    return {k: v for k, v in (overrides or {}).items() if v is not None}


def decoder_settings(model_dir: str | Path, decoder: str, overrides: dict | None = None) -> dict:
    """Settings of ``decoder``: ``overrides`` (keys ``lm``, ``lexicon``, ``nbest`` and the beam
    fields) over MODEL_DIR/decoder.json over the defaults."""
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r} (choose from {', '.join(DECODERS)})")
    if decoder == "greedy":
        return {"decoder": "greedy"}
    if decoder == "rescore":
        return rescore_settings(model_dir, overrides)
    saved = read_decoder_json(model_dir).get(decoder, {})
    settings = {"decoder": decoder, "lm": saved.get("lm"), "lexicon": saved.get("lexicon"),
                **BeamSearchConfig().to_dict(), **{k: saved[k] for k in BEAM_FIELDS if k in saved}}
    settings.update({k: v for k, v in given(overrides).items() if k in ["lm", "lexicon"] + BEAM_FIELDS})
    return settings


def rescore_settings(model_dir: str | Path, overrides: dict | None = None) -> dict:
    """N-best rescoring: the Transformer LM (``lm``) and its weights from decoder.json's
    ``rescore`` section, re-ranking the n-best of the tuned n-gram search (its ``ngram`` section)."""
    saved = {kind: {k: v for k, v in section.items() if k != "tuning"}
             for kind, section in read_decoder_json(model_dir).items()}
    first = saved.get("rescore", {}).get("first_pass") or saved.get("ngram")
    if not first:
        raise ValueError(f"{model_dir}: --decoder rescore re-ranks the n-gram beam search's n-best; run "
                         "'w2v2 tune-decoder --decoder ngram' first (it stores that search in decoder.json)")
    settings = {"decoder": "rescore", "lm": None, "nbest": RESCORE_NBEST, "lm_weight": 0.5, "word_score": 0.0,
                **saved.get("rescore", {})}
    settings.update({k: v for k, v in given(overrides).items() if k in ("lm", "lm_weight", "word_score", "nbest")})
    if not settings["lm"]:
        raise ValueError("--decoder rescore needs --lm (a Transformer LM directory)")
    settings["first_pass"] = {**first, "decoder": "ngram", "nbest": settings["nbest"]}
    return settings


def search_model(settings: dict, vocab: Vocabulary) -> SearchModel:
    if settings["decoder"] == "ngram":
        return ngram_search_model(vocab, settings["lm"], settings["lexicon"])
    if not settings["lm"] or not settings["lexicon"]:
        raise ValueError("--decoder transformer needs --lm (a Transformer LM directory) and --lexicon")
    from .transformer_lm import load_transformer_lm

    return transformer_search_model(vocab, load_transformer_lm(settings["lm"]), settings["lexicon"])


def beam_decoder(settings: dict, vocab: Vocabulary) -> BeamSearchDecoder:
    return BeamSearchDecoder(search_model(settings, vocab), BeamSearchConfig(**{k: settings[k] for k in BEAM_FIELDS}))


def rescorer(settings: dict, vocab: Vocabulary) -> NBestRescorer:
    from .transformer_lm import load_transformer_lm

    return NBestRescorer(beam_decoder(settings["first_pass"], vocab), load_transformer_lm(settings["lm"]),
                         settings["lm_weight"], settings["word_score"])


def make_decoder(settings: dict, vocab: Vocabulary) -> Callable[[Tensor], Hypothesis]:
    decode = make_decoders([settings], vocab)
    return lambda emissions: decode(emissions)[0]


def same_search(ngram: dict, first_pass: dict) -> bool:
    """Whether an n-gram search and a rescorer's first pass are one search: the same settings but
    the number of hypotheses kept (n-best keeps more of the same final beam)."""
    return {**ngram, "nbest": 1} == {**first_pass, "nbest": 1}


def make_decoders(settings: Sequence[dict], vocab: Vocabulary) -> Callable[[Tensor], list[Hypothesis]]:
    """Several decoders on the same emissions: each one's best hypothesis, in the order of
    ``settings``. An n-gram search that is a rescorer's first pass (the tuned search of
    decoder.json, for both) is not run twice: its best hypothesis is the first of that n-best."""
    rescorers = {i: rescorer(s, vocab) for i, s in enumerate(settings) if s["decoder"] == "rescore"}
    shared = {}  # n-gram search -> the rescorer whose first pass it is
    for i, s in ((i, s) for i, s in enumerate(settings) if s["decoder"] == "ngram"):
        j = next((j for j in rescorers if same_search(s, settings[j]["first_pass"])), None)
        if j is not None:
            shared[i] = j
    searches = {i: beam_decoder(s, vocab) for i, s in enumerate(settings)
                if s["decoder"] in ("ngram", "transformer") and i not in shared}

    def decode(emissions: Tensor) -> list[Hypothesis]:
        lists = {i: r.nbest(emissions) for i, r in rescorers.items()}
        hyps = []
        for i, s in enumerate(settings):
            if i in rescorers:
                hyps.append(lists[i].best(rescorers[i].lm_weight, rescorers[i].word_score))
            elif i in shared:
                hyps.append(lists[shared[i]].hypotheses[0])
            elif i in searches:
                hyps.append(searches[i](emissions)[0])
            else:
                hyps.append(greedy_decode(emissions, vocab))
        return hyps
    return decode
