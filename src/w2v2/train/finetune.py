"""``w2v2 finetune``: CTC fine-tuning on labeled audio (paper section 4.3, appendix B)."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..config import W2V2Config
from ..data.audio import load_audio
from ..data.dataset import Batch
from ..data.manifest import Entry, ctc_min_frames, read_manifest
from ..data.text import Vocabulary
from ..decode.ctc import greedy_decode
from ..decode.inference import compute_emissions
from ..decode.metrics import char_error_rate, word_error_rate
from ..interop.model_dir import load_model_dir, save_model_dir
from ..model import Wav2Vec2ForCTC, build_model, preset
from ..model.feature_encoder import num_frames
from .config import TrainConfig
from .feature_cache import FeatureCache
from .loop import LrGroup, StepResult, Trainer
from .options import add_train_options, train_config_from_args
from .schedule import warmup_updates
from .pretrain import continued_config, override_config


@dataclass(frozen=True)
class FinetuneRecipe:
    """Fine-tuning settings after fairseq's examples/wav2vec/config/finetuning (BASE)."""

    max_updates: int
    lr: float
    freeze_updates: int  # Transformer frozen, only the output layer trains
    mask_prob: float
    mask_channel_prob: float
    layerdrop: float


RECIPES = {
    "10min": FinetuneRecipe(max_updates=13_000, lr=5e-5, freeze_updates=10_000,
                            mask_prob=0.65, mask_channel_prob=0.25, layerdrop=0.05),
    "1h": FinetuneRecipe(max_updates=13_000, lr=5e-5, freeze_updates=10_000,
                         mask_prob=0.65, mask_channel_prob=0.25, layerdrop=0.05),
    "10h": FinetuneRecipe(max_updates=20_000, lr=5e-5, freeze_updates=10_000,
                          mask_prob=0.65, mask_channel_prob=0.25, layerdrop=0.05),
    "100h": FinetuneRecipe(max_updates=80_000, lr=3e-5, freeze_updates=0,
                           mask_prob=0.65, mask_channel_prob=0.25, layerdrop=0.1),
    "960h": FinetuneRecipe(max_updates=320_000, lr=1e-4, freeze_updates=0,
                           mask_prob=0.5, mask_channel_prob=0.1, layerdrop=0.1),
}


def finetune_defaults(recipe: FinetuneRecipe, max_updates: int | None) -> TrainConfig:
    """Tri-stage LR, Adam eps 1e-8; with fewer updates than the recipe, the frozen phase keeps its share."""
    updates = max_updates or recipe.max_updates
    freeze = round(recipe.freeze_updates * updates / recipe.max_updates)
    return TrainConfig(lr=recipe.lr, eps=1e-8, weight_decay=0.0, schedule="tri_stage", max_updates=updates,
                       freeze_encoder_updates=freeze, max_tokens=3_200_000, max_sample_size=10**9,
                       min_sample_size=400, clip_norm=0.0, validate_every=1000, save_every=1000)


def finetune_model_config(cfg: W2V2Config, recipe: FinetuneRecipe, vocab_size: int) -> W2V2Config:
    return dataclasses.replace(cfg, vocab_size=vocab_size, mask_prob=recipe.mask_prob, mask_length=10,
                               mask_channel_prob=recipe.mask_channel_prob, mask_channel_length=64,
                               encoder_layerdrop=recipe.layerdrop, feature_grad_mult=0.0, dropout=0.0,
                               attention_dropout=0.0, activation_dropout=0.1, dropout_input=0.0,
                               final_dropout=0.0, extra=dict(cfg.extra))


def usable_entries(entries: list[Entry], vocab: Vocabulary, cfg: W2V2Config, unknown: str,
                   source: str) -> tuple[list[Entry], int]:
    """Entries with a transcript the model can emit in the frames it has; the rest are counted."""
    keep, dropped = [], 0
    for e in entries:
        if e.text is None:
            raise ValueError(f"{source}: {e.path} has no transcript (fine-tuning needs a 'text' column)")
        ids = vocab.encode(e.text, unknown, source=f"{source}: {e.path}")
        if ids and num_frames(cfg.conv_layers, e.samples) >= ctc_min_frames(ids):
            keep.append(e)
        else:
            dropped += 1
    return keep, dropped


