"""``w2v2 data ...``: building and preparing corpora. Each data module attaches its sub-command
to the group returned by :func:`data_commands`."""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def data_commands(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """The sub-parsers of ``w2v2 data``, created on first use, so that several modules can add to it."""
    parser = sub.choices.get("data")
    if parser is None:
        parser = sub.add_parser("data", help="build and prepare corpora (see `w2v2 data -h`)")
        parser.data_commands = parser.add_subparsers(dest="data_command", metavar="COMMAND", required=True)
    return parser.data_commands


def cmd_synth(args: argparse.Namespace) -> None:
    from .synth import SynthConfig, build_corpus, write_report

    cfg = SynthConfig(seed=args.seed, unlabeled_minutes=args.unlabeled_minutes,
                      labeled_minutes=tuple(args.labeled_minutes), dev_minutes=args.dev_minutes,
                      test_minutes=args.test_minutes, lm_sentences=args.lm_sentences,
                      speakers={"train": args.train_speakers, "dev": args.dev_speakers, "test": args.test_speakers})
    start = time.monotonic()
    # espeak-ng runs as a child process per utterance, so threads give process-level parallelism
    with ThreadPoolExecutor(max_workers=args.jobs) as executor:
        summary = build_corpus(cfg, Path(args.out), executor)
    print(write_report(summary, Path(args.out)))
    print(f"wrote {args.out} in {time.monotonic() - start:.0f} s")


def register(sub: argparse._SubParsersAction) -> None:
    p = data_commands(sub).add_parser(
        "synth", help="synthesize the embedded multi-speaker demo corpus with espeak-ng",
        description="Synthesize a multi-speaker English corpus with espeak-ng from a home-assistant grammar: "
                    "unlabeled pool, nested labeled subsets, dev and test sets with unseen voices, LM text. "
                    "Reruns only synthesize files that are missing.")
    p.add_argument("--out", required=True, help="corpus folder to write (manifests, audio/, lm_text.txt, corpus.json)")
    p.add_argument("--seed", type=int, default=0, help="seeds speakers, sentences and noise (default 0)")
    p.add_argument("--unlabeled-minutes", type=float, default=30.0,
                   help="pre-training pool, training voices (default 30)")
    p.add_argument("--labeled-minutes", type=float, nargs="+", default=[5.0, 15.0],
                   help="nested labeled subsets of the pool, one manifest each (default 5 15)")
    p.add_argument("--dev-minutes", type=float, default=5.0, help="dev set, its own voices (default 5)")
    p.add_argument("--test-minutes", type=float, default=5.0, help="test set, its own voices (default 5)")
    p.add_argument("--lm-sentences", type=int, default=30000, help="lines of LM text (default 30000)")
    p.add_argument("--train-speakers", type=int, default=24, help="default 24")
    p.add_argument("--dev-speakers", type=int, default=4, help="default 4")
    p.add_argument("--test-speakers", type=int, default=6, help="default 6")
    p.add_argument("--jobs", type=int, default=2, help="parallel espeak-ng processes (default 2)")
    p.set_defaults(func=cmd_synth)
