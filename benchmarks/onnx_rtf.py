"""Real-time factor of the acoustic model on ONNX Runtime against PyTorch, on CPU.

    .venv/bin/python benchmarks/onnx_rtf.py [--utts 12] [--rounds 7] [--model-dir DIR ...] [--random tiny ...]

For each model (a fine-tuned model directory, and a randomly initialised CTC model of each
``--random`` preset: speed does not depend on the weights) the model is exported with
``w2v2.interop.onnx.export_onnx``, then ``compute_emissions`` (the batching and chunking of
``w2v2 transcribe``) runs on the same audio with the PyTorch model and the ONNX Runtime session,
interleaved A B A B ... so that a change in the machine's load hits both alike. Reported per model:
each backend's median acoustic RTF (processing seconds / audio seconds), the median of the per-round
ratios ONNX / torch, the largest logit difference over valid frames, and whether greedy transcripts
and word times agree. Audio: the first ``--utts`` ``kathleen_dev`` utterances of ../shared/data, or
seeded noise of the same kind of lengths when the data is absent. Both backends use ``--threads``.

Writes onnx_rtf.json and onnx_rtf.md to ``--out`` (benchmarks/onnx_rtf).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from w2v2.data.audio import load_audio
from w2v2.data.text import Vocabulary
from w2v2.decode.inference import InferenceConfig, compute_emissions, model_input
from w2v2.decode.transcriber import Transcriber
from w2v2.interop.model_dir import load_ctc
from w2v2.interop.onnx import OnnxAcousticModel, export_onnx
from w2v2.model import build_ctc_model, preset

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FINETUNED = Path("/tmp/study/runs/F-A2-pretrained/best")
LETTERS = [Vocabulary.BLANK, Vocabulary.UNK, Vocabulary.BOUNDARY] + list("'ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def audio(n: int) -> tuple[list[np.ndarray], str]:
    """The first ``n`` kathleen_dev utterances, or seeded noise of 2-6 s when the data is absent."""
    split = DATA / "splits" / "kathleen_dev.tsv"
    if split.is_file():
        with open(split, newline="") as f:
            ids = [r["id"] for r in csv.DictReader(f, delimiter="\t")][:n]
        return [load_audio(DATA / "kathleen" / "audio" / f"{i}.flac") for i in ids], f"{n} kathleen_dev utterances"
    rng = np.random.default_rng(0)
    waves = [(0.1 * rng.standard_normal(int(rng.uniform(2, 6) * 16000))).astype(np.float32) for _ in range(n)]
    return waves, f"{n} noise clips (../shared/data absent)"


def random_model(name: str):
    cfg = preset(name)
    cfg = type(cfg).from_dict({**cfg.to_dict(), "vocab_size": len(LETTERS)})
    torch.manual_seed(0)
    return build_ctc_model(cfg).eval(), cfg, Vocabulary(LETTERS)


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def max_logit_difference(model, session: OnnxAcousticModel, waves: list[np.ndarray]) -> float:
    """Largest |logit difference| over the valid frames of one zero-padded batch of ``waves``."""
    lengths = torch.tensor([len(w) for w in waves])
    x = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        x[i, : len(w)] = torch.from_numpy(w)
    with torch.inference_mode():
        ref = model(x, lengths)
    got = session(x, lengths)
    frames = ref.lengths.tolist()
    return max(float((ref.logits[i, :f] - got.logits[i, :f]).abs().max()) for i, f in enumerate(frames))


def compare(name: str, model, cfg, vocab, waves: list[np.ndarray], rounds: int, inf: InferenceConfig,
            tmp: Path) -> dict:
    path = tmp / f"{name.replace('/', '_')}.onnx"
    export_s, _ = timed(lambda: export_onnx(model, cfg, vocab, path))
    session = OnnxAcousticModel(path)
    seconds = sum(len(w) for w in waves) / 16000
    backends = {"torch": model, "onnx": session}
    for m in backends.values():  # warm-up: first-call allocations, oneDNN / ORT kernel selection
        compute_emissions(m, cfg, waves[:2], inf, progress=False)
    times: dict[str, list[float]] = {"torch": [], "onnx": []}
    emissions = {}
    for _ in range(rounds):
        for key, m in backends.items():
            t, emissions[key] = timed(lambda: compute_emissions(m, cfg, waves, inf, progress=False))
            times[key].append(t)
    # log-softmax outputs (what decoding sees), and raw logits of one padded batch, over valid frames
    diff = max(float((a - b).abs().max()) for a, b in zip(emissions["torch"], emissions["onnx"]))
    logit_diff = max_logit_difference(model, session, [model_input(w, cfg, "benchmark") for w in waves[:4]])
    texts = {k: [Transcriber(m, cfg, vocab, {"decoder": "greedy"}).transcript(e)
                 for e in emissions[k]] for k, m in backends.items()}
    same = all(a.text == b.text and [(w.start, w.end) for w in a.words] == [(w.start, w.end) for w in b.words]
               for a, b in zip(texts["torch"], texts["onnx"]))
    ratios = [o / t for o, t in zip(times["onnx"], times["torch"])]
    row = {"model": name, "parameters_M": sum(p.numel() for p in model.parameters()) / 1e6,
           "export_seconds": export_s, "onnx_MB": path.stat().st_size / 1e6, "audio_seconds": seconds,
           "rtf_torch": statistics.median(times["torch"]) / seconds,
           "rtf_onnx": statistics.median(times["onnx"]) / seconds,
           "median_ratio_onnx_over_torch": statistics.median(ratios), "ratios": ratios,
           "times_torch": times["torch"], "times_onnx": times["onnx"],
           "max_logit_difference": logit_diff, "max_logprob_difference": diff,
           "greedy_text_and_word_times_equal": same}
    print(json.dumps(row), flush=True)
    return row


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [f"{meta['audio']} ({rows[0]['audio_seconds']:.1f} s of audio), {meta['threads']} threads per backend, "
             f"{meta['rounds']} interleaved rounds; load average {meta['load_before']} before, "
             f"{meta['load_after']} after; torch {meta['torch']}, onnxruntime {meta['onnxruntime']}", "",
             "| model | params | RTF torch | RTF onnx | median ratio onnx / torch | max abs Δ logits | "
             "max abs Δ log-prob | greedy equal | export s |", "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['parameters_M']:.1f}M | {r['rtf_torch']:.4f} | {r['rtf_onnx']:.4f} | "
                     f"{r['median_ratio_onnx_over_torch']:.3f} | {r['max_logit_difference']:.1e} | "
                     f"{r['max_logprob_difference']:.1e} | "
                     f"{'yes' if r['greedy_text_and_word_times_equal'] else 'NO'} | {r['export_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--utts", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model-dir", nargs="*", default=[str(FINETUNED)] if FINETUNED.is_dir() else [])
    ap.add_argument("--random", nargs="*", default=["tiny"], help="presets of randomly initialised CTC models")
    ap.add_argument("--out", default=str(Path(__file__).with_name("onnx_rtf")))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    waves, what = audio(args.utts)
    inf = InferenceConfig()
    import onnxruntime

    meta = {"audio": what, "threads": args.threads, "rounds": args.rounds, "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "machine": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "load_before": " ".join(f"{x:.1f}" for x in os.getloadavg())}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for d in args.model_dir:
            model, cfg, vocab = load_ctc(d)
            rows.append(compare(f"fine-tuned {d}", model, cfg, vocab, waves, args.rounds, inf, Path(tmp)))
        for name in args.random:
            model, cfg, vocab = random_model(name)
            rows.append(compare(f"random {name}", model, cfg, vocab, waves, args.rounds, inf, Path(tmp)))
    meta["load_after"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "onnx_rtf.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    (out / "onnx_rtf.md").write_text(markdown(rows, meta))
    print(markdown(rows, meta))


if __name__ == "__main__":
    main()
