"""Real-time factor of decoding on 2 CPU cores: the BASE network, greedy decoding and 4-gram beam search.

    .venv/bin/python benchmarks/decode_rtf.py --lm LM.arpa --lexicon LEXICON [--utts 40] [--transformer-lm DIR]

RTF = processing seconds / audio seconds (below 1: faster than real time). The acoustic part is a
randomly initialised BASE CTC model (95M parameters; speed does not depend on the weights) over
kathleen_dev utterances from ../shared/data. Search time depends on how peaked the emissions are, so
the searches run on two kinds of emissions of the same lengths:

* ``random BASE``: the random network's own posteriors (flat: almost nothing is pruned, worst case);
* ``noisy oracle``: posteriors of a simulated fine-tuned model, one-hot CTC paths of the reference
  transcripts (each unit's first frame, then blanks) plus Gaussian logit noise, at a noise level that
  gives a greedy CER in the range of a 10-minute fine-tuned model; their WERs show what the LM does.

Writes decode_rtf.json, decode_rtf.md and decode_rtf.png to ``--out`` (benchmarks/decode_rtf).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib
import numpy as np
import torch
from torch import Tensor

from w2v2.data.audio import load_audio
from w2v2.data.text import Vocabulary
from w2v2.decode.beam import BeamSearchConfig, BeamSearchDecoder, ngram_search_model, transformer_search_model
from w2v2.decode.ctc import greedy_decode
from w2v2.decode.inference import compute_emissions, num_frames
from w2v2.decode.metrics import char_error_rate, word_error_rate
from w2v2.decode.transformer_lm import load_transformer_lm
from w2v2.model import build_ctc_model, preset

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LETTERS = [Vocabulary.BLANK, Vocabulary.UNK, Vocabulary.BOUNDARY] + list("'ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def dev_utterances(n: int) -> list[tuple[Path, str]]:
    with open(DATA / "kathleen" / "transcripts.tsv", newline="") as f:
        text = {r["id"]: r["text"] for r in csv.DictReader(f, delimiter="\t")}
    with open(DATA / "splits" / "kathleen_dev.tsv", newline="") as f:
        ids = [r["id"] for r in csv.DictReader(f, delimiter="\t")]
    return [(DATA / "kathleen" / "audio" / f"{i}.flac", text[i]) for i in ids[:n]]


def noisy_oracle(vocab: Vocabulary, text: str, frames: int, noise: float, rng: np.random.Generator) -> Tensor:
    """CTC posteriors of a simulated model: the reference's units spread evenly over the frames."""
    units = vocab.encode(text)
    logits = np.zeros((frames, len(vocab)), dtype=np.float32)
    logits[:, 0] = 8.0
    starts = np.linspace(0, frames, len(units), endpoint=False).astype(int)
    for unit, t in zip(units, starts):
        logits[t, 0], logits[t, unit] = 0.0, 8.0
    logits += noise * rng.standard_normal(logits.shape).astype(np.float32)
    return torch.log_softmax(torch.from_numpy(logits), -1)


