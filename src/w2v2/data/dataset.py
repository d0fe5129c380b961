"""Batches of audio for training: length-bucketed batches by total samples, deterministic crops.

Everything random is a function of (seed, epoch, batch index), so a run resumed from its
data position sees exactly the batches an uninterrupted run would have seen, whatever the
number of loader workers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .audio import load_audio, normalize
from .augment import Augmentation
from .manifest import Entry


@dataclass
class Batch:
    waveform: torch.Tensor  # (B, T) float32
    lengths: torch.Tensor  # (B,) valid samples
    texts: list[str | None]
    ids: list[str]  # Entry.id (unique within the manifest, unlike file stems), plus the augmented version's
    # name (Augmentation.version): the feature cache's keys

    def pin_memory(self) -> Batch:
        self.waveform = self.waveform.pin_memory()
        return self


def make_batches(sizes: list[int], max_tokens: int, max_sample_size: int, seed: int, epoch: int,
                 shuffle: bool = True, crop_to_shortest: bool = True) -> list[list[int]]:
    """Group item indices into batches whose cost stays within ``max_tokens`` samples.

    Items are sorted by length (ties broken randomly per epoch), cut into consecutive batches,
    and the batch order is shuffled. The cost of a batch is its size times its longest (padding)
    or shortest (cropping) item, after capping at ``max_sample_size``.
    """
    rng = np.random.default_rng([seed, epoch])
    sizes_arr = np.minimum(np.asarray(sizes), max_sample_size)
    order = np.lexsort((rng.random(len(sizes_arr)), sizes_arr)) if shuffle else np.argsort(sizes_arr, kind="stable")
    batches, current, ref = [], [], 0
    for i in order:
        s = int(sizes_arr[i])
        # sorted ascending: the shortest item is the first one, the longest the newest
        cost_len = (ref if current else s) if crop_to_shortest else s
        if current and (len(current) + 1) * cost_len > max_tokens:
            batches.append(current)
            current = []
        if not current:
            ref = s
        current.append(int(i))
    if current:
        batches.append(current)
    if shuffle:
        rng.shuffle(batches)
    return batches


class AudioDataset(Dataset):
    """Item = one batch (a list of manifest indices), so that crops are decided per batch.

    ``crop_to_shortest`` (pre-training, as fairseq): every clip is randomly cropped to the shortest
    clip of its batch (and to ``max_sample_size``): no padding, so the group-norm encoder and the
    masks never see padding. Otherwise (fine-tuning) clips are zero-padded and lengths returned.
    """

    def __init__(self, entries: list[Entry], batches: list[list[int]], max_sample_size: int, seed: int,
                 epoch: int, normalize_audio: bool, crop_to_shortest: bool,
                 batch_ids: list[int] | None = None, augment: Augmentation | None = None) -> None:
        self.entries = entries
        # the crops of a batch are seeded by its index in the epoch, whichever rank reads it
        self.batch_ids = list(range(len(batches))) if batch_ids is None else batch_ids
        self.batches = batches
        self.max_sample_size = max_sample_size
        self.seed = seed
        self.epoch = epoch
        self.normalize_audio = normalize_audio
        self.crop_to_shortest = crop_to_shortest
        self.augment = augment if augment is not None and augment.active else None

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> Batch:
        rng = np.random.default_rng([self.seed, self.epoch, self.batch_ids[index]])
        items = [self.entries[i] for i in self.batches[index]]
        wavs = [load_audio(e.path) for e in items]
        ids = [e.id for e in items]
        if self.augment is not None:  # before cropping: a speed change changes the length
            versions = [self.augment.version(w, rng) for w in wavs]
            wavs = [w for w, _ in versions]
            ids = [i + name for i, (_, name) in zip(ids, versions)]
        target = min(len(w) for w in wavs) if self.crop_to_shortest else None
        out = []
        for w in wavs:
            size = min(len(w), self.max_sample_size, target or len(w))
            start = int(rng.integers(0, len(w) - size + 1))
            w = w[start:start + size]
            out.append(normalize(w) if self.normalize_audio else w)
        lengths = torch.tensor([len(w) for w in out])
        waveform = torch.zeros(len(out), int(lengths.max()))
        for i, w in enumerate(out):
            waveform[i, :len(w)] = torch.from_numpy(w)
        return Batch(waveform, lengths, [e.text for e in items], ids)


def make_loader(entries: list[Entry], max_tokens: int, max_sample_size: int, seed: int, epoch: int,
                normalize_audio: bool, crop_to_shortest: bool, start_batch: int = 0, rank: int = 0,
                world_size: int = 1, num_workers: int = 1, shuffle: bool = True,
                augment: Augmentation | None = None) -> DataLoader:
    """Loader over this rank's shard of the epoch's batches, starting at ``start_batch``.

    Every rank gets the same number of batches (the remainder is dropped), so that data-parallel
    ranks stay in step.
    """
    batches = make_batches([e.samples for e in entries], max_tokens, max_sample_size, seed, epoch, shuffle,
                           crop_to_shortest)
    per_rank = len(batches) // world_size
    ids = list(range(rank, len(batches), world_size))[:per_rank][start_batch:]
    ds = AudioDataset(entries, [batches[i] for i in ids], max_sample_size, seed, epoch, normalize_audio,
                      crop_to_shortest, batch_ids=ids, augment=augment)
    return DataLoader(ds, batch_size=None, shuffle=False, num_workers=num_workers,
                      prefetch_factor=4 if num_workers > 0 else None, persistent_workers=False)
