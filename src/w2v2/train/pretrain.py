"""``w2v2 pretrain``: self-supervised pre-training (paper section 3, 4.2)."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import math
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import W2V2Config
from ..data.dataset import AudioDataset, Batch
from ..data.heldout import split_heldout
from ..data.manifest import Entry, read_manifest
from ..interop.model_dir import load_state, read_model_dir, save_model_dir, state_kind
from ..model import PRESETS, Wav2Vec2ForPreTraining, build_pretraining_model, preset
from .checkpoint import list_checkpoints
from .config import TrainConfig
from .loop import LrGroup, StepResult, Trainer, one_group
from .options import add_train_options, train_config_from_args
from .schedule import warmup_updates
from .units import copy_teacher, fit_unit_centres


CONTINUED_LR_SCALE = 0.1  # --init: the peak learning rate is the recipe's times this (see recipe_help)
# W2V2Config fields --set may change on top of --init's weights: how the model is trained (masking,
# objective, dropout, quantizer temperature), never the shape or the function of a loaded weight
TRAINING_FIELDS = frozenset({
    "dropout", "attention_dropout", "activation_dropout", "dropout_input", "dropout_features", "encoder_layerdrop",
    "final_dropout", "latent_temp", "mask_prob", "mask_length", "mask_min_masks", "mask_channel_prob",
    "mask_channel_length", "mask_copies", "num_negatives", "logit_temp", "diversity_weight", "feature_pen_weight",
    "diversity_form", "feature_grad_mult"})
# ... and, from a unit-target model to unit targets, which units (HuBERT's next iteration, Hsu et al.
# 2021, iterative refinement): the new targets' centres and unit embeddings start afresh, the rest continues
TARGET_FIELDS = frozenset({"target_units", "target_layer"})
TARGET_STATE = ("units.", "unit_embeddings")
SIZE_RECIPES = ("large", "base")  # a model from no preset gets the first whose encoder width it reaches


def recipe_name(cfg: W2V2Config) -> str:
    """The training recipe that follows the model: that of the preset it was made from (config
    origin "preset:NAME"), else the first of SIZE_RECIPES whose encoder width it reaches, else tiny."""
    name = cfg.origin.removeprefix("preset:")
    if cfg.origin.startswith("preset:") and name in PRESETS:
        return name
    return next((n for n in SIZE_RECIPES if cfg.encoder_embed_dim >= preset(n).encoder_embed_dim), "tiny")


def recipe_help() -> str:
    """Where the training defaults come from (the help of the training options)."""
    widths = ", ".join(f"{n} from d={preset(n).encoder_embed_dim}" for n in SIZE_RECIPES)
    return ("Defaults: the recipe that follows the model (shown: tiny). A model made from a preset (config origin "
            "'preset:NAME') gets that preset's recipe; any other (an imported checkpoint, a hand-written config) "
            f"is sized by its encoder width: {widths}, else tiny. With --init the peak --lr is a tenth of the "
            "recipe's: the model has converged and the recipe's peak, meant for a random initialisation, would "
            f"first undo much of what it learnt; a tenth ({pretrain_defaults('base', True).lr:g} for BASE) is the "
            "rate of fairseq's low-resource BASE fine-tuning recipes, which also start from a trained model. "
            "Warm-up and decay are fresh, as is the optimizer.")


def pretrain_defaults(name: str, continued: bool = False) -> TrainConfig:
    """The recipe ``name``; ``continued`` (from a trained model, --init): at a lower peak rate."""
    recipe = preset_recipe(name)
    return dataclasses.replace(recipe, lr=recipe.lr * CONTINUED_LR_SCALE) if continued else recipe


def preset_recipe(name: str) -> TrainConfig:
    """Per preset: the paper's BASE / LARGE recipes, and a CPU recipe for ``tiny``."""
    if name == "tiny":
        return TrainConfig(lr=5e-4, warmup_fraction=0.08, max_updates=1500, clip_norm=10.0, max_tokens=8 * 64000,
                           max_sample_size=64000, min_sample_size=8000, log_every=10,
                           validate_every=100, save_every=100, num_workers=1)
    lr = 5e-4 if name == "base" else 3e-4
    return TrainConfig(lr=lr, max_updates=400_000, max_tokens=1_400_000, max_sample_size=250_000,
                       min_sample_size=32_000, validate_every=5000, save_every=5000)


