"""``w2v2 experiment ablation``: pre-training variants with one budget (paper section 5.4, table 4).

Each variant pre-trains from the same seed with the same number of updates and minutes, is
fine-tuned with the same recipe on the same labeled set, and is scored by its validation
contrastive accuracy and its greedy (no LM) WER on the test set.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..analysis.report import markdown_table
from ..train.logs import read_log
from .budget import SCALES
from .lowres import check_disjoint
from .report import minutes_of
from .stages import StageRunner

VARIANTS: dict[str, list[str]] = {
    # table 4: what the Transformer reads (continuous z or quantized q) and what it must identify;
    # both switches spelled out, and the latents (not MFCC units) as targets, whatever a budget's own
    # pre-training settings are
    "continuous inputs, quantized targets (paper)": ["quantize_input=False", "quantize_targets=True", "target_units=0"],
    "quantized inputs, quantized targets": ["quantize_input=True", "quantize_targets=True", "target_units=0"],
    "quantized inputs, continuous targets": ["quantize_input=True", "quantize_targets=False", "target_units=0"],
    "continuous inputs, continuous targets": ["quantize_input=False", "quantize_targets=False", "target_units=0"],
    # other knobs worth having
    "mask probability 0.5": ["mask_prob=0.5"],
    "K=20 negatives": ["num_negatives=20"],
    "no diversity loss": ["diversity_weight=0.0"],
}


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


def last_valid(run: Path) -> dict:
    rows = [r for r in read_log(run) if r.get("kind") == "valid"]
    return rows[-1] if rows else {}


def run_ablation(args: argparse.Namespace) -> Path:
    out, b = Path(args.out), SCALES[args.scale]
    check_disjoint([Path(args.unlabeled), Path(args.labeled)], [Path(args.dev), Path(args.test)])
    runner = StageRunner(out)
    names = list(VARIANTS) if not args.variants else [n for n in VARIANTS if slug(n) in args.variants]
    if not names:
        raise ValueError(f"no variant matches {args.variants}; choose from {[slug(n) for n in VARIANTS]}")
    rows, labeled_minutes = [], minutes_of(Path(args.labeled))
    for name in names:
        d = out / slug(name)
        runner.run(f"pretrain {name}", b.pretrain_args(args.unlabeled, d / "pretrain", args.seed, VARIANTS[name]),
                   d / "pretrain", resumable=True)
        runner.run(f"finetune {name}", b.finetune_args(args.labeled, labeled_minutes, args.dev, d / "finetune",
                                                       str(d / "pretrain" / "best"), args.seed),
                   d / "finetune", resumable=True)
        runner.run(f"evaluate {name}", ["evaluate", str(d / "finetune" / "best"), args.test, "--out",
                                        str(d / "eval")], d / "eval")
        v = last_valid(d / "pretrain")
        m = json.loads((d / "eval" / "metrics.json").read_text())
        code_ppl = f"{v['code_ppl']:.1f}" if v.get("code_ppl") else "–"  # no target quantizer: no codes
        rows.append([name, " ".join(VARIANTS[name]) or "—", f"{v.get('acc', float('nan')):.3f}",
                     f"{v.get('contrastive', float('nan')):.3f}", code_ppl, f"{100 * m['wer']:.1f}",
                     f"{100 * m['cer']:.1f}"])
    table = markdown_table(["variant", "config", "valid acc", "valid contrastive loss", "code ppl", "test WER %",
                            "test CER %"], rows, "llrrrrr")
    minutes = sum(r["seconds"] for r in runner.records) / 60
    report = out / "ablation.md"
    report.write_text(f"# Ablations (paper table 4) at `{b.preset}` scale\n\nSame budget per variant: "
                      f"{b.pretrain_updates} updates / {b.pretrain_minutes} min of pre-training, "
                      f"{b.finetune_updates} updates / {b.finetune_minutes} min of fine-tuning on `{args.labeled}`, "
                      f"greedy decoding of `{args.test}`. Total {minutes:.0f} min.\n\n{table}\n")
    print(report.read_text())
    return report


def add_parser(esub: argparse._SubParsersAction) -> None:
    q = esub.add_parser("ablation", help="pre-training variants with the same budget (paper table 4)")
    q.add_argument("--unlabeled", required=True)
    q.add_argument("--labeled", required=True, help="one labeled manifest for the fine-tuning of every variant")
    q.add_argument("--dev", required=True)
    q.add_argument("--test", required=True)
    q.add_argument("--out", required=True)
    q.add_argument("--scale", default="demo", choices=sorted(SCALES))
    q.add_argument("--variants", nargs="*", help=f"subset, by slug: {', '.join(slug(n) for n in VARIANTS)}")
    q.add_argument("--seed", type=int, default=1)
    q.set_defaults(func=run_ablation)
