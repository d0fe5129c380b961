"""The experiment report: Markdown and a self-contained HTML page (figures inlined)."""

from __future__ import annotations

import argparse
import base64
import html
import json
import os
import platform
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from ..analysis.report import markdown_table
from ..config import W2V2Config
from ..data.manifest import read_manifest
from ..interop.model_dir import atomic_write
from ..train.logs import plot_run, read_log
from .budget import Budget

COLORS = {("letters", "pretrained"): "tab:blue", ("letters", "scratch"): "tab:red",
          ("phones", "pretrained"): "tab:green", ("phones", "scratch"): "tab:orange"}
LM_NAMES = {"greedy": "None", "ngram": "4-gram", "transformer": "Transformer", "rescore": "4-gram + Transformer rescoring"}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def git_commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).parent).stdout.strip() or "unknown"


def versions() -> str:
    import numpy
    import torch

    from .. import __version__

    commit = git_commit()
    return (f"w2v2 {__version__} (git {commit}), Python {platform.python_version()}, torch {torch.__version__}, "
            f"numpy {numpy.__version__}")


def minutes_of(manifest: Path) -> float:
    return sum(e.samples for e in read_manifest(manifest)) / 16000 / 60


def stage_seconds(records: list[dict], name: str) -> float:
    return sum(r["seconds"] for r in records if r["stage"] == name)


def manifest_names(manifests: list[Path]) -> list[str]:
    """Distinct names of manifests, for folders, stages and report columns: the file stem, and
    where names clash, the stem after as many parent folder names as tell them apart
    (``a/test.tsv``, ``b/test.tsv`` -> ``a-test``, ``b-test``; of clashing names, the longer ones
    grow first, so a stem is kept where it can be). A manifest given twice, or two that no folder
    name tells apart, are refused."""
    paths = [m.resolve() for m in manifests]
    twice = [str(m) for m, p in zip(manifests, paths) if paths.count(p) > 1]
    if twice:
        raise ValueError(f"the same manifest is given twice: {', '.join(twice)}")
    depth = [0] * len(paths)
    while True:
        names = ["-".join([*p.parent.parts[len(p.parent.parts) - d:], p.stem]) for p, d in zip(paths, depth)]
        clashes = [[i for i, n in enumerate(names) if n == name] for name in dict.fromkeys(names)]
        clashes = [c for c in clashes if len(c) > 1]
        if not clashes:
            return names
        for clash in clashes:
            can_grow = [i for i in clash if depth[i] < len(paths[i].parent.parts) - 1]  # the root has no name
            if not can_grow:
                raise ValueError(f"no folder name tells these manifests apart: "
                                 f"{', '.join(str(manifests[i]) for i in clash)}; rename one")
            longest = max(depth[i] for i in can_grow)
            for i in (i for i in can_grow if depth[i] == longest):
                depth[i] += 1


def decoders_of(decoders: Sequence[str], units: str) -> list[str]:
    """The decoders that give words for a model of these units: a phone model's greedy output is
    phones, so it has no word error rate; its LM searches spell words through the phone lexicon."""
    return [d for d in decoders if units == "letters" or d != "greedy"]


def finetune_dir(out: Path, labeled: str, init: str, units: str = "letters") -> Path:
    """The fine-tuning run of the labeled set named ``labeled`` (:func:`manifest_names`) with
    output ``units`` (letters, or phones: ``NAME-phones-INIT``)."""
    return out / "finetune" / ("-".join([labeled, init] if units == "letters" else [labeled, units, init]))


def eval_dir(finetuned: Path, test: str, decoder: str) -> Path:
    """The evaluation of a fine-tuned model on the test set named ``test`` with a decoder."""
    return finetuned / "eval" / f"{test}-{decoder}"


