"""``w2v2 estimate``: what a pre-training run will cost, before renting the cluster.

FLOPs come from ``torch.utils.flop_counter`` on a forward pass (shapes only, on the meta device);
training is counted as 3x the forward (backward = 2x). A short measured run on this machine gives
its achieved FLOP/s and the activation memory per second of audio. GPU time is projected with a
sustained per-GPU rate, by default the one implied by the paper's BASE run (400k updates of
1.6 h of audio in 1.6 days on 64 V100s).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from ..model import build_model, build_pretraining_model, preset
from .precision import autocast, resolve_precision

PAPER = {"base": (1.6, 64, 400_000), "large": (2.3, 128, 250_000), "large_lv60": (5.2, 128, 600_000)}
BATCH_AUDIO_SECONDS = {"base": 1.4e6 * 64 / 16000, "large": 1.2e6 * 128 / 16000, "large_lv60": 1.2e6 * 128 / 16000}


def forward_flops(name: str, seconds: float) -> float:
    """FLOPs of the encoder's forward pass over ``seconds`` of audio (batch of one); the quantizer
    and the loss add well under 1 % and are left out."""
    with torch.device("meta"):
        model = build_model(preset(name)).eval()
        x = torch.zeros(1, int(seconds * 16000))
    counter = FlopCounterMode(display=False)
    with counter:
        model(x)
    return float(counter.get_total_flops())


def measure_local(name: str, clip_seconds: float, batch: int, steps: int) -> tuple[float, float, str]:
    """(seconds per training step, peak resident memory growth in bytes, precision) on this machine, in
    the precision training would pick here (bf16 where native, else fp32)."""
    cpu = torch.device("cpu")
    precision = resolve_precision("auto", cpu)
    torch.manual_seed(0)
    model = build_pretraining_model(preset(name)).train()
    x = torch.randn(batch, int(clip_seconds * 16000))
    rng = np.random.default_rng(0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    times = []
    for _ in range(steps + 1):
        t = time.perf_counter()
        with autocast(precision, cpu):
            out = model(x, rng=rng)
        out.loss.backward()
        model.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    return float(np.median(times[1:])), float(peak), precision


def estimate(name: str, hours: float, updates: int, gpus: int, gpu_tflops: float | None, local_steps: int) -> str:
    params = sum(p.numel() for p in build_pretraining_model(preset(name)).parameters())
    per_second = forward_flops(name, 10.0) / 10.0
    train_per_second = 3 * per_second
    batch_seconds = BATCH_AUDIO_SECONDS.get(name, 8 * 4.0)
    clip, batch = (4.0, 8) if name == "tiny" else (4.0, 2)
    step_s, mem, precision = measure_local(name, clip, batch, local_steps)
    local_rate = train_per_second * clip * batch / step_s
    if gpu_tflops is None:  # calibrate on the paper's BASE run
        days, n, ups = PAPER["base"]
        gpu_tflops = ups * BATCH_AUDIO_SECONDS["base"] * 3 * forward_flops("base", 10.0) / 10.0 / (days * 86400 * n) / 1e12
    total = updates * batch_seconds * train_per_second
    epochs = updates * batch_seconds / (hours * 3600)
    lines = [
        f"preset {name}: {params / 1e6:.1f}M parameters",
        f"forward: {per_second / 1e9:.1f} GFLOP per second of audio (10 s clips); training ~3x: "
        f"{train_per_second / 1e9:.1f} GFLOP",
        f"batch per update: {batch_seconds / 3600:.2f} h of audio ({epochs:.1f} passes over {hours:g} h in {updates:,} updates)",
        f"total: {total:.3g} FLOP",
        f"this machine: {step_s:.2f} s per update of {batch} x {clip:g} s ({precision}) = {local_rate / 1e9:.1f} GFLOP/s; "
        f"activations ~{mem / (clip * batch) / 1e6:.0f} MB per second of audio "
        f"(~{mem / (clip * batch) * 1.4e6 / 16000 / 1e9:.1f} GB for a 1.4M-sample GPU batch)",
        f"the whole run here: {total / local_rate / 86400:,.1f} days",
        f"on {gpus} GPUs at {gpu_tflops:.1f} TFLOP/s sustained each: {total / (gpus * gpu_tflops * 1e12) / 86400:.2f} days "
        f"({total / (gpu_tflops * 1e12) / 86400:.1f} GPU-days)",
    ]
    if name in PAPER:
        days, n, ups = PAPER[name]
        lines.append(f"paper: {days} days on {n} V100s ({days * n:.0f} GPU-days) for {ups:,} updates")
    return "\n".join(lines)


def cmd_estimate(args: argparse.Namespace) -> None:
    print(estimate(args.preset, args.hours, args.updates, args.gpus, args.gpu_tflops, args.local_steps))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("estimate", help="parameters, FLOPs, memory and projected time of a pre-training run")
    p.add_argument("--preset", default="base")
    p.add_argument("--hours", type=float, required=True, help="hours of unlabeled audio")
    p.add_argument("--updates", type=int, required=True)
    p.add_argument("--gpus", type=int, default=8)
    p.add_argument("--gpu-tflops", type=float, help="sustained TFLOP/s per GPU (default: calibrated on the "
                                                    "paper's BASE run on V100s)")
    p.add_argument("--local-steps", type=int, default=2, help="measured training steps on this machine")
    p.set_defaults(func=cmd_estimate)
