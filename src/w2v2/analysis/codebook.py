"""Codebook analysis (paper appendix D, figure 3): which quantizer entries are chosen for which
phones.

For every frame the quantization module (section 2, eq. 1) picks one entry per group (argmax, as
in evaluation); the joint code of G groups is ``sum_g code_g * V**(G-1-g)`` (g0 * V + g1 for G=2).
Frames get the phone whose segment contains the frame's centre (frame t covers samples
[t*stride, t*stride + receptive field)). From the code/phone co-occurrence counts n(c, p):

* P(phone | code) = n(c, p) / n(c), shown as a heat map for the most frequent codes;
* phone purity = sum_c max_p n(c, p) / N, the accuracy of predicting the phone from the code
  by its most frequent phone (HuBERT, Hsu et al. 2021, section IV-F);
* mutual information I(code; phone) in bits, and PNMI = I / H(phone);
* code usage: per group the entries used and the perplexity exp(H) of the usage distribution
  (the hard "code perplexity" that pre-training logs, summed over groups), and the joint codes.

A model without a codebook (continuous targets, table 4) is analysed through k-means units
instead (``kmeans``): one code per frame, the cluster of its latent z or context vector c, with
clusters fitted per model on the analysed frames, so that every model uses (about) K codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from tqdm import tqdm

from ..data.audio import SAMPLE_RATE
from ..data.manifest import read_manifest
from ..interop.model_dir import load_model_dir
from ..model.feature_encoder import num_frames
from ..model.pretraining import Wav2Vec2ForPreTraining, build_pretraining_model
from ..model.units import MfccFrames
from .align import model_input_of
from .kmeans import kmeans
from .phones import match_alignments
from .report import markdown_table, save_figure, write_text


@torch.inference_mode()
def frame_codes(model: Wav2Vec2ForPreTraining, waveform: torch.Tensor) -> np.ndarray:
    """(T, G) codebook entries chosen for each frame of one (1, samples) waveform (eval mode)."""
    if model.quantizer is None:
        raise ValueError("this model has no target quantizer (continuous-target ablation)")
    normed = model.wav2vec2.features(waveform).normed
    return model.quantizer(normed.reshape(-1, normed.shape[-1])).codes.numpy()


REPRESENTATIONS = ("context", "latent", "mfcc")


@torch.inference_mode()
def frame_vectors(model: Wav2Vec2ForPreTraining, waveform: torch.Tensor, representation: str) -> np.ndarray:
    """(T, D) vector of each frame of one (1, samples) waveform, nothing masked (eval mode):
    ``latent``, the layer-normalised feature encoder output z (section 2; the quantizer's input,
    and the targets themselves with continuous targets); ``context``, the Transformer's output c;
    ``mfcc``, the MFCC vectors that unit targets cluster (``target_units``; no weights involved, so
    the same for every model of a config: a reference)."""
    if representation == "latent":
        return model.wav2vec2.features(waveform).normed[0].float().numpy()
    if representation == "context":
        return model.wav2vec2(waveform).last_hidden_state[0].float().numpy()
    if representation == "mfcc":
        cfg = model.cfg
        mfcc = MfccFrames(cfg.receptive_field, cfg.frame_stride)
        return mfcc(waveform, num_frames(cfg.conv_layers, waveform.shape[-1]))[0].numpy()
    raise ValueError(f"representation must be one of {REPRESENTATIONS}, got {representation!r}")


def joint_codes(codes: np.ndarray, num_vars: int) -> np.ndarray:
    """(N, G) per-group entries -> (N,) joint code g0 * V**(G-1) + ... + g_{G-1}."""
    joint = np.zeros(len(codes), dtype=np.int64)
    for g in range(codes.shape[1]):
        joint = joint * num_vars + codes[:, g]
    return joint


def frame_labels(segments: Sequence[tuple[float, float, str]], num_frames: int, stride_s: float,
                 centre_s: float) -> list[str | None]:
    """The phone whose ``[start, end)`` (seconds) holds each frame's centre; None where no segment does."""
    labels: list[str | None] = [None] * num_frames
    for start, end, phone in segments:
        first = max(0, int(np.ceil((start - centre_s) / stride_s - 1e-9)))
        last = min(num_frames, int(np.ceil((end - centre_s) / stride_s - 1e-9)))
        for t in range(first, last):
            labels[t] = phone
    return labels


