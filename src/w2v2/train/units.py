"""Fitting the k-means centres of unit targets (``target_units``: HuBERT's first iteration, Hsu et
al. 2021, section IV-C, on MFCCs; its second, ``target_layer``, on a frozen copy of the model that
pre-training continues from) on the training audio, before pre-training starts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..analysis.kmeans import kmeans_fit
from ..data.audio import load_audio
from ..data.manifest import Entry
from ..model.feature_encoder import num_frames
from ..model.units import LayerFrames, UnitTargets


def unit_centres(vectors: np.ndarray, k: int, seed: int) -> torch.Tensor:
    """(k, D) centres of ``k`` k-means clusters of the (N, D) ``vectors`` (k-means++ seed ``seed``)."""
    return kmeans_fit(vectors, k, seed)[1].float()


def fit_unit_centres(units: UnitTargets, entries: Sequence[Entry], conv_layers: Sequence[tuple[int, int, int]],
                     seed: int, max_frames: int = 100_000) -> int:
    """Set ``units.centres`` from the frame vectors (MFCCs, or the frozen model's layer) of training
    clips (a seeded random order, until ``max_frames`` frames); returns the number of frames clustered."""
    k = units.centres.shape[0]
    order = np.random.default_rng(seed).permutation(len(entries))
    chunks, total = [], 0
    for i in order:
        wav = torch.from_numpy(load_audio(entries[int(i)].path)).unsqueeze(0)
        t = num_frames(conv_layers, wav.shape[1])
        if t < 1:
            continue
        chunks.append(units.frames(wav, t)[0])
        total += t
        if total >= max_frames:
            break
    if total < k:
        raise ValueError(f"target_units={k}: the training audio gives only {total} frames to cluster")
    vectors = torch.cat(chunks)[:max_frames].numpy()
    units.centres.copy_(unit_centres(vectors, k, seed))
    return len(vectors)


def copy_teacher(units: UnitTargets, wav2vec2: nn.Module) -> None:
    """Second-iteration targets: the frozen copy (:class:`LayerFrames`) takes the weights of the
    model that pre-training continues from, up to its target block."""
    if not isinstance(units.frames, LayerFrames):
        raise TypeError("copy_teacher: these unit targets read MFCCs, not a model's layer")
    teacher = units.frames.model
    own = wav2vec2.state_dict()
    teacher.load_state_dict({k: own[k] for k in teacher.state_dict()})
