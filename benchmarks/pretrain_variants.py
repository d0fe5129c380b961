"""Cost of one ``tiny`` pre-training update under the throughput levers of issue 12, interleaved.

    .venv/bin/python benchmarks/pretrain_variants.py                  # 8 x 4 s, bf16, 6 rounds
    .venv/bin/python benchmarks/pretrain_variants.py --reps 2 --variants tiny compact

One update = ``train_step.py``'s (forward in train mode with masks, negatives and Gumbel noise,
backward, fused AdamW step) on the same noise batch, under CPU bf16 autocast as the trainer runs it.
Variants:

- ``tiny``: the preset (LayerDrop 0 so that every update does the same work);
- ``compact``: the SEW-style feature encoder of study row C1, channels growing as the frame rate
  falls, (32, 64, 64, 128, 128, 128, 128) with the preset's kernels and strides;
- ``compiled``: the preset with its feature encoder and Transformer wrapped in ``torch.compile``
  (inductor, ``dynamic=True``, since pre-training crops vary from batch to batch); compilation runs
  in each variant's first update, before the rounds, and is reported apart;
- ``frozen``: the preset with ``feature_grad_mult`` 0, the feature encoder left at its random
  initialisation and run without an autograd graph (no backward through the convolutions);
- ``wide``: the preset's Transformer at twice the width (512, FFN 2048, 8 heads), the same encoder;
- ``deep``: the preset's Transformer with twice the blocks (8);
- ``continuous``: the preset with continuous targets (``quantize_targets=False``, the `demo`
  budget's objective);
- ``units``: the preset predicting 100 k-means units of MFCCs (``target_units=100``, the `real`
  budget's objective; the centres are fitted on the noise batch's MFCCs, which changes no cost);
- ``frame``: ``units`` with a two-layer feature encoder at nearly the frame rate, (128, 80, 40) then
  (128, 9, 8): the same 400-sample receptive field and 320-sample hop, no 16 kHz-rate layers (study
  row U100-F2);
- ``units2``: HuBERT's second iteration, 100 k-means units of block 2 of a frozen copy of the model
  (``target_layer=2``): ``units`` plus the copy's forward pass through its encoder and 2 blocks.

Rounds alternate the order; the figures are medians of wall seconds per update and of the per-round
ratio to ``tiny``, and the audio hours per wall-clock hour that the median update gives. Timings on
this machine swing by 2x from minute to minute: only the ratios compare. Writes
pretrain_variants.{md,json} to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from forward import fmt_table, machine
from train_step import CASES_BY_KEY, make_batch, timed_rounds, update_fn
from w2v2.model import build_pretraining_model, preset
from w2v2.model.feature_encoder import num_frames
from w2v2.train.units import copy_teacher, unit_centres

CASE = CASES_BY_KEY["pretrain-tiny-bf16"]
COMPACT_CONV = ((32, 10, 5), (64, 3, 2), (64, 3, 2), (128, 3, 2), (128, 3, 2), (128, 2, 2), (128, 2, 2))
FRAME_CONV = ((128, 80, 40), (128, 9, 8))


def build(variant: str) -> nn.Module:
    cfg = dataclasses.replace(preset("tiny"), encoder_layerdrop=0.0)
    if variant == "compact":
        cfg = dataclasses.replace(cfg, conv_layers=COMPACT_CONV)
    if variant == "frozen":
        cfg = dataclasses.replace(cfg, feature_grad_mult=0.0)
    if variant == "wide":
        cfg = dataclasses.replace(cfg, encoder_embed_dim=512, encoder_ffn_embed_dim=2048, encoder_attention_heads=8)
    if variant == "deep":
        cfg = dataclasses.replace(cfg, encoder_layers=8)
    if variant == "continuous":
        cfg = dataclasses.replace(cfg, quantize_targets=False)
    if variant in ("units", "units2", "frame"):
        cfg = dataclasses.replace(cfg, quantize_targets=False, target_units=100, target_layer=2 * (variant == "units2"))
    if variant == "frame":
        cfg = dataclasses.replace(cfg, conv_layers=FRAME_CONV)
    torch.manual_seed(0)
    model = build_pretraining_model(cfg)
    if model.units is not None:
        if cfg.target_layer:
            copy_teacher(model.units, model.wav2vec2)
        wave, _ = make_batch(CASE)
        frames = model.units.frames(wave, num_frames(cfg.conv_layers, wave.shape[1])).reshape(-1, model.units.frames.dim)
        model.units.centres.copy_(unit_centres(frames.numpy(), cfg.target_units, 0))
    model.set_num_updates(0)
    if variant == "compiled":
        inner = model.wav2vec2
        inner.feature_extractor = torch.compile(inner.feature_extractor, dynamic=True)
        inner.encoder = torch.compile(inner.encoder, dynamic=True)
    return model.train()

VARIANTS = ("tiny", "compact", "compiled", "frozen", "wide", "deep", "continuous", "units", "units2", "frame")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    p.add_argument("--reps", type=int, default=6, help="timed rounds (default 6)")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = p.parse_args(argv)
    if "tiny" not in args.variants:
        p.error("the ratios are to 'tiny': include it")
    wave, targets = make_batch(CASE)
    fns, setup_s = {}, {}
    for v in args.variants:
        t0 = time.perf_counter()
        fns[v] = update_fn(CASE, "w2v2", build(v), wave, targets, [])
        fns[v]()  # the first update: for "compiled", the compilation
        setup_s[v] = time.perf_counter() - t0
    bar = tqdm(total=(args.warmup + args.reps) * len(fns), desc="updates", unit="update")
    times = timed_rounds(fns, args.reps, args.warmup, bar)
    bar.close()
    audio_h = CASE.batch * CASE.seconds / 3600
    rows, summary = [], {}
    for v in args.variants:
        wall = times[v]["wall"]
        ratio = statistics.median(t / b for t, b in zip(wall, times["tiny"]["wall"]))
        med = statistics.median(wall)
        rate = audio_h / (med / 3600)
        summary[v] = {"median_s": med, "ratio_to_tiny": ratio, "audio_h_per_h": rate,
                      "first_update_s": setup_s[v], "wall": wall}
        rows.append([v, f"{med:.3f}", f"{ratio:.2f}", f"{rate:.0f}", f"{setup_s[v]:.1f}"])
    info = machine()
    text = (f"{info['date_utc']} UTC, {info['cpu']}, {info['cores']} cores, torch {info['torch']}; "
            f"{CASE.batch} x {CASE.seconds:g} s noise, bf16 autocast, {args.reps} rounds after {args.warmup}\n\n"
            + fmt_table(["variant", "median s / update", "time ratio to tiny (median of rounds)",
                         "audio h / wall h", "first update incl. compile (s)"], rows) + "\n")
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pretrain_variants.md").write_text(text)
    (args.out / "pretrain_variants.json").write_text(json.dumps({"machine": info, "variants": summary}, indent=1))


if __name__ == "__main__":
    main()
