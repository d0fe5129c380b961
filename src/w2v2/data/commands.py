"""``w2v2 data ...``: building and preparing corpora. Each data module attaches its sub-command
to the group returned by :func:`data_commands`."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections import Counter
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


def cmd_manifest(args: argparse.Namespace) -> None:
    from .manifest import (ManifestError, Requirements, check_manifest, entries_from_folders, entries_from_split,
                           entries_from_table, write_manifest)
    from .audio import audio_info
    from .text import normalize_text

    sources = [bool(args.folders), args.transcripts is not None, args.split is not None]
    if sum(sources) != 1:
        raise ManifestError("give exactly one source: audio folders, --transcripts TSV or --split TSV")
    if args.with_text and args.folders:
        raise ManifestError("audio folders carry no transcripts: use --transcripts TSV for --with-text")
    problems = []
    if args.split is not None:
        if args.data_root is None:
            raise ManifestError("--split needs --data-root (the folder with <corpus>/audio/<id>.flac)")
        entries, problems = entries_from_split(args.split, args.data_root, args.with_text)
    elif args.transcripts is not None:
        entries = entries_from_table(args.transcripts, args.with_text)
    else:
        entries = entries_from_folders(args.folders, args.ext.split(","))
    if args.normalize_text:
        entries = [dataclasses.replace(e, text=normalize_text(e.text)) if e.text is not None else e for e in entries]
    total = len(entries) + len(problems)
    good, bad = check_manifest(entries, Requirements(units=args.units, max_seconds=args.max_seconds),
                               measure_samples=True)
    problems += bad
    for p in problems:
        print(f"{'skipped' if args.skip_bad else 'bad'}: {p}", file=sys.stderr)
    if problems and not args.skip_bad:
        raise ManifestError(f"{len(problems)} of {total} entries are unusable "
                            "(listed above); fix them or pass --skip-bad to leave them out")
    if not good:
        raise ManifestError("no usable audio found")
    write_manifest(args.out, good, with_text=args.with_text)
    hours = sum(e.samples for e in good) / 16000 / 3600
    skipped = f"; skipped {len(problems)} bad" if problems else ""
    print(f"wrote {args.out}: {len(good)} entries, {hours:.3f} h{skipped}")
    formats = Counter(f"{i.samplerate} Hz, {i.channels} ch, {i.subtype}" for i in (audio_info(e.path) for e in good))
    print("sources (resampled to 16 kHz mono where needed): "
          + "; ".join(f"{n} x {fmt}" for fmt, n in formats.most_common()))


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

    from .manifest import AUDIO_EXTENSIONS

    p = data_commands(sub).add_parser(
        "manifest", help="build a checked manifest from audio folders, a transcripts TSV or a split list",
        description="Build a manifest (path, samples at 16 kHz, optional text). Every file is decoded and checked "
                    "(readable, finite samples, at least the 400-sample receptive field, long enough for its "
                    "transcript under CTC); all unusable entries are reported in one pass.")
    p.add_argument("folders", nargs="*", help="folders searched recursively for audio files")
    p.add_argument("--transcripts", help="TSV with a header, a 'path' column and optionally a 'text' column")
    p.add_argument("--split", help="split list of the shared data (columns corpus, id, seconds)")
    p.add_argument("--data-root", help="with --split: folder holding <corpus>/audio/<id>.flac and transcripts.tsv")
    p.add_argument("--with-text", action="store_true", help="include transcripts (--transcripts or --split)")
    p.add_argument("--normalize-text", action="store_true", help="apply the text normaliser to transcripts")
    p.add_argument("--units", choices=("char", "token"), default="char",
                   help="transcript units for the CTC length check (default char)")
    p.add_argument("--ext", default=",".join(AUDIO_EXTENSIONS),
                   help="comma-separated extensions for folders (default: every format soundfile reads)")
    p.add_argument("--max-seconds", type=float, help="flag files longer than this")
    p.add_argument("--skip-bad", action="store_true", help="leave unusable entries out (counted) instead of failing")
    p.add_argument("--out", required=True, help="manifest to write (TSV)")
    p.set_defaults(func=cmd_manifest)
