"""The decoder of a request and the cache of built decoders.

A request decodes with the model directory's tuned setting unless it asks otherwise: the n-gram
beam search of decoder.json's ``ngram`` section (LM, lexicon and weights written by
``w2v2 tune-decoder``) when there is one, else greedy. A request may choose ``decoder`` (greedy or
ngram) and override ``beam_size``, ``lm_weight`` and ``word_score`` within bounds; the LM and the
lexicon are never taken from a request. Settings are built by :func:`decoder_settings`, as for
``w2v2 transcribe``.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..decode.decoders import decoder_settings
from ..decode.transcriber import Transcriber
from ..decode.tune import LM_WEIGHT_RANGE, WORD_SCORE_RANGE, read_decoder_json
from .limits import RequestError

SERVED_DECODERS = ("greedy", "ngram")


@dataclass(frozen=True)
class Bound:
    """A numeric override a request may give: its type and closed range."""

    kind: type
    low: float
    high: float

    def parse(self, name: str, text: str) -> int | float:
        try:
            value = self.kind(text)
        except ValueError:
            raise RequestError(422, f"{name} must be {'an integer' if self.kind is int else 'a number'}, "
                                    f"got {text!r}") from None
        if not self.low <= value <= self.high:  # also refuses nan
            raise RequestError(422, f"{name} must be between {self.low:g} and {self.high:g}, got {text}")
        return value


def override_bounds(max_beam_size: int) -> dict[str, Bound]:
    """The per-request overrides of the n-gram search; LM weight and word score in tune-decoder's ranges."""
    return {"beam_size": Bound(int, 1, max_beam_size), "lm_weight": Bound(float, *LM_WEIGHT_RANGE),
            "word_score": Bound(float, *WORD_SCORE_RANGE)}


class DecoderChoice:
    """Turns a request's fields into decoder settings, or a 422 that says which field is wrong."""

    def __init__(self, model_dir: str | Path, default: str, max_beam_size: int) -> None:
        """``default``: a served decoder, or "auto": the tuned n-gram search when tune-decoder wrote
        one, else greedy."""
        self.model_dir = Path(model_dir)
        self.available = [d for d in SERVED_DECODERS if d == "greedy" or "ngram" in read_decoder_json(model_dir)]
        self.default = ("ngram" if "ngram" in self.available else "greedy") if default == "auto" else default
        if self.default not in self.available:
            raise ValueError(f"{model_dir}: no tuned n-gram decoder in decoder.json to serve by default "
                             "(run 'w2v2 tune-decoder --decoder ngram' first, or serve --decoder greedy)")
        self.bounds = override_bounds(max_beam_size)
        self.fields = ["decoder", *self.bounds]

    def settings(self, fields: Mapping[str, str]) -> dict:
        decoder = fields.get("decoder") or self.default
        if decoder not in self.available:
            why = ("this model directory has no tuned n-gram search (decoder.json, written by tune-decoder)"
                   if decoder in SERVED_DECODERS else f"this service serves {', '.join(SERVED_DECODERS)}")
            raise RequestError(422, f"decoder {decoder!r} is not available: {why}; choose from "
                                    f"{', '.join(self.available)}")
        overrides = {k: b.parse(k, fields[k]) for k, b in self.bounds.items() if fields.get(k) not in (None, "")}
        if overrides and decoder == "greedy":
            raise RequestError(422, f"{', '.join(overrides)} applies to decoder=ngram only (greedy has no beam)")
        return decoder_settings(self.model_dir, decoder, overrides)

    def to_dict(self) -> dict:
        return {"default": self.default, "available": self.available,
                "overrides": {k: {"type": b.kind.__name__, "min": b.low, "max": b.high} for k, b in self.bounds.items()}}


def settings_key(settings: dict) -> str:
    return json.dumps(settings, sort_keys=True, default=str)


class TranscriberCache:
    """The most recently used ``size`` transcribers by decoder settings, all sharing one model
    (building an n-gram decoder loads its LM: seconds and memory)."""

    def __init__(self, build: Callable[[dict], Transcriber], size: int) -> None:
        self.build, self.size = build, size
        self._cache: OrderedDict[str, Transcriber] = OrderedDict()

    def get(self, settings: dict) -> Transcriber:
        key = settings_key(settings)
        if key in self._cache:
            self._cache.move_to_end(key)
        else:
            self._cache[key] = self.build(settings)
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return self._cache[key]
