"""A fine-tuned CTC model with its decoder: audio -> text with word times and confidences.

The one implementation behind ``w2v2 transcribe`` (files) and ``w2v2 serve`` (uploads).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import Tensor, nn

from ..config import W2V2Config
from ..data.audio import SAMPLE_RATE
from ..data.text import Vocabulary
from ..interop.model_dir import load_ctc
from .ctc import Hypothesis, WordTiming, word_timings
from .decoders import decoder_settings, make_decoder
from .inference import InferenceConfig, Timing, compute_emissions, transcribe_files


@dataclass
class Transcript:
    text: str
    words: list[WordTiming]  # start/end in seconds, confidence = mean path posterior

    def to_dict(self) -> dict:
        return {"text": self.text, "words": [dataclasses.asdict(w) for w in self.words]}


class Transcriber:
    def __init__(self, model: nn.Module, cfg: W2V2Config, vocab: Vocabulary, settings: dict,
                 inference: InferenceConfig | None = None) -> None:
        self.model, self.cfg, self.vocab, self.settings = model, cfg, vocab, settings
        self.inference = inference or InferenceConfig()
        self.decode = make_decoder(settings, vocab)

    @classmethod
    def from_model_dir(cls, model_dir: str | Path, decoder: str = "greedy", overrides: dict | None = None,
                       inference: InferenceConfig | None = None) -> "Transcriber":
        model, cfg, vocab = load_ctc(model_dir)
        return cls(model, cfg, vocab, decoder_settings(model_dir, decoder, overrides), inference)

    def transcript(self, emissions: Tensor, hyp: Hypothesis | None = None) -> Transcript:
        """The transcript of one file's frame log-probabilities ``(T, V)``."""
        hyp = hyp if hyp is not None else self.decode(emissions)
        frame_seconds = self.cfg.frame_stride / SAMPLE_RATE
        return Transcript(hyp.text, word_timings(hyp.spans, self.vocab, frame_seconds, emissions))

    def transcribe(self, waveforms: Sequence[np.ndarray]) -> list[Transcript]:
        """16 kHz mono waveforms, batched and chunked as :func:`compute_emissions` does."""
        emissions = compute_emissions(self.model, self.cfg, waveforms, self.inference, progress=False)
        return [self.transcript(e) for e in emissions]

    def transcribe_files(self, paths: Sequence[str | Path], timing: Timing | None = None) -> Iterator[Transcript]:
        with_emissions = lambda e: (self.decode(e), e)  # noqa: E731 - the search is timed apart from the words
        for hyp, emissions in transcribe_files(self.model, self.cfg, paths, with_emissions, self.inference, timing):
            yield self.transcript(emissions, hyp)
