"""Training-update speed and memory of w2v2 against transformers, identical weights.

    .venv/bin/python benchmarks/train_step.py                      # the full run behind README.md
    .venv/bin/python benchmarks/train_step.py --quick              # 2 rounds, no memory probes
    .venv/bin/python benchmarks/train_step.py --profile pretrain-base-fp32   # where the time goes

One update = forward in train mode (dropout, Gumbel noise, span masks) + backward + AdamW step.

- pre-training: w2v2's Wav2Vec2ForPreTraining (masks and negatives drawn inside its forward) against
  transformers' Wav2Vec2ForPreTraining driven by its own ``_compute_mask_indices`` and
  ``_sample_negative_indices`` (their cost is inside the timed update, as w2v2's are), mask
  probability 0.65, span 10, K = 100, the same Gumbel temperature.
- fine-tuning: w2v2's Wav2Vec2ForCTC with the feature encoder frozen as ``w2v2 finetune`` freezes it
  against transformers' Wav2Vec2ForCTC after ``freeze_feature_encoder()``, the same time / channel
  masking, CTC loss (sum) on the same random targets.

LayerDrop is set to 0 in both so that every update does the same work. Rounds interleave the two
implementations (A B, B A, ...); the figures are medians over ``--reps`` rounds after ``--warmup``,
the speed-ups medians of the per-round ratios, of process CPU time (robust on a shared machine with
``--threads 1``) and of wall time. Peak memory is the peak RSS increase of one warm update
(activations, gradients, optimizer transients) in a fresh subprocess per implementation.
Writes train_step.md, train_step.json and train_step.png to ``--out`` (after every case).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
import transformers
from torch import Tensor, nn
from tqdm import tqdm
from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices, _sample_negative_indices

from forward import fmt_table, machine
from peak_rss import peak_increase_bytes
from w2v2.config import W2V2Config
from w2v2.interop.hf import config_to_hf, state_to_hf
from w2v2.interop.model_dir import full_state_dict
from w2v2.model import build_ctc_model, build_pretraining_model, preset
from w2v2.train.feature_cache import FeatureCache
from w2v2.train.finetune import RECIPES, finetune_model_config

SAMPLE_RATE = 16000
HF = "transformers"
CACHED = "w2v2 cached"  # fine-tuning with the feature cache warm (every epoch after the first)
IMPLS = ("w2v2", HF)
VOCAB = 32
CHARS_PER_SECOND = 15  # CTC target length: about LibriSpeech's letter rate
LR = 1e-5  # the value does not change the cost; small keeps repeated updates finite
PARITY_TOL = 1e-4
GOALS = {"pretrain": 1.6, "finetune": 1.5}


@dataclass(frozen=True)
class Case:
    task: str  # "pretrain" or "finetune"
    size: str  # preset name
    batch: int
    seconds: float
    dtype: str  # "fp32" or "bf16" (CPU autocast)

    @property
    def key(self) -> str:
        return f"{self.task}-{self.size}-{self.dtype}"

    @property
    def label(self) -> str:
        return f"{self.task} {self.size} {self.batch} x {self.seconds:g} s"


CASES = [Case(task, size, b, s, dtype)
         for task, size, b, s in (("pretrain", "base", 2, 4.0), ("finetune", "base", 4, 6.0),
                                  ("pretrain", "tiny", 8, 4.0), ("finetune", "tiny", 8, 4.0))
         for dtype in ("fp32", "bf16")]
CASES_BY_KEY = {c.key: c for c in CASES}


def model_config(case: Case) -> W2V2Config:
    """The preset (pre-training) or ``w2v2 finetune``'s 10-minute recipe config (mask_prob 0.65,
    mask_channel_prob 0.25, frozen feature encoder), LayerDrop 0."""
    cfg = preset(case.size)
    if case.task == "finetune":
        cfg = finetune_model_config(cfg, RECIPES["10min"], VOCAB)
    return dataclasses.replace(cfg, encoder_layerdrop=0.0)


def build_ours(case: Case) -> nn.Module:
    cfg = model_config(case)
    if case.task == "pretrain":
        model = build_pretraining_model(cfg)
        model.set_num_updates(0)
        return model.train()
    model = build_ctc_model(cfg)
    model.wav2vec2.feature_grad_mult = 0.0  # as cmd_finetune: no autograd graph through the feature encoder
    for p in model.wav2vec2.feature_extractor.parameters():
        p.requires_grad_(False)
    return model.train()


def build_theirs(case: Case) -> nn.Module:
    cfg = model_config(case)
    arch = "Wav2Vec2ForPreTraining" if case.task == "pretrain" else "Wav2Vec2ForCTC"
    model = getattr(transformers, arch)(transformers.Wav2Vec2Config(**config_to_hf(cfg, arch)))
    if case.task == "pretrain":
        model.set_gumbel_temperature(cfg.latent_temp[0])  # w2v2's temperature at update 0
    else:
        model.freeze_feature_encoder()
    return model.train()


def build_pair(case: Case, seed: int = 0) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    ours = build_ours(case)
    theirs = build_theirs(case)
    theirs.load_state_dict(state_to_hf(full_state_dict(ours), "wav2vec2."))  # strict: every key has to match
    return ours, theirs


def make_batch(case: Case, seed: int = 0) -> tuple[Tensor, Tensor]:
    """(B, samples) noise and (B, L) CTC targets in 1..VOCAB-1 (0 is the blank)."""
    g = torch.Generator().manual_seed(seed)
    wave = torch.randn(case.batch, round(case.seconds * SAMPLE_RATE), generator=g)
    targets = torch.randint(1, VOCAB, (case.batch, round(case.seconds * CHARS_PER_SECOND)), generator=g)
    return wave, targets


def ctc_sum(logits: Tensor, targets: Tensor) -> Tensor:
    """Summed CTC loss over unpadded (B, T, V) logits, as FinetuneTask computes it."""
    log_probs = F.log_softmax(logits.float(), dim=-1).transpose(0, 1)
    b, t = logits.shape[:2]
    return F.ctc_loss(log_probs, targets, torch.full((b,), t), torch.full((b,), targets.shape[1]), blank=0,
                      reduction="sum", zero_infinity=True)


def loss_fn(case: Case, impl: str, model: nn.Module, wave: Tensor, targets: Tensor,
            helper_seconds: list[float]) -> Callable[[int], Tensor]:
    """The training loss of update ``n`` (masks, negatives, dropout all drawn afresh)."""
    if impl == "w2v2" and case.task == "pretrain":
        return lambda n: model(wave, rng=np.random.default_rng(n)).loss
    if impl == "w2v2":
        return lambda n: ctc_sum(model(wave, rng=np.random.default_rng(n)).logits, targets)
    if impl == CACHED:
        cache, lengths = FeatureCache(2**34), torch.full((wave.shape[0],), wave.shape[1])
        keys = [f"utt{i}" for i in range(wave.shape[0])]

        def cached_loss(n: int) -> Tensor:
            conv = cache.encode(model.wav2vec2.feature_extractor, wave, lengths, keys)
            return ctc_sum(model(wave, lengths, rng=np.random.default_rng(n), conv_features=conv).logits, targets)
        return cached_loss
    if case.task == "finetune":
        return lambda n: model(wave, labels=targets).loss
    cfg = model.config
    frames = int(model._get_feat_extract_output_lengths(wave.shape[1]))

    def pretrain_loss(n: int) -> Tensor:
        t0 = time.perf_counter()
        np.random.seed(n)
        mask = _compute_mask_indices((wave.shape[0], frames), cfg.mask_time_prob, cfg.mask_time_length,
                                     min_masks=cfg.mask_time_min_masks)
        negs = _sample_negative_indices((wave.shape[0], frames), cfg.num_negatives, mask)
        mask, negs = torch.from_numpy(mask).to(wave.device), torch.from_numpy(negs).long().to(wave.device)
        helper_seconds.append(time.perf_counter() - t0)
        return model(wave, mask_time_indices=mask, sampled_negative_indices=negs).loss
    return pretrain_loss


def update_fn(case: Case, impl: str, model: nn.Module, wave: Tensor, targets: Tensor,
              helper_seconds: list[float]) -> Callable[[], float]:
    """One training update on the batch's device; gradients are released after the step, as the
    Trainer does. fp16 (CUDA) scales the loss as the Trainer's GradScaler does."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR, fused=True)
    loss_of = loss_fn(case, impl, model, wave, targets, helper_seconds)
    counter = itertools.count()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(case.dtype)
    scaler = torch.amp.GradScaler(wave.device.type, enabled=case.dtype == "fp16")

    def update() -> float:
        with torch.autocast(wave.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            loss = loss_of(next(counter))
        scaler.scale(loss.float()).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        value = float(loss.detach())
        if not np.isfinite(value):
            raise SystemExit(f"{impl} {case.key}: non-finite loss {value}")
        return value
    return update


def check_parity(case: Case, ours: nn.Module, theirs: nn.Module, tol: float = PARITY_TOL) -> float:
    """Max |w2v2 - transformers| of the masked encoder output in eval mode (same mask), fp32, on
    the models' device."""
    device = next(ours.parameters()).device
    wave, _ = make_batch(case)
    frames = int(theirs._get_feat_extract_output_lengths(wave.shape[1]))
    mask = torch.from_numpy(_compute_mask_indices((wave.shape[0], frames), 0.5, 10)).to(device)
    ours.eval(), theirs.eval()
    with torch.no_grad():
        a = ours.wav2vec2(wave.to(device), time_mask=mask).last_hidden_state
        b = theirs.wav2vec2(wave.to(device), mask_time_indices=mask).last_hidden_state
    ours.train(), theirs.train()
    diff = (a - b).abs().max().item()
    if diff > tol:
        raise SystemExit(f"{case.key}: w2v2 and transformers disagree by {diff:.2e} (> {tol:g})")
    return diff


def timed_rounds(fns: dict[str, Callable[[], object]], reps: int, warmup: int,
                 bar: tqdm) -> dict[str, dict[str, list[float]]]:
    """Wall and process CPU seconds per call; the order alternates every round (A B, B A, ...).

    With one torch thread the CPU time is the update's own compute, which other processes on a
    shared machine stretch far less than its wall time."""
    names = list(fns)
    times: dict[str, dict[str, list[float]]] = {n: {"wall": [], "cpu": []} for n in names}
    for r in range(warmup + reps):
        for n in names if r % 2 == 0 else names[::-1]:
            w0, c0 = time.perf_counter(), time.process_time()
            fns[n]()
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            if r >= warmup:
                times[n]["wall"].append(wall)
                times[n]["cpu"].append(cpu)
            bar.update()
    return times


def impls(case: Case) -> tuple[str, ...]:
    return IMPLS + ((CACHED,) if case.task == "finetune" else ())


def run_case(case: Case, reps: int, warmup: int, bar: tqdm) -> dict:
    """Fine-tuning also times w2v2 with its feature cache warm, on its own copy of the weights."""
    ours, theirs = build_pair(case)
    parity = check_parity(case, ours, theirs) if case.dtype == "fp32" else None
    wave, targets = make_batch(case)
    helper: list[float] = []
    models = {"w2v2": ours, HF: theirs, CACHED: copy.deepcopy(ours)}
    fns = {impl: update_fn(case, impl, models[impl], wave, targets, helper) for impl in impls(case)}
    times = timed_rounds(fns, reps, warmup, bar)
    ratio = lambda kind, impl="w2v2": statistics.median(  # noqa: E731
        h / w for h, w in zip(times[HF][kind], times[impl][kind]))
    return {"key": case.key, "label": case.label, "task": case.task, "dtype": case.dtype, "parity": parity,
            "ms": {impl: 1e3 * statistics.median(ts["cpu"]) for impl, ts in times.items()},
            "wall_ms": {impl: 1e3 * statistics.median(ts["wall"]) for impl, ts in times.items()},
            "speedup": ratio("cpu"), "wall_speedup": ratio("wall"),
            "cached_speedup": ratio("cpu", CACHED) if CACHED in times else None,
            "hf_helpers_ms": 1e3 * statistics.median(helper) if helper else None,
            "audio_s": case.batch * case.seconds, "times": times}


def probe_memory(key: str, impl: str) -> int:
    """Child-process side: peak RSS increase of one warm update of one implementation."""
    case = CASES_BY_KEY[key]
    torch.manual_seed(0)
    model = build_ours(case) if impl == "w2v2" else build_theirs(case)
    wave, targets = make_batch(case)
    update = update_fn(case, impl, model, wave, targets, [])
    update(), update()  # optimizer state and one-time allocations (oneDNN primitives) are not counted
    return peak_increase_bytes(update)


def memory_in_subprocess(key: str, impl: str) -> int:
    cmd = [sys.executable, __file__, "--threads", str(torch.get_num_threads()), "--probe", key, impl]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return int(json.loads(out.strip().splitlines()[-1])["peak_bytes"])


def profile(key: str, out: Path, rows: int = 30) -> None:
    """torch.profiler tables (self CPU time) of two warm updates per implementation."""
    case = CASES_BY_KEY[key]
    ours, theirs = build_pair(case)
    wave, targets = make_batch(case)
    out.mkdir(parents=True, exist_ok=True)
    for impl, model in (("w2v2", ours), (HF, theirs)):
        update = update_fn(case, impl, model, wave, targets, [])
        update()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            update(), update()
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)
        path = out / f"profile_{key}_{impl}.txt"
        path.write_text(table)
        print(f"== {impl} ({path})\n{table}")


