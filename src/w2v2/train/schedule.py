"""Learning-rate schedules as multipliers of the peak rate, paced by updates or by training time."""

from __future__ import annotations

from .config import TrainConfig


def polynomial(update: int, total: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` updates, then linear decay to 0 (section 4.2)."""
    if warmup > 0 and update < warmup:
        return (update + 1) / warmup
    return max(0.0, (total - update) / max(1, total - warmup))


def tri_stage(update: int, total: int, stages: tuple[float, float, float], final_scale: float) -> float:
    """Warm-up (linear from 0.01x), hold, exponential decay to ``final_scale`` (appendix B)."""
    warm, hold = int(stages[0] * total), int(stages[1] * total)
    decay = max(1, total - warm - hold)
    if update < warm:
        return 0.01 + (1 - 0.01) * update / warm
    if update < warm + hold:
        return 1.0
    return final_scale ** (min(update - warm - hold, decay) / decay)


def warmup_updates(cfg: TrainConfig) -> int:
    """Updates of the schedule's warm-up."""
    fraction = cfg.tri_stage[0] if cfg.schedule == "tri_stage" else cfg.warmup_fraction
    return int(fraction * cfg.max_updates)


def schedule_position(update: int, seconds: float, cfg: TrainConfig) -> float:
    """Where the schedule stands after ``update`` updates and ``seconds`` of training. Paced by
    time (``schedule_pace="time"`` with a ``max_minutes`` limit), the further along of the update
    count and the elapsed share of the limit, in updates: a run cut by its clock on a slow machine
    then ends at the bottom of its decay instead of part-way down (budgeted training: Li et al.
    2020, "Budgeted Training: Rethinking Deep Neural Network Training Under Resource Constraints")."""
    if cfg.schedule_pace == "updates" or cfg.max_minutes <= 0:
        return float(update)
    return max(float(update), seconds / (60 * cfg.max_minutes) * cfg.max_updates)


def lr_multiplier(cfg: TrainConfig):
    if cfg.schedule_pace not in ("updates", "time"):
        raise ValueError(f"schedule_pace must be 'updates' or 'time', got {cfg.schedule_pace!r}")
    if cfg.schedule == "polynomial":
        warmup = warmup_updates(cfg)
        return lambda u: polynomial(u, cfg.max_updates, warmup)
    if cfg.schedule == "tri_stage":
        return lambda u: tri_stage(u, cfg.max_updates, cfg.tri_stage, cfg.final_lr_scale)
    raise ValueError(f"schedule must be 'polynomial' or 'tri_stage', got {cfg.schedule!r}")