class PretrainTask:
    metric = "loss"
    bar_keys = ("loss", "acc", "code_ppl", "prob_ppl", "temp", "lr", "gnorm")
    crop_to_shortest = True

    def __init__(self, cfg: W2V2Config, valid: list[Entry], max_sample_size: int, seed: int,
                 warmup_updates: int = 0) -> None:
        self.cfg = cfg
        self.warmup_updates, self.schedule_at = warmup_updates, 0.0
        self.normalize = cfg.normalize
        self.find_unused_parameters = cfg.encoder_layerdrop > 0 or cfg.quantize_input
        self.valid, self.max_sample_size, self.seed = valid, max_sample_size, seed
        self.flat_steps = 0

    def step(self, model: nn.Module, batch: Batch, rng: np.random.Generator, num_updates: int) -> StepResult:
        out = model(batch.waveform, None, rng=rng)  # batches are cropped to their shortest clip: no padding
        n = out.sample_size
        return StepResult(out.loss * n, n, {
            "contrastive": float(out.contrastive.detach()), "diversity": float(out.diversity.detach()) * n,
            "penalty": float(out.penalty.detach()) * n, "correct": out.correct, "count": out.count,
            "code_ppl": float(out.code_perplexity) * n, "prob_ppl": float(out.prob_perplexity) * n,
            "temp": out.temperature * n})

    def summarize(self, s: dict[str, float]) -> dict[str, float]:
        """Per-frame means; the target quantizer's perplexities and temperature only where there is
        one (a continuous-target model has no codes: no 0.0 that reads as a collapsed codebook)."""
        n = max(s.get("sample_size", 1.0), 1.0)
        row = {"contrastive": s.get("contrastive", 0.0) / n, "diversity": s.get("diversity", 0.0) / n,
               "penalty": s.get("penalty", 0.0) / n, "acc": s.get("correct", 0.0) / max(s.get("count", 1.0), 1.0)}
        if self.cfg.quantize_targets:
            row.update(code_ppl=s.get("code_ppl", 0.0) / n, prob_ppl=s.get("prob_ppl", 0.0) / n,
                       temp=s.get("temp", 0.0) / n)
        return row

    def validate(self, model: nn.Module, device: torch.device, autocast) -> dict[str, float]:
        """Loss, accuracy and perplexities on held-out audio with fixed masks and negatives.

        Each held-out clip is its own batch, cropped only to ``max_sample_size``, with crop, masks and
        distractors seeded by the clip's id: a clip's figures depend neither on the training batch
        size nor on the other held-out clips (batched validation would crop every clip to the
        shortest of its batch, section 4.2, and which clips share a batch follows ``max_tokens``)."""
        sums: dict[str, float] = {}
        keys = [zlib.crc32(e.id.encode("utf-8")) for e in self.valid]
        clips = AudioDataset(self.valid, [[i] for i in range(len(self.valid))], self.max_sample_size, self.seed, 0,
                             self.normalize, True, batch_ids=keys)
        for i, key in enumerate(keys):
            batch = clips[i]
            torch.manual_seed(key)
            with autocast():
                res = self.step(model, Batch(batch.waveform.to(device), batch.lengths, batch.texts, batch.ids),
                                np.random.default_rng([self.seed, key]), 0)
            for k, v in res.logs.items():
                sums[k] = sums.get(k, 0.0) + v
            sums["loss_sum"] = sums.get("loss_sum", 0.0) + float(res.loss_sum)
            sums["sample_size"] = sums.get("sample_size", 0.0) + res.sample_size
        out = self.summarize(sums)
        out["loss"] = sums.get("loss_sum", 0.0) / max(sums.get("sample_size", 1.0), 1.0)
        out["masked_frames"] = sums.get("sample_size", 0.0)
        return out

    def on_update(self, model: nn.Module, num_updates: int, schedule_at: float) -> None:
        model.set_num_updates(num_updates)  # the Gumbel temperature anneals per update (section 4.2)
        self.schedule_at = schedule_at

    def frozen(self, model: nn.Module, num_updates: int) -> list[nn.Parameter]:
        return []

    def lr_groups(self, model: nn.Module) -> list[LrGroup]:
        return one_group(model)

    def export(self, model: nn.Module, out: Path) -> None:
        save_model_dir(model, self.cfg, out)

    def check(self, row: dict[str, float], num_updates: int) -> str | None:
        """Collapse warnings (REFERENCE pitfalls): loss stuck at log(K + 1) once the warm-up is over (a
        small rate keeps it there for a few hundred updates of a long warm-up: no defect), codebook
        perplexity gone."""
        chance = math.log(self.cfg.target_units or self.cfg.num_negatives + 1)
        stuck = abs(row.get("contrastive", 0.0) - chance) < 0.01 * chance
        self.flat_steps = self.flat_steps + 1 if stuck else 0
        if num_updates >= 100 and self.schedule_at >= self.warmup_updates and self.flat_steps >= 3:
            at = f"log(K) = {chance:.3f}, K = {self.cfg.target_units} units" if self.cfg.target_units else \
                f"log(K+1) = {chance:.3f}"
            return f"the loss sits at chance, {at}: no learning (check LR, masks, data)"
        if num_updates >= 100 and row.get("code_ppl", 1e9) < 2 * self.cfg.latent_groups:
            return f"code perplexity {row['code_ppl']:.2f}: the codebook has collapsed (check the diversity loss)"
        return None


