"""Validation accuracy against updates of the small-compute study's pre-training runs:
``python scripts/small_compute_plot.py /tmp/study/runs docs/small_compute_curves.png``."""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(runs: Path, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    for run in sorted(runs.iterdir()):
        log = run / "log.jsonl"
        if not log.is_file():
            continue
        rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        valid = [r for r in rows if r["kind"] == "valid" and "acc" in r]
        if valid:
            ax.plot([r["update"] for r in valid], [r["acc"] for r in valid], "o-", label=run.name)
    ax.set_xlabel("update")
    ax.set_ylabel("validation contrastive accuracy")
    ax.set_ylim(0, 0.4)  # X1's collapse (accuracy 1.0) is off the chart
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
