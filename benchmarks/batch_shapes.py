"""Does the variety of pre-training batch shapes cost time? One `tiny` unit-target update replayed
over a manifest's epoch of batch shapes, against fixed 8 x 4 s batches.

    .venv/bin/python benchmarks/batch_shapes.py --manifest unlabeled.tsv
    ONEDNN_PRIMITIVE_CACHE_CAPACITY=32768 LRU_CACHE_CAPACITY=32768 .venv/bin/python benchmarks/batch_shapes.py ...

Pre-training crops each batch to its shortest clip (section 4.2) and sizes batches by total samples,
so a pool of clips of many lengths gives batches of many (B, T) shapes, and oneDNN builds kernels
per shape: if its caches (1,024 entries by default; the environment variables above enlarge them)
were too small for an epoch's shapes, every update would rebuild them. The epoch's shapes come from
the trainer's own batching (``make_batches`` with the `tiny` recipe's ``max_tokens``,
``max_sample_size`` and ``min_sample_size``); the audio is noise, the update ``train_step.py``'s
(bf16 autocast, forward, backward, fused AdamW). Prints one JSON line: seconds per audio second for
the fixed batches (the mean of a block before and after), the first replayed epoch (kernels built)
and the second (cached, if they fit), and the peak resident memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import time

import numpy as np
import torch

from w2v2.data.audio import SAMPLE_RATE
from w2v2.data.dataset import make_batches
from w2v2.data.manifest import read_manifest
from w2v2.model import build_pretraining_model, preset
from w2v2.train.pretrain import preset_recipe


def epoch_shapes(manifest: str) -> list[tuple[int, int]]:
    """(clips, samples) of each batch of the manifest's first epoch, as the trainer would batch it."""
    r = preset_recipe("tiny")
    sizes = [e.samples for e in read_manifest(manifest) if e.samples >= r.min_sample_size]
    batches = make_batches(sizes, r.max_tokens, r.max_sample_size, seed=1, epoch=0)
    return [(len(b), min(min(sizes[i] for i in b), r.max_sample_size)) for b in batches]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True, help="a pre-training manifest (path, samples)")
    p.add_argument("--fixed", type=int, default=30, help="fixed 8 x 4 s updates before and after (default 30)")
    args = p.parse_args(argv)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    shapes = epoch_shapes(args.manifest)
    cfg = dataclasses.replace(preset("tiny"), quantize_targets=False, target_units=100)
    torch.manual_seed(0)
    model = build_pretraining_model(cfg).train()
    model.units.centres.normal_()  # any centres: the cost is the same
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    rng = np.random.default_rng(0)

    def seconds_per_audio_second(block: list[tuple[int, int]]) -> float:
        wall = audio = 0.0
        for b, t in block:
            wave = torch.randn(b, t) * 0.1
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = model(wave, rng=rng).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            wall += time.perf_counter() - t0
            audio += b * t / SAMPLE_RATE
        return wall / audio

    fixed = [(8, 64000)] * args.fixed
    seconds_per_audio_second(fixed[:2])  # warm-up
    before = seconds_per_audio_second(fixed)
    first, second = seconds_per_audio_second(shapes), seconds_per_audio_second(shapes)
    after = seconds_per_audio_second(fixed)
    base = (before + after) / 2
    print(json.dumps({
        "batches": len(shapes), "distinct_shapes": len(set(shapes)),
        "caches": {k: os.environ.get(k) for k in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")},
        "fixed": base, "epoch1": first, "epoch2": second, "epoch2_over_fixed": second / base,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))


if __name__ == "__main__":
    main()
