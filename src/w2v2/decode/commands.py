"""``w2v2 transcribe``, ``evaluate`` and ``tune-decoder``: speech to text with a fine-tuned CTC model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tqdm import tqdm

from ..data.audio import SAMPLE_RATE, load_audio
from ..data.manifest import read_manifest
from ..interop.model_dir import atomic_write
from .beam import BeamSearchConfig
from .decoders import (BEAM_FIELDS, DECODERS, RESCORE_NBEST, decoder_settings, given, make_decoders, rescorer,
                       search_model)
from .inference import InferenceConfig, Timing, compute_emissions, transcribe_files
from .metrics import ErrorCounts, chars_of, word_error_rate, words_of
from .rescore import rescored_texts
from .transcriber import BACKENDS, Transcriber, load_acoustic_model
from .tune import beam_dev_wer, random_search, write_decoder_json, write_trials


def overrides(args: argparse.Namespace) -> dict:
    """The decoder options given on the command line (None where not given)."""
    return {k: getattr(args, k, None) for k in ["lm", "lexicon", "nbest"] + BEAM_FIELDS}


def settings_of(args: argparse.Namespace) -> dict:
    return decoder_settings(args.model_dir, args.decoder, overrides(args))


def inference_config(args: argparse.Namespace) -> InferenceConfig:
    return InferenceConfig(args.chunk_seconds, args.context_seconds, args.batch_seconds)


def cmd_transcribe(args: argparse.Namespace) -> None:
    transcriber = Transcriber.from_model_dir(args.model_dir, args.decoder, overrides(args), inference_config(args),
                                             args.backend, args.onnx)
    for path, transcript in zip(args.audio, transcriber.transcribe_files(args.audio)):
        if args.json:
            print(json.dumps({"path": path, **transcript.to_dict()}, ensure_ascii=False), flush=True)
        else:
            print(f"{path}\t{transcript.text}", flush=True)


def plot_utterance_errors(durations: list[float], wers: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(durations, [100 * w for w in wers], s=12, alpha=0.6)
    ax.set(xlabel="utterance duration (s)", ylabel="utterance WER (%)", title=f"{len(wers)} utterances")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=100, format="png"))
    plt.close(fig)


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Each ``--decoder`` on the same emissions (computed once), each into its ``--out`` folder."""
    entries = read_manifest(args.manifest)
    if not entries:
        raise ValueError(f"{args.manifest}: no utterances")
    missing = [str(e.path) for e in entries if e.text is None]
    if missing:
        raise ValueError(f"{args.manifest}: no 'text' column (transcripts are needed to score), e.g. {missing[0]}")
    decoders, outs = args.decoder, args.out
    if len(set(decoders)) != len(decoders) or len(outs) != len(decoders):
        raise ValueError(f"--decoder {' '.join(decoders)} --out {' '.join(outs)}: each decoder once, "
                         "with one --out folder for each, in the same order")
    options = overrides(args)
    if len(decoders) > 1 and given(options):
        raise ValueError(f"--{'/--'.join(k.replace('_', '-') for k in given(options))}: with several "
                         "decoders their settings come from MODEL_DIR/decoder.json (w2v2 tune-decoder); "
                         "give search options with one --decoder")
    model, cfg, vocab = load_acoustic_model(args.model_dir, args.backend, args.onnx)
    settings = [decoder_settings(args.model_dir, d, options) for d in decoders]
    timing = Timing()
    hyps = list(transcribe_files(model, cfg, [e.path for e in entries], make_decoders(settings, vocab),
                                 inference_config(args), timing))
    for k, (decoder, out) in enumerate(zip(settings, outs)):
        write_evaluation(args, entries, [h[k].text for h in hyps], decoder, timing, Path(out),
                         together=decoders if len(decoders) > 1 else None)


