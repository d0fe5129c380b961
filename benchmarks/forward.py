"""Forward-pass speed and memory of w2v2 BASE against transformers' Wav2Vec2Model, identical weights.

    .venv/bin/python benchmarks/forward.py            # full run (~10 min on the idle 2-core machine)
    .venv/bin/python benchmarks/forward.py --quick    # 2 rounds, lengths 5-20 s (~3 min)

Each timed group interleaves the implementations and a 4096^3 matmul (this CPU's peak, measured in the
same minutes) in rounds A B C M, M C B A, ...; the figures are medians over ``--reps`` rounds after
``--warmup`` rounds, the speed-ups medians of the per-round ratios. Peak memory is measured in a fresh
subprocess per implementation and configuration (peak_rss.py). FLOPs are counted analytically
(flop_count.py) and cross-checked with torch's FlopCounterMode. Writes results.md, results.json and
forward.png to ``--out`` (default benchmarks/forward/).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import torch
import transformers
from torch import Tensor, nn
from tqdm import tqdm

from flop_count import counted_flops, forward_flops
from peak_rss import peak_increase_bytes
from w2v2.interop.hf import config_to_hf, state_to_hf
from w2v2.interop.model_dir import full_state_dict
from w2v2.model import build_model, preset

SAMPLE_RATE = 16000
PEAK_N = 4096
PARITY_TOL = 1e-4
HF = "transformers"
IMPLS = ("w2v2", "w2v2+lengths", HF)  # w2v2 without lengths runs like transformers' group-norm models
MATMUL = "matmul peak"


@dataclass(frozen=True)
class Case:
    label: str
    seconds: tuple[float, ...]
    dtype: str  # "fp32" or "bf16" (autocast)
    impls: tuple[str, ...]


MAIN_CASES = [Case(label, secs, dtype, impls)
              for dtype in ("fp32", "bf16")
              for label, secs, impls in (("1 x 10 s", (10.0,), ("w2v2", HF)),
                                         ("10/8/6/4 s padded", (10.0, 8.0, 6.0, 4.0), IMPLS))]


def build_hf() -> nn.Module:
    return transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**config_to_hf(preset("base"), "Wav2Vec2Model")))


def build_pair(seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """w2v2 BASE with random weights, and transformers' Wav2Vec2Model holding the same weights."""
    torch.manual_seed(seed)
    ours = build_model(preset("base")).eval()
    theirs = build_hf()
    theirs.load_state_dict(state_to_hf(full_state_dict(ours), ""))  # strict: every key has to match
    return ours, theirs.eval()


def padded_batch(seconds: tuple[float, ...], seed: int = 0) -> tuple[Tensor, Tensor]:
    lengths = torch.tensor([round(s * SAMPLE_RATE) for s in seconds])
    g = torch.Generator().manual_seed(seed)
    wave = torch.zeros(len(seconds), int(lengths.max()))
    for i, n in enumerate(lengths.tolist()):
        wave[i, :n] = torch.randn(n, generator=g)
    return wave, lengths


def forward_fn(impl: str, model: nn.Module, wave: Tensor, lengths: Tensor, dtype: str) -> Callable[[], Tensor]:
    """One inference forward of ``impl``; bf16 runs under CPU autocast."""
    def run() -> Tensor:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
            if impl == HF:
                return model(wave).last_hidden_state
            return model(wave, lengths if impl == "w2v2+lengths" else None).last_hidden_state
    return run


def matmul_fn(dtype: str) -> Callable[[], Tensor]:
    dt = torch.bfloat16 if dtype == "bf16" else torch.float32
    a, b = torch.randn(PEAK_N, PEAK_N).to(dt), torch.randn(PEAK_N, PEAK_N).to(dt)
    return lambda: torch.mm(a, b)


def interleaved(fns: dict[str, Callable[[], object]], reps: int, warmup: int, bar: tqdm) -> dict[str, list[float]]:
    """Wall seconds per call; the order alternates every round so that no function always runs first."""
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warmup + reps):
        for n in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            fns[n]()
            dt = time.perf_counter() - t0
            if r >= warmup:
                times[n].append(dt)
            bar.update()
    return times


