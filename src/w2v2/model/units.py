"""Pre-training targets from k-means units of MFCCs, HuBERT's first iteration (Hsu et al. 2021,
section III-A and IV-C), or of a frozen pre-trained model's layer, its second iteration: non-paper
options beside the paper's quantized targets (section 3.2).

The units are computed inside the model from the waveform it is given, so they always match the
batch's crops; the k-means centres are a buffer of the pre-training model and travel with its
checkpoints. ``fit_unit_centres`` (in :mod:`w2v2.train.units`) sets them from training audio.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import W2V2Config
from ..data.audio import SAMPLE_RATE
from .wav2vec2 import Wav2Vec2Model, build_model


def hz_to_mel(hz: float) -> float:
    """HTK's mel scale: 2595 log10(1 + f / 700)."""
    return 2595.0 * math.log10(1.0 + hz / 700.0)


def mel_filterbank(n_fft: int, n_mels: int, sample_rate: int, fmin: float = 20.0) -> Tensor:
    """(n_fft // 2 + 1, n_mels) triangular filters of unit peak, centres equally spaced on HTK's mel
    scale from ``fmin`` to the Nyquist frequency."""
    top = hz_to_mel(sample_rate / 2)
    mels = torch.linspace(hz_to_mel(fmin), top, n_mels + 2, dtype=torch.float64)
    edges = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)  # (n_mels + 2,) Hz
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)[:, None]
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (freqs - lower) / (centre - lower)
    falling = (upper - freqs) / (upper - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


def dct_matrix(n_in: int, n_out: int) -> Tensor:
    """(n_in, n_out) orthonormal DCT-II: ``x @ dct_matrix(n, k)`` is the first k coefficients."""
    n = torch.arange(n_in, dtype=torch.float64)[:, None]
    k = torch.arange(n_out, dtype=torch.float64)[None, :]
    m = torch.cos(math.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    m[:, 0] /= math.sqrt(2.0)
    return m.float()


def deltas(x: Tensor, width: int = 2) -> Tensor:
    """Regression deltas along time of (B, T, D) (HTK: sum_n n (x[t+n] - x[t-n]) / (2 sum_n n^2)),
    edges repeated."""
    t = x.shape[1]
    padded = torch.cat([x[:, :1].expand(-1, width, -1), x, x[:, -1:].expand(-1, width, -1)], dim=1)
    num = sum(n * (padded[:, width + n:width + n + t] - padded[:, width - n:width - n + t])
              for n in range(1, width + 1))
    return num / (2 * sum(n * n for n in range(1, width + 1)))


class MfccFrames(nn.Module):
    """13 MFCCs with deltas and delta-deltas (39 values) per feature-encoder frame, normalised to zero
    mean and unit variance over each utterance's valid frames.

    Frame t reads the samples that frame t of the conv stack reads (window = its receptive field,
    hop = its stride, no centring): 25 ms every 20 ms for the paper's stack (section 2). Per frame,
    as Kaldi: mean removed, pre-emphasis 0.97, Hamming window; then HTK mel filters, log, orthonormal
    DCT."""

    def __init__(self, window: int, hop: int, sample_rate: int = SAMPLE_RATE, n_mels: int = 40,
                 n_ceps: int = 13) -> None:
        super().__init__()
        self.window, self.hop = window, hop
        self.n_fft = 1 << (window - 1).bit_length()
        self.register_buffer("taper", torch.hamming_window(window, periodic=False), persistent=False)
        self.register_buffer("mel", mel_filterbank(self.n_fft, n_mels, sample_rate), persistent=False)
        self.register_buffer("dct", dct_matrix(n_mels, n_ceps), persistent=False)
        self.dim = 3 * n_ceps

    def cepstra(self, waveform: Tensor, num_frames: int) -> Tensor:
        """(B, L) samples -> (B, num_frames, 13) MFCCs; frame t reads samples [t hop, t hop + window)
        (zeros past the end)."""
        x = waveform.float()
        need = (num_frames - 1) * self.hop + self.window
        if x.shape[1] < need:
            x = F.pad(x, (0, need - x.shape[1]))
        frames = x.unfold(1, self.window, self.hop)[:, :num_frames]  # (B, T, window)
        frames = frames - frames.mean(-1, keepdim=True)
        frames = torch.cat([frames[..., :1] * 0.03, frames[..., 1:] - 0.97 * frames[..., :-1]], dim=-1)
        power = torch.fft.rfft(frames * self.taper, n=self.n_fft).abs().pow(2)
        return torch.log(power @ self.mel + 1e-8) @ self.dct

    def utterance(self, waveform: Tensor, num_frames: int) -> Tensor:
        """(B, L) -> (B, num_frames, 39), each utterance normalised over all its frames."""
        ceps = self.cepstra(waveform, num_frames)
        d1 = deltas(ceps)
        feats = torch.cat([ceps, d1, deltas(d1)], dim=-1)
        mean = feats.mean(1, keepdim=True)
        return (feats - mean) / torch.sqrt(feats.var(1, unbiased=False, keepdim=True) + 1e-5)

    def forward(self, waveform: Tensor, num_frames: int, frame_lengths: Tensor | None = None) -> Tensor:
        """(B, L) samples -> (B, num_frames, 39); ``frame_lengths`` (B,) valid frames (None: all);
        padded frames are zero and never enter an utterance's deltas or statistics."""
        with torch.autocast(waveform.device.type, enabled=False):
            if frame_lengths is None or bool((frame_lengths >= num_frames).all()):
                return self.utterance(waveform, num_frames)
            out = waveform.new_zeros(waveform.shape[0], num_frames, self.dim, dtype=torch.float32)
            for i, n in enumerate(frame_lengths.tolist()):
                if n > 0:
                    out[i, :n] = self.utterance(waveform[i:i + 1], n)[0]
            return out


class LayerFrames(nn.Module):
    """The output of Transformer block ``layer`` of a frozen copy of a pre-trained model, one vector
    per frame, nothing masked: the features HuBERT's second iteration clusters (Hsu et al. 2021,
    iterative refinement of the cluster assignments; BASE clusters block 6 of the 12 of its
    first-iteration model). The copy never trains:
    its weights take no gradient and it stays in eval mode (no dropout) whatever its parent's mode."""

    def __init__(self, model: Wav2Vec2Model, layer: int) -> None:
        super().__init__()
        if not 1 <= layer <= len(model.encoder.layers):
            raise ValueError(f"layer {layer}: the model has {len(model.encoder.layers)} Transformer blocks")
        self.model = model.requires_grad_(False)
        self.layer = layer
        self.dim = model.feature_projection.projection.out_features
        self.train(False)

    def train(self, mode: bool = True) -> LayerFrames:
        return super().train(False)

    def forward(self, waveform: Tensor, num_frames: int, frame_lengths: Tensor | None = None) -> Tensor:
        """(B, L) samples -> (B, num_frames, D); ``frame_lengths`` (B,) valid frames (None: all) mask
        the padded frames out of self-attention, as in the model being trained."""
        with torch.no_grad():
            z, _ = self.model.feature_extractor(waveform)
            if z.shape[1] != num_frames:
                raise ValueError(f"the frozen model makes {z.shape[1]} frames of the batch, the targets need {num_frames}")
            f = self.model.features(waveform, conv_features=(z, frame_lengths))
            x, _ = self.model.encoder(f.projected, f.key_mask, num_layers=self.layer)
            return x.float()


class UnitTargets(nn.Module):
    """The k-means unit (nearest centre) of each frame's vector from ``frames``: MFCCs
    (:class:`MfccFrames`, HuBERT's first-iteration labels) or a frozen model's layer
    (:class:`LayerFrames`, its second iteration). ``centres`` (K, D) is a buffer, zero until fitted."""

    def __init__(self, frames: MfccFrames | LayerFrames, num_units: int) -> None:
        super().__init__()
        self.frames = frames
        self.register_buffer("centres", torch.zeros(num_units, frames.dim))

    @property
    def fitted(self) -> bool:
        return bool(self.centres.abs().sum() > 0)

    def forward(self, waveform: Tensor, num_frames: int, frame_lengths: Tensor | None = None) -> Tensor:
        """(B, L) samples -> (B, num_frames) unit indices."""
        if not self.fitted:
            raise RuntimeError("the k-means unit centres are not fitted (w2v2.train.units.fit_unit_centres)")
        with torch.no_grad():
            feats = self.frames(waveform, num_frames, frame_lengths)
            return torch.cdist(feats, self.centres.float().unsqueeze(0).expand(feats.shape[0], -1, -1)).argmin(-1)


def build_unit_targets(cfg: W2V2Config) -> UnitTargets:
    """MFCC units (``target_layer`` 0) or units of block ``target_layer`` of a frozen copy of the
    model (its weights are set from the model pre-training continues from, ``w2v2.train.units``)."""
    if cfg.target_layer == 0:
        return UnitTargets(MfccFrames(cfg.receptive_field, cfg.frame_stride), cfg.target_units)
    teacher = build_model(dataclasses.replace(cfg, encoder_layers=cfg.target_layer, encoder_layerdrop=0.0))
    return UnitTargets(LayerFrames(teacher, cfg.target_layer), cfg.target_units)