def write_evaluation(args: argparse.Namespace, entries: list, texts: list[str], settings: dict, timing: Timing,
                     out: Path, together: list[str] | None) -> None:
    """hyps.tsv, metrics.json and utterance_wer.png of one decoder's texts; ``together``: the
    decoders whose searches the timing covers when several ran on the same emissions."""
    word_counts, char_counts = ErrorCounts(), ErrorCounts()
    rows, durations, utt_wers = ["id\tpath\tref\thyp"], [], []
    for entry, text in zip(entries, texts):
        ref = " ".join(entry.text.split())
        utt = ErrorCounts()
        utt.add(words_of(ref), words_of(text))
        word_counts.add(words_of(ref), words_of(text))
        char_counts.add(chars_of(ref), chars_of(text))
        rows.append(f"{entry.id}\t{entry.path}\t{ref}\t{text}")
        durations.append(entry.samples / SAMPLE_RATE)
        utt_wers.append(utt.errors / max(utt.ref_len, 1))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "hyps.tsv", lambda p: p.write_text("\n".join(rows) + "\n", encoding="utf-8"))
    metrics = {"wer": word_counts.rate, "cer": char_counts.rate, "n_utts": len(entries),
               "n_words": word_counts.ref_len, "n_chars": char_counts.ref_len,
               "word_errors": word_counts.errors, "char_errors": char_counts.errors,
               "model_dir": str(args.model_dir), "manifest": str(args.manifest),
               "decoder": settings, "inference": inference_config(args).to_dict(), "backend": args.backend,
               **timing.summary(), **({"timed_together": together} if together else {})}
    atomic_write(out / "metrics.json", lambda p: p.write_text(json.dumps(metrics, indent=2) + "\n"))
    plot_utterance_errors(durations, utt_wers, out / "utterance_wer.png")
    print(f"{args.manifest}: WER {100 * metrics['wer']:.2f}%  CER {100 * metrics['cer']:.2f}%  "
          f"({len(entries)} utterances, {word_counts.ref_len} words; decoder {settings['decoder']}; "
          f"RTF {metrics['rtf']:.3f}) -> {out}")


def cmd_tune(args: argparse.Namespace) -> None:
    if args.decoder == "greedy":
        raise ValueError("tune-decoder tunes a beam search: use --decoder ngram, transformer or rescore")
    entries = read_manifest(args.dev)
    if not entries or any(e.text is None for e in entries):
        raise ValueError(f"{args.dev}: need a non-empty manifest with a 'text' column")
    model, cfg, vocab = load_acoustic_model(args.model_dir, args.backend, args.onnx)
    settings = settings_of(args)
    for key in ("lm", "lexicon"):
        if settings.get(key):
            settings[key] = str(Path(settings[key]).resolve())
    waves = [load_audio(e.path, min_samples=cfg.receptive_field) for e in entries]
    emissions = compute_emissions(model, cfg, waves, inference_config(args))
    refs = [" ".join(e.text.split()) for e in entries]
    if args.decoder == "rescore":
        search = rescorer(settings, vocab)
        lists = [search.nbest(e) for e in tqdm(emissions, desc="n-best", unit="utt")]
        best, trials = random_search(lambda lw, ws: word_error_rate(refs, rescored_texts(lists, lw, ws)),
                                     (0.0, 0.0), args.trials, args.seed)  # (0, 0): the n-gram search's choice
        chosen = {k: settings[k] for k in ("lm", "nbest", "first_pass")}
    else:
        base = BeamSearchConfig(**{k: settings[k] for k in BEAM_FIELDS})
        best, trials = random_search(beam_dev_wer(search_model(settings, vocab), base, emissions, refs),
                                     (base.lm_weight, base.word_score), args.trials, args.seed)
        chosen = {"lm": settings["lm"], "lexicon": settings["lexicon"], **base.to_dict()}
    model_dir = Path(args.model_dir)
    stem = model_dir / f"decoder_tuning_{args.decoder}"
    write_trials(trials, stem.with_suffix(".tsv"), stem.with_suffix(".png"))
    tuning = {"dev": str(Path(args.dev).resolve()), "trials": args.trials, "seed": args.seed,
              "dev_wer": best.wer, "dev_wer_default": trials[0].wer}
    path = write_decoder_json(model_dir, args.decoder, {**chosen, "lm_weight": best.lm_weight,
                                                        "word_score": best.word_score, "tuning": tuning})
    print(f"best of {len(trials)} settings on {args.dev}: lm_weight {best.lm_weight:.3f}, word_score "
          f"{best.word_score:.3f}: WER {100 * tuning['dev_wer']:.2f}% (default {100 * trials[0].wer:.2f}%) -> {path}")


