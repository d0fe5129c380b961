"""CTC forced alignment (Graves et al. 2006; the CTC criterion of paper section 4.3).

The transcript's units (letters or phones) are interleaved with the blank, ``b y1 b y2 ... yL b``,
and the Viterbi path through this sequence is found by dynamic programming over frames: from state
s a frame may stay in s, move to s+1, or skip the blank to s+2 when y(s+2) differs from y(s). The
path starts in one of the first two states and ends in one of the last two. Every unit is then the
run of frames spent in its state; frames in blank states belong to no unit.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import nn
from tqdm import tqdm

from ..config import W2V2Config
from ..data.audio import SAMPLE_RATE, load_audio
from ..data.manifest import read_manifest
from ..data.text import Vocabulary
from ..decode.inference import model_input
from ..interop.model_dir import atomic_write, load_ctc
from .phones import cmu_lexicon_for
from .phones import phonemize as phonemize_text
from .report import save_figure

_STAY, _NEXT, _SKIP = 0, 1, 2


@dataclass(frozen=True)
class Segment:
    """A labelled stretch of frames ``[start, end)``."""

    label: str
    start: int
    end: int


def ctc_viterbi(log_probs: np.ndarray, targets: Sequence[int], blank: int = 0) -> tuple[np.ndarray, float]:
    """Best CTC path for ``targets`` through ``log_probs`` (T, V).

    Returns the state of each frame in the blank-interleaved sequence (odd state 2k+1 = unit k,
    even states = blanks) and the path's total log probability. Raises ValueError when no valid
    path exists (fewer frames than units plus the blanks needed between repeated units).
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    num_frames = lp.shape[0]
    ext = np.full(2 * len(targets) + 1, blank, dtype=np.int64)
    ext[1::2] = np.asarray(targets, dtype=np.int64)
    n = len(ext)
    needed = len(targets) + int(np.sum(ext[3::2] == ext[1:-2:2]))
    if num_frames < max(needed, 1):
        raise ValueError(f"{num_frames} frames cannot hold {len(targets)} units ({needed} frames needed)")
    can_skip = np.zeros(n, dtype=bool)
    can_skip[3::2] = ext[3::2] != ext[1:-2:2]
    alpha = np.full(n, -np.inf)
    alpha[: min(2, n)] = lp[0, ext[: min(2, n)]]
    back = np.zeros((num_frames, n), dtype=np.int8)
    for t in range(1, num_frames):
        cand = np.full((3, n), -np.inf)
        cand[_STAY] = alpha
        cand[_NEXT, 1:] = alpha[:-1]
        cand[_SKIP, 2:] = np.where(can_skip[2:], alpha[:-2], -np.inf)
        back[t] = cand.argmax(axis=0)
        alpha = cand[back[t], np.arange(n)] + lp[t, ext]
    last = n - 1 if n == 1 or alpha[n - 1] >= alpha[n - 2] else n - 2
    score = float(alpha[last])
    if not np.isfinite(score):
        raise ValueError("no CTC path with finite probability for this transcript")
    states = np.empty(num_frames, dtype=np.int64)
    states[-1] = last
    for t in range(num_frames - 1, 0, -1):
        states[t - 1] = states[t] - back[t, states[t]]
    return states, score


def unit_spans(states: np.ndarray, num_units: int) -> list[tuple[int, int]]:
    """Frames ``[start, end)`` spent in the state of each unit of a Viterbi path."""
    spans = []
    for k in range(num_units):
        frames = np.flatnonzero(states == 2 * k + 1)
        spans.append((int(frames[0]), int(frames[-1]) + 1))
    return spans


def segment_units(labels: Sequence[str], spans: Sequence[tuple[int, int]], boundary: str = Vocabulary.BOUNDARY,
                  fill: bool = False) -> tuple[list[Segment], list[list[Segment]]]:
    """Units and the words they form (words are separated by ``boundary`` units, which are dropped).

    ``fill``: a unit also takes the blank frames up to the next unit of the same word, so that a
    peaky CTC model's one-frame spikes become contiguous segments (used for phone labels).
    """
    words: list[list[Segment]] = [[]]
    for label, (start, end) in zip(labels, spans):
        if label == boundary:
            words.append([])
        else:
            words[-1].append(Segment(label, start, end))
    words = [w for w in words if w]
    if fill:
        words = [[Segment(s.label, s.start, nxt.start) for s, nxt in zip(w, w[1:])] + [w[-1]] for w in words]
    return [s for w in words for s in w], words


def model_input_of(path: str | Path, cfg: W2V2Config) -> torch.Tensor:
    """(1, samples) waveform of a file as the model expects it (:func:`~w2v2.decode.inference.model_input`)."""
    return torch.from_numpy(model_input(load_audio(path), cfg, str(path)))[None]


@torch.inference_mode()
def ctc_log_probs(model: nn.Module, waveform: torch.Tensor) -> np.ndarray:
    """(T, V) frame log posteriors of a CTC model for one (1, samples) waveform."""
    return torch.log_softmax(model(waveform).logits[0].float(), dim=-1).numpy()


def align_transcript(log_probs: np.ndarray, vocab: Vocabulary, text: str, words: Sequence[str] | None = None,
                     fill: bool = False, source: str = "") -> tuple[list[Segment], list[Segment]]:
    """Unit segments and word segments (frames) of ``text`` (in the vocabulary's units) under a CTC
    model's posteriors. Words are labelled with ``words`` when given (e.g. the spelling of a
    phonemised transcript), otherwise with their units joined."""
    ids = vocab.encode(text, source=source)
    states, _ = ctc_viterbi(log_probs, ids, blank=0)
    units, grouped = segment_units([vocab.tokens[i] for i in ids], unit_spans(states, len(ids)), fill=fill)
    if words is not None and len(words) != len(grouped):
        raise ValueError(f"{source}: {len(words)} words given for {len(grouped)} aligned words")
    joiner = "" if vocab.units == "char" else " "
    labels = words if words is not None else [joiner.join(s.label for s in w) for w in grouped]
    return units, [Segment(label, w[0].start, w[-1].end) for label, w in zip(labels, grouped)]


