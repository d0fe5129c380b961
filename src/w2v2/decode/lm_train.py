"""Training of the word Transformer LM (:mod:`w2v2.decode.transformer_lm`) on a text corpus:
vocabulary, held-out split, length-bucketed batches, Adam with warm-up and cosine decay,
perplexity on held-out text, metrics.json and a loss-curve PNG."""

from __future__ import annotations

import json
import math
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..interop.model_dir import atomic_write
from .transformer_lm import EOS, UNK, TransformerLM, perplexity, save_transformer_lm


@dataclass
class TrainOptions:
    steps: int = 2000
    batch_size: int = 64  # sentences (windows) per step
    lr: float = 1e-3
    warmup: int = 100
    clip: float = 1.0
    bf16: bool = False  # bfloat16 autocast on CPU
    seed: int = 0
    evals: int = 5  # held-out checks during training (on a subset)


def build_vocab(sentences: list[list[str]], size: int) -> dict[str, int]:
    """``</s>``, ``<unk>``, then the ``size`` most frequent words (ties: first seen first)."""
    counts = Counter(w for s in sentences for w in s)
    words = [w for w, _ in counts.most_common(size) if w not in (EOS, UNK)]
    return {w: i for i, w in enumerate([EOS, UNK, *words])}


def batches(model: TransformerLM, sentences: list[list[str]], batch_size: int,
            seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless (inputs, targets) batches of the sentences' context windows, shuffled, padded after
    grouping windows of similar length (padding targets are -100)."""
    flat: list[int] = []
    examples = []  # (offset in flat, inputs length, first target counted); targets = inputs shifted by one
    for s in sentences:
        for inputs, targets, skip in model.windows(model.ids(s)):
            examples.append((len(flat), len(inputs), skip))
            flat += inputs + targets[-1:]
    tokens = torch.tensor(flat, dtype=torch.long)
    rng = random.Random(seed)
    while True:
        rng.shuffle(examples)
        group = batch_size * 50
        chunks = []
        for g in range(0, len(examples), group):
            part = sorted(examples[g: g + group], key=lambda e: e[1])
            chunks += [part[b: b + batch_size] for b in range(0, len(part), batch_size)]
        rng.shuffle(chunks)
        for chunk in chunks:
            width = max(n for _, n, _ in chunk)
            inputs = torch.full((len(chunk), width), model.eos_id, dtype=torch.long)
            targets = torch.full((len(chunk), width), -100, dtype=torch.long)
            for row, (offset, n, skip) in enumerate(chunk):
                inputs[row, :n] = tokens[offset: offset + n]
                targets[row, skip:n] = tokens[offset + 1 + skip: offset + 1 + n]
            yield inputs, targets


def learning_rate(step: int, opts: TrainOptions) -> float:
    """Linear warm-up, then cosine decay to 0 at ``opts.steps``."""
    if step < opts.warmup:
        return opts.lr * (step + 1) / opts.warmup
    progress = (step - opts.warmup) / max(1, opts.steps - opts.warmup)
    return opts.lr * 0.5 * (1 + math.cos(math.pi * progress))


def train(model: TransformerLM, train_sentences: list[list[str]], heldout: list[list[str]],
          opts: TrainOptions) -> list[dict[str, float]]:
    """Adam on next-word cross-entropy; returns the log ({step, train_loss[, valid_ppl]})."""
    torch.manual_seed(opts.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=opts.lr, betas=(0.9, 0.98), eps=1e-8)
    data = batches(model, train_sentences, opts.batch_size, opts.seed)
    probe = heldout[:300]
    checks = {round(opts.steps * (i + 1) / opts.evals) - 1 for i in range(opts.evals)} if opts.evals else set()
    log: list[dict[str, float]] = []
    bar = tqdm(range(opts.steps), desc="training LM", unit="step")
    for step in bar:
        model.train()
        inputs, targets = next(data)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, opts)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=opts.bf16):
            loss = -model.target_log_probs(inputs, targets).sum() / (targets >= 0).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), opts.clip)
        optimizer.step()
        entry = {"step": step + 1, "train_loss": loss.item()}
        if step in checks and probe:
            model.eval()
            entry["valid_ppl"] = perplexity(model, probe)
            bar.set_postfix(loss=f"{entry['train_loss']:.3f}", valid_ppl=f"{entry['valid_ppl']:.1f}")
        elif step % 20 == 0:
            bar.set_postfix(loss=f"{entry['train_loss']:.3f}")
        log.append(entry)
    model.eval()
    return log


def plot_training(log: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps = [e["step"] for e in log]
    k = max(1, len(log) // 50)
    smooth = [sum(e["train_loss"] for e in log[max(0, i - k + 1): i + 1]) / len(log[max(0, i - k + 1): i + 1])
              for i in range(len(log))]
    ax.plot(steps, [math.exp(v) for v in smooth], label="training batches (smoothed)")
    checks = [e for e in log if "valid_ppl" in e]
    ax.plot([e["step"] for e in checks], [e["valid_ppl"] for e in checks], "o-", label="held-out subset")
    ax.set(xlabel="step", ylabel="perplexity", yscale="log", title="Transformer LM training")
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=120))
    plt.close(fig)


def train_and_save(model: TransformerLM, train_sentences: list[list[str]], heldout: list[list[str]],
                   opts: TrainOptions, out: Path, extra_valid: dict[str, list[list[str]]] | None = None) -> dict:
    """Train, save the model directory, and write metrics.json (held-out perplexities) and
    training.png; returns the metrics."""
    start = time.time()
    log = train(model, train_sentences, heldout, opts)
    seconds = time.time() - start
    save_transformer_lm(model, out)
    metrics = {
        "train_sentences": len(train_sentences),
        "train_tokens": sum(len(s) + 1 for s in train_sentences),
        "steps": opts.steps,
        "train_seconds": round(seconds, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    for name, sentences in {"heldout": heldout, **(extra_valid or {})}.items():
        words = [w for s in sentences for w in s]
        metrics[name] = {
            "sentences": len(sentences),
            "tokens": len(words) + len(sentences),
            "oov_rate": sum(w not in model.vocab for w in words) / max(1, len(words)),
            "perplexity": perplexity(model, sentences),
        }
    atomic_write(out / "metrics.json", lambda p: p.write_text(json.dumps(metrics, indent=2) + "\n"))
    atomic_write(out / "training.jsonl", lambda p: p.write_text("".join(json.dumps(e) + "\n" for e in log)))
    plot_training(log, out / "training.png")
    return metrics