def collect(out: Path, labeled: list[Path], tests: list[Path], decoders: list[str], units: Sequence[str],
            inits: Callable[[str], Sequence[str]]) -> list[dict]:
    """One row per (units, labeled set, initialisation of ``inits(units)``, decoder): (WER, CER) % and
    (words, characters) per test set, keyed by the sets' :func:`manifest_names`; None where an
    evaluation is missing. Phone models have no greedy rows (:func:`decoders_of`)."""
    rows = []
    test_names = manifest_names(tests)
    sets = list(zip(manifest_names(labeled), map(minutes_of, labeled)))  # each manifest read once
    for unit in units:
        for lab_name, minutes in sets:
            for init in inits(unit):
                for dec in (d for d in LM_NAMES if d in decoders_of(decoders, unit)):
                    row = {"labeled": lab_name, "minutes": minutes, "units": unit, "init": init, "decoder": dec}
                    for test in test_names:
                        m = eval_dir(finetune_dir(out, lab_name, init, unit), test, dec) / "metrics.json"
                        metrics = json.loads(m.read_text()) if m.is_file() else None
                        row[test] = (100 * metrics["wer"], 100 * metrics["cer"]) if metrics else None  # WER, CER
                        row[f"{test}/counts"] = (metrics["n_words"], metrics["n_chars"]) if metrics else None
                    rows.append(row)
    return rows


def pretrain_summary(run: Path, seconds: float) -> dict:
    """Updates, minutes and the last validation of the pre-training run (its ``log.jsonl``), and what
    it predicted (``targets``: its accuracy ranks codes or latents among distractors, or units)."""
    log = read_log(run) if (run / "log.jsonl").is_file() else []
    valid = [r for r in log if r["kind"] == "valid"]
    last = valid[-1] if valid else {}
    config = run / "best" / "config.json"
    targets = W2V2Config.load(config).targets if config.is_file() else None
    return {"updates": max((r["update"] for r in log), default=0), "minutes": round(seconds / 60, 2),
            "targets": targets, "valid_acc": last.get("acc"), "valid_contrastive": last.get("contrastive"),
            "code_ppl": last.get("code_ppl"), "prob_ppl": last.get("prob_ppl")}


def report_json(rows: list[dict], tests: list[str], scale: str, wall: float, pretrain: dict) -> dict:
    """The machine-readable report: one row per (labeled set, initialisation, decoder, test set);
    rates in percent, ``labeled`` and ``test`` the manifests' names (:func:`manifest_names`)."""
    out_rows = []
    for r in rows:
        for t in tests:
            if r[t] is None:
                continue
            words, chars = r[f"{t}/counts"]
            out_rows.append({"labeled": r["labeled"], "labeled_minutes": round(r["minutes"], 2),
                             "units": r["units"], "pretrained": r["init"] == "pretrained", "decoder": r["decoder"], "test": t,
                             "wer": round(r[t][0], 2), "cer": round(r[t][1], 2),
                             "ref_words": words, "ref_chars": chars})
    return {"commit": git_commit(), "scale": scale, "wall_minutes": round(wall / 60, 2), "pretrain": pretrain,
            "rows": out_rows}


