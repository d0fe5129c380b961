"""``w2v2 experiment lowres``: pre-train on unlabeled audio, fine-tune on each labeled set (and
from scratch as the baseline), build the n-gram and Transformer LMs, tune the decoder on dev,
evaluate on the test sets (paper section 5.1, table 1), then write the report."""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

from ..data.manifest import read_manifest
from .budget import SCALES
from .report import decoders_of, eval_dir, finetune_dir, manifest_names, minutes_of, write_report
from .stages import StageRunner

RESCORE_TRIALS = 100
DECODE_WORKERS = 2  # decoding stages side by side (each beam search is single-threaded)
UNITS = ("letters", "phones")  # fine-tuning's output units, in the order the runs and the report take them


def file_digest(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_disjoint(train_manifests: list[Path], held_out: list[Path]) -> None:
    """No dev or test audio in the unlabeled or labeled sets: same file or same content."""
    def index(manifests: list[Path]) -> dict[str, str]:
        out = {}
        for m in manifests:
            for e in read_manifest(m):
                out[file_digest(e.path)] = f"{m}: {e.path}"
        return out

    train, held = index(train_manifests), index(held_out)
    clash = sorted(set(train) & set(held))
    if clash:
        examples = "; ".join(f"{held[c]} = {train[c]}" for c in clash[:3])
        raise ValueError(f"{len(clash)} dev/test recordings are also in the training audio: {examples}")


def run_lowres(args: argparse.Namespace) -> Path:
    budget = SCALES[args.scale]
    args.units = args.units or list(budget.units)
    if not {"greedy", "ngram"} <= set(args.decoders):
        raise ValueError("--decoders needs greedy and ngram (the error analysis compares them; rescore re-ranks "
                         "the n-gram search)")
    if "letters" not in args.units:
        raise ValueError("--units needs letters (the greedy rows and the error analysis); add phones beside them")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    labeled, dev = [Path(p) for p in args.labeled], Path(args.dev)
    tests = [Path(p) for p in args.test]
    # distinct names, and so folders, even for a/test.tsv and b/test.tsv
    tested = list(zip(tests, manifest_names(tests)))
    phones = "phones" in args.units
    # phone models learn from phonemised copies of the labeled sets and select on a phonemised dev set
    names = manifest_names([*labeled, dev])
    phonemised = {m: out / "phones" / f"{n}.tsv" for m, n in zip([*labeled, dev], names)}
    runs = [(lab, init, units, finetune_dir(out, name, init, units))
            for units in UNITS if units in args.units for lab, name in zip(labeled, manifest_names(labeled))
            for init in budget.inits(units)]
    check_disjoint([Path(args.unlabeled), *labeled], [dev, *tests])
    runner = StageRunner(out)
    b = budget
    pre = out / "pretrain"
    runner.run("pretrain", b.pretrain_args(args.unlabeled, pre, args.seed), pre, resumable=True)
    if phones:
        for manifest, path in phonemised.items():
            runner.run(f"phonemize {path.stem}", ["data", "phonemize", str(manifest), "--out", str(path),
                                                  "--oov", str(path.with_suffix(".oov.tsv"))], path.with_suffix(""))
    for lab, init, units, ft in runs:
        init_dir = str(pre / "best") if init == "pretrained" else "none"
        train, valid = (phonemised[lab], phonemised[dev]) if units == "phones" else (lab, dev)
        runner.run(f"finetune {ft.name}", b.finetune_args(str(train), minutes_of(train), str(valid), ft, init_dir,
                                                          args.seed, units), ft, resumable=True)
    lm = out / "lm"
    arpa, tlm = lm / f"{b.lm_order}gram.arpa", lm / "transformer"
    lexicon = {"letters": lm / "lexicon.txt", "phones": lm / "phone_lexicon.txt"}
    runner.run("n-gram LM", ["lm", "build", "--text", args.lm_text, "--order", str(b.lm_order), "--out", str(arpa),
                             "--lexicon", str(lexicon["letters"])], lm / "ngram")
    if phones:
        runner.run("phone lexicon", ["lm", "lexicon", "--arpa", str(arpa), "--out", str(lexicon["phones"]),
                                     "--phones"], lm / "phone-lexicon")
    if {"transformer", "rescore"} & set(args.decoders):
        runner.run("Transformer LM", ["lm", "train", "--text", args.lm_text, "--out", str(tlm),
                                      "--steps", str(b.lm_steps)], tlm)
    beam = ["--beam-size", str(b.beam_size), "--beam-size-token", str(b.beam_size_token)]
    searches = {"ngram": (b.tune_trials, beam),
                "rescore": (RESCORE_TRIALS, []),  # re-ranking stored n-best lists: trials cost little
                "transformer": (max(1, b.tune_trials // 4), ["--beam-size", str(b.transformer_beam)])}
    # the slow Transformer-LM search last; one chain of stages per model (its tunings, then one evaluation per
    # test set with all of the group's decoders on the same emissions), two models at a time: the beam search
    # runs on one core
    for group, workers in ((["greedy", "ngram", "rescore"], DECODE_WORKERS), (["transformer"], 1)):
        chains = []
        for _, _, units, ft in runs:
            chain = []
            model = str(ft / "best")
            words = ["--lexicon", str(lexicon[units])]  # the LM searches spell words in the model's units
            decoders = {"greedy": [], "ngram": ["--lm", str(arpa), *words], "transformer": ["--lm", str(tlm), *words],
                        "rescore": ["--lm", str(tlm)]}
            chosen = [d for d in group if d in decoders_of(args.decoders, units)]
            for dec in (d for d in chosen if d in searches):
                trials, extra = searches[dec]
                chain.append((f"tune {dec} {ft.name}", ["tune-decoder", model, "--dev", args.dev, "--decoder", dec,
                                                        "--trials", str(trials), *extra, *decoders[dec]],
                              ft / f"tune-{dec}"))
            for test, test_name in tested if chosen else ():
                outs = [str(eval_dir(ft, test_name, dec)) for dec in chosen]
                chain.append((f"evaluate {ft.name} {test_name} {' '.join(chosen)}",
                              ["evaluate", model, str(test), "--decoder", *chosen, "--out", *outs],
                              eval_dir(ft, test_name, "+".join(chosen))))
            chains.append(chain)
        runner.run_chains(chains, workers)
    first_run, first_test = runs[0][3], tested[0][1]  # first labeled set, letters, pre-trained; first test set
    runner.run("error analysis", ["analyze", "errors", str(eval_dir(first_run, first_test, "greedy") / "hyps.tsv"),
                                  "--lm-hyps", str(eval_dir(first_run, first_test, "ngram") / "hyps.tsv"),
                                  "--lm-text", args.lm_text, "--out-dir", str(out / "errors")], out / "errors")
    report = write_report(out, args, budget, runner.records, time.time() - start)
    print(f"report: {report} and {report.with_suffix('.html')}")
    return report


def add_parser(esub: argparse._SubParsersAction) -> None:
    q = esub.add_parser("lowres", help="pre-training -> fine-tuning on each labeled set (and from scratch) -> LMs "
                                       "-> decoder tuning -> evaluation -> report (paper table 1)")
    q.add_argument("--unlabeled", required=True, help="manifest of untranscribed audio")
    q.add_argument("--labeled", nargs="+", required=True, help="manifests with transcripts, smallest first")
    q.add_argument("--dev", required=True, help="dev manifest (early stopping, decoder tuning)")
    q.add_argument("--test", nargs="+", required=True, help="test manifests")
    q.add_argument("--lm-text", required=True, help="LM training text (.txt or .txt.gz), one sentence per line")
    q.add_argument("--out", required=True)
    q.add_argument("--scale", default="demo", choices=sorted(SCALES), help="compute budget of every stage")
    q.add_argument("--decoders", nargs="+", default=["greedy", "ngram", "rescore"],
                   choices=["greedy", "ngram", "rescore", "transformer"],
                   help="decoders to evaluate: no LM, the 4-gram beam search, its n-best rescored by the "
                        "Transformer LM, the Transformer LM inside the beam search (slow: about 1 CPU-second per "
                        "second of audio at beam 8). greedy and ngram are needed for the error analysis, ngram "
                        "for rescore")
    defaults = "; ".join(f"{name}: {' '.join(b.units)} (scratch: {' '.join(b.scratch_units)})"
                         for name, b in sorted(SCALES.items()))
    q.add_argument("--units", nargs="+", choices=UNITS,
                   help=f"fine-tuning's output units (default: the scale's, from scratch too where it says; "
                        f"{defaults}): letters, or letters and CMUdict phones (labeled and dev sets "
                        "phonemised, words outside CMUdict by espeak-ng's letter-to-sound rules; words through a "
                        "pronunciation lexicon in the LM searches; no greedy rows). On the shared data phones gave "
                        "5-8 dev WER points over letters with the 4-gram with ten labeled minutes, 13-15 with an hour "
                        "(docs/small_compute.md, rows PU and R6-phones)")
    q.add_argument("--seed", type=int, default=1)
    q.set_defaults(func=run_lowres)