class FinetuneTask:
    bar_keys = ("loss", "lr", "gnorm")
    crop_to_shortest = False

    def __init__(self, cfg: W2V2Config, vocab: Vocabulary, valid: list[Entry], freeze_updates: int,
                 unknown: str, metric: str = "wer", feature_cache: FeatureCache | None = None,
                 warmup_updates: int = 0, head_lr_scale: float = 1.0, unfreeze_warmup_updates: int = 0) -> None:
        self.warmup_updates, self.num_updates, self.schedule_at = warmup_updates, 0, 0.0
        self.head_lr_scale, self.unfreeze_warmup_updates = head_lr_scale, unfreeze_warmup_updates
        self.metric = metric  # model selection: dev WER (the paper), or CER when WER says little
        self.feature_cache = feature_cache
        self.cfg, self.vocab, self.valid, self.freeze_updates, self.unknown = cfg, vocab, valid, freeze_updates, unknown
        self.normalize = cfg.normalize
        self.find_unused_parameters = True  # LayerDrop and the frozen phase leave parameters unused
        self._valid_audio: list[np.ndarray] | None = None

    def step(self, model: nn.Module, batch: Batch, rng: np.random.Generator, num_updates: int) -> StepResult:
        conv = None
        if self.feature_cache is not None:
            encoder = getattr(model, "module", model).wav2vec2.feature_extractor  # through DDP
            conv = self.feature_cache.encode(encoder, batch.waveform, batch.lengths, batch.ids)
        out = model(batch.waveform, batch.lengths, rng=rng, freeze_encoder=num_updates < self.freeze_updates,
                    conv_features=conv)
        targets = [torch.tensor(self.vocab.encode(t, self.unknown), dtype=torch.long) for t in batch.texts]
        log_probs = F.log_softmax(out.logits.float(), dim=-1).transpose(0, 1)
        frames = out.lengths if out.lengths is not None else torch.full((len(targets),), log_probs.shape[0])
        loss = F.ctc_loss(log_probs, torch.cat(targets).to(log_probs.device), frames,
                          torch.tensor([len(t) for t in targets]), blank=0, reduction="sum", zero_infinity=True)
        return StepResult(loss, len(targets), {"frames": float(frames.sum())})  # sentence-averaged (fairseq)

    def summarize(self, s: dict[str, float]) -> dict[str, float]:
        return {}

    def validate(self, model: nn.Module, device: torch.device, autocast) -> dict[str, float]:
        if self._valid_audio is None:
            self._valid_audio = [load_audio(e.path) for e in self.valid]
        with autocast():
            emissions = compute_emissions(model, self.cfg, self._valid_audio, progress=False)
        hyps = [greedy_decode(em, self.vocab).text for em in emissions]
        refs = [e.text or "" for e in self.valid]
        blank = float(sum(int((em.argmax(-1) == 0).sum()) for em in emissions) / max(sum(len(em) for em in emissions), 1))
        warning = blank_warning(blank, sum(not h for h in hyps) / max(len(hyps), 1), self.schedule_at,
                                self.warmup_updates, self.freeze_updates)
        if warning:
            tqdm.write(f"warning (update {self.num_updates}): {warning}")
        return {"wer": 100 * word_error_rate(refs, hyps), "cer": 100 * char_error_rate(refs, hyps), "blank": blank}

    def on_update(self, model: nn.Module, num_updates: int, schedule_at: float) -> None:
        self.num_updates, self.schedule_at = num_updates, schedule_at

    def frozen(self, model: nn.Module, num_updates: int) -> list[nn.Parameter]:
        return list(model.wav2vec2.parameters()) if num_updates < self.freeze_updates else []

    def lr_groups(self, model: nn.Module) -> list[LrGroup]:
        """The encoder and the output layer. The encoder's rate ramps linearly from 0 over
        ``unfreeze_warmup_updates`` once it trains: Adam's first steps on empty moments move every
        weight by about the rate at once, which knocked a pre-trained Transformer joining at the
        peak rate back to all-blank output (section 4.3's frozen phase, then the whole model). The
        output layer's rate is ``head_lr_scale`` times the schedule's."""
        start, ramp = self.freeze_updates, self.unfreeze_warmup_updates
        encoder = LrGroup([p for p in model.wav2vec2.parameters() if p.requires_grad],
                          lambda u: 1.0 if ramp <= 0 else min(1.0, max(0.0, (u - start + 1) / ramp)))
        scale = self.head_lr_scale
        return [encoder, LrGroup(list(model.lm_head.parameters()), lambda u: scale)]

    def export(self, model: nn.Module, out: Path) -> None:
        save_model_dir(model, self.cfg, out, self.vocab.to_dict())

    def check(self, row: dict[str, float], num_updates: int) -> str | None:
        return None


