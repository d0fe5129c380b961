"""Positional convolution: direct grouped conv1d against the FFT path, forward + backward.

    .venv/bin/python benchmarks/pos_conv.py            # fp32 sweep and the bf16-autocast rows
    .venv/bin/python benchmarks/pos_conv.py --quick    # fewer shapes

The data behind ``w2v2.model.fft_conv.fft_is_faster``: kernel 128, 16 groups (every preset), widths
256 (tiny), 768 (BASE), 1024 (LARGE), batch x frames from 1 x 50 to 4 x 780. Each row is the best of
two rounds of two (forward + backward) calls per method, interleaved; the last column says whether
the cost model picks the faster method. Writes pos_conv.md and pos_conv.json to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from forward import fmt_table, machine
from w2v2.model.fft_conv import FFTGroupedConv, fft_is_faster

KERNEL, GROUPS = 128, 16
SHAPES = [(1, 50), (1, 200), (2, 199), (1, 500), (4, 299), (1, 1500), (8, 199), (16, 100), (4, 780)]


def direct(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    y = F.conv1d(x.transpose(1, 2), w, padding=KERNEL // 2, groups=GROUPS)[:, :, :-1]
    return y.transpose(1, 2)


def fft(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return FFTGroupedConv.apply(x, w, GROUPS)


def seconds(fn, x: torch.Tensor, w: torch.Tensor, low_precision: bool, calls: int = 2) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=low_precision and fn is direct):
            y = fn(x, w)
        y.float().square().sum().backward()
    return (time.perf_counter() - t0) / calls


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = p.parse_args()
    shapes = SHAPES[::2] if args.quick else SHAPES
    rows = []
    for low_precision in (False, True):
        for c in (256, 768, 1024):
            if low_precision and c == 1024:
                continue
            for b, t in shapes:
                torch.manual_seed(0)
                x = torch.randn(b, t, c, requires_grad=True)
                w = (0.02 * torch.randn(c, c // GROUPS, KERNEL)).requires_grad_()
                best = {"direct": float("inf"), "fft": float("inf")}
                for _ in range(2):
                    for name, fn in (("direct", direct), ("fft", fft)):
                        best[name] = min(best[name], seconds(fn, x, w, low_precision))
                pick = fft_is_faster(b, t, KERNEL, c // GROUPS, backward=True, low_precision=low_precision)
                rows.append({"direct_dtype": "bf16" if low_precision else "fp32", "channels": c, "batch": b,
                             "frames": t, "direct_ms": 1e3 * best["direct"], "fft_ms": 1e3 * best["fft"],
                             "model_picks": "fft" if pick else "direct"})
                print(rows[-1], flush=True)
    table = fmt_table(
        ["direct conv", "channels", "B x T", "direct ms", "FFT ms", "direct / FFT", "cost model picks",
         "picks the faster"],
        [[r["direct_dtype"], r["channels"], f"{r['batch']} x {r['frames']}", f"{r['direct_ms']:.1f}",
          f"{r['fft_ms']:.1f}", f"{r['direct_ms'] / r['fft_ms']:.2f}", r["model_picks"],
          "yes" if (r["model_picks"] == "fft") == (r["fft_ms"] < r["direct_ms"]) else "no"] for r in rows])
    info = machine()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pos_conv.md").write_text(f"{info['date_utc']} UTC, {info['cpu']}, torch {info['torch']} "
                                          f"({info['torch_threads']} threads); forward + backward, kernel "
                                          f"{KERNEL}, {GROUPS} groups, FFT in fp32\n\n{table}\n")
    (args.out / "pos_conv.json").write_text(json.dumps({"machine": info, "rows": rows}, indent=1))
    print(table)


if __name__ == "__main__":
    main()
