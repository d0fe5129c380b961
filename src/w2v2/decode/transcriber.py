"""A fine-tuned CTC model with its decoder: audio -> text with word times and confidences.

The one implementation behind ``w2v2 transcribe`` (files) and ``w2v2 serve`` (uploads). The
acoustic model runs on PyTorch (backend "torch") or on ONNX Runtime (backend "onnx", the graph of
``w2v2 export --to onnx``); the decoders are the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import Tensor

from ..config import W2V2Config
from ..data.audio import SAMPLE_RATE
from ..data.text import Vocabulary
from ..interop.model_dir import load_ctc
from .ctc import Hypothesis, WordTiming, word_timings
from .decoders import decoder_settings, make_decoder
from .inference import AcousticModel, InferenceConfig, Timing, compute_emissions, transcribe_files

BACKENDS = ("torch", "onnx")


def load_acoustic_model(model_dir: str | Path, backend: str = "torch",
                        onnx_path: str | Path | None = None) -> tuple[AcousticModel, W2V2Config, Vocabulary]:
    """The acoustic model of a fine-tuned CTC model directory, its config and vocabulary. Backend
    "onnx": the ONNX file ``onnx_path``, config and vocabulary from its metadata; without a path,
    ``MODEL_DIR/model.onnx``, exported first when missing or older than the weights
    (``interop.onnx.cached_export``)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    if backend == "torch":
        if onnx_path is not None:
            raise ValueError(f"{onnx_path}: an ONNX file is run by the onnx backend, not torch")
        return load_ctc(model_dir)
    from ..interop.onnx import OnnxAcousticModel, cached_export

    model = OnnxAcousticModel(onnx_path if onnx_path is not None else cached_export(model_dir))
    return model, model.cfg, model.vocab


@dataclass
class Transcript:
    text: str
    words: list[WordTiming]  # start/end in seconds, confidence = mean path posterior

    def to_dict(self) -> dict:
        return {"text": self.text, "words": [dataclasses.asdict(w) for w in self.words]}


class Transcriber:
    def __init__(self, model: AcousticModel, cfg: W2V2Config, vocab: Vocabulary, settings: dict,
                 inference: InferenceConfig | None = None) -> None:
        self.model, self.cfg, self.vocab, self.settings = model, cfg, vocab, settings
        self.inference = inference or InferenceConfig()
        self.decode = make_decoder(settings, vocab)

    @classmethod
    def from_model_dir(cls, model_dir: str | Path, decoder: str = "greedy", overrides: dict | None = None,
                       inference: InferenceConfig | None = None, backend: str = "torch",
                       onnx_path: str | Path | None = None) -> "Transcriber":
        """Decoder settings from ``MODEL_DIR/decoder.json`` and ``overrides``; the acoustic model
        as ``load_acoustic_model`` loads it for ``backend``."""
        model, cfg, vocab = load_acoustic_model(model_dir, backend, onnx_path)
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