def report(info: dict, rows: list[dict]) -> str:
    mem = lambda r, impl: f"{r['peak_mb'][impl]:.0f}" if "peak_mb" in r else "-"  # noqa: E731
    out = [f"{info['date_utc']} UTC, {info['cpu']}, {info['cores']} cores, torch {info['torch']} "
           f"({info['torch_threads']} threads), transformers {info['transformers']}, attention "
           f"{info['hf_attention']}; load average {info['load_start'][0]:.2f} at start, "
           f"{info['load_end'][0]:.2f} at end", ""]
    out.append(fmt_table(
        ["update", "dtype", "w2v2 CPU ms", "transformers CPU ms", "speed-up (CPU)", "goal", "speed-up (wall)",
         "w2v2 cached CPU ms", "speed-up cached (CPU)", "transformers helpers ms", "w2v2 audio s/CPU s",
         "w2v2 peak MB", "transformers peak MB", "parity (fp32, eval)"],
        [[r["label"], r["dtype"], f"{r['ms']['w2v2']:.0f}", f"{r['ms'][HF]:.0f}", f"{r['speedup']:.2f}x",
          f"{GOALS[r['task']]}x", f"{r['wall_speedup']:.2f}x",
          f"{r['ms'][CACHED]:.0f}" if CACHED in r["ms"] else "-",
          f"{r['cached_speedup']:.2f}x" if r.get("cached_speedup") else "-",
          f"{r['hf_helpers_ms']:.1f}" if r["hf_helpers_ms"] is not None else "-",
          f"{r['audio_s'] / r['ms']['w2v2'] * 1e3:.2f}", mem(r, "w2v2"), mem(r, HF),
          f"{r['parity']:.1e}" if r["parity"] is not None else "-"] for r in rows]))
    return "\n".join(out) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    has_memory = all("peak_mb" in r for r in rows)
    fig, axes = plt.subplots(1, 2 if has_memory else 1, figsize=(14 if has_memory else 8, 4.5), squeeze=False)
    axes = axes[0]
    labels = [f"{r['label']} {r['dtype']}" for r in rows]
    axes[0].barh(labels, [r["speedup"] for r in rows], color="tab:blue")
    for task, goal in GOALS.items():
        axes[0].axvline(goal, color="tab:red" if task == "pretrain" else "tab:orange", ls="--", lw=1,
                        label=f"{task} goal {goal}x")
    axes[0].axvline(1.0, color="k", lw=1)
    axes[0].set_xlabel("update speed-up vs transformers (median of paired ratios)")
    axes[0].legend(loc="lower right")
    axes[0].invert_yaxis()
    if has_memory:
        y = np.arange(len(rows))
        axes[1].barh(y - 0.2, [r["peak_mb"]["w2v2"] for r in rows], 0.4, label="w2v2")
        axes[1].barh(y + 0.2, [r["peak_mb"][HF] for r in rows], 0.4, label=HF)
        axes[1].set_yticks(y, labels)
        axes[1].invert_yaxis()
        axes[1].set_xlabel("peak RSS increase of one update (MB)")
        axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=5, help="timed rounds per case (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    p.add_argument("--cases", nargs="+", choices=sorted(CASES_BY_KEY), help="a subset of the cases")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--quick", action="store_true", help="--reps 2 --no-memory")
    p.add_argument("--profile", choices=sorted(CASES_BY_KEY), help="only profile this case")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    p.add_argument("--probe", nargs=2, metavar="ARG", help=argparse.SUPPRESS)  # KEY IMPL
    args = p.parse_args(argv)
    if args.quick:
        args.reps, args.no_memory = 2, True
    if args.reps < 1 or args.warmup < 0:
        p.error("--reps must be >= 1, --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.probe:
        print(json.dumps({"peak_bytes": probe_memory(*args.probe)}))
        return
    if args.profile:
        profile(args.profile, args.out)
        return
    cases = [CASES_BY_KEY[k] for k in args.cases] if args.cases else CASES
    info = machine()
    info["hf_attention"] = build_theirs(cases[0]).config._attn_implementation
    rows = []
    args.out.mkdir(parents=True, exist_ok=True)
    total = sum(len(impls(c)) for c in cases) * (args.warmup + args.reps)
    with tqdm(total=total, desc="A/B updates", unit="update") as bar:
        for case in cases:  # results are rewritten after every case: a long run can be stopped early
            row = run_case(case, args.reps, args.warmup, bar)
            if not args.no_memory:
                row["peak_mb"] = {impl: memory_in_subprocess(row["key"], impl) / 2 ** 20 for impl in IMPLS}
            rows.append(row)
            info["load_end"] = os.getloadavg()
            text = report(info, rows)
            (args.out / "train_step.md").write_text(text)
            (args.out / "train_step.json").write_text(json.dumps({"machine": info, "rows": rows}, indent=1))
            plot(rows, args.out / "train_step.png")
    print(text)
    print(f"wrote {args.out}/train_step.md, train_step.json, train_step.png")


if __name__ == "__main__":
    main()
