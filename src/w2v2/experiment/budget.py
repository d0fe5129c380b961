"""Compute budgets of the experiments' stages."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


# fine-tuning's output units: letters (best checkpoint by dev CER, which falls long before the WER
# does with little data) or CMUdict phones (``--units token``; the WER of phone tokens is the PER)
UNIT_ARGS = {"letters": ["--best-by", "cer"], "phones": ["--units", "token", "--best-by", "wer"]}


@dataclass(frozen=True)
class Budget:
    """Compute for each stage; the training stages stop at whichever limit comes first."""

    preset: str
    pretrain_updates: int
    pretrain_minutes: float
    pretrain_lr: float
    pretrain_max_tokens: int
    pretrain_valid_clips: int  # the held-out clips' cap (3 % of the pool, at most this many)
    pretrain_pace: str  # "time": the pre-training schedule decays by the end of its minutes (--schedule-pace)
    pretrain_sets: tuple[str, ...]  # model-config overrides of the preset for pre-training (``field=value``)
    pretrain_crop_multiple: int  # pre-training crops rounded down to a multiple of this many samples (0: none)
    finetune_updates: int
    finetune_minutes: float
    finetune_pace: str  # "time": the fine-tuning schedule decays by the end of its minutes (--schedule-pace)
    finetune_lr: float
    finetune_max_tokens: int
    finetune_mask_prob: float  # time masks (fairseq-style prob.); channel masks at half of it
    finetune_speed: float  # speed perturbation of the labeled clips, factor in [1 - x, 1 + x] (0: none;
                           # pre-trained models only)
    mask_max_labeled_minutes: float  # the masks only for labeled sets up to this many minutes
    validate_every: int
    freeze_updates: int  # Transformer frozen, only the output layer trains (pre-trained models only)
    unfreeze_warmup: int  # then the Transformer's rate ramps from 0 over these updates
    head_lr_scale: float  # the output layer's rate as a multiple of the schedule's (every model)
    reinit_blocks: int  # top Transformer blocks given a fresh initialisation (pre-trained models only)
    lm_order: int
    lm_steps: int
    tune_trials: int
    beam_size: int  # the 4-gram search's beam (and the first pass of rescoring)
    beam_size_token: int  # units tried per frame in that search (0: all)
    transformer_beam: int  # the Transformer LM is queried per hypothesis: a smaller beam
    units: tuple[str, ...]  # fine-tuning's output units when ``experiment lowres --units`` is not given
    scratch_units: tuple[str, ...]  # the units whose models are also fine-tuned from scratch (the baseline)

    def inits(self, units: str) -> tuple[str, ...]:
        """The initialisations fine-tuned for these output units: the pre-trained model, and a random
        one where ``scratch_units`` holds them."""
        return ("pretrained", "scratch") if units in self.scratch_units else ("pretrained",)

    def pretrain_args(self, train: str, out: Path, seed: int, sets: Sequence[str] = ()) -> list[str]:
        """``w2v2 pretrain`` at this budget; ``sets`` are model-config overrides (``field=value``) applied
        after the budget's own ``pretrain_sets``, so a variant's setting wins."""
        every = str(max(self.pretrain_updates // 10, 10))
        return ["pretrain", "--train", train, "--out", str(out), "--preset", self.preset,
                "--max-updates", str(self.pretrain_updates), "--max-minutes", str(self.pretrain_minutes),
                "--schedule-pace", self.pretrain_pace,
                "--lr", str(self.pretrain_lr), "--max-tokens", str(self.pretrain_max_tokens),
                "--valid-max-clips", str(self.pretrain_valid_clips), "--validate-every", every,
                "--save-every", every, "--seed", str(seed), "--crop-multiple", str(self.pretrain_crop_multiple),
                *(a for kv in (*self.pretrain_sets, *sets) for a in ("--set", kv))]

    def mask_prob(self, labeled_minutes: float) -> float:
        """Fine-tuning's time-mask probability for a labeled set of this many minutes."""
        return self.finetune_mask_prob if labeled_minutes <= self.mask_max_labeled_minutes else 0.0

    def finetune_args(self, train: str, labeled_minutes: float, dev: str, out: Path, init: str,
                      seed: int, units: str = "letters") -> list[str]:
        """``w2v2 finetune`` at this budget on ``train`` (``labeled_minutes`` long) from a pre-trained
        model directory, or ``none`` (scratch); the frozen phase and the re-initialised top blocks
        apply only to a pre-trained Transformer, and so does the speed perturbation; the masks to both.
        ``units``: ``letters``, or ``phones`` for manifests of ``w2v2 data phonemize``
        (space-separated phones, the best checkpoint by phone error rate)."""
        pretrained = init != "none"
        mask = self.mask_prob(labeled_minutes)
        freeze, ramp = (self.freeze_updates, self.unfreeze_warmup) if pretrained else (0, 0)
        reinit = ["--reinit-blocks", str(self.reinit_blocks)] if pretrained and self.reinit_blocks else []
        speed = ["--augment-speed", str(self.finetune_speed)] if pretrained and self.finetune_speed else []
        return ["finetune", "--train", train, "--valid", dev, "--out", str(out), "--recipe", "10min",
                "--init", init, "--arch", self.preset,
                "--max-updates", str(self.finetune_updates), "--max-minutes", str(self.finetune_minutes),
                "--schedule-pace", self.finetune_pace,
                "--lr", str(self.finetune_lr), "--max-tokens", str(self.finetune_max_tokens),
                "--validate-every", str(self.validate_every), "--save-every", str(self.validate_every),
                "--freeze-encoder-updates", str(freeze), "--unfreeze-warmup-updates", str(ramp),
                "--head-lr-scale", str(self.head_lr_scale), "--set", f"mask_prob={mask}",
                "--set", f"mask_channel_prob={mask / 2}", *speed,
                *reinit, *UNIT_ARGS[units], "--unknown", "map", "--seed", str(seed)]