def check_parity(ours: nn.Module, theirs: nn.Module) -> dict[str, float]:
    """Max |w2v2 - transformers| of the last hidden state; stops the run above PARITY_TOL in fp32."""
    diffs = {}
    for label, secs, dtype in (("1 x 10 s fp32", (10.0,), "fp32"), ("10/8/6/4 s fp32", (10.0, 8.0, 6.0, 4.0), "fp32"),
                               ("1 x 10 s bf16", (10.0,), "bf16")):
        wave, lengths = padded_batch(secs)
        a = forward_fn("w2v2", ours, wave, lengths, dtype)().float()
        b = forward_fn(HF, theirs, wave, lengths, dtype)().float()
        diffs[label] = (a - b).abs().max().item()
        if dtype == "fp32" and diffs[label] > PARITY_TOL:
            raise SystemExit(f"w2v2 and transformers disagree by {diffs[label]:.2e} on {label} (> {PARITY_TOL:g})")
    return diffs


def probe_memory(impl: str, dtype: str, seconds: tuple[float, ...], warmup: int) -> int:
    """Child-process side: peak RSS increase of one forward of one implementation after ``warmup``
    forwards (with none, one-time oneDNN allocations count too). Random weights: the values do not
    change the memory."""
    model = (build_hf() if impl == HF else build_model(preset("base"))).eval()
    wave, lengths = padded_batch(seconds)
    run = forward_fn(impl, model, wave, lengths, dtype)
    for _ in range(warmup):
        run()
    return peak_increase_bytes(run)