@dataclass
class Cooccurrence:
    codes: np.ndarray  # (K,) distinct codes, by decreasing frequency
    phones: list[str]  # (P,) by decreasing frequency
    counts: np.ndarray  # (K, P) frames with code k and phone p

    @classmethod
    def count(cls, codes: np.ndarray, phones: Sequence[str]) -> Cooccurrence:
        if len(codes) != len(phones) or len(codes) == 0:
            raise ValueError(f"need equally many codes and phones (> 0), got {len(codes)} and {len(phones)}")
        code_vals, ci = np.unique(codes, return_inverse=True)
        phone_vals, pi = np.unique(np.asarray(phones, dtype=object), return_inverse=True)
        counts = np.zeros((len(code_vals), len(phone_vals)), dtype=np.int64)
        np.add.at(counts, (ci, pi), 1)
        rows = np.argsort(-counts.sum(1), kind="stable")
        cols = np.argsort(-counts.sum(0), kind="stable")
        return cls(code_vals[rows], [str(p) for p in phone_vals[cols]], counts[rows][:, cols])

    def p_phone_given_code(self) -> np.ndarray:
        return self.counts / self.counts.sum(1, keepdims=True)

    def purity(self) -> float:
        return float(self.counts.max(1).sum() / self.counts.sum())

    def mutual_information(self) -> float:
        """I(code; phone) in bits, from the empirical joint distribution."""
        p = self.counts / self.counts.sum()
        outer = p.sum(1, keepdims=True) * p.sum(0, keepdims=True)
        nz = p > 0
        return float(np.sum(p[nz] * np.log2(p[nz] / outer[nz])))

    def phone_entropy(self) -> float:
        return entropy(self.counts.sum(0))

    def top_codes(self, k: int) -> Cooccurrence:
        """The ``k`` most frequent codes kept, every other code merged into one (code -1): every
        frame stays, and two models compare at the same number of codes (k + 1)."""
        if len(self.codes) <= k:
            return self
        rest = self.counts[k:].sum(0, keepdims=True)
        return Cooccurrence(np.append(self.codes[:k], -1), self.phones, np.concatenate([self.counts[:k], rest]))

    def chance_information(self, permutations: int = 5, seed: int = 0) -> float:
        """I(code; phone) expected by chance: the mean over random pairings of the same codes with
        the same phones (phones shuffled across frames). The empirical MI of independent labels is
        positive and grows with the number of codes; MI minus this is what the codes know."""
        codes = np.repeat(np.arange(len(self.codes)), self.counts.sum(1))
        phones = np.concatenate([np.repeat(np.arange(len(self.phones)), row) for row in self.counts])
        rng = np.random.default_rng(seed)
        total = 0.0
        for _ in range(permutations):
            counts = np.zeros_like(self.counts)
            np.add.at(counts, (codes, rng.permutation(phones)), 1)
            total += Cooccurrence(self.codes, self.phones, counts).mutual_information()
        return total / permutations


def entropy(counts: np.ndarray) -> float:
    """Entropy in bits of the distribution proportional to ``counts``."""
    p = counts[counts > 0] / counts.sum()
    return float(-np.sum(p * np.log2(p)))


def usage_perplexity(codes: np.ndarray) -> float:
    """exp(H) of how often each value of ``codes`` is used; equals the number of entries when all
    are used equally (the quantizer's hard code perplexity for one group)."""
    _, counts = np.unique(codes, return_counts=True)
    return float(2.0 ** entropy(counts))


def codebook_summary(codes: np.ndarray, num_vars: int, labelled: np.ndarray,
                     phones: Sequence[str], equal_codes: int) -> dict[str, object]:
    """Usage and phone statistics of (N, G) codes; ``labelled`` (N,) marks frames with a phone
    and ``phones`` holds those frames' phones in order. ``equal_codes``: the number of most
    frequent codes kept (the rest merged) for the statistics at equal code usage."""
    groups = codes.shape[1]
    joint = joint_codes(codes, num_vars)
    co = Cooccurrence.count(joint[labelled], phones)
    out: dict[str, object] = {"frames": len(codes), "frames with a phone": int(labelled.sum())}
    for g in range(groups):
        used = len(np.unique(codes[:, g]))
        out[f"group {g}: entries used"] = f"{used} / {num_vars}"
        out[f"group {g}: unused entries"] = num_vars - used
        out[f"group {g}: perplexity"] = usage_perplexity(codes[:, g])
    out["code perplexity (sum over groups)"] = sum(usage_perplexity(codes[:, g]) for g in range(groups))
    out["joint codes used"] = f"{len(np.unique(joint))} / {num_vars ** groups}"
    out["joint perplexity"] = usage_perplexity(joint)
    for g in range(groups):
        out[f"group {g}: phone purity"] = Cooccurrence.count(codes[labelled, g], phones).purity()
    out["phone purity (joint)"] = co.purity()
    out["majority-phone baseline"] = float(co.counts.sum(0).max() / co.counts.sum())
    out["H(phone) bits"] = co.phone_entropy()
    out["I(code; phone) bits"] = co.mutual_information()
    out["PNMI = I / H(phone)"] = co.mutual_information() / max(co.phone_entropy(), 1e-12)
    out["I above chance bits"] = co.mutual_information() - co.chance_information()
    top = co.top_codes(equal_codes)
    out[f"I(code; phone), {equal_codes} most frequent codes + rest, bits"] = top.mutual_information()
    out[f"I above chance, {equal_codes} codes + rest, bits"] = top.mutual_information() - top.chance_information()
    out[f"phone purity, {equal_codes} codes + rest"] = top.purity()
    return out


