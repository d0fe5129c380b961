"""The training loop shared by pre-training and fine-tuning.

Per update: ``update_freq`` micro-batches, each seeded from (seed, epoch, global batch index) so
that data-parallel runs, accumulated runs and resumed runs see identical randomness; the summed
losses are normalised by the total number of targets across micro-batches and ranks (fairseq's
sample_size); non-finite gradients skip the update and are counted. An epoch that ends before
``update_freq`` micro-batches makes a shorter update; under DDP its last micro-batch synchronises
the gradients like any update's last (every rank reads the same number of batches per epoch, so
all ranks end their epochs at the same update), and ``--max-minutes`` stops every rank after the
same update.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..data.dataset import Batch, make_loader
from ..data.manifest import Entry
from .checkpoint import latest_checkpoint, list_checkpoints, save_checkpoint
from .config import TrainConfig
from .distributed import DistInfo, all_reduce_sum, barrier, init_distributed, pick_device, same_on_all_ranks
from .logs import RunLog
from .precision import autocast, resolve_precision
from .schedule import lr_multiplier, schedule_position


@dataclass
class MicroBatch:
    epoch: int
    index: int  # this rank's batch number in the epoch
    seed_index: int  # the batch's index among all ranks' batches of the epoch (seeds its randomness)
    batch: Batch
    ends_epoch: bool  # this rank's last batch of the epoch (the same update on every rank)


@dataclass
class StepResult:
    loss_sum: torch.Tensor  # summed over the micro-batch's targets
    sample_size: int
    logs: dict[str, float] = field(default_factory=dict)  # sums over the micro-batch (divided by sample_size later)


@dataclass
class LrGroup:
    """Parameters whose rate is the schedule's times ``factor(update)``."""

    params: list[nn.Parameter]
    factor: Callable[[int], float]


def one_group(model: nn.Module) -> list[LrGroup]:
    """Every trainable parameter at the schedule's rate."""
    return [LrGroup([p for p in model.parameters() if p.requires_grad], lambda u: 1.0)]


class Task(Protocol):
    """What differs between pre-training and fine-tuning."""

    metric: str  # validation metric, lower is better
    bar_keys: tuple[str, ...]  # shown in the progress bar
    crop_to_shortest: bool
    normalize: bool
    find_unused_parameters: bool

    def step(self, model: nn.Module, batch: Batch, rng: np.random.Generator, num_updates: int) -> StepResult: ...
    def validate(self, model: nn.Module, device: torch.device, autocast: Any) -> dict[str, float]: ...
    def on_update(self, model: nn.Module, num_updates: int, schedule_at: float) -> None: ...
    def frozen(self, model: nn.Module, num_updates: int) -> list[nn.Parameter]: ...
    def lr_groups(self, model: nn.Module) -> list[LrGroup]: ...
    def export(self, model: nn.Module, out: Path) -> None: ...
    def check(self, logs: dict[str, float], num_updates: int) -> str | None: ...
    def summarize(self, sums: dict[str, float]) -> dict[str, float]: ...


class TrainingStopped(RuntimeError):
    pass


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1, dtype=np.uint64)[0] % (2**63))


