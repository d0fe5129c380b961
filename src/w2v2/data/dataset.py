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


def padded_length(longest: int, multiple: int) -> int:
    """A padded batch's length: its longest clip rounded up to a multiple of ``multiple`` samples (0:
    not rounded). With clips of every length (speed perturbation draws a new length each epoch)
    nearly every batch would have a shape of its own, and each new shape makes oneDNN build and
    cache new kernels: rounded up to 0.5 s, fine-tuning with speed perturbation made 1.2-1.5x the
    updates in two-minute probes (docs/small_compute.md, row PAD)."""
    return -(-longest // multiple) * multiple if multiple > 0 else longest


def cropped_length(shortest: int, max_sample_size: int, multiple: int) -> int:
    """A cropped batch's length: its shortest clip, at most ``max_sample_size``, rounded down to a
    multiple of ``multiple`` samples when it holds one (0: not rounded). Fewer distinct lengths, as
    ``padded_length``: at 0.5 s, pre-training made 1.25x the updates and 1.15x the audio per
    second (docs/small_compute.md, row CROP)."""
    n = min(shortest, max_sample_size)
    return n // multiple * multiple if 0 < multiple <= n else n


class AudioDataset(Dataset):
    """Item = one batch (a list of manifest indices), so that crops are decided per batch.

    ``crop_to_shortest`` (pre-training, as fairseq): every clip is randomly cropped to the shortest
    clip of its batch (and to ``max_sample_size``): no padding, so the group-norm encoder and the
    masks never see padding. Otherwise (fine-tuning) clips are zero-padded (to ``padded_length``)
    and lengths returned.
    """

    def __init__(self, entries: list[Entry], batches: list[list[int]], max_sample_size: int, seed: int,
                 epoch: int, normalize_audio: bool, crop_to_shortest: bool,
                 batch_ids: list[int] | None = None, augment: Augmentation | None = None,
                 pad_multiple: int = 0, crop_multiple: int = 0) -> None:
        self.entries = entries
        # the crops of a batch are seeded by its index in the epoch, whichever rank reads it
        self.batch_ids = list(range(len(batches))) if batch_ids is None else batch_ids
        self.batches = batches
        self.max_sample_size = max_sample_size
        self.seed = seed
        self.epoch = epoch
        self.normalize_audio = normalize_audio
        self.crop_to_shortest = crop_to_shortest
        self.pad_multiple, self.crop_multiple = pad_multiple, crop_multiple
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
        target = cropped_length(min(len(w) for w in wavs), self.max_sample_size, self.crop_multiple) \
            if self.crop_to_shortest else None
        out = []
        for w in wavs:
            size = min(len(w), target) if target is not None else min(len(w), self.max_sample_size)
            start = int(rng.integers(0, len(w) - size + 1))
            w = w[start:start + size]
            out.append(normalize(w) if self.normalize_audio else w)
        lengths = torch.tensor([len(w) for w in out])
        longest = int(lengths.max())
        waveform = torch.zeros(len(out), longest if self.crop_to_shortest else padded_length(longest, self.pad_multiple))
        for i, w in enumerate(out):
            waveform[i, :len(w)] = torch.from_numpy(w)
        return Batch(waveform, lengths, [e.text for e in items], ids)


def make_loader(entries: list[Entry], max_tokens: int, max_sample_size: int, seed: int, epoch: int,
                normalize_audio: bool, crop_to_shortest: bool, start_batch: int = 0, rank: int = 0,
                world_size: int = 1, num_workers: int = 1, shuffle: bool = True,
                augment: Augmentation | None = None, pad_multiple: int = 0, crop_multiple: int = 0) -> DataLoader:
    """Loader over this rank's shard of the epoch's batches, starting at ``start_batch``.

    Every rank gets the same number of batches (the remainder is dropped), so that data-parallel
    ranks stay in step.
    """
    batches = make_batches([e.samples for e in entries], max_tokens, max_sample_size, seed, epoch, shuffle,
                           crop_to_shortest)
    per_rank = len(batches) // world_size
    ids = list(range(rank, len(batches), world_size))[:per_rank][start_batch:]
    ds = AudioDataset(entries, [batches[i] for i in ids], max_sample_size, seed, epoch, normalize_audio,
                      crop_to_shortest, batch_ids=ids, augment=augment, pad_multiple=pad_multiple,
                      crop_multiple=crop_multiple)
    return DataLoader(ds, batch_size=None, shuffle=False, num_workers=num_workers,
                      prefetch_factor=4 if num_workers > 0 else None, persistent_workers=False)