def check_model_options(args: argparse.Namespace) -> None:
    """--preset, --config and --init each give the model: refuse a combination that would ignore one."""
    given = [f"--{name}" for name in ("preset", "config", "init") if getattr(args, name)]
    if len(given) > 1:
        hint = "; --init continues with its directory's config (change its training fields with --set)"
        raise ValueError(f"{' and '.join(given)} both give the model: choose one{hint if args.init else ''}")


def require_pretraining_state(cfg: W2V2Config, sd: dict[str, torch.Tensor], source: str) -> None:
    kind = state_kind(cfg, set(sd))
    if kind != "pretraining":
        what = {"ctc": "a fine-tuned CTC model", "encoder": "a bare encoder (Wav2Vec2Model)"}[kind]
        raise ValueError(f"--init {source} holds {what}: continued pre-training needs the quantizer and the "
                         "projections (project_q, final_proj) that make the contrastive targets, and fine-tuned "
                         "models and encoder exports leave them out; start from a pre-trained checkpoint (`w2v2 "
                         "import` of a fairseq pre-trained .pt or a transformers Wav2Vec2ForPreTraining, or the "
                         "best/ of a `w2v2 pretrain` run)")


def continued_config(cfg: W2V2Config, assignments: list[str], source: str) -> W2V2Config:
    """--init's config with --set applied; a change to anything but TRAINING_FIELDS (and TARGET_FIELDS
    between unit-target models) is refused."""
    new = override_config(cfg, assignments)
    allowed = TRAINING_FIELDS | (TARGET_FIELDS if cfg.target_units > 0 and new.target_units > 0 else frozenset())
    old_d, new_d = cfg.to_dict(), new.to_dict()
    changed = sorted(k for k in new_d if new_d[k] != old_d[k] and k not in allowed)
    if changed:
        raise ValueError(f"--set {', '.join(changed)}: would change the architecture of the weights that --init "
                         f"{source} loads; with --init, --set changes only: {', '.join(sorted(TRAINING_FIELDS))} "
                         f"(and, from a unit-target model, {', '.join(sorted(TARGET_FIELDS))})")
    return new


def new_targets(cfg: W2V2Config, init_cfg: W2V2Config | None) -> bool:
    """Whether pre-training fits new unit targets: a fresh model's, or other units than --init's."""
    return cfg.target_units > 0 and (init_cfg is None or any(getattr(cfg, k) != getattr(init_cfg, k)
                                                             for k in TARGET_FIELDS))


