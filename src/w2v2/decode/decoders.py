"""Decoders of a model directory: greedy, n-gram or Transformer-LM beam search, n-best rescoring.

A decoder's settings come from explicit overrides over MODEL_DIR/decoder.json (written by
``w2v2 tune-decoder``) over the defaults of :class:`BeamSearchConfig`; ``transcribe``,
``evaluate``, ``tune-decoder`` and ``serve`` all build their decoder here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
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
    if settings["decoder"] == "greedy":
        return lambda emissions: greedy_decode(emissions, vocab)
    search = rescorer(settings, vocab) if settings["decoder"] == "rescore" else beam_decoder(settings, vocab)
    return lambda emissions: search(emissions)[0]