class Trainer:
    def __init__(self, task: Task, model: nn.Module, entries: list[Entry], cfg: TrainConfig, run_dir: Path,
                 model_config_dict: dict[str, Any], resume: bool = False) -> None:
        """``resume``: continue from the run directory's last checkpoint; without it, a directory
        that already holds checkpoints is refused rather than overwritten."""
        self.task, self.cfg, self.run_dir = task, cfg, Path(run_dir)
        if list_checkpoints(self.run_dir) and not resume:
            raise ValueError(f"{self.run_dir} already holds checkpoints: pass --resume to continue, "
                             "or choose a new output directory")
        self.device = pick_device(cfg.device)
        self.dist: DistInfo = init_distributed(self.device)
        if self.device.type == "cuda" and self.dist.world_size > 1:
            self.device = torch.device(f"cuda:{self.dist.local_rank}")
        self.precision = resolve_precision(cfg.precision, self.device)
        self.entries = [e for e in entries if e.samples >= cfg.min_sample_size]
        self.dropped_short = len(entries) - len(self.entries)
        if not same_on_all_ranks([len(self.entries), sum(e.samples for e in self.entries)], self.dist, self.device):
            raise ValueError("the ranks do not read the same data (another number or length of clips): their "
                             "epochs would end at different updates; give every rank the same manifest")
        if not self.entries:
            raise ValueError(f"no training clips of at least {cfg.min_sample_size} samples")
        self.model = model.to(self.device)
        self.ddp = None
        if self.dist.world_size > 1:
            self.ddp = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=task.find_unused_parameters)
        groups = [g for g in task.lr_groups(self.model) if g.params]
        grouped = [id(p) for g in groups for p in g.params]
        if sorted(grouped) != sorted(id(p) for p in self.model.parameters() if p.requires_grad):
            raise ValueError("the task's learning-rate groups must hold every trainable parameter once")
        # fused: one pass over each tensor instead of ~10 foreach kernels (BASE's 95 M parameters on
        # one CPU thread: 0.9 s -> 0.25 s per step); transformers' Trainer defaults to it as well
        self.optimizer = torch.optim.AdamW([{"params": g.params} for g in groups], lr=cfg.lr, betas=cfg.betas,
                                           eps=cfg.eps, weight_decay=cfg.weight_decay,
                                           fused=self.device.type in ("cpu", "cuda"))
        self.schedule = lr_multiplier(cfg)  # the logged "lr" is the schedule's; groups scale it
        self.lr_factors = [g.factor for g in groups]
        self.clock: Callable[[], float] = time.time
        self.start_time = self.clock()
        self.seconds_before = 0.0  # training time of the runs this one resumes
        self.schedule_at = 0.0  # the schedule's position (schedule_position), the same on every rank
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
        self.model_config_dict = model_config_dict
        self.num_updates, self.epoch, self.position = 0, 0, 0
        self.best: float | None = None
        self.bad_in_row = self.skipped = 0
        self.log = RunLog(self.run_dir, enabled=self.dist.is_main)

    # -- state ---------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(), "trained_seconds": self.trained_seconds(),
            "num_updates": self.num_updates, "epoch": self.epoch, "position": self.position,
            "best": self.best, "skipped": self.skipped, "torch_rng": torch.get_rng_state(),
            "model_config": self.model_config_dict, "train_config": self.cfg.__dict__ | {},
        }

    def resume(self) -> bool:
        state = latest_checkpoint(self.run_dir)
        if state is None:
            return False
        if state["model_config"] != self.model_config_dict:
            diff = sorted(k for k in self.model_config_dict if state["model_config"].get(k) != self.model_config_dict[k])
            raise ValueError(f"{self.run_dir}: its checkpoint was trained with another model configuration "
                             f"(differs in {diff[:6]}); use a new output directory")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.num_updates, self.epoch, self.position = state["num_updates"], state["epoch"], state["position"]
        self.seconds_before = float(state.get("trained_seconds", 0.0))
        self.best, self.skipped = state["best"], state["skipped"]
        torch.set_rng_state(state["torch_rng"])
        return True

    def save(self, is_best: bool) -> None:
        if self.dist.is_main:
            save_checkpoint(self.run_dir, self.state(), self.cfg.keep_last, is_best)
            if is_best or not (self.run_dir / "best").exists():
                self.task.export(self.model, self.run_dir / "best")
            self.task.export(self.model, self.run_dir / "last")
        barrier(self.dist)

    # -- the loop ------------------------------------------------------------------------------
    def autocast(self):
        return autocast(self.precision, self.device)

    def epoch_batches(self, epoch: int, start: int) -> tuple[int, Iterator[Batch]]:
        """The number of batches this rank reads in ``epoch`` from batch ``start`` on, and their
        iterator (created now: its workers start reading at once)."""
        cfg, d = self.cfg, self.dist
        loader = make_loader(self.entries, cfg.max_tokens, cfg.max_sample_size, cfg.seed, epoch, self.task.normalize,
                             self.task.crop_to_shortest, start_batch=start, rank=d.rank, world_size=d.world_size,
                             num_workers=cfg.num_workers, augment=cfg.augmentation(), pad_multiple=cfg.pad_multiple,
                             crop_multiple=cfg.crop_multiple)
        return len(loader), iter(loader)

    def micro_batches(self) -> Iterator[MicroBatch]:
        """This rank's batches from the saved data position on, forever. The next epoch's loader
        starts when the current epoch hands out its last batch, so that the update does not wait
        for fresh workers at every epoch boundary."""
        epoch, start = self.epoch, self.position
        count, batches = self.epoch_batches(epoch, start)
        while True:
            if count == 0 and start == 0:
                raise ValueError(f"an epoch has fewer batches than the {self.dist.world_size} ranks: "
                                 "lower --max-tokens or use fewer ranks")
            following = None
            for i in range(start, start + count):
                batch = next(batches)
                last = i == start + count - 1
                if last:
                    following = self.epoch_batches(epoch + 1, 0)
                yield MicroBatch(epoch, i, i * self.dist.world_size + self.dist.rank, batch, last)
            epoch, start = epoch + 1, 0
            count, batches = following or self.epoch_batches(epoch, 0)

    def trained_seconds(self) -> float:
        """Wall time of this training so far, the runs it resumes included."""
        return self.seconds_before + self.clock() - self.start_time

    def check_clock(self) -> tuple[bool, float]:
        """Whether ``--max-minutes`` has passed on any rank's clock (then every rank stops here), and
        the ranks' mean training time, which paces the schedule: every rank steps at the same rate."""
        seconds = self.trained_seconds()
        over, total = all_reduce_sum([float(seconds > 60 * self.cfg.max_minutes), seconds], self.dist, self.device)
        return over > 0, total / self.dist.world_size

    def set_lr(self) -> None:
        """Each group's rate for the coming update: the peak rate x the schedule at its position x
        the group's factor."""
        scale = self.cfg.lr * self.schedule(self.schedule_at)
        for group, factor in zip(self.optimizer.param_groups, self.lr_factors):
            group["lr"] = scale * factor(self.num_updates)

    def train(self) -> dict[str, Any]:
        cfg = self.cfg
        resumed = self.resume()
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            cfg.save(self.run_dir / "train_config.json")
            tqdm.write(f"training on {self.device} in {self.precision}"
                       + (" (auto)" if cfg.precision == "auto" else ""))
        self.start_time = self.clock()
        self.schedule_at = schedule_position(self.num_updates, self.seconds_before, cfg)
        self.task.on_update(self.model, self.num_updates, self.schedule_at)
        wait_time, t_last = 0.0, time.time()
        acc: dict[str, float] = {}
        bar = tqdm(total=cfg.max_updates, initial=self.num_updates, disable=not self.dist.is_main,
                   desc="resumed" if resumed else "train", dynamic_ncols=True)
        source = self.micro_batches()
        audio_seconds = 0.0
        try:
            while self.num_updates < cfg.max_updates:
                over, seconds = self.check_clock() if cfg.max_minutes else (False, 0.0)
                if over:
                    break
                self.schedule_at = schedule_position(self.num_updates, seconds, cfg)
                self.set_lr()
                results: list[StepResult] = []
                while len(results) < cfg.update_freq:
                    t0 = time.time()
                    mb = next(source)
                    wait_time += time.time() - t0
                    self.epoch, self.position = (mb.epoch + 1, 0) if mb.ends_epoch else (mb.epoch, mb.index + 1)
                    last = mb.ends_epoch or len(results) + 1 == cfg.update_freq  # its backward syncs the ranks
                    results.append(self.forward_backward(mb.batch, mb.epoch, mb.seed_index, last=last))
                    audio_seconds += float(mb.batch.lengths.sum()) / 16000
                    if mb.ends_epoch:
                        break
                self.optimizer_step(results, acc)
                bar.update(1)
                if self.num_updates % cfg.log_every == 0 or self.num_updates == cfg.max_updates:
                    now = time.time()
                    row = self.flush_logs(acc, now - t_last, audio_seconds, wait_time)
                    t_last, audio_seconds, wait_time, acc = now, 0.0, 0.0, {}
                    bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k in self.task.bar_keys})
                    warning = self.task.check(row, self.num_updates)
                    if warning and self.dist.is_main:
                        tqdm.write(f"warning (update {self.num_updates}): {warning}")
                if self.num_updates % cfg.validate_every == 0 or self.num_updates == cfg.max_updates:
                    self.validate()
                elif self.num_updates % cfg.save_every == 0:
                    self.save(is_best=False)
        except KeyboardInterrupt:
            bar.close()
            self.save(is_best=False)
            raise
        bar.close()
        if self.num_updates % cfg.validate_every != 0 and self.num_updates != cfg.max_updates:
            self.validate()  # stopped on time: validate and save what we have
        self.log.close()
        return {"num_updates": self.num_updates, "best": self.best, "skipped_updates": self.skipped,
                "dropped_short": self.dropped_short, "precision": self.precision, "wall_seconds": self.clock() - self.start_time}

    def forward_backward(self, batch: Batch, epoch: int, gidx: int, last: bool) -> StepResult:
        cfg = self.cfg
        torch.manual_seed(_seed(cfg.seed, epoch, gidx, 1))
        rng = np.random.default_rng([cfg.seed, epoch, gidx])
        model = self.ddp or self.model
        model.train()
        batch.waveform, batch.lengths = batch.waveform.to(self.device), batch.lengths.to(self.device)
        sync = self.ddp.no_sync() if (self.ddp is not None and not last) else nullcontext()
        with sync:
            with self.autocast():
                res = self.task.step(model, batch, rng, self.num_updates)
            self.scaler.scale(res.loss_sum.float()).backward()
        res.loss_sum = res.loss_sum.detach()
        return res

    def optimizer_step(self, results: list[StepResult], acc: dict[str, float]) -> None:
        cfg = self.cfg
        sample_size, loss = all_reduce_sum([sum(r.sample_size for r in results),
                                            sum(float(r.loss_sum) for r in results)], self.dist, self.device)
        self.scaler.unscale_(self.optimizer)
        # DDP averages gradients over ranks; the loss is a sum: rescale to a mean over all targets
        scale = self.dist.world_size / max(sample_size, 1.0)
        for p in self.model.parameters():
            if p.grad is not None:
                p.grad.mul_(scale)
        for p in self.task.frozen(self.model, self.num_updates):
            p.grad = None
        params = [p for p in self.model.parameters() if p.grad is not None]
        gnorm = float(torch.nn.utils.clip_grad_norm_(params, cfg.clip_norm if cfg.clip_norm > 0 else float("inf")))
        if math.isfinite(gnorm) and math.isfinite(loss):
            self.scaler.step(self.optimizer)
            self.bad_in_row = 0
        else:
            self.skipped += 1
            self.bad_in_row += 1
            if self.bad_in_row >= cfg.max_bad_updates:
                raise TrainingStopped(f"{self.bad_in_row} non-finite updates in a row at update {self.num_updates}: "
                                      "lower the learning rate, use fp32/bf16, or check the data")
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.num_updates += 1
        self.task.on_update(self.model, self.num_updates, self.schedule_at)
        sums = {k: sum(r.logs.get(k, 0.0) for r in results) for r in results for k in r.logs}
        for k, v in sums.items():
            acc[k] = acc.get(k, 0.0) + v
        acc["loss_sum"] = acc.get("loss_sum", 0.0) + loss
        acc["sample_size"] = acc.get("sample_size", 0.0) + sample_size
        acc["gnorm_sum"] = acc.get("gnorm_sum", 0.0) + (gnorm if math.isfinite(gnorm) else 0.0)
        acc["updates"] = acc.get("updates", 0.0) + 1

    def flush_logs(self, acc: dict[str, float], seconds: float, audio_seconds: float, wait: float) -> dict[str, float]:
        n = max(acc.get("sample_size", 1.0), 1.0)
        u = max(acc.get("updates", 1.0), 1.0)
        row = {"loss": acc.get("loss_sum", 0.0) / n, "gnorm": acc.get("gnorm_sum", 0.0) / u,
               "lr": self.cfg.lr * self.schedule(self.schedule_at), "ups": u / max(seconds, 1e-9),
               "audio_h_per_h": audio_seconds * self.dist.world_size / max(seconds, 1e-9),
               "stall": wait / max(seconds, 1e-9), "skipped": float(self.skipped)}
        row.update(self.task.summarize(acc))
        self.log.write("train", self.num_updates, row)
        return row

    def validate(self) -> None:
        metrics = {}
        if self.dist.is_main:
            self.model.eval()
            with torch.no_grad():
                metrics = self.task.validate(self.model, self.device, self.autocast)
            self.log.write("valid", self.num_updates, metrics)
            tqdm.write(f"valid @ {self.num_updates}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        value = all_reduce_sum([metrics.get(self.task.metric, 0.0)], self.dist, self.device)[0]
        is_best = self.best is None or value < self.best
        if is_best:
            self.best = value
        self.save(is_best)
