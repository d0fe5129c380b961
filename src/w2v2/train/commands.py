"""Training sub-commands: pretrain, plot."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import estimate, finetune, pretrain
from .logs import plot_run


def cmd_plot(args: argparse.Namespace) -> None:
    out = plot_run(Path(args.run_dir), Path(args.out) if args.out else None)
    print(f"wrote {out}")


def register(sub: argparse._SubParsersAction) -> None:
    pretrain.register(sub)
    finetune.register(sub)
    estimate.register(sub)
    p = sub.add_parser("plot", help="training curves of a run directory to PNG")
    p.add_argument("run_dir")
    p.add_argument("--out", help="PNG path (default RUN_DIR/curves.png)")
    p.set_defaults(func=cmd_plot)
