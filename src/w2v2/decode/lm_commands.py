"""``w2v2 lm build`` (modified Kneser-Ney n-gram in ARPA + the decoder's lexicon) and
``w2v2 lm train`` (word-level Transformer LM)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ..analysis.g2p import add_letter_to_sound_option
from .ngram import SPECIALS, build_arpa, build_binary, iter_arpa, read_sentences


def arpa_words(path: Path) -> list[str]:
    """The unigrams of an ARPA file, special tokens left out."""
    return [gram[0] for _, gram, _, _ in iter_arpa(path, max_order=1) if gram[0] not in SPECIALS]


def cmd_build(args: argparse.Namespace) -> None:
    start = time.time()
    backend = build_arpa(args.text, args.order, args.out, args.prune or (), args.vocab_limit, args.backend, args.memory)
    print(f"{args.order}-gram modified Kneser-Ney ({backend}) -> {args.out} in {time.time() - start:.1f} s")
    if args.binary:
        build_binary(args.out, args.binary)
        print(f"KenLM binary -> {args.binary}")
    if args.lexicon:
        write_lexicon(Path(args.out), Path(args.lexicon), args.units, args.phones,
                      args.letter_to_sound == "espeak")


def write_lexicon(arpa: Path, lexicon: Path, units: str | None, phones: bool, letter_to_sound: bool = True) -> None:
    """The decoder's lexicon of the ARPA file's words: letter spellings, or with ``phones`` every
    CMUdict pronunciation (and for words outside CMUdict, with ``letter_to_sound``, espeak-ng's);
    ``units`` (letters, or phones separated by spaces) limits the spellings."""
    from .lexicon import build_lexicon, letters

    words = arpa_words(arpa)
    if phones:
        from ..analysis.phones import phone_spellings

        unit_set, spellings = (set(units.split()) if units else None), phone_spellings(words, letter_to_sound)
    else:
        unit_set, spellings = (set(units) if units else None), letters
    n = build_lexicon(words, lexicon, unit_set, spellings)
    print(f"lexicon: {n} of {len(words)} words -> {lexicon}")


def cmd_lexicon(args: argparse.Namespace) -> None:
    if not Path(args.arpa).is_file():
        raise ValueError(f"{args.arpa}: no such ARPA file")
    write_lexicon(Path(args.arpa), Path(args.out), args.units, args.phones, args.letter_to_sound == "espeak")


def cmd_train(args: argparse.Namespace) -> None:
    from ..data.heldout import split_heldout
    from .lm_train import TrainOptions, build_vocab, train_and_save
    from .transformer_lm import TransformerLM, TransformerLMConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    sentences = list(read_sentences(args.text))
    train_sentences, heldout = split_heldout([s for s in sentences if s], args.valid_fraction, args.seed)
    extra = {"valid": [s for s in read_sentences(args.valid) if s]} if args.valid else None
    vocab = build_vocab(train_sentences, args.vocab_size)
    cfg = TransformerLMConfig(vocab_size=len(vocab), dim=args.dim, layers=args.layers, heads=args.heads,
                              ffn_dim=args.ffn_dim or 4 * args.dim, context=args.context, dropout=args.dropout)
    opts = TrainOptions(steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup=args.warmup,
                        bf16=args.bf16, seed=args.seed)
    model = TransformerLM(cfg, vocab)
    metrics = train_and_save(model, train_sentences, heldout, opts, Path(args.out), extra)
    print(json.dumps(metrics, indent=2))
    for name in ("heldout", "valid"):
        if name in metrics:
            m = metrics[name]
            print(f"{name}: perplexity {m['perplexity']:.1f} over {m['tokens']} tokens (OOV rate {m['oov_rate']:.2%})")
    print(f"saved {args.out} ({metrics['parameters'] / 1e6:.1f}M parameters, {metrics['train_seconds']:.0f} s)")


def add_lexicon_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--units", help="letters of the acoustic model (e.g. \"ABCDEFGHIJKLMNOPQRSTUVWXYZ'\"), or with "
                   "--phones its phones separated by spaces: lexicon spellings with other units are left out")
    p.add_argument("--phones", action="store_true",
                   help="spell the lexicon's words with their CMUdict pronunciations (all of them, stress "
                        "removed), for a phone CTC model fine-tuned with --units token on `w2v2 data "
                        "phonemize` transcripts")
    add_letter_to_sound_option(p)


def register(sub: argparse._SubParsersAction) -> None:
    lm = sub.add_parser("lm", help="language models for decoding (n-gram, Transformer)")
    lm_sub = lm.add_subparsers(dest="lm_command", required=True)

    b = lm_sub.add_parser("build", help="modified Kneser-Ney word n-gram (ARPA) and lexicon",
                          description="Estimate an interpolated modified Kneser-Ney n-gram in ARPA format with "
                          "KenLM's lmplz when installed, else the built-in estimator (same model).")
    b.add_argument("--text", required=True, help="one sentence per line (.gz allowed), normalised like the transcripts")
    b.add_argument("--order", type=int, default=4)
    b.add_argument("--out", required=True, help="ARPA file to write")
    b.add_argument("--prune", type=int, nargs="+", metavar="T",
                   help="lmplz pruning: drop n-grams of order i with count <= T_i (e.g. 0 0 1)")
    b.add_argument("--vocab-limit", type=int, help="keep only n-grams of the N most frequent words")
    b.add_argument("--binary", help="also write KenLM's binary format here (needs build_binary)")
    b.add_argument("--lexicon", help="also write the lexicon of the LM's words (WORD<TAB>W O R D |)")
    add_lexicon_options(b)
    b.add_argument("--backend", choices=("auto", "lmplz", "python"), default="auto")
    b.add_argument("--memory", default="1G", help="lmplz sort memory (-S): a size, or a share of RAM like 20%%")
    b.set_defaults(func=cmd_build)

    x = lm_sub.add_parser("lexicon", help="the decoder's lexicon of an ARPA file's words (letters or phones)")
    x.add_argument("--arpa", required=True, help="n-gram LM whose unigrams are the lexicon's words")
    x.add_argument("--out", required=True, help="lexicon to write (WORD<TAB>spelling |)")
    add_lexicon_options(x)
    x.set_defaults(func=cmd_lexicon)

    t = lm_sub.add_parser("train", help="word-level Transformer LM")
    t.add_argument("--text", required=True, help="one sentence per line (.gz allowed)")
    t.add_argument("--out", required=True, help="model directory to write")
    t.add_argument("--valid", help="another held-out text to report perplexity on")
    t.add_argument("--valid-fraction", type=float, default=0.01, help="share of sentences held out")
    t.add_argument("--vocab-size", type=int, default=20000, help="most frequent words kept (others <unk>)")
    t.add_argument("--layers", type=int, default=2)
    t.add_argument("--dim", type=int, default=256)
    t.add_argument("--heads", type=int, default=4)
    t.add_argument("--ffn-dim", type=int, help="default 4 x dim")
    t.add_argument("--context", type=int, default=48, help="input tokens seen by the model")
    t.add_argument("--dropout", type=float, default=0.1)
    t.add_argument("--steps", type=int, default=2000)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--warmup", type=int, default=100)
    t.add_argument("--bf16", action="store_true", help="bfloat16 autocast on CPU")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    t.set_defaults(func=cmd_train)
