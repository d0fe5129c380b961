"""Frozen feature-encoder outputs kept across epochs during fine-tuning.

In fine-tuning the feature encoder is frozen (paper section 4.3) and has no dropout, so an
utterance's conv features are the same in every epoch: with 10 minutes or 1 hour of labels a run
makes hundreds of epochs, and recomputing them was a quarter of a tiny fp32 update on CPU
(benchmarks/README.md). The cache keeps them in CPU memory, up to a byte budget (past it, the
remaining utterances are computed every time). Utterances are keyed by their manifest id
(``Entry.id``, unique within the training manifest; a file stem is not: ``a/x.flac``, ``b/x.flac``).

Each utterance missing from the cache is encoded on its own, unpadded, so that what is kept is
bit for bit the utterance's own features, whatever batch it first came in. Encoding the padded
batch would agree only to float round-off: the feature encoder keeps padding out of the BASE
layout's GroupNorm statistics (``feature_encoder.masked_group_norm``), but its sums then run over
the padded length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from ..model.feature_encoder import FeatureEncoder


class FeatureCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.store: dict[str, Tensor] = {}
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def encode(self, encoder: FeatureEncoder, waveform: Tensor, lengths: Tensor,
               keys: list[str]) -> tuple[Tensor, Tensor]:
        """(B, samples) padded waveforms of the utterances with ids ``keys`` -> (B, T', C) conv
        features (zero past each utterance's frames; T' is the encoder's frame count for the padded
        length, as in the encoder's own output) and the (B,) frame counts; the encoder's parameters
        must be frozen."""
        if any(p.requires_grad for p in encoder.parameters()):
            raise RuntimeError("the feature cache needs a frozen feature encoder")
        frame_lengths = encoder.output_lengths(lengths)
        feats = []
        with torch.no_grad():
            for key, wave, n in zip(keys, waveform, lengths.tolist()):
                z = self.store.get(key)
                if z is None:
                    self.misses += 1
                    z = encoder(wave[:n].unsqueeze(0))[0][0]
                    size = z.numel() * z.element_size()
                    if self.bytes + size <= self.max_bytes:
                        self.store[key] = z.to("cpu", copy=True)
                        self.bytes += size
                else:
                    self.hits += 1
                feats.append(z)
        out = pad_sequence([z.to(waveform.device, feats[0].dtype) for z in feats], batch_first=True)
        total = int(encoder.output_lengths(torch.tensor([waveform.shape[1]]))[0])
        return F.pad(out, (0, 0, 0, total - out.shape[1])), frame_lengths