def add_decoder_args(p: argparse.ArgumentParser, default: str = "greedy", several: bool = False) -> None:
    p.add_argument("--decoder", choices=DECODERS, default=[default] if several else default,
                   nargs="+" if several else None,
                   help="greedy: best path, no LM; ngram: KenLM beam search; transformer: Transformer LM beam "
                        "search; rescore: the tuned n-gram search's n-best re-ranked by the Transformer LM "
                        "(default settings from MODEL_DIR/decoder.json when tune-decoder wrote one)"
                        + ("; several run on the same emissions, computed once (an n-gram search that is the "
                           "rescorer's first pass is run once too)" if several else ""))
    p.add_argument("--lm", help="ngram: ARPA or KenLM binary (over words with --lexicon, over the model's units "
                                "without); transformer, rescore: Transformer LM directory")
    p.add_argument("--nbest", type=int, help=f"rescore: hypotheses re-ranked per utterance (default {RESCORE_NBEST})")
    p.add_argument("--lexicon", help="lexicon file, lines 'WORD<TAB>W O R D |' (omit for lexicon-free search)")
    b = p.add_argument_group("beam search")
    b.add_argument("--beam-size", dest="beam_size", type=int)
    b.add_argument("--beam-size-token", dest="beam_size_token", type=int, help="units tried per frame (0: all)")
    b.add_argument("--beam-threshold", dest="beam_threshold", type=float)
    b.add_argument("--lm-weight", dest="lm_weight", type=float)
    b.add_argument("--word-score", dest="word_score", type=float)
    b.add_argument("--sil-score", dest="sil_score", type=float)
    b.add_argument("--unk-score", dest="unk_score", type=float)
    i = p.add_argument_group("inference")
    d = InferenceConfig()
    i.add_argument("--chunk-seconds", type=float, default=d.chunk_seconds, help="longer files are cut into windows")
    i.add_argument("--context-seconds", type=float, default=d.context_seconds, help="extra audio per window side")
    i.add_argument("--batch-seconds", type=float, default=d.batch_seconds, help="padded audio per forward pass")


def add_backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=BACKENDS, default="torch",
                   help="what runs the acoustic model: torch (default) or onnx (ONNX Runtime, CPU; same decoders)")
    p.add_argument("--onnx", metavar="PATH",
                   help="--backend onnx: the graph of `w2v2 export --to onnx` (config and vocabulary from its "
                        "metadata); default MODEL_DIR/model.onnx, exported first when missing or older than "
                        "the model's weights")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transcribe", help="audio files -> text (one 'path<TAB>text' line per file, or --json)")
    p.add_argument("model_dir")
    p.add_argument("audio", nargs="+")
    p.add_argument("--json", action="store_true", help="JSON lines with word start/end times (seconds)")
    add_decoder_args(p)
    add_backend_args(p)
    p.set_defaults(func=cmd_transcribe)

    p = sub.add_parser("evaluate", help="WER / CER of a model on a manifest with transcripts")
    p.add_argument("model_dir")
    p.add_argument("manifest")
    p.add_argument("--out", required=True, nargs="+",
                   help="folder for hyps.tsv, metrics.json and utterance_wer.png; one per --decoder")
    add_decoder_args(p, several=True)
    add_backend_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("tune-decoder", help="random search of LM weight and word score on a dev set "
                                            "-> MODEL_DIR/decoder.json")
    p.add_argument("model_dir")
    p.add_argument("--dev", required=True, help="dev manifest with transcripts")
    p.add_argument("--trials", type=int, default=20, help="random draws (the default setting is tried too)")
    p.add_argument("--seed", type=int, default=0)
    add_decoder_args(p, default="ngram")
    add_backend_args(p)
    p.set_defaults(func=cmd_tune)

