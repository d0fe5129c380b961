"""``w2v2 align``, ``w2v2 data phonemize`` and ``w2v2 analyze {codebook,errors}``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data.commands import data_commands
from ..data.manifest import read_manifest, write_manifest
from .g2p import add_letter_to_sound_option
from .report import write_text


def cmd_align(args: argparse.Namespace) -> None:
    from .align import align_manifest, words_path

    counts = align_manifest(args.model_dir, args.manifest, args.out, fill=not args.ctc_spans,
                            phonemize=args.phonemize, plots=args.plots,
                            letter_to_sound=args.letter_to_sound == "espeak")
    print(f"aligned {counts['aligned']} utterances -> {args.out} (units), {words_path(args.out)} (words)"
          + (f", {Path(args.out).with_suffix('.png')} (plot); " if args.plots and counts["aligned"] else "; ")
          + f"skipped {counts['not alignable']} not alignable, {counts['no transcript']} without transcript")


def cmd_phonemize(args: argparse.Namespace) -> None:
    from .phones import cmu_lexicon_for, phonemize_entries

    entries = read_manifest(args.manifest)
    lexicon, guessed = cmu_lexicon_for((w for e in entries for w in (e.text or "").split()),
                                       args.letter_to_sound == "espeak")
    kept, report = phonemize_entries(entries, lexicon)
    if not kept:
        raise ValueError(f"{args.manifest}: no utterance could be phonemised ({report.summary()})")
    write_manifest(args.out, kept, with_text=True)
    if args.oov:
        write_text(args.oov, "word\tcount\n" + "".join(f"{w}\t{n}\n" for w, n in report.oov.most_common()))
    print(f"{report.summary()} -> {args.out}")
    if guessed:
        print(f"{len(guessed)} words outside CMUdict pronounced by espeak-ng's rules: "
              + ", ".join(f"{w} ({' '.join(p)})" for w, p in list(guessed.items())[:10]))


def cmd_codebook(args: argparse.Namespace) -> None:
    from .codebook import analyze_codebook

    summaries = analyze_codebook(args.model_dir, args.manifest, args.phones, args.out_dir, top=args.top,
                                 seed=args.seed, max_utts=args.max_utts,
                                 kmeans_k=args.kmeans, representation=args.representation)
    for name, s in summaries.items():
        equal = next(k for k in s if k.startswith("I above chance,"))
        print(f"{name}: phone purity {s['phone purity (joint)']:.3f}, I(code; phone) "
              f"{s['I(code; phone) bits']:.3f} bits ({s['I above chance bits']:.3f} above chance; "
              f"{equal.removeprefix('I above chance, ').removesuffix(', bits')}: {s[equal]:.3f}), "
              f"joint perplexity {s['joint perplexity']:.1f}")
    print(f"wrote {args.out_dir}/codebook.md, codebook_heatmap.png, codes.tsv, cooccurrence.tsv")


def cmd_errors(args: argparse.Namespace) -> None:
    from .errors import analyze_errors

    summaries = analyze_errors(args.hypotheses, args.out_dir, lm_hypotheses=args.lm_hyps, lm_text=args.lm_text,
                               top=args.top)
    for name, s in summaries.items():
        print(f"{name}: WER {s['WER %']:.2f}%, CER {s['CER %']:.2f}%")
    print(f"wrote {args.out_dir}/errors.md, errors.png")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("align", help="CTC forced alignment of a manifest's transcripts (units and words)")
    p.add_argument("model_dir", help="fine-tuned CTC model directory (letters or phones)")
    p.add_argument("manifest", help="manifest with a text column")
    p.add_argument("--out", required=True, help="TSV 'id start end label' of the units; words go to X.words.tsv")
    p.add_argument("--ctc-spans", action="store_true",
                   help="keep each unit's own frames only (default: a unit extends over the blank frames up "
                        "to the next unit of its word)")
    p.add_argument("--plots", type=int, default=3, help="plot the first N alignments to OUT with suffix .png "
                   "(default 3; 0: none)")
    p.add_argument("--phonemize", action="store_true",
                   help="the model's units are phones and the manifest holds words: convert with CMUdict")
    add_letter_to_sound_option(p)
    p.set_defaults(func=cmd_align)

    p = data_commands(sub).add_parser(
        "phonemize", help="manifest with CMUdict phone transcripts ('HH AH L OW | W ER L D') for phone-level "
                          "CTC fine-tuning (--units token); skips utterances with words it cannot pronounce")
    p.add_argument("manifest")
    p.add_argument("--out", required=True, help="manifest to write")
    p.add_argument("--oov", help="TSV of the out-of-lexicon words and their counts")
    add_letter_to_sound_option(p)
    p.set_defaults(func=cmd_phonemize)

    analyze = sub.add_parser("analyze", help="codebook-phone and error analyses (paper appendices D, E)")
    asub = analyze.add_subparsers(dest="analysis", required=True)
    p = asub.add_parser("codebook", help="codebook entries vs phones, pre-trained vs random init (figure 3)")
    p.add_argument("model_dir", help="pre-trained model directory (with its quantizer, or any with --kmeans)")
    p.add_argument("manifest")
    p.add_argument("--phones", required=True,
                   help="phone alignments: TSV 'id start end phone' (seconds; e.g. from w2v2 align), a TIMIT "
                        ".phn file or a folder of .phn files (matched by the utterance's id, its id without "
                        "extension, or its audio path relative to the .phn folder without extension)")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--top", type=int, default=50, help="codes shown in the heat map")
    p.add_argument("--seed", type=int, default=0, help="seed of the randomly initialised model (and of k-means)")
    p.add_argument("--kmeans", type=int, metavar="K",
                   help="codes are K k-means clusters of each model's frame vectors instead of its quantizer's "
                        "entries (needed for a model pre-trained with continuous targets)")
    p.add_argument("--representation", default="context",
                   help="with --kmeans: cluster the Transformer's outputs c (context, the default), the latents z "
                        "(latent), or the MFCC vectors that unit targets cluster (mfcc: the same for both models, "
                        "a reference)")
    p.add_argument("--max-utts", type=int, help="analyse at most this many utterances")
    p.set_defaults(func=cmd_codebook)

    p = asub.add_parser("errors", help="most frequent word and character errors, IV vs OOV (tables 11-12)")
    p.add_argument("hypotheses", help="TSV from w2v2 evaluate (id, path, ref, hyp), decoded without an LM")
    p.add_argument("--lm-hyps", help="the same utterances decoded with an LM, shown side by side")
    p.add_argument("--lm-text", help="LM training text (.txt or .txt.gz) for in/out-of-vocabulary splits")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--top", type=int, default=20, help="errors listed per table")
    p.set_defaults(func=cmd_errors)