def heatmap_matrix(co: Cooccurrence, phones: Sequence[str], top: int) -> tuple[np.ndarray, np.ndarray]:
    """P(phone | code) (len(phones), K) for the K = ``top`` most frequent codes, columns ordered by
    dominant phone (in the order of ``phones``), then by decreasing P(dominant phone | code); and
    the codes of the columns."""
    k = min(top, len(co.codes))
    p = np.zeros((len(phones), k))
    for j, ph in enumerate(co.phones):
        p[phones.index(ph)] = co.p_phone_given_code()[:k, j]
    dominant = p.argmax(0)
    order = np.lexsort((-p.max(0), dominant))
    return p[:, order], co.codes[:k][order]


def plot_heatmaps(panels: Sequence[tuple[str, Cooccurrence]], top: int, num_vars: int, groups: int) -> Figure:
    """P(phone | code) for the ``top`` most frequent codes of each model, side by side (figure 3)."""
    phones = list(dict.fromkeys(p for _, co in panels for p in co.phones))
    fig = Figure(figsize=(min(6 + 0.12 * top, 18) * len(panels), 0.22 * len(phones) + 2.5))
    for i, (title, co) in enumerate(panels):
        p, codes = heatmap_matrix(co, phones, top)
        ax = fig.add_subplot(1, len(panels), i + 1)
        im = ax.imshow(p, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_yticks(range(len(phones)), phones, fontsize=7)
        labels = [",".join(str(int(v)) for v in np.unravel_index(c, (num_vars,) * groups)) for c in codes]
        ax.set_xticks(range(len(codes)), labels, rotation=90, fontsize=6)
        ax.set_xlabel(f"the {len(codes)} most frequent codes (entry per group), ordered by dominant phone")
        ax.set_ylabel("phone")
        ax.set_title(f"P(phone | code): {title}")
        fig.colorbar(im, ax=ax, fraction=0.03)
    return fig


def top_codes_table(co: Cooccurrence, num_vars: int, groups: int, top: int) -> str:
    p = co.p_phone_given_code()
    rows = []
    for k in range(min(top, len(co.codes))):
        best = np.argsort(-p[k], kind="stable")[:3]
        entries = ",".join(str(int(v)) for v in np.unravel_index(co.codes[k], (num_vars,) * groups))
        rows.append([entries, int(co.codes[k]), int(co.counts[k].sum()), co.phones[best[0]], f"{p[k, best[0]]:.2f}",
                     " ".join(f"{co.phones[j]}:{p[k, j]:.2f}" for j in best if p[k, j] > 0)])
    return markdown_table(["entries", "joint code", "frames", "dominant phone", "P(dominant | code)", "top phones"],
                          rows, "lrrlrl")


def analyze_codebook(model_dir: str | Path, manifest: str | Path, phones: str | Path, out_dir: str | Path,
                     top: int = 50, seed: int = 0, max_utts: int | None = None, kmeans_k: int | None = None,
                     representation: str = "context") -> dict[str, dict[str, object]]:
    """Codes of a pre-trained model and of a randomly initialised one with the same config (seed
    ``seed``) on the utterances of ``manifest`` that have phone alignments; writes ``codebook.md``,
    ``codebook_heatmap.png``, ``codes.tsv`` (per frame) and ``cooccurrence.tsv`` to ``out_dir``.
    The codes are the quantizer's entries, or with ``kmeans_k`` each model's k-means clusters
    (k-means++ seed ``seed``) of its ``representation`` vectors. Returns the summary statistics per
    model."""
    model, cfg, _ = load_model_dir(model_dir)
    if not isinstance(model, Wav2Vec2ForPreTraining):
        raise ValueError(f"{model_dir}: holds a {type(model).__name__}; the codebook analysis needs a "
                         "pre-trained model with its quantizer (not a fine-tuned CTC model)")
    if model.quantizer is None and kmeans_k is None:
        raise ValueError(f"{model_dir}: was pre-trained with continuous targets (quantize_targets=False) and has "
                         "no codebook; analyse k-means units of its vectors instead (--kmeans K, e.g. "
                         "--kmeans 100), or pre-train with --set quantize_targets=True")
    if representation not in REPRESENTATIONS:
        raise ValueError(f"representation must be one of {REPRESENTATIONS}, got {representation!r}")
    torch.manual_seed(seed)
    models = {"pre-trained": model, f"random init (seed {seed})": build_pretraining_model(cfg).eval()}
    matched = match_alignments(read_manifest(manifest), phones)[:max_utts]
    if not matched:
        raise ValueError(f"{manifest}: no utterance has phone segments in {phones} (segments are matched by "
                         "the utterance's id, its id without extension or, for .phn files, its audio path "
                         "relative to their folder without extension)")
    stride_s, centre_s = cfg.frame_stride / SAMPLE_RATE, cfg.receptive_field / 2 / SAMPLE_RATE
    codes: dict[str, list[np.ndarray]] = {name: [] for name in models}
    labels: list[str | None] = []
    ids: list[tuple[str, int]] = []
    for e, segments in tqdm(matched, desc="codebook", unit="utt"):
        wav = model_input_of(e.path, cfg)
        for name, m in models.items():
            codes[name].append(frame_vectors(m, wav, representation) if kmeans_k else frame_codes(m, wav))
        n = len(codes["pre-trained"][-1])
        labels += frame_labels(segments, n, stride_s, centre_s)
        ids += [(e.id, t) for t in range(n)]
    labelled = np.array([lab is not None for lab in labels])
    if not labelled.any():
        raise ValueError(f"{phones}: the phone segments cover none of the frames of {manifest}")
    phone_seq = [lab for lab in labels if lab is not None]
    if kmeans_k:
        groups, v = 1, kmeans_k
        all_codes = {name: kmeans(np.concatenate(c), kmeans_k, seed)[:, None] for name, c in codes.items()}
        what = (f"Codes are k-means clusters (K={kmeans_k}) of each model's {representation} vectors, "
                f"fitted to that model's vectors of these {len(labels)} frames (k-means++, seed {seed}).")
    else:
        groups, v = cfg.latent_groups, cfg.latent_vars
        all_codes = {name: np.concatenate(c) for name, c in codes.items()}
        what = (f"Codes are the quantizer's argmax entries per frame (G={groups} groups of V={v}); "
                "joint code = g0 * V + g1.")
    cooc = {name: Cooccurrence.count(joint_codes(c[labelled], v), phone_seq) for name, c in all_codes.items()}
    equal = min(min(len(co.codes) for co in cooc.values()), top)  # codes used on labelled frames
    summaries = {name: codebook_summary(c, v, labelled, phone_seq, equal) for name, c in all_codes.items()}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_figure(plot_heatmaps(list(cooc.items()), top, v, groups), out / "codebook_heatmap.png")
    write_frame_codes(out / "codes.tsv", ids, labels, all_codes, v)
    write_text(out / "cooccurrence.tsv", "model\tcode\tphone\tcount\n" + "".join(
        f"{name}\t{c}\t{p}\t{n}\n" for name, co in cooc.items()
        for c, row in zip(co.codes, co.counts) for p, n in zip(co.phones, row) if n))
    names = list(models)
    report = [f"# Codebook analysis (paper appendix D, figure 3)\n",
              f"Model `{model_dir}`, manifest `{manifest}` ({len(matched)} utterances with phone segments), "
              f"phones from `{phones}`. {what}\n",
              "## Summary\n", markdown_table(["statistic"] + names,
                                            [[k] + [summaries[n][k] for n in names] for k in summaries[names[0]]],
                                            "l" + "r" * len(names)),
              "\nPurity and mutual information grow with the number of distinct codes on a finite sample. "
              "Hence the same statistics at equal code usage: each model's most frequent codes (as many as "
              "the model that uses fewer has, at most `--top`) with the rest merged into one code, and the "
              "mutual information above chance (minus its mean over 5 random pairings of the same codes "
              "with the same phones).\n",
              "\n![P(phone | code)](codebook_heatmap.png)\n"]
    for name in names:
        report += [f"\n## Most frequent codes: {name}\n", top_codes_table(cooc[name], v, groups, 20)]
    write_text(out / "codebook.md", "\n".join(report))
    return summaries


def write_frame_codes(path: Path, ids: list[tuple[str, int]], labels: list[str | None],
                      codes: dict[str, np.ndarray], num_vars: int) -> None:
    cols = ["id", "frame", "phone"] + [f"{name}: {part}" for name, c in codes.items()
                                       for part in [f"g{g}" for g in range(c.shape[1])] + ["joint"]]
    joint = {name: joint_codes(c, num_vars) for name, c in codes.items()}
    lines = ["\t".join(cols)]
    for i, ((utt, t), lab) in enumerate(zip(ids, labels)):
        vals = [str(x) for name, c in codes.items() for x in (*c[i].tolist(), int(joint[name][i]))]
        lines.append("\t".join([utt, str(t), lab or ""] + vals))
    write_text(path, "\n".join(lines) + "\n")