def model_config(args: argparse.Namespace) -> tuple[W2V2Config, dict[str, torch.Tensor] | None, W2V2Config | None]:
    """The model's config (``--set`` applied), the weights --init starts from (None: random) and
    their config (None: no --init)."""
    check_model_options(args)
    if args.init:
        cfg, sd, _ = read_model_dir(args.init)
        require_pretraining_state(cfg, sd, args.init)
        return continued_config(cfg, args.set or [], args.init), sd, cfg
    cfg = W2V2Config.load(args.config) if args.config else preset(args.preset or "tiny")
    return override_config(cfg, args.set or []), None, None


def init_model(model: Wav2Vec2ForPreTraining, weights: dict[str, torch.Tensor], fresh_targets: bool,
               source: str) -> None:
    """Load --init's weights; with ``fresh_targets``, keep the model's own (new) unit centres and
    embeddings, and give a second-iteration model's frozen copy the weights it continues from."""
    if fresh_targets:
        own = model.state_dict()
        weights = {**{k: v for k, v in weights.items() if not k.startswith(TARGET_STATE)},
                   **{k: v for k, v in own.items() if k.startswith(TARGET_STATE)}}
    load_state(model, weights, source)
    if fresh_targets and model.cfg.target_layer > 0:
        assert model.units is not None
        copy_teacher(model.units, model.wav2vec2)


def cmd_pretrain(args: argparse.Namespace) -> None:
    out = Path(args.out)
    cfg, weights, init_cfg = model_config(args)
    if cfg.target_layer > 0 and weights is None:
        raise ValueError(f"target_layer={cfg.target_layer}: units of a model's block need that model: continue "
                         "from a unit-target pre-training run with --init RUN/best")
    tcfg = train_config_from_args(args, pretrain_defaults(recipe_name(cfg), continued=weights is not None))
    torch.manual_seed(tcfg.seed)  # one seed: the initialisation here, the data and masks in the trainer
    model = build_pretraining_model(cfg)
    fresh_targets = new_targets(cfg, init_cfg)
    if weights is not None:
        init_model(model, weights, fresh_targets, args.init)
    entries = read_manifest(args.train)
    if args.valid:
        valid = read_manifest(args.valid)
    else:
        entries, valid = split_heldout(entries, 0.03, tcfg.seed, args.valid_max_clips)
    resuming = args.resume and bool(list_checkpoints(out))
    if model.units is not None and fresh_targets and not resuming:  # a checkpoint brings its own centres
        n = fit_unit_centres(model.units, entries, cfg.conv_layers, tcfg.seed)
        what = f"block {cfg.target_layer} of --init's model" if cfg.target_layer else "MFCCs"
        print(f"unit targets: {cfg.target_units} k-means centres fitted on {n} frames of the training audio ({what})")
    task = PretrainTask(cfg, valid, tcfg.max_sample_size, tcfg.seed, warmup_updates(tcfg))
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
    p.add_argument("--valid", help="held-out manifest (default: 3%% of --train, at most --valid-max-clips clips)")
    p.add_argument("--valid-max-clips", type=int, default=200, metavar="N",
                   help="without --valid, hold out at most N clips of --train, so that validation (each clip "
                        "scored alone) costs the same however large the pool (default 200)")
    p.add_argument("--out", required=True, help="run directory (checkpoints, logs, best/ and last/ models)")
    p.add_argument("--preset", help="tiny | base | large | large_lv60 | xlsr_300m (default tiny, when neither "
                   "--config nor --init gives the model)")
    p.add_argument("--config", help="a W2V2Config JSON instead of a preset")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override a model config field, e.g. --set mask_prob=0.5 (ablations); with --init only "
                        "training fields (masking, loss weights, dropout, temperature), not the architecture")
    p.add_argument("--init", help="continue pre-training from this model directory (a pre-trained checkpoint "
                   "imported by `w2v2 import`, or a run's best/): its weights, quantizer, masking and loss "
                   "settings, with a fresh optimizer and LR schedule (warm-up) at a lower peak --lr")
    p.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint")
    add_train_options(p, pretrain_defaults("tiny"), recipe_help())
    p.set_defaults(func=cmd_pretrain)