def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    """Wall-clock and CPU seconds (this process, all threads) of ``fn()``, and its result."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def measure(stage: str, emissions: str, decode: Callable[[Tensor], str], ems: list[Tensor], refs: list[str],
            waves: list[np.ndarray]) -> dict:
    secs, cpu, hyps = timed(lambda: [decode(e) for e in ems])
    audio_s = sum(len(w) for w in waves) / 16000
    row = {"stage": stage, "emissions": emissions, "seconds": secs, "cpu": cpu, "rtf": secs / audio_s,
           "cpu_rtf": cpu / audio_s, "wer": word_error_rate(refs, hyps), "cer": char_error_rate(refs, hyps)}
    print(row, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lm", required=True, help="word 4-gram ARPA (or KenLM binary)")
    ap.add_argument("--lexicon", required=True)
    ap.add_argument("--utts", type=int, default=40)
    ap.add_argument("--beams", type=int, nargs="+", default=[50, 500])
    ap.add_argument("--noise", type=float, default=2.0, help="logit noise of the noisy-oracle emissions")
    ap.add_argument("--lm-weight", type=float, default=2.0)
    ap.add_argument("--word-score", type=float, default=0.0)
    ap.add_argument("--transformer-lm", help="also time a Transformer LM directory (w2v2 lm train) in the beam, "
                                             "at lm weight / ln 10 (its scores are natural logs)")
    ap.add_argument("--transformer-utts", type=int, default=5)
    ap.add_argument("--transformer-beams", type=int, nargs="+", default=[10, 50])
    ap.add_argument("--out", default="benchmarks/decode_rtf")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    vocab = Vocabulary(LETTERS)
    cfg = preset("base")
    cfg.vocab_size = len(vocab)
    model = build_ctc_model(cfg).eval()
    utts = dev_utterances(args.utts)
    waves = [load_audio(p) for p, _ in utts]
    refs = [t for _, t in utts]
    audio_s = sum(len(w) for w in waves) / 16000
    compute_emissions(model, cfg, waves[:2], progress=False)  # warm-up
    acoustic_s, acoustic_cpu, random_em = timed(lambda: compute_emissions(model, cfg, waves))
    rng = np.random.default_rng(0)
    oracle_em = [noisy_oracle(vocab, t, num_frames(cfg, len(w)), args.noise, rng) for w, t in zip(waves, refs)]

    rows = [{"stage": "BASE network (random weights)", "emissions": "-", "seconds": acoustic_s, "cpu": acoustic_cpu,
             "rtf": acoustic_s / audio_s, "cpu_rtf": acoustic_cpu / audio_s}]
    load_s, _, search = timed(lambda: ngram_search_model(vocab, args.lm, args.lexicon))
    for name, ems in (("random BASE", random_em), ("noisy oracle", oracle_em)):
        rows.append(measure("greedy", name, lambda e: greedy_decode(e, vocab).text, ems, refs, waves))
        for beam in args.beams:
            config = BeamSearchConfig(beam_size=beam, lm_weight=args.lm_weight, word_score=args.word_score)
            decoder = BeamSearchDecoder(search, config)
            rows.append(measure(f"4-gram beam {beam}", name, lambda e: decoder(e)[0].text, ems, refs, waves))
    if args.transformer_lm:
        n = args.transformer_utts
        tlm = transformer_search_model(vocab, load_transformer_lm(args.transformer_lm), args.lexicon)
        for beam in args.transformer_beams:
            decoder = BeamSearchDecoder(tlm, BeamSearchConfig(beam_size=beam, lm_weight=args.lm_weight / np.log(10),
                                                              word_score=args.word_score))
            rows.append(measure(f"Transformer LM beam {beam} ({n} utts)", "noisy oracle",
                                lambda e: decoder(e)[0].text, oracle_em[:n], refs[:n], waves[:n]))
    info = {"utterances": len(utts), "audio_seconds": audio_s, "threads": torch.get_num_threads(),
            "load_average": os.getloadavg(),
            "cpu": platform.processor() or platform.machine(), "lm": str(args.lm), "lexicon": str(args.lexicon),
            "lm_load_seconds": load_s, "lm_weight": args.lm_weight, "word_score": args.word_score,
            "noise": args.noise, "rows": rows}
    (out / "decode_rtf.json").write_text(json.dumps(info, indent=2) + "\n")
    lines = ["| stage | emissions | wall s | RTF (wall) | CPU s / audio s | WER | CER |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        wer = f"{100 * r['wer']:.1f}%" if "wer" in r else "-"
        cer = f"{100 * r['cer']:.1f}%" if "cer" in r else "-"
        lines.append(f"| {r['stage']} | {r['emissions']} | {r['seconds']:.2f} | {r['rtf']:.4f} | {r['cpu_rtf']:.4f} "
                     f"| {wer} | {cer} |")
    table = "\n".join(lines)
    (out / "decode_rtf.md").write_text(table + "\n")
    print(f"{len(utts)} utterances, {audio_s:.1f} s of audio; LM loaded in {load_s:.1f} s; "
          f"load average {os.getloadavg()[0]:.1f}\n{table}")
    plot(rows, out / "decode_rtf.png")


def plot(rows: list[dict], path: Path) -> None:
    """Wall-clock RTF and CPU seconds per audio second side by side (the wall figure depends on
    what else the machine runs; the CPU figure does not)."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    labels = [r["stage"] if r["emissions"] == "-" else f"{r['stage']}\n({r['emissions']})" for r in rows]
    y = np.arange(len(rows))
    ax.barh(y - 0.2, [r["rtf"] for r in rows], height=0.4, color="tab:blue", label="wall-clock RTF")
    ax.barh(y + 0.2, [r["cpu_rtf"] for r in rows], height=0.4, color="tab:orange", label="CPU s / audio s")
    ax.axvline(1.0, color="gray", lw=0.8, ls="--")
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xscale("log")
    ax.set(xlabel="seconds per second of audio (log scale; 2 threads)", title="decoding cost")
    ax.invert_yaxis()
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
