"""Markdown tables and PNG figures for the analysis reports."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from ..interop.model_dir import atomic_write


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> str:
    """A GitHub Markdown table; ``align`` is one character per column, "l" or "r" (default "l")."""
    align = align.ljust(len(header), "l")
    def cell(v: object) -> str:
        return (f"{v:.4g}" if isinstance(v, float) else str(v)).replace("|", "\\|")
    lines = ["| " + " | ".join(cell(h) for h in header) + " |",
             "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_text(path: str | Path, text: str) -> None:
    atomic_write(Path(path), lambda p: p.write_text(text, encoding="utf-8"))


def save_figure(fig: Figure, path: str | Path) -> None:
    """Save a matplotlib figure (built with ``matplotlib.figure.Figure``, no GUI backend) as PNG."""
    atomic_write(Path(path), lambda p: fig.savefig(p, format="png", dpi=120, bbox_inches="tight"))
