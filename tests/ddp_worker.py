"""One rank of the agreement tests of test_ddp_epoch_end.py, launched by torchrun:
``ddp_worker.py MODE MANIFEST RUN_DIR``.

Modes (a linear model on each batch's mean amplitude; what is written goes next to RUN_DIR):
- ``boundaries``: update_freq 2, 7 updates; ``boundaries.RANK.txt`` holds one line per update:
  epoch and position after it, micro-batches in it.
- ``uneven``: rank 1 reads four clips fewer than rank 0 (the trainer must refuse).
- ``clock``: --max-minutes whose clock runs out on rank 1 only, after 3 updates;
  ``clock.RANK.txt`` holds the number of updates the rank made.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

from w2v2.data.manifest import read_manifest
from w2v2.train.config import TrainConfig
from w2v2.train.loop import StepResult, Trainer, one_group


class MeanTask:
    metric, bar_keys, crop_to_shortest, normalize, find_unused_parameters = "loss", ("loss",), True, False, False

    def step(self, model, batch, rng, num_updates):
        loss = model(batch.waveform.mean(1, keepdim=True)).pow(2).sum()
        return StepResult(loss, batch.waveform.shape[0], {})

    def validate(self, model, device, autocast): return {"loss": 0.0}
    def on_update(self, model, n, at): pass
    def frozen(self, model, n): return []
    def lr_groups(self, model): return one_group(model)
    def export(self, model, out): pass
    def check(self, row, n): return None
    def summarize(self, s): return {}


def main(mode: str, manifest: str, run_dir: str) -> None:
    rank = int(os.environ["RANK"])
    entries = read_manifest(manifest)
    if mode == "uneven" and rank == 1:
        entries = entries[:-4]
    cfg = TrainConfig(max_updates=7 if mode == "boundaries" else 50, update_freq=2, lr=1e-3, precision="fp32",
                      num_workers=0, max_tokens=32000, max_sample_size=16000, min_sample_size=4000,
                      validate_every=100, save_every=100, log_every=100, device="cpu",
                      max_minutes=5.0 if mode == "clock" else 0.0)
    torch.manual_seed(0)
    trainer = Trainer(MeanTask(), nn.Linear(1, 1), entries, cfg, Path(run_dir), {})
    lines = []
    original = trainer.optimizer_step

    def spy(results, acc):
        original(results, acc)
        lines.append(f"{trainer.epoch} {trainer.position} {len(results)}")

    trainer.optimizer_step = spy
    if mode == "clock" and rank == 1:  # an hour later once 3 updates are done
        trainer.clock = lambda: time.time() + (3600 if trainer.num_updates >= 3 else 0)
    trainer.train()
    out = Path(run_dir).parent / f"{mode}.{rank}.txt"
    out.write_text("\n".join(lines) + "\n" if mode == "boundaries" else f"{trainer.num_updates}\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
