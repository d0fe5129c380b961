"""Validation accuracy against updates of the small-compute study's pre-training runs:
``python scripts/small_compute_plot.py /tmp/study/runs docs/small_compute_curves.png [RUN ...]``
(only the named run directories when some are given).

Two panels: the first session's batched validation (clips cropped to the shortest of their
batch) and the per-clip validation that replaced it (its rows carry ``masked_frames``); the two
measures differ for the same model (docs/small_compute.md), so they are not drawn together."""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(runs: Path, out: Path, names: list[str]) -> None:
    titles = {"batched": "batched validation (first session; not comparable across batch sizes)",
              "per-clip": "per-clip validation (from the second session)",
              "cer": "fine-tuning: dev CER"}
    series: dict[str, list] = {kind: [] for kind in titles}
    for run in [runs / n for n in names] if names else sorted(runs.iterdir()):
        log = run / "log.jsonl"
        if not log.is_file():
            continue
        rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        valid = [r for r in rows if r["kind"] == "valid" and "acc" in r]
        cer = [r for r in rows if r["kind"] == "valid" and "cer" in r]
        if cer:
            series["cer"].append((run.name, cer))
        if valid:
            series["per-clip" if "masked_frames" in valid[-1] else "batched"].append((run.name, valid))
    kinds = [k for k in titles if series[k]]  # a panel only for the measures some run used
    if not kinds:
        raise SystemExit(f"{runs}: no run directory with validation rows in its log.jsonl")
    fig, axes = plt.subplots(1, len(kinds), figsize=(6 * len(kinds), 4), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        key = "cer" if kind == "cer" else "acc"
        for name, valid in series[kind]:
            ax.plot([r["update"] for r in valid], [r[key] for r in valid], "o-", label=name)
        ax.set_xlabel("update")
        ax.set_ylabel("dev CER %" if kind == "cer" else "validation contrastive accuracy")
        ax.set_title(titles[kind], fontsize=9)
        if kind != "cer":
            ax.set_ylim(0, 0.4)  # X1's collapse (accuracy 1.0) is off the chart
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
