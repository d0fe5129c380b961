"""Shared pieces of the decoding tests: hand-written ARPA files, peaked emissions, a tiny CTC model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from w2v2.data.text import Vocabulary

LETTERS = Vocabulary(["<pad>", "<unk>", "|", "A", "B", "C", "T"])


def write_arpa(path: Path, unigrams: dict[str, float], bigrams: dict[tuple[str, str], float] | None = None,
               backoff: float = 0.0) -> Path:
    """An ARPA file with the given log10 probabilities (tab-separated, as KenLM requires).
    Unigrams get ``backoff`` as their backoff weight. KenLM needs a bigram section: without
    bigrams, the file gets a harmless "<s> </s>" (the empty sentence)."""
    bigrams = bigrams or {("<s>", "</s>"): -99.0}
    lines = ["\\data\\", f"ngram 1={len(unigrams)}", f"ngram 2={len(bigrams)}"]
    lines += ["", "\\1-grams:"]
    for w, p in unigrams.items():
        lines.append(f"{p}\t{w}" + (f"\t{backoff}" if w != "</s>" else ""))
    lines += ["", "\\2-grams:"] + [f"{p}\t{a} {b}" for (a, b), p in bigrams.items()]
    path.write_text("\n".join(lines + ["", "\\end\\", ""]))
    return path


def write_lexicon(path: Path, words: list[str]) -> Path:
    path.write_text("".join(f"{w}\t{' '.join(w)} |\n" for w in words))
    return path


def peaked(path: list[int | dict[int, float]], vocab_size: int = len(LETTERS), floor: float = -12.0) -> torch.Tensor:
    """Log-probabilities (T, V): a frame given as an int puts (almost) all mass on that unit; a
    frame given as {unit: probability} splits it."""
    x = torch.full((len(path), vocab_size), floor)
    for t, frame in enumerate(path):
        for unit, p in ({frame: 1.0} if isinstance(frame, int) else frame).items():
            x[t, unit] = math.log(p)
    return torch.log_softmax(x, dim=-1)


def letters(text: str) -> list[int]:
    return LETTERS.encode(text)


def tiny_ctc_model(tmp_path: Path, seed: int = 0) -> Path:
    """A randomly initialised transformers Wav2Vec2ForCTC over A-Z (layer-norm layout), imported
    into a w2v2 model directory; the transformers folder is kept at ``tmp_path / 'hf'``."""
    from hf_oracle import build

    from w2v2.cli import main

    tokens = ["<pad>", "<s>", "</s>", "<unk>", "|"] + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    hf = build("Wav2Vec2ForCTC", "layer", seed=seed, vocab_size=len(tokens))
    with torch.no_grad():  # sharper posteriors than a fresh head, so that decoding is not all ties;
        hf.lm_head.weight.mul_(30.0)  # <s>, </s>, <unk> never win (as in a fine-tuned model)
        hf.lm_head.bias[1:4] = -100.0
    hf.save_pretrained(tmp_path / "hf")
    (tmp_path / "hf" / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    out = tmp_path / "model"
    assert main(["import", "--from", "hf", str(tmp_path / "hf"), str(out)]) == 0
    return out


def write_noise(path: Path, seconds: float, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    sf.write(path, (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32), 16000, subtype="FLOAT")
    return path


def write_manifest_tsv(path: Path, rows: list[tuple[Path, str]]) -> Path:
    lines = ["path\tsamples\ttext"] + [f"{p}\t{sf.info(p).frames}\t{text}" for p, text in rows]
    path.write_text("\n".join(lines) + "\n")
    return path
