"""Frame log-probabilities of a CTC model for many files: batched by length, long files chunked.

Batching: pieces of audio are sorted by length and packed into batches of at most
``batch_seconds`` of padded audio, so that padding stays small; the model receives the valid
lengths (key padding mask). For BASE-layout models (GroupNorm in the first conv block) that norm
takes its statistics over each piece's valid frames only (``feature_encoder.masked_group_norm``),
so that padding never enters them: a file's output does not depend on what else is in its batch
(fairseq's and transformers' batched inference let it in; torchaudio issue 2242).

The acoustic model is anything called as ``model(waveform, lengths)`` that returns an object with
``.logits`` (``AcousticModel``): a ``Wav2Vec2ForCTC``, or the ONNX Runtime session of
``interop.onnx.OnnxAcousticModel``.

Chunking: a file longer than ``chunk_seconds`` is cut into windows of ``chunk_seconds`` that each
carry ``context_seconds`` of extra audio on both sides. Each window's frames inside its central
part are kept and the central parts are concatenated. Window starts are multiples of the frame
stride (320 samples), so window frame ``j`` is exactly global frame ``start / 320 + j`` of the
convolutional encoder; only the Transformer's view of distant context differs, and with a few
seconds of context on each side it barely changes the frame posteriors. Memory is bounded by the
window length instead of the file length (self-attention is quadratic in frames). Files that fit
in one window are processed whole, so their output is the same as without chunking.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from ..config import W2V2Config
from ..data.audio import SAMPLE_RATE, load_audio, normalize
from ..model.feature_encoder import num_frames

T = TypeVar("T")  # what the decoder makes of the emissions


class AcousticModel(Protocol):
    """A CTC acoustic model in inference: (B, samples) padded waveforms and (B,) valid samples ->
    an output whose ``.logits`` are (B, frames, V)."""

    def __call__(self, waveform: Tensor, lengths: Tensor) -> Any: ...


def model_device(model: AcousticModel) -> torch.device:
    """Where the model's inputs go: its ``device`` attribute when it has one (a model without torch
    parameters, such as an ONNX Runtime session), else its parameters' device."""
    device = getattr(model, "device", None)
    if device is not None:
        return torch.device(device)
    return next(model.parameters()).device  # type: ignore[attr-defined]


@dataclass
class InferenceConfig:
    chunk_seconds: float = 30.0  # window length; longer files are chunked
    context_seconds: float = 3.0  # extra audio on each side of a window
    batch_seconds: float = 120.0  # padded audio per forward pass

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Piece:
    """A window of one file: samples ``[start, end)``, whose frames ``[keep_from, keep_to)`` are kept."""

    utt: int
    part: int  # position among the file's windows
    start: int
    end: int
    keep_from: int
    keep_to: int