def plot_wer_vs_minutes(rows: list[dict], tests: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tests), figsize=(5 * len(tests), 3.6), squeeze=False)
    for ax, test in zip(axes[0], tests):
        for (units, init), color in COLORS.items():
            for dec, style in (("greedy", "o-"), ("ngram", "s--"), ("transformer", "^:"), ("rescore", "v-.")):
                pts = sorted((r["minutes"], r[test][0]) for r in rows if r["units"] == units
                             and r["init"] == init and r["decoder"] == dec and r[test] is not None)
                if pts:
                    ax.plot(*zip(*pts), style, color=color,
                            label=f"{init}{', phones' if units == 'phones' else ''}, LM {LM_NAMES[dec]}")
        ax.set_xscale("log")
        ax.set_xlabel("labeled minutes")
        ax.set_ylabel("WER %")
        ax.set_title(test)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(out: Path, args: argparse.Namespace, scale: Budget, records: list[dict], wall: float) -> Path:
    labeled, test_paths = [Path(p) for p in args.labeled], [Path(p) for p in args.test]
    rows = collect(out, labeled, test_paths, args.decoders, args.units, scale.inits)
    tests, budget = manifest_names(test_paths), asdict(scale)
    plot_wer_vs_minutes(rows, tests, out / "wer_vs_minutes.png")
    figures = {"wer_vs_minutes.png": "WER against labeled minutes"}
    for run in [out / "pretrain"] + sorted((out / "finetune").glob("*")):
        if (run / "log.jsonl").is_file():
            png = plot_run(run)
            figures[str(png.relative_to(out))] = f"training curves: {run.name}"
    pre = stage_seconds(records, "pretrain")
    table = []
    for r in rows:
        ft = stage_seconds(records, f"finetune {finetune_dir(out, r['labeled'], r['init'], r['units']).name}")
        compute = (pre if r["init"] == "pretrained" else 0.0) + ft
        table.append([f"{r['labeled']} ({r['minutes']:.1f} min)", r["units"], "yes" if r["init"] == "pretrained" else "no",
                      LM_NAMES[r["decoder"]]] + ["%.1f (%.1f)" % r[t] if r[t] is not None else "–" for t in tests]
                     + [f"{compute / 60:.1f}"])
    header = ["labeled data", "units", "pre-trained", "LM"] + [f"{t} WER (CER)" for t in tests] + ["CPU-minutes (pre-train + fine-tune)"]
    md = [f"# Low-resource experiment (paper table 1, at {budget['preset']} scale)\n",
          f"Unlabeled: `{args.unlabeled}` ({minutes_of(Path(args.unlabeled)):.1f} min); dev: `{args.dev}`; "
          f"LM text: `{args.lm_text}`.\n", "## WER (%)\n", markdown_table(header, table, "llll" + "r" * (len(tests) + 1)),
          "\n![WER against labeled minutes](wer_vs_minutes.png)\n"]
    errors = out / "errors" / "errors.md"
    if errors.is_file():
        summary = errors.read_text().split("\n## Most frequent", 1)[0]
        md += ["## Error analysis (first labeled set, pre-trained, first test set)\n",
               re.sub(r"^# .*\n", "", summary).replace("](errors.png)", "](errors/errors.png)"),
               "Full tables: [errors/errors.md](errors/errors.md)\n"]
        figures["errors/errors.png"] = "word errors"
    md += ["## Training curves\n"] + [f"![{cap}]({png})\n" for png, cap in figures.items()
                                      if png.endswith("curves.png")]
    md += ["## Commands\n", "```"] + [f"{r['command']}    # {r['seconds'] / 60:.1f} min"
                                      + (" (done earlier)" if r.get("skipped") else "") for r in records] + ["```\n"]
    md += ["## Configuration\n", f"- scale `{args.scale}`: " + ", ".join(f"{k}={v}" for k, v in budget.items()),
           f"- model configs: `{out / 'pretrain' / 'best' / 'config.json'}` and `finetune/*/best/config.json`",
           f"- versions: {versions()}", f"- machine: {machine()}",
           f"- wall time of this invocation: {wall / 60:.1f} min; all stages: "
           f"{sum(r['seconds'] for r in records) / 60:.1f} min\n"]
    summary = report_json(rows, tests, args.scale, wall, pretrain_summary(out / "pretrain", pre))
    atomic_write(out / "report.json", lambda p: p.write_text(json.dumps(summary, indent=2) + "\n"))
    report = out / "report.md"
    report.write_text("\n".join(md))
    (out / "report.html").write_text(to_html("\n".join(md), out))
    return report


def to_html(markdown: str, root: Path) -> str:
    """A small Markdown subset (headings, tables, code blocks, images, paragraphs) to one HTML file."""
    body, lines, i = [], markdown.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            body.append("<pre>" + html.escape("\n".join(lines[i + 1:j])) + "</pre>")
            i = j + 1
            continue
        if line.startswith("|"):
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            cells = [[c.strip() for c in row.strip("|").split("|")] for row in lines[i:j]]
            head, rest = cells[0], [r for r in cells[2:]]
            body.append("<table><tr>" + "".join(f"<th>{inline(c)}</th>" for c in head) + "</tr>"
                        + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in rest)
                        + "</table>")
            i = j
            continue
        m = re.match(r"^(#+) (.*)", line)
        img = re.match(r"^!\[(.*)\]\((.*)\)$", line.strip())
        if m:
            body.append(f"<h{len(m[1])}>{inline(m[2])}</h{len(m[1])}>")
        elif img and (root / img[2]).is_file():
            data = base64.b64encode((root / img[2]).read_bytes()).decode()
            body.append(f'<p><img alt="{html.escape(img[1])}" src="data:image/png;base64,{data}"></p>')
        elif line.strip():
            body.append(f"<p>{inline(line)}</p>")
        i += 1
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:100%}"
             "pre{background:#f4f4f4;padding:8px;overflow-x:auto}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>w2v2 report</title><style>{style}</style>" \
           f"</head><body>{''.join(body)}</body></html>\n"


def inline(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"`([^`]*)`", r"<code>\1</code>", text)
    return re.sub(r"\[([^\]]*)\]\(([^)]*)\)", r'<a href="\2">\1</a>', text)
