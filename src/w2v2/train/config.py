"""Training configuration (paper section 4.2 pre-training, 4.3 / appendix B fine-tuning)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.augment import Augmentation


@dataclass
class TrainConfig:
    # optimisation
    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    weight_decay: float = 0.01
    schedule: str = "polynomial"  # "polynomial": warm-up then linear decay; "tri_stage": 10/40/50 %
    warmup_fraction: float = 0.08
    tri_stage: tuple[float, float, float] = (0.1, 0.4, 0.5)
    final_lr_scale: float = 0.05
    max_updates: int = 1000
    max_minutes: float = 0.0  # stop (and save) after this much training wall time, resumes included; 0 = no limit
    # "updates": the schedule advances per update; "time": with max_minutes, by whichever of updates
    # and training time is further along, so that it has decayed when the clock stops the run
    schedule_pace: str = "updates"
    clip_norm: float = 0.0  # 0 = no clipping (the norm is still logged)
    update_freq: int = 1  # gradient accumulation: micro-batches per update
    max_tokens: int = 1_400_000  # samples per micro-batch
    max_sample_size: int = 250_000
    min_sample_size: int = 32_000
    # padded (fine-tuning) batches: their length rounded up to a multiple of this many samples (0 = the
    # longest clip's), so that batch shapes recur and oneDNN reuses its kernels (measured on CPU only)
    pad_multiple: int = 8000
    # cropped (pre-training) batches: the shortest clip's length rounded down to a multiple of this many
    # samples (0 = not rounded; a shortest clip under one multiple is kept whole)
    crop_multiple: int = 0
    precision: str = "auto"  # "auto" (bf16 where native, else fp32: precision.py), "fp32", "bf16", "fp16" (CUDA)
    max_bad_updates: int = 20  # stop after this many non-finite updates in a row
    # waveform augmentation of the training clips (data/augment.py; 0 = off)
    augment_speed: float = 0.0  # speed factor uniform in [1 - x, 1 + x]
    augment_speed_steps: int = 0  # n >= 2: one of n evenly spaced factors instead (fine-tuning can cache them)
    augment_noise: float = 0.0  # probability of additive coloured noise (SNR 5-30 dB)
    augment_reverb: float = 0.0  # probability of a synthetic room impulse response (RT60 0.1-0.6 s)
    # fine-tuning
    freeze_encoder_updates: int = 0  # Transformer frozen, only the head trains (section 4.3)
    head_lr_scale: float = 1.0  # the output layer's rate as a multiple of the schedule's
    unfreeze_warmup_updates: int = 0  # the Transformer's rate ramps from 0 over these updates once it trains
    # bookkeeping
    seed: int = 1
    log_every: int = 10
    validate_every: int = 200
    save_every: int = 200
    keep_last: int = 2
    num_workers: int = 1
    device: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)

    def augmentation(self) -> Augmentation:
        return Augmentation(speed=self.augment_speed, speed_steps=self.augment_speed_steps, noise=self.augment_noise,
                            reverb=self.augment_reverb)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        for key in ("betas", "tri_stage"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)
