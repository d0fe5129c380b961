"""``w2v2 pretrain``: self-supervised pre-training (paper section 3, 4.2)."""

from __future__ import annotations

import argparse
import ast
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import W2V2Config
from ..data.dataset import Batch, make_loader
from ..data.manifest import Entry, read_manifest
from ..interop.model_dir import load_model_dir, save_model_dir
from ..model import build_pretraining_model, preset
from .config import TrainConfig
from .loop import StepResult, Trainer
from .options import add_train_options, train_config_from_args


def pretrain_defaults(name: str) -> TrainConfig:
    """Per preset: the paper's BASE / LARGE recipes, and a CPU recipe for ``tiny``."""
    if name == "tiny":
        return TrainConfig(lr=5e-4, warmup_fraction=0.08, max_updates=1500, clip_norm=10.0, max_tokens=8 * 64000,
                           max_sample_size=64000, min_sample_size=8000, precision="bf16", log_every=10,
                           validate_every=100, save_every=100, num_workers=1)
    lr = 5e-4 if name == "base" else 3e-4
    return TrainConfig(lr=lr, max_updates=400_000, max_tokens=1_400_000, max_sample_size=250_000,
                       min_sample_size=32_000, precision="bf16", validate_every=5000, save_every=5000)


class PretrainTask:
    metric = "loss"
    bar_keys = ("loss", "acc", "code_ppl", "prob_ppl", "temp", "lr", "gnorm")
    crop_to_shortest = True

    def __init__(self, cfg: W2V2Config, valid: list[Entry], max_tokens: int, max_sample_size: int, seed: int) -> None:
        self.cfg = cfg
        self.normalize = cfg.normalize
        self.find_unused_parameters = cfg.encoder_layerdrop > 0 or cfg.quantize_input
        self.valid, self.max_tokens, self.max_sample_size, self.seed = valid, max_tokens, max_sample_size, seed
        self.flat_steps = 0

    def step(self, model: nn.Module, batch: Batch, rng: np.random.Generator, num_updates: int) -> StepResult:
        out = model(batch.waveform, None, rng=rng)  # batches are cropped to their shortest clip: no padding
        n = out.sample_size
        return StepResult(out.loss * n, n, {
            "contrastive": float(out.contrastive), "diversity": float(out.diversity) * n,
            "penalty": float(out.penalty) * n, "correct": out.correct, "count": out.count,
            "code_ppl": float(out.code_perplexity) * n, "prob_ppl": float(out.prob_perplexity) * n,
            "temp": out.temperature * n})

    def summarize(self, s: dict[str, float]) -> dict[str, float]:
        n = max(s.get("sample_size", 1.0), 1.0)
        return {"contrastive": s.get("contrastive", 0.0) / n, "diversity": s.get("diversity", 0.0) / n,
                "penalty": s.get("penalty", 0.0) / n, "acc": s.get("correct", 0.0) / max(s.get("count", 1.0), 1.0),
                "code_ppl": s.get("code_ppl", 0.0) / n, "prob_ppl": s.get("prob_ppl", 0.0) / n,
                "temp": s.get("temp", 0.0) / n}

    def validate(self, model: nn.Module, device: torch.device, autocast) -> dict[str, float]:
        """Loss, accuracy and perplexities on held-out audio with fixed masks and negatives."""
        sums: dict[str, float] = {}
        loader = make_loader(self.valid, self.max_tokens, self.max_sample_size, self.seed, 0, self.normalize,
                             True, shuffle=False, num_workers=0)
        for i, batch in enumerate(loader):
            torch.manual_seed(i)
            with autocast():
                res = self.step(model, Batch(batch.waveform.to(device), batch.lengths, batch.texts, batch.ids),
                                np.random.default_rng([self.seed, i]), 0)
            for k, v in res.logs.items():
                sums[k] = sums.get(k, 0.0) + v
            sums["loss_sum"] = sums.get("loss_sum", 0.0) + float(res.loss_sum)
            sums["sample_size"] = sums.get("sample_size", 0.0) + res.sample_size
        out = self.summarize(sums)
        out["loss"] = sums.get("loss_sum", 0.0) / max(sums.get("sample_size", 1.0), 1.0)
        return out

    def on_update(self, model: nn.Module, num_updates: int) -> None:
        model.set_num_updates(num_updates)

    def frozen(self, model: nn.Module, num_updates: int) -> list[nn.Parameter]:
        return []

    def export(self, model: nn.Module, out: Path) -> None:
        save_model_dir(model, self.cfg, out)

    def check(self, row: dict[str, float], num_updates: int) -> str | None:
        """Collapse warnings (REFERENCE pitfalls): loss stuck at log(K + 1), codebook perplexity gone."""
        chance = math.log(self.cfg.num_negatives + 1)
        stuck = abs(row.get("contrastive", 0.0) - chance) < 0.01 * chance
        self.flat_steps = self.flat_steps + 1 if stuck else 0
        if num_updates >= 100 and self.flat_steps >= 3:
            return f"contrastive loss sits at log(K+1) = {chance:.3f}: no learning (check LR, masks, data)"
        if num_updates >= 100 and row.get("code_ppl", 1e9) < 2 * self.cfg.latent_groups:
            return f"code perplexity {row['code_ppl']:.2f}: the codebook has collapsed (check the diversity loss)"
        return None