def memory_in_subprocess(impl: str, dtype: str, seconds: tuple[float, ...], warmup: int) -> int:
    cmd = [sys.executable, __file__, "--threads", str(torch.get_num_threads()), "--warmup", str(warmup),
           "--probe", impl, dtype, *map(str, seconds)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return int(json.loads(out.strip().splitlines()[-1])["peak_bytes"])


def machine() -> dict[str, object]:
    model_name = next((line.split(":", 1)[1].strip() for line in subprocess.run(
        ["lscpu"], capture_output=True, text=True).stdout.splitlines() if line.startswith("Model name")), "?")
    return {"cpu": model_name, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
            "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
            "load_start": os.getloadavg()}


def run_main(ours: nn.Module, theirs: nn.Module, cases: list[Case], reps: int, warmup: int) -> list[dict]:
    cfg = preset("base")
    rows = []
    total = sum((warmup + reps) * (len(c.impls) + 1) for c in cases)
    with tqdm(total=total, desc="A/B timing", unit="call") as bar:
        for case in cases:
            wave, lengths = padded_batch(case.seconds)
            fns: dict[str, Callable[[], object]] = {
                impl: forward_fn(impl, theirs if impl == HF else ours, wave, lengths, case.dtype) for impl in case.impls}
            fns[MATMUL] = matmul_fn(case.dtype)
            times = interleaved(fns, reps, warmup, bar)
            peak = statistics.median(2 * PEAK_N ** 3 / t for t in times[MATMUL]) / 1e9
            flops = sum(forward_flops(cfg, wave.shape[0], wave.shape[1]).values())
            for impl in case.impls:
                med = statistics.median(times[impl])
                rows.append({"input": case.label, "dtype": case.dtype, "impl": impl, "ms": 1e3 * med,
                             "speedup_vs_hf": statistics.median(h / t for h, t in zip(times[HF], times[impl])),
                             "gflop": flops / 1e9, "gflops": flops / med / 1e9, "peak_gflops": peak,
                             "pct_peak": 100 * flops / med / 1e9 / peak, "seconds": case.seconds, "times": times[impl]})
    return rows


def run_scaling(ours: nn.Module, theirs: nn.Module, lengths: list[float], reps: int, warmup: int,
                dtype: str) -> list[dict]:
    cfg = preset("base")
    rows = []
    with tqdm(total=len(lengths) * 2 * (warmup + reps), desc=f"length scaling ({dtype})", unit="call") as bar:
        for sec in lengths:
            wave, lens = padded_batch((sec,))
            times = interleaved({impl: forward_fn(impl, theirs if impl == HF else ours, wave, lens, dtype)
                                 for impl in ("w2v2", HF)}, reps, warmup, bar)
            flops = sum(forward_flops(cfg, 1, wave.shape[1]).values())
            for impl, ts in times.items():
                med = statistics.median(ts)
                rows.append({"seconds": sec, "dtype": dtype, "impl": impl, "ms": 1e3 * med, "gflop": flops / 1e9,
                             "gflops": flops / med / 1e9, "times": ts})
    return rows


def add_memory(rows: list[dict], key: Callable[[dict], tuple[str, str, tuple[float, ...]]], warmup: int,
               desc: str) -> None:
    for row in tqdm(rows, desc=desc, unit="process"):
        row["peak_mb"] = memory_in_subprocess(*key(row), warmup) / 2 ** 20


def fmt_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def report(results: dict) -> str:
    info, parity, flop_check = results["machine"], results["parity"], results["flops"]
    main, scaling = results["main"], results["scaling"]
    mem = lambda r: f"{r['peak_mb']:.1f}" if "peak_mb" in r else "-"  # noqa: E731
    out = [f"{info['date_utc']} UTC, {info['cpu']}, {info['cores']} cores, torch {info['torch']} "
           f"({info['torch_threads']} threads), transformers {info['transformers']}; "
           f"load average {info['load_start'][0]:.2f} at start, {info['load_end'][0]:.2f} at end",
           "", "Parity (max |w2v2 - transformers|, last hidden state): "
           + ", ".join(f"{k} {v:.1e}" for k, v in parity.items()),
           "", "FLOPs for 1 x 10 s (analytic, by part): "
           + ", ".join(f"{k} {v / 1e9:.1f}" for k, v in flop_check["parts"].items())
           + f"; total {flop_check['analytic'] / 1e9:.1f} GFLOP. FlopCounterMode on w2v2: "
           f"{flop_check['counted'] / 1e9:.1f} GFLOP (convolutions + addmm; no formula for the CPU attention "
           f"kernel) + attention {flop_check['attention'] / 1e9:.1f} = "
           f"{(flop_check['counted'] + flop_check['attention']) / 1e9:.1f} GFLOP.", ""]
    out.append(fmt_table(
        ["input", "dtype", "implementation", "median ms", "speed-up vs transformers", "GFLOP", "GFLOP/s",
         "matmul peak GFLOP/s", "% of peak", "peak RSS increase MB"],
        [[r["input"], r["dtype"], r["impl"], f"{r['ms']:.0f}", f"{r['speedup_vs_hf']:.3f}", f"{r['gflop']:.1f}",
          f"{r['gflops']:.1f}", f"{r['peak_gflops']:.1f}", f"{r['pct_peak']:.0f}%", mem(r)] for r in main]))
    if scaling:
        by = {(r["seconds"], r["impl"]): r for r in scaling}
        secs = sorted({r["seconds"] for r in scaling})
        out += ["", fmt_table(
            ["audio s", "GFLOP", "w2v2 ms", "transformers ms", "speed-up", "w2v2 GFLOP/s", "w2v2 peak MB",
             "transformers peak MB"],
            [[f"{s:g}", f"{by[s, 'w2v2']['gflop']:.0f}", f"{by[s, 'w2v2']['ms']:.0f}", f"{by[s, HF]['ms']:.0f}",
              f"{by[s, HF]['ms'] / by[s, 'w2v2']['ms']:.3f}", f"{by[s, 'w2v2']['gflops']:.1f}",
              mem(by[s, "w2v2"]), mem(by[s, HF])] for s in secs])]
    return "\n".join(out) + "\n"


def plot(main: list[dict], scaling: list[dict], path: Path) -> None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    labels = [f"{r['input']}\n{r['dtype']} {r['impl']}" for r in main if r["impl"] != HF]
    axes[0].barh(labels, [r["speedup_vs_hf"] for r in main if r["impl"] != HF], color="tab:blue")
    axes[0].axvline(1.0, color="k", lw=1)
    axes[0].set_xlabel("speed-up vs transformers (median of paired ratios)")
    axes[0].invert_yaxis()
    for impl, style in (("w2v2", "o-"), (HF, "s--")):
        rs = [r for r in scaling if r["impl"] == impl]
        axes[1].plot([r["seconds"] for r in rs], [r["ms"] / 1e3 for r in rs], style, label=impl)
        if all("peak_mb" in r for r in rs) and rs:
            axes[2].plot([r["seconds"] for r in rs], [r["peak_mb"] for r in rs], style, label=impl)
    dtype = scaling[0]["dtype"] if scaling else ""
    axes[1].set(xlabel="audio length (s)", ylabel=f"forward time (s), {dtype}", title="time vs length")
    axes[2].set(xlabel="audio length (s)", ylabel="peak RSS increase (MB)", title="memory vs length")
    for ax in axes[1:]:
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=5, help="timed rounds per A/B group (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    p.add_argument("--lengths", type=float, nargs="*", default=[5, 10, 20, 30, 60],
                   help="audio seconds for the length scaling; none to skip it")
    p.add_argument("--scaling-reps", type=int, default=1, help="timed rounds per length (default 1)")
    p.add_argument("--scaling-dtype", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--quick", action="store_true", help="--reps 2 --lengths 5 10 20")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "forward")
    p.add_argument("--probe", nargs="+", metavar="ARG", help=argparse.SUPPRESS)  # IMPL DTYPE SECONDS...
    args = p.parse_args(argv)
    if args.quick:
        args.reps, args.lengths = 2, [5.0, 10.0, 20.0]
    if args.reps < 1 or args.warmup < 0 or args.scaling_reps < 1:
        p.error("--reps and --scaling-reps must be >= 1, --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.probe:
        impl, dtype, *secs = args.probe
        print(json.dumps({"peak_bytes": probe_memory(impl, dtype, tuple(map(float, secs)), args.warmup)}))
        return
    info = machine()
    ours, theirs = build_pair()
    print(f"transformers attention implementation: {theirs.config._attn_implementation}")
    parity = check_parity(ours, theirs)
    print("parity:", parity)
    cfg, ten_s = preset("base"), padded_batch((10.0,))[0]
    parts = forward_flops(cfg, 1, ten_s.shape[1])
    flop_check = {"parts": parts, "analytic": sum(parts.values()), "counted": counted_flops(ours, ten_s),
                  "attention": parts["attention (QK^T, AV)"]}
    results = {"machine": info, "parity": parity, "flops": flop_check, "main": [], "scaling": []}
    results["main"] = run_main(ours, theirs, MAIN_CASES, args.reps, args.warmup)
    save(results, args.out)
    if not args.no_memory:
        add_memory(results["main"], lambda r: (r["impl"], r["dtype"], r["seconds"]), args.warmup, "peak memory (main)")
        save(results, args.out)
    if args.lengths:
        results["scaling"] = run_scaling(ours, theirs, args.lengths, args.scaling_reps, args.warmup,
                                         args.scaling_dtype)
        save(results, args.out)
        if not args.no_memory:
            add_memory(results["scaling"], lambda r: (r["impl"], r["dtype"], (r["seconds"],)), args.warmup,
                       "peak memory (scaling)")
            save(results, args.out)
    print(report(results))


def save(results: dict, out: Path) -> None:
    """Written after every phase, so that an interrupted run still leaves what it measured."""
    results["machine"]["load_end"] = os.getloadavg()
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(report(results))
    (out / "results.json").write_text(json.dumps(results, indent=1))
    plot(results["main"], results["scaling"], out / "forward.png")

if __name__ == "__main__":
    main()
