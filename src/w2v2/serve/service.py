"""What one ``w2v2 serve`` process holds: the model, its decoders, the queue and the limits."""

from __future__ import annotations

from pathlib import Path

from ..data.audio import SAMPLE_RATE
from ..decode.inference import InferenceConfig
from ..decode.transcriber import Transcriber
from .decoding import DecoderChoice, TranscriberCache
from .limits import Limits, json_safe
from .worker import TranscriptionQueue


class Service:
    def __init__(self, model_dir: str | Path, limits: Limits | None = None, decoder: str = "auto",
                 inference: InferenceConfig | None = None) -> None:
        self.model_dir, self.limits = Path(model_dir), limits or Limits()
        self.decoders = DecoderChoice(model_dir, decoder, self.limits.max_beam_size)
        base = Transcriber.from_model_dir(model_dir, self.decoders.default, inference=inference)  # builds it now
        self.base = base
        self.transcribers = TranscriberCache(
            lambda s: base if s == base.settings else Transcriber(base.model, base.cfg, base.vocab, s, base.inference),
            self.limits.decoder_cache)
        self.queue = TranscriptionQueue(self.transcribers.get, self.limits.max_pending, self.limits.max_batch)

    @property
    def min_samples(self) -> int:
        """Shorter audio gives no frame."""
        return self.base.cfg.receptive_field

    def model_summary(self) -> dict:
        cfg, model, vocab = self.base.cfg, self.base.model, self.base.vocab
        return {"model_dir": str(self.model_dir), "origin": cfg.origin, "class": type(model).__name__,
                "parameters": sum(p.numel() for p in model.parameters()),
                "layout": {"feature_norm": cfg.extractor_mode,
                           "transformer": "pre-LN" if cfg.layer_norm_first else "post-LN",
                           "normalize_input": cfg.normalize},
                "encoder_layers": cfg.encoder_layers, "embed_dim": cfg.encoder_embed_dim,
                "frame_seconds": cfg.frame_stride / SAMPLE_RATE, "units": vocab.units, "vocab": vocab.tokens}

    def info(self) -> dict:
        return json_safe({"model": self.model_summary(),
                          "decoder": {**self.decoders.to_dict(), "settings": self.base.settings},
                          "limits": self.limits.to_dict(), "inference": self.base.inference.to_dict(),
                          "sample_rate": SAMPLE_RATE})