def plan_pieces(utt: int, samples: int, cfg: W2V2Config, inf: InferenceConfig) -> list[Piece]:
    """Windows covering every frame of a file exactly once (module docstring)."""
    total = num_frames(cfg.conv_layers, samples)
    stride = cfg.frame_stride
    hop_frames = max(1, int(inf.chunk_seconds * SAMPLE_RATE) // stride)
    if total <= hop_frames:
        return [Piece(utt, 0, 0, samples, 0, total)]
    context = int(inf.context_seconds * SAMPLE_RATE) // stride * stride
    tail = cfg.receptive_field - stride  # samples past a frame's start that it still reads
    pieces = []
    for part, first in enumerate(range(0, total, hop_frames)):
        last = min(first + hop_frames, total)
        start = max(0, first * stride - context)
        end = min(samples, last * stride + tail + context)
        pieces.append(Piece(utt, part, start, end, first - start // stride, last - start // stride))
    return pieces


def batches(pieces: list[Piece], max_samples: int) -> list[list[Piece]]:
    """Longest first; a batch holds as many pieces as fit in ``max_samples`` padded samples."""
    out: list[list[Piece]] = []
    for p in sorted(pieces, key=lambda p: p.end - p.start, reverse=True):
        if out and (len(out[-1]) + 1) * (out[-1][0].end - out[-1][0].start) <= max_samples:
            out[-1].append(p)
        else:
            out.append([p])
    return out


def model_input(waveform: np.ndarray, cfg: W2V2Config, source: str) -> np.ndarray:
    """A 16 kHz waveform as the model expects it: float32, normalised to zero mean and unit
    variance for LV60-layout models; refused when shorter than the receptive field."""
    if len(waveform) < cfg.receptive_field:
        raise ValueError(f"{source}: {len(waveform)} samples is shorter than the receptive field "
                         f"({cfg.receptive_field} samples, {cfg.receptive_field / SAMPLE_RATE * 1000:.0f} ms)")
    return normalize(waveform) if cfg.normalize else np.asarray(waveform, dtype=np.float32)


@torch.inference_mode()
def compute_emissions(model: AcousticModel, cfg: W2V2Config, waveforms: Sequence[np.ndarray],
                      inf: InferenceConfig | None = None, progress: bool = True) -> list[Tensor]:
    """Frame log-probabilities ``(T_i, V)`` (float32, CPU) of every waveform (16 kHz, mono)."""
    inf = inf or InferenceConfig()
    waves = [model_input(w, cfg, f"input {i}") for i, w in enumerate(waveforms)]
    pieces = [p for i, w in enumerate(waves) for p in plan_pieces(i, len(w), cfg, inf)]
    device = model_device(model)
    kept: list[dict[int, Tensor]] = [{} for _ in waves]
    plan = batches(pieces, int(inf.batch_seconds * SAMPLE_RATE))
    for batch in tqdm(plan, desc="acoustic model", unit="batch", disable=not progress or len(plan) < 2):
        lengths = torch.tensor([p.end - p.start for p in batch])
        x = torch.zeros(len(batch), int(lengths.max()))
        for row, p in enumerate(batch):
            x[row, : p.end - p.start] = torch.from_numpy(waves[p.utt][p.start:p.end])
        out = model(x.to(device), lengths.to(device))
        logp = torch.log_softmax(out.logits.float(), dim=-1).cpu()
        for row, p in enumerate(batch):
            kept[p.utt][p.part] = logp[row, p.keep_from:p.keep_to]
    return [torch.cat([parts[k] for k in range(len(parts))]) for parts in kept]


@dataclass
class Timing:
    """Wall-clock seconds by stage; real-time factor = processing time / audio duration."""

    audio: float = 0.0  # seconds of speech processed
    loading: float = 0.0
    acoustic: float = 0.0
    search: float = 0.0

    def summary(self) -> dict[str, float]:
        total = self.loading + self.acoustic + self.search
        per = (lambda t: t / self.audio) if self.audio > 0 else (lambda t: float("nan"))
        return {"audio_seconds": self.audio, "loading_seconds": self.loading, "acoustic_seconds": self.acoustic,
                "search_seconds": self.search, "rtf": per(total), "rtf_acoustic": per(self.acoustic),
                "rtf_search": per(self.search)}


def transcribe_files(model: AcousticModel, cfg: W2V2Config, paths: Sequence[str | Path],
                     decode: Callable[[Tensor], T], inf: InferenceConfig | None = None,
                     timing: Timing | None = None, files_per_block: int = 64) -> Iterator[T]:
    """``decode(emissions)`` (a :class:`Hypothesis` or anything built from the emissions) of audio
    files in order, reading and batching ``files_per_block`` at a time so that memory does not grow
    with the number of files."""
    timing = timing if timing is not None else Timing()
    bar = tqdm(total=len(paths), desc="transcribe", unit="file", disable=len(paths) < 2)
    for i in range(0, len(paths), files_per_block):
        t0 = time.perf_counter()
        waves = [load_audio(p, min_samples=cfg.receptive_field) for p in paths[i:i + files_per_block]]
        t1 = time.perf_counter()
        emissions = compute_emissions(model, cfg, waves, inf, progress=False)
        timing.loading += t1 - t0
        timing.acoustic += time.perf_counter() - t1
        timing.audio += sum(len(w) for w in waves) / SAMPLE_RATE
        for e in emissions:
            t0 = time.perf_counter()
            hyp = decode(e)
            timing.search += time.perf_counter() - t0
            bar.update(1)
            yield hyp
    bar.close()