def blank_warning(blank_share: float, empty_share: float, schedule_at: float, warmup: int, frozen: int) -> str | None:
    """The CTC blank plateau: after the warm-up, (almost) every dev frame is the blank and the
    transcripts are (almost) all empty. ``schedule_at``: the schedule's position in updates (the
    update count, or further along when the schedule is paced by the clock)."""
    if schedule_at < max(warmup, 1) or (blank_share < 0.98 and empty_share < 0.9):
        return None
    causes = ["the learning rate (too high drives a small model to a constant output, too low keeps it there)",
              "too few updates (the plateau lasts a few hundred updates)"]
    if frozen:
        causes.insert(1, f"the frozen-Transformer phase ({frozen} updates: the Transformer joins at the peak rate)")
    return (f"dev output is (almost) all blank: {blank_share:.1%} of the frames, {empty_share:.0%} of the transcripts "
            "empty; usual causes: " + "; ".join(causes))


def initial_encoder(init: str, arch: str, seed: int, assignments: list[str]) -> tuple[nn.Module, W2V2Config]:
    """The pre-trained encoder of a model directory, or a random one (``none``: the baseline) of
    preset ``arch`` with the ``--set`` overrides ``assignments``, so that a scratch baseline can have
    the pre-trained model's architecture. A loaded encoder's architecture is fixed: ``--set`` of a
    field that shapes its weights is refused (:func:`continued_config`)."""
    if init == "none":
        cfg = override_config(preset(arch), assignments)
        torch.manual_seed(seed)
        return build_model(cfg), cfg
    model, cfg, _ = load_model_dir(init)
    continued_config(cfg, assignments, init)
    return getattr(model, "wav2vec2", model), cfg


def reinit_top_blocks(encoder: nn.Module, cfg: W2V2Config, n: int, seed: int) -> None:
    """Give the top ``n`` Transformer blocks of a pre-trained encoder their random initialisation
    back (a fresh model's blocks, seeded by ``seed``): the last blocks of wav2vec 2.0 specialise in
    the pre-training task and carry less phonetic information than the middle ones (Pasad et al.
    2021, layer-wise analysis; re-initialising them helps low-resource fine-tuning)."""
    layers = encoder.encoder.layers
    if not 0 <= n <= len(layers):
        raise ValueError(f"--reinit-blocks {n}: the encoder has {len(layers)} Transformer blocks")
    torch.manual_seed(seed)
    fresh = build_model(cfg).encoder.layers
    for i in range(len(layers) - n, len(layers)):
        layers[i].load_state_dict(fresh[i].state_dict())


def features_repeat(tcfg: TrainConfig, cfg: W2V2Config, train: list[Entry]) -> bool:
    """Whether each clip's feature-encoder output is the same every epoch (what the feature cache
    needs): a frozen encoder, no random crop, and augmentation at most to a few fixed versions of a
    clip (discrete speed factors: the cache keeps each version's features)."""
    augment = tcfg.augmentation()
    return (cfg.feature_grad_mult == 0 and augment.finite
            and tcfg.max_sample_size >= augment.longest(max(e.samples for e in train)))