# the README's demo on the synthesized corpus: about 20 minutes on 2 CPU cores; the output layer
# at 10x the rate (see "real"). The top Transformer block of the pre-trained model starts fresh
# (docs/small_compute.md, rows U-*: after 5 minutes of pre-training the pre-trained top block kept
# 15-minute fine-tuning on the all-blank plateau for 250 of 400 updates, dev CER 89.3 and 81.1 in two
# seeds; re-initialised, 67.8, and the frozen phase 72.6; from scratch 68.6). The demo validates
# every tenth of its update cap: at most 24 held-out clips (its 30-minute pool holds out 19), so that a larger
# pool (`data synth --unlabeled-minutes`) does not slow pre-training (row D1: 106 clips, 0.79
# against 1.05 updates/s).
# Pre-training predicts the masked frames' continuous latents, not their quantized codes (the
# paper's table-4 "continuous targets" row, which the paper finds worse at its scale; here,
# docs/small_compute.md rows B1200/T1: 1,200 updates, then the same 1,500-update fine-tuning on
# ten labeled minutes, dev CER 63.7 / 63.4 in two seeds against 67.0 / 67.5 with quantized targets,
# scratch 74.5). Such a model has no codebook: `analyze codebook` clusters its vectors (`--kmeans K`).
# Mask spans are the paper's 10 frames: 3-frame spans gained 1.6-2.6 dev CER points after 1,200
# updates (rows ML3) but the whole demo and real runs on them were level (rows DR5 / R7).
# Its schedule is paced by the clock and capped at 1,500 updates, so that the 5 minutes decide.
# The 4-gram search keeps 1,000 hypotheses, trying the 10 likeliest units per frame: its grammar LM
# is peaked and the acoustic model weak, and a beam of 50 lost most of the search
# (docs/small_compute.md, row BEAM: dev WER of DR7's 15-minute pre-trained model 75.6 at beam 50,
# 70.1 at 500, 67.2 at 1,000 with 10 units, 65.0 at 1,500, 63.2 at 4,000; the 5-minute and scratch
# models level within 0.5). Its decoder tuning tries 6 random draws besides the default: the chosen
# ones were draws 2 and 4 (or the default) for every letter model of DR7, DR8 and DR9, and two fewer
# searches per model keep the demo under its 20 minutes (DR9 with 8: 20.6 minutes, 5.4 of them
# decoding; DR10 with 6 and each model's decoders on one pass of it: 19.0, 3.6 decoding).
# No speed perturbation in its fine-tuning (twenty-seventh session, row DAUG15: dev CER 53.6 / 53.7
# against 52.6 / 52.1 in two seeds: without the feature cache 2.2 minutes hold 400 updates, not 600;
# three fixed factors whose features are cached, row DC15: 58.2 in 367 updates).
DEMO = Budget(
    preset="tiny",
    pretrain_updates=1500,
    pretrain_minutes=5.0,
    pretrain_lr=5e-4,
    pretrain_max_tokens=8 * 64000,
    pretrain_valid_clips=24,
    pretrain_pace="time",
    pretrain_sets=("quantize_targets=False",),
    pretrain_crop_multiple=0,
    finetune_updates=600,
    finetune_minutes=2.2,
    finetune_pace="time",
    finetune_lr=1e-3,
    finetune_max_tokens=320_000,
    finetune_mask_prob=0.0,
    finetune_speed=0.0,
    mask_max_labeled_minutes=0.0,
    validate_every=100,
    freeze_updates=0,
    unfreeze_warmup=0,
    head_lr_scale=10.0,
    reinit_blocks=1,
    lm_order=4,
    lm_steps=300,
    tune_trials=6,
    beam_size=1000,
    beam_size_token=10,
    transformer_beam=8,
    units=("letters",),
    scratch_units=("letters", "phones"))