def write_segments(path: str | Path, rows: list[tuple[str, Segment]], frame_s: float) -> None:
    """TSV ``id start end label`` with times in seconds."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE, escapechar="\\")
            w.writerow(["id", "start", "end", "label"])
            for utt, s in rows:
                w.writerow([utt, f"{s.start * frame_s:.3f}", f"{s.end * frame_s:.3f}", s.label])

    atomic_write(Path(path), write)


@dataclass
class AlignedUtterance:
    id: str
    log_probs: np.ndarray  # (T, V)
    units: list[Segment]
    words: list[Segment]


def plot_alignments(items: Sequence[AlignedUtterance], vocab: Vocabulary, frame_s: float) -> Figure:
    """Per utterance, the posterior of each transcript unit over time with its aligned segment
    outlined, and the words on top."""
    fig = Figure(figsize=(12, sum(1.0 + 0.12 * len(u.units) for u in items) + 0.5), layout="constrained")
    axes = fig.subplots(len(items), 1, squeeze=False, height_ratios=[1.0 + 0.12 * len(u.units) for u in items])
    for ax, u in zip(axes[:, 0], items):
        post = np.exp(u.log_probs[:, [vocab.index[s.label] for s in u.units]]).T
        ax.imshow(post, aspect="auto", origin="upper", cmap="Greys", vmin=0, vmax=1, interpolation="nearest",
                  extent=(0, len(u.log_probs) * frame_s, len(u.units) - 0.5, -0.5))
        for k, s in enumerate(u.units):
            ax.add_patch(Rectangle((s.start * frame_s, k - 0.5), (s.end - s.start) * frame_s, 1.0, fill=False,
                                   edgecolor="tab:red", linewidth=0.8))
        ax.set_yticks(range(len(u.units)), [s.label for s in u.units], fontsize=5)
        for w in u.words:
            ax.axvline(w.start * frame_s, color="tab:blue", linewidth=0.5)
        top = ax.secondary_xaxis("top")
        top.set_xticks([(w.start + w.end) / 2 * frame_s for w in u.words], [w.label for w in u.words], fontsize=6)
        ax.set_xlabel("seconds")
        ax.set_title(f"{u.id}: P(unit | frame) of the transcript's units, aligned segments in red", fontsize=8)
    return fig


def words_path(out: str | Path) -> Path:
    """Where ``align`` writes the word segments next to the unit segments: ``X.tsv`` -> ``X.words.tsv``."""
    out = Path(out)
    return out.with_name(out.stem + ".words" + (out.suffix or ".tsv"))


def align_manifest(model_dir: str | Path, manifest: str | Path, out: str | Path, fill: bool = True,
                   phonemize: bool = False, plots: int = 3, letter_to_sound: bool = True) -> dict[str, int]:
    """Force-align the transcripts of ``manifest`` with a CTC model; writes the units (letters or
    phones, ``|`` dropped) to ``out``, the words to :func:`words_path` and a plot of the first
    ``plots`` alignments to ``out`` with suffix ``.png``. ``phonemize``: the model's units are
    phones and the manifest holds words, converted with the CMU lexicon (and for words outside it,
    with ``letter_to_sound``, espeak-ng's rules). Returns counts of aligned and skipped utterances."""
    model, cfg, vocab = load_ctc(model_dir)
    if phonemize and vocab.units != "token":
        raise ValueError(f"{model_dir}: --phonemize needs a model with token (phone) units, this one has letters")
    entries = read_manifest(manifest)
    words = (w for e in entries for w in (e.text or "").split())
    lexicon = cmu_lexicon_for(words, letter_to_sound)[0] if phonemize else None
    frame_s = cfg.frame_stride / SAMPLE_RATE
    unit_rows: list[tuple[str, Segment]] = []
    word_rows: list[tuple[str, Segment]] = []
    counts = {"aligned": 0, "no transcript": 0, "not alignable": 0}
    shown: list[AlignedUtterance] = []
    for e in tqdm(entries, desc="align", unit="utt"):
        if not e.text:
            counts["no transcript"] += 1
            continue
        text, words = e.text, None
        if lexicon is not None:
            text, oov = phonemize_text(e.text, lexicon)
            words = e.text.split()
            if text is None:
                warnings.warn(f"{e.path}: skipped, words not in the lexicon: {' '.join(oov)}", stacklevel=2)
                counts["not alignable"] += 1
                continue
        try:
            lp = ctc_log_probs(model, model_input_of(e.path, cfg))
            units, word_segs = align_transcript(lp, vocab, text, words, fill=fill, source=str(e.path))
        except ValueError as err:
            warnings.warn(f"{e.path}: skipped: {err}", stacklevel=2)
            counts["not alignable"] += 1
            continue
        unit_rows += [(e.id, s) for s in units]
        word_rows += [(e.id, s) for s in word_segs]
        counts["aligned"] += 1
        if len(shown) < plots:
            shown.append(AlignedUtterance(e.id, lp, units, word_segs))
    write_segments(out, unit_rows, frame_s)
    write_segments(words_path(out), word_rows, frame_s)
    if shown:
        save_figure(plot_alignments(shown, vocab, frame_s), Path(out).with_suffix(".png"))
    return counts
