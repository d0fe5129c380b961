"""End-to-end pre-training throughput of ``w2v2 pretrain --preset tiny``, data loading included.

    .venv/bin/python benchmarks/throughput.py                       # 0, 1 and 2 loader workers, 4 min each
    .venv/bin/python benchmarks/throughput.py --minutes 1 --workers 1
    .venv/bin/python benchmarks/throughput.py --workers 1 --crop-multiple 8000   # the real budget's crops

Builds a manifest of /work/shared/data/splits/unlabeled.tsv (``w2v2 data manifest``) unless
``--manifest`` is given, then runs the unchanged ``w2v2 pretrain`` for ``--minutes`` of wall time per
worker count (validation and checkpoints pushed past the end of the run) and reads its log.jsonl:
every ``log_every`` updates the trainer logs ``audio_h_per_h`` (audio hours trained per wall-clock
hour over the interval) and ``stall`` (the fraction of the interval spent waiting for the next batch).
The first interval (process start, worker start-up, first batches) is reported apart from the steady
state. Writes throughput.md, throughput.json and throughput.png to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib
from tqdm import tqdm

from forward import fmt_table, machine
from w2v2.train.logs import read_log

SPLIT = Path("/work/shared/data/splits/unlabeled.tsv")
DATA_ROOT = Path("/work/shared/data")
W2V2 = str(Path(sys.executable).with_name("w2v2"))


def build_manifest(out: Path) -> Path:
    path = out / "unlabeled.tsv"
    subprocess.run([W2V2, "data", "manifest", "--split", str(SPLIT), "--data-root", str(DATA_ROOT),
                    "--out", str(path)], check=True, capture_output=True, text=True)
    return path


def pretrain_command(manifest: Path, run_dir: Path, workers: int | str, minutes: float, log_every: int,
                     crop_multiple: int) -> list[str]:
    return [W2V2, "pretrain", "--preset", "tiny", "--train", str(manifest), "--out", str(run_dir),
            "--num-workers", str(workers), "--max-minutes", str(minutes), "--log-every", str(log_every),
            "--validate-every", "1000000", "--save-every", "1000000", "--crop-multiple", str(crop_multiple)]


def weighted(rows: list[dict], key: str) -> float:
    """Time-weighted mean of a per-interval rate (each interval lasts log_every / ups seconds)."""
    secs = [1.0 / r["ups"] for r in rows]  # the same number of updates per interval
    return sum(r[key] * s for r, s in zip(rows, secs)) / sum(secs)


def summarize(run_dir: Path, workers: int, wall: float) -> dict:
    rows = [r for r in read_log(run_dir) if r["kind"] == "train"]
    if len(rows) < 2:
        raise SystemExit(f"{run_dir}/log.jsonl: fewer than 2 training log rows; run longer (--minutes)")
    steady = rows[1:]
    return {"workers": workers, "updates": rows[-1]["update"], "wall_s": wall,
            "audio_h_per_h": weighted(steady, "audio_h_per_h"), "stall": weighted(steady, "stall"),
            "ups": weighted(steady, "ups"), "max_stall": max(r["stall"] for r in steady),
            "first_audio_h_per_h": rows[0]["audio_h_per_h"], "first_stall": rows[0]["stall"],
            "curve": [(r["update"], r["audio_h_per_h"], r["stall"]) for r in rows]}


def report(info: dict, results: list[dict], command: str) -> str:
    out = [f"{info['date_utc']} UTC, {info['cpu']}, {info['cores']} cores, torch {info['torch']}; "
           f"load average {info['load_start'][0]:.2f} at start, {info['load_end'][0]:.2f} at end", "",
           f"Per run: `{command}`", ""]
    out.append(fmt_table(
        ["loader workers", "updates", "audio h / wall h (steady)", "stall (steady)", "max stall of an interval",
         "updates/s", "first interval: audio h / h", "first interval: stall"],
        [[r["workers"], r["updates"], f"{r['audio_h_per_h']:.2f}", f"{100 * r['stall']:.1f}%",
          f"{100 * r['max_stall']:.1f}%", f"{r['ups']:.3f}", f"{r['first_audio_h_per_h']:.2f}",
          f"{100 * r['first_stall']:.1f}%"] for r in results]))
    return "\n".join(out) + "\n"


def plot(results: list[dict], path: Path) -> None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for r in results:
        updates, rate, stall = zip(*r["curve"])
        axes[0].plot(updates, rate, "o-", ms=3, label=f"{r['workers']} workers")
        axes[1].plot(updates, [100 * s for s in stall], "o-", ms=3, label=f"{r['workers']} workers")
    axes[0].set(xlabel="update", ylabel="audio hours per wall-clock hour", title="w2v2 pretrain --preset tiny")
    axes[1].set(xlabel="update", ylabel="time waiting for data (%)", title="loader stall per log interval")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="loader worker counts (default 0 1 2)")
    p.add_argument("--minutes", type=float, default=4.0, help="wall time of each run (default 4)")
    p.add_argument("--log-every", type=int, default=10, help="updates per log interval (default 10)")
    p.add_argument("--crop-multiple", type=int, default=0,
                   help="w2v2 pretrain --crop-multiple (crops rounded down to this many samples; default 0: none)")
    p.add_argument("--manifest", type=Path, help="an existing manifest (default: built from the unlabeled split)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    p.add_argument("--runs-dir", type=Path,
                   help="where the pre-training runs (checkpoints, logs) go; default: a temporary folder, removed "
                        "at the end (they are hundreds of MB and must not land in the repository)")
    args = p.parse_args(argv)
    if args.minutes <= 0 or args.log_every < 1 or min(args.workers) < 0 or args.crop_multiple < 0:
        p.error("--minutes must be > 0, --log-every >= 1, --workers >= 0, --crop-multiple >= 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.runs_dir is None:
        with tempfile.TemporaryDirectory(prefix="w2v2-throughput-") as tmp:
            measure(args, Path(tmp))
    else:
        if args.runs_dir.exists() and any(args.runs_dir.iterdir()):
            raise SystemExit(f"{args.runs_dir} is not empty: remove it or choose another --runs-dir")
        args.runs_dir.mkdir(parents=True, exist_ok=True)
        measure(args, args.runs_dir)


def measure(args: argparse.Namespace, runs: Path) -> None:
    info = machine()
    manifest = args.manifest or build_manifest(args.out)
    results = []
    for workers in tqdm(args.workers, desc="pretrain runs", unit="run"):
        cmd = pretrain_command(manifest, runs / f"workers{workers}", workers, args.minutes, args.log_every,
                               args.crop_multiple)
        t0 = time.time()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        results.append(summarize(runs / f"workers{workers}", workers, time.time() - t0))
    info["load_end"] = os.getloadavg()
    shown = " ".join(pretrain_command(Path("unlabeled.tsv"), Path("RUN"), "N", args.minutes, args.log_every,
                                      args.crop_multiple))
    text = report(info, results, shown.replace(W2V2, "w2v2"))
    print(text)
    (args.out / "throughput.md").write_text(text)
    (args.out / "throughput.json").write_text(json.dumps({"machine": info, "runs": results}, indent=1))
    plot(results, args.out / "throughput.png")
    print(f"wrote {args.out}/throughput.md, throughput.json, throughput.png")


if __name__ == "__main__":
    main()