SCALES = {
    # a few minutes: checks that every stage runs and the report is complete
    "ci": Budget(
        preset="tiny",
        pretrain_updates=10,
        pretrain_minutes=1.0,
        pretrain_lr=5e-4,
        pretrain_max_tokens=2 * 64000,
        pretrain_valid_clips=24,
        pretrain_pace="updates",
        pretrain_sets=("quantize_targets=False",),
        pretrain_crop_multiple=0,
        finetune_updates=10,
        finetune_minutes=0.5,
        finetune_pace="updates",
        finetune_lr=1e-3,
        finetune_max_tokens=160_000,
        finetune_mask_prob=0.3,
        finetune_speed=0.0,
        mask_max_labeled_minutes=60.0,
        validate_every=5,
        freeze_updates=1,
        unfreeze_warmup=2,
        head_lr_scale=1.0,
        reinit_blocks=1,
        lm_order=3,
        lm_steps=10,
        tune_trials=1,
        beam_size=5,
        beam_size_token=0,
        transformer_beam=4,
        units=("letters",),
        scratch_units=("letters", "phones")),
    "demo": DEMO,
    # the ablations on real speech: each variant pre-trains 5 and fine-tunes 2.5 minutes (about 8 min)
    # (the top block kept and 3 % of the shared pool held out, as when the ablations' results were
    # measured)
    "short": dataclasses.replace(DEMO, pretrain_updates=350, finetune_minutes=2.5, reinit_blocks=0,
                                 pretrain_valid_clips=200, pretrain_pace="updates", pretrain_sets=()),
    # real speech on 2 CPU cores in under two hours. Pre-training: an hour (docs/small_compute.md:
    # more updates is the one pre-training lever that moved accuracy, per clip 0.107 after 600
    # updates and 0.193 after 2,400, and dev CER after fine-tuning from 73.5 to 69.3, rows G/H).
    # Fine-tuning (every budget but ci): the output layer at 10x the rate (rows G0-G6, H1-H3:
    # 1.5-2.5 CER points better for pre-trained and scratch models alike at 500 updates; the
    # frozen phase with a ramped unfreeze was no better). lr 2e-3 drove these tiny CTC
    # models to a constant output (all blank) within 300 updates; 1e-3 and 5e-4 leave the blank
    # plateau after 200-300. Masks: with 10 minutes they gained 2.1 dev CER points at 2,000
    # updates (rows FT-P4-h10-mask-2000), and in the whole run with them (row R2-masks) 2.6 with ten
    # minutes (dev CER 64.7 against 67.3; scratch 73.6 against 74.8), but the one-hour models lost 5
    # (dev CER 67.2 against 62.2 at 1,200 updates): masks (time 0.3, channel 0.15) for labeled sets
    # of up to 30 minutes only, as the paper's fine-tuning configs also vary them by set (the whole
    # run with this rule, row R3: dev CER 63.8 / 57.1 pre-trained against 75.6 / 69.8 from scratch;
    # row R4, with time-paced fine-tuning in bf16 on an AVX-512 machine: 65.0 / 56.4 against 73.4 / 70.6;
    # row R5, with continuous targets (see DEMO): 57.2 / 46.0 against 75.0 / 69.2; row R6, the
    # whole hour of pre-training: 54.6 / 43.0 against 74.0 / 69.6).
    # No frozen-Transformer phase:
    # when a pre-trained Transformer joins at the peak lr, Adam's first steps (empty moments) move
    # every weight by about lr at once, and these models fell back to all-blank output for 200-400
    # updates (the README's real-data run) or for the rest of a 2-minute fine-tuning (the demo).
    # Pre-training's update cap lies beyond what its 60 minutes allow on 2 cores (0.47 s per update
    # in bf16 on an AVX-512 machine with continuous targets, about 7,600 in the hour; R8, unit
    # targets, 6,874 and R10 6,412 on slower days), so the clock decides and paces the schedule
    # (row R6: 7,559 updates, dev CER 54.6 / 43.0 pre-trained against R5's 57.2 / 46.0, whose cap
    # of 4,000 ended pre-training after 31 minutes).
    # Fine-tuning's cap is sized to what its minutes allow (about 0.25 s per update). An AVX2-only
    # machine trains in fp32 at about 1.03 s per update (row R3, quantized targets: 3,483
    # pre-training updates in the hour; 1,555-1,706 fine-tuning updates in 8 minutes).
    # Fine-tuning is paced by the clock (every budget but `ci`): on a day this machine ran 20-25 %
    # slower, R3's update-paced fine-tunings stopped part-way down their decay at dev CER 66.3 / 58.8
    # (10 min / 1 h), the time-paced ones reached 63.2 / 57.6; scratch level, 75.9 / 73.5 against
    # 76.0 / 73.4 (row FT-time).
    # The top block is kept: re-initialised after this budget's length of pre-training it gained
    # nothing (rows FT-P4-h10-reinit1-2000: dev CER 68.0 / 66.7 in two seeds against 66.7 / 66.6).
    # Pre-training targets (eighteenth session): k-means units of MFCCs, HuBERT's first iteration
    # (`target_units=100`; rows U100 / U100-s2: dev CER 62.1 / 61.9 after T1's protocol against
    # 63.7 / 63.4 with continuous targets; the whole run, row R8: 47.6 / 37.4 against R6's 54.6 /
    # 43.0); the update cap is 12,000 so that the clock decides.
    # The 4-gram search's beam is the paper's 500, 10 units per frame (rows BEAM / R8s2-b500: on R8-s2's
    # models dev WER 81.3 -> 80.1 and 58.4 -> 55.9 for letters, 10 min / 1 h, 46.1 -> 44.8 for one-hour
    # phones, against a beam of 100 with all units; 1,500 gained 0.4-1.0 more at 2.5x the search's
    # cost, which the two hours do not allow: the whole run at 500, row R10, took 105.9 minutes).
    # Fine-tuning plays each labeled clip at a speed factor drawn from [0.9, 1.1] (Kaldi's speed
    # perturbation; twenty-sixth session, rows AUGS10 / AUGS1h on R10's model against its fine-tuning
    # re-run the same day, REF10 / REF1h: dev CER 47.0 / 36.5 against 48.4 / 38.6 in 1,350 / 1,600
    # updates against 2,400 / 2,277: the cache cannot serve a continuously drawn factor). Not for the
    # scratch models: in the 8 minutes their 1,267 updates left the blank plateau only at the end
    # (row SCR-AUGS10: dev CER 85.6 against R10's 73.7 with the cache's 2,081 updates). The phone
    # models (`--units phones`) get it too (row R11-phones: dev PER 40.2 against PU-R10's 43.3 on the
    # same model and seed). Factors in [0.8, 1.2], noise beside it, 10 minutes instead of 8 and three
    # fixed factors with cached features were level (twenty-seventh session, rows RS20-10, RN10,
    # RM10-10, RC10).
    # Pre-training crops are rounded down to a multiple of 0.5 s (`--crop-multiple 8000`), so that
    # batch shapes recur and oneDNN reuses its kernels (rows CROP10: 1.31x the updates in 10 minutes
    # in bf16, validation unit accuracy 0.0956 against 0.0891; rows CROPF, fp32 on another CPU, two
    # seeds: 1.14-1.24x, 0.0735 / 0.0741 against 0.0692 / 0.0683, dev CER after the ten-minute
    # fine-tuning below 64.0 / 64.2 against 66.9 / 65.0); the whole run with them, row R13: 8,501
    # updates in the hour, kathleen_test greedy CER 45.3 / 34.8 (10 min / 1 h).
    # Phone units beside letters (thirty-second session, row R14): CMUdict phones decoded through a
    # pronunciation lexicon cut the 4-gram WER of the pre-trained models by 6-19 points (rows
    # R6-phones, R8s2-phones, R11-phones; R11's kathleen_test 61.1 / 38.3 against 76.2 / 55.6 for letters)
    # and did not help the scratch models (96.7 / 91.3 against about 98 / 95), so only the pre-trained
    # models get them. Their two fine-tunings and decoding (about 20 minutes) fit the two hours with the
    # pre-training at 55 minutes (the last 1,300 updates of R13's hour moved validation accuracy from
    # 0.174 to 0.175; ten more minutes after the hour were level, row CONT) and every fine-tuning at
    # 7 (10 minutes were level with 8, rows RM10-10). The whole run so (row R14): 116.7 minutes,
    # kathleen_test 4-gram WER 60.3 / 38.6 with phones against R13's 73.4 / 53.3 with letters; the
    # letter models' greedy CER 47.1 / 36.2 against R13's 45.3 / 34.8 (the cuts' cost).
    "real": dataclasses.replace(DEMO, reinit_blocks=0, pretrain_updates=12000, pretrain_minutes=55.0,
                                pretrain_valid_clips=200,
                                pretrain_sets=("quantize_targets=False", "target_units=100"),
                                pretrain_crop_multiple=8000,
                                finetune_mask_prob=0.3, mask_max_labeled_minutes=30.0, finetune_speed=0.1,
                                finetune_updates=2400,
                                finetune_minutes=7.0, validate_every=200, lm_steps=1500, tune_trials=12,
                                beam_size=500, units=("letters", "phones"), scratch_units=("letters",)),
}
