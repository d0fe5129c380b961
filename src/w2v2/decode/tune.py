"""Tuning the LM weight and word score on dev data (paper section 4.4).

The paper tuned them by Bayesian optimisation; this is fairseq's random sweep: ``trials`` draws
(fixed seed) of LM weight uniform in [0, 5] and word score uniform in [-5, 5], each decoding the
dev set from emissions computed once. The default setting is always tried first, so the chosen
one is never worse on dev than the default. The result goes to ``MODEL_DIR/decoder.json``, one
section per decoder kind, which ``transcribe`` / ``evaluate`` read as their defaults.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import Tensor
from tqdm import tqdm

from ..interop.model_dir import atomic_write
from .beam import BeamSearchConfig, BeamSearchDecoder, SearchModel
from .metrics import word_error_rate

DECODER_JSON = "decoder.json"
LM_WEIGHT_RANGE = (0.0, 5.0)
WORD_SCORE_RANGE = (-5.0, 5.0)


@dataclass(frozen=True)
class Trial:
    lm_weight: float
    word_score: float
    wer: float


def draw_weights(trials: int, seed: int) -> list[tuple[float, float]]:
    rng = np.random.default_rng(seed)
    return [(float(rng.uniform(*LM_WEIGHT_RANGE)), float(rng.uniform(*WORD_SCORE_RANGE))) for _ in range(trials)]


def random_search(dev_wer: Callable[[float, float], float], base: tuple[float, float], trials: int,
                  seed: int = 0) -> tuple[Trial, list[Trial]]:
    """Best (LM weight, word score) on dev by ``dev_wer(lm_weight, word_score)`` (lowest WER; the
    earliest on ties) and every trial, ``base`` first."""
    grid = [base] + draw_weights(trials, seed)
    done = [Trial(lw, ws, dev_wer(lw, ws)) for lw, ws in tqdm(grid, desc="tune-decoder", unit="trial")]
    return min(done, key=lambda t: t.wer), done


def beam_dev_wer(search: SearchModel, base: BeamSearchConfig, emissions: Sequence[Tensor],
                 refs: Sequence[str]) -> Callable[[float, float], float]:
    """Dev WER of the beam search with the given LM weight and word score."""
    def wer(lm_weight: float, word_score: float) -> float:
        decode = BeamSearchDecoder(search, dataclasses.replace(base, lm_weight=lm_weight, word_score=word_score))
        return word_error_rate(refs, [decode(e)[0].text for e in emissions])
    return wer


def read_decoder_json(model_dir: str | Path) -> dict[str, dict]:
    path = Path(model_dir) / DECODER_JSON
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object with one section per decoder")
    return data


def write_decoder_json(model_dir: str | Path, kind: str, settings: dict) -> Path:
    """Replace the ``kind`` section of decoder.json, keeping the other decoders' sections."""
    data = read_decoder_json(model_dir)
    data[kind] = settings
    path = Path(model_dir) / DECODER_JSON
    atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=2) + "\n"))
    return path


def write_trials(trials: Sequence[Trial], tsv: Path, png: Path) -> None:
    """The sweep as a table and as a scatter plot of dev WER over the two weights."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = ["lm_weight\tword_score\twer"] + [f"{t.lm_weight:.4f}\t{t.word_score:.4f}\t{t.wer:.4f}" for t in trials]
    atomic_write(tsv, lambda p: p.write_text("\n".join(rows) + "\n"))
    best = min(trials, key=lambda t: t.wer)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    sc = ax.scatter([t.lm_weight for t in trials], [t.word_score for t in trials],
                    c=[100 * t.wer for t in trials], cmap="viridis_r", s=40)
    ax.scatter([best.lm_weight], [best.word_score], marker="*", s=250, facecolor="none", edgecolor="red",
               label=f"best: WER {100 * best.wer:.2f}%")
    fig.colorbar(sc, label="dev WER (%)")
    ax.set(xlabel="LM weight", ylabel="word score", title="decoder weight sweep",
           xlim=LM_WEIGHT_RANGE, ylim=WORD_SCORE_RANGE)
    ax.legend(loc="upper right")
    fig.tight_layout()
    atomic_write(png, lambda p: fig.savefig(p, dpi=100, format="png"))
    plt.close(fig)