def split_valid(entries: list[Entry], fraction: float, seed: int) -> tuple[list[Entry], list[Entry]]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(entries))
    n = max(1, int(round(fraction * len(entries))))
    held = set(order[:n].tolist())
    return [e for i, e in enumerate(entries) if i not in held], [e for i, e in enumerate(entries) if i in held]


def cmd_pretrain(args: argparse.Namespace) -> None:
    out = Path(args.out)
    if args.init:
        model, cfg, _ = load_model_dir(args.init, kind="pretraining")
    else:
        cfg = W2V2Config.load(args.config) if args.config else preset(args.preset)
        cfg = override_config(cfg, args.set or [])
        torch.manual_seed(args.seed if args.seed is not None else 1)
        model = build_pretraining_model(cfg)
    tcfg = train_config_from_args(args, pretrain_defaults(args.preset))
    entries = read_manifest(args.train)
    if args.valid:
        valid = read_manifest(args.valid)
    else:
        entries, valid = split_valid(entries, 0.03, tcfg.seed)
    task = PretrainTask(cfg, valid, tcfg.max_tokens, tcfg.max_sample_size, tcfg.seed)
    trainer = Trainer(task, model, entries, tcfg, out, cfg.to_dict(), resume=args.resume)
    result = trainer.train()
    if trainer.dist.is_main:
        print(f"pre-training done: {result['num_updates']} updates, best valid loss {result['best']:.4f}, "
              f"{result['skipped_updates']} skipped updates, {result['dropped_short']} clips under "
              f"min_sample_size dropped; model: {out / 'best'}")


def override_config(cfg: W2V2Config, assignments: list[str]) -> W2V2Config:
    """Apply FIELD=VALUE overrides (Python literals, parsed without eval; bare words are strings)."""
    d = cfg.to_dict()
    for kv in assignments:
        key, sep, value = kv.partition("=")
        if not sep or key not in d:
            raise ValueError(f"--set {kv!r}: expected FIELD=VALUE with a W2V2Config field")
        try:
            d[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            d[key] = value
    return W2V2Config.from_dict(d)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="self-supervised pre-training on unlabeled audio")
    p.add_argument("--train", required=True, help="manifest of unlabeled audio")
    p.add_argument("--valid", help="held-out manifest (default: 3%% of --train)")
    p.add_argument("--out", required=True, help="run directory (checkpoints, logs, best/ and last/ models)")
    p.add_argument("--preset", default="tiny", help="tiny | base | large | large_lv60 | xlsr_300m")
    p.add_argument("--config", help="a W2V2Config JSON instead of a preset")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override a model config field, e.g. --set mask_prob=0.5 (ablations)")
    p.add_argument("--init", help="continue pre-training from this model directory")
    p.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint")
    add_train_options(p, pretrain_defaults("tiny"))
    p.set_defaults(func=cmd_pretrain)