def cmd_finetune(args: argparse.Namespace) -> None:
    out = Path(args.out)
    recipe = RECIPES[args.recipe]
    tcfg = train_config_from_args(args, finetune_defaults(recipe, args.max_updates))
    train = read_manifest(args.train)
    valid = read_manifest(args.valid)
    encoder, base_cfg = initial_encoder(args.init, args.arch, tcfg.seed, args.set or [])
    if args.reinit_blocks:
        if args.init == "none":
            raise ValueError("--reinit-blocks re-initialises blocks of a pre-trained encoder: not with --init none")
        reinit_top_blocks(encoder, base_cfg, args.reinit_blocks, tcfg.seed)
    vocab = Vocabulary.from_transcripts([e.text or "" for e in train], units=args.units)
    cfg = finetune_model_config(base_cfg, recipe, len(vocab))
    cfg = override_config(cfg, args.set or [])  # again: --set wins over the recipe's masks and dropout
    cfg.extra.update({"units": args.units, "init": args.init, "recipe": args.recipe})
    train, dropped = usable_entries(train, vocab, cfg, args.unknown, args.train)
    valid, dropped_valid = usable_entries(valid, vocab, cfg, "map", args.valid)
    torch.manual_seed(tcfg.seed)
    model = Wav2Vec2ForCTC(cfg, encoder)
    model.wav2vec2.feature_grad_mult = cfg.feature_grad_mult  # 0 (the paper): frozen feature encoder
    for p in model.wav2vec2.feature_extractor.parameters():
        p.requires_grad_(cfg.feature_grad_mult > 0)  # frozen: no autograd graph, no optimizer state
    cache = FeatureCache(args.feature_cache_mb * 2**20) if args.feature_cache_mb > 0 and features_repeat(
        tcfg, cfg, train) else None
    task = FinetuneTask(cfg, vocab, valid, tcfg.freeze_encoder_updates, args.unknown, args.best_by, cache,
                        warmup_updates(tcfg), tcfg.head_lr_scale, tcfg.unfreeze_warmup_updates)
    trainer = Trainer(task, model, train, tcfg, out, cfg.to_dict(), resume=args.resume)
    result = trainer.train()
    if trainer.dist.is_main:
        if cache is not None:
            print(f"feature cache: {cache.hits} hits, {cache.misses} misses, {len(cache.store)} clip versions "
                  f"kept ({cache.bytes / 2**20:.0f} MB)")
        print(f"fine-tuning done: {result['num_updates']} updates, "
              f"best dev {args.best_by.upper()} {result['best']:.2f}%, {dropped} training utterances dropped (too short for their transcript), {dropped_valid} dev; "
              f"model: {out / 'best'}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="CTC fine-tuning on labeled audio")
    p.add_argument("--train", required=True, help="manifest with a text column")
    p.add_argument("--valid", required=True, help="dev manifest with a text column (WER for model selection)")
    p.add_argument("--out", required=True)
    p.add_argument("--init", required=True, help="pre-trained model directory, or 'none' (no pre-training)")
    p.add_argument("--arch", default="tiny", help="preset of the random encoder with --init none")
    p.add_argument("--recipe", default="10min", choices=sorted(RECIPES))
    p.add_argument("--units", default="char", choices=["char", "token"], help="letters, or space-separated units")
    p.add_argument("--unknown", default="error", choices=["error", "map", "drop"],
                   help="characters outside the vocabulary: refuse, map to <unk>, or drop (with a warning)")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override a model config field: with --init none any field of --arch's random encoder (a "
                        "scratch baseline of the pre-trained model's architecture), with a pre-trained --init only "
                        "training fields (masking, dropout, LayerDrop, feature_grad_mult)")
    p.add_argument("--reinit-blocks", type=int, default=0, metavar="N",
                   help="re-initialise the top N Transformer blocks of the pre-trained encoder (default 0)")
    p.add_argument("--best-by", default="wer", choices=["wer", "cer"],
                   help="dev metric that selects the best checkpoint (CER for very small budgets, where the WER "
                        "stays at or above 100%% while the letters already improve)")
    p.add_argument("--feature-cache-mb", type=int, default=4096,
                   help="CPU memory for the frozen feature encoder's outputs, reused every epoch (0: recompute "
                        "them every update; 1 h of audio takes 370 MB at 512 channels in fp32)")
    p.add_argument("--resume", action="store_true")
    add_train_options(p, finetune_defaults(RECIPES["10min"], None))
    p.set_defaults(func=cmd_finetune)
