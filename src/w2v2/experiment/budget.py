"""Compute budgets of the experiments' stages."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """Compute for each stage; the training stages stop at whichever limit comes first."""

    preset: str
    pretrain_updates: int
    pretrain_minutes: float
    pretrain_lr: float
    pretrain_max_tokens: int
    finetune_updates: int
    finetune_minutes: float
    finetune_lr: float
    finetune_max_tokens: int
    finetune_mask_prob: float  # time masks (fairseq-style prob.); channel masks at half of it
    validate_every: int
    freeze_fraction: float  # of the fine-tuning updates, Transformer frozen (pre-trained models only)
    lm_order: int
    lm_steps: int
    tune_trials: int
    beam_size: int
    transformer_beam: int  # the Transformer LM is queried per hypothesis: a smaller beam


SCALES = {
    # a few minutes: checks that every stage runs and the report is complete
    "ci": Budget("tiny", 10, 1.0, 5e-4, 2 * 64000, 10, 0.5, 1e-3, 160_000, 0.3, 5, 0.1, 3, 10, 1, 5, 4),
    # the README's demo on the synthesized corpus: about 20 minutes on 2 CPU cores
    "demo": Budget("tiny", 400, 5.0, 5e-4, 8 * 64000, 300, 2.2, 2e-3, 640_000, 0.3, 100, 0.1, 4, 300, 8, 50, 8),
    # real speech on 2 CPU cores in about an hour
    "real": Budget("tiny", 1500, 24.0, 5e-4, 8 * 64000, 650, 5.0, 2e-3, 640_000, 0.3, 250, 0.1, 4, 1500, 12, 100, 8),
}
