"""Training logs: a JSONL file per run, TensorBoard when installed, PNG curves (``w2v2 plot``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class RunLog:
    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.path = run_dir / "log.jsonl"
        self.enabled = enabled
        self.tb = None
        if enabled:
            run_dir.mkdir(parents=True, exist_ok=True)
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:  # tensorboard is optional
                self.tb = None

    def write(self, kind: str, num_updates: int, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({"kind": kind, "update": num_updates, **values}) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)):
                    self.tb.add_scalar(f"{kind}/{k}", v, num_updates)
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "log.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no training log in this run directory")
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a kill
    return rows


def plot_run(run_dir: Path, out: Path | None = None) -> Path:
    """Curves of every logged quantity, train and validation, against updates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_log(run_dir)
    keys = sorted({k for r in rows for k, v in r.items() if isinstance(v, (int, float)) and k != "update"})
    if not keys:
        raise ValueError(f"{run_dir}: the log has no values to plot")
    cols = 3
    nrows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 2.8 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for kind, style in (("train", "-"), ("valid", "o-")):
            pts = [(r["update"], r[key]) for r in rows if r.get("kind") == kind and isinstance(r.get(key), (int, float))]
            if pts:
                ax.plot(*zip(*pts), style, label=kind, markersize=3)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("update", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    out = out or Path(run_dir) / "curves.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
