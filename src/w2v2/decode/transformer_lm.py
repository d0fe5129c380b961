"""Word-level Transformer language model (the paper's second LM, section 4.3 / appendix C: the
fairseq ``transformer_lm`` of Baevski & Auli 2019, much smaller here).

Causal pre-LN Transformer over words with learned positions and tied adaptive input / adaptive
softmax (Baevski & Auli 2019, the paper's LM): words sorted by frequency fall into clusters
(``cutoffs``), cluster i has embeddings of width ``dim / div_value**i`` projected to ``dim``, and the
same embeddings and projections give the output distribution: a head softmax over the first cluster
and one entry per other cluster, times a softmax inside that cluster. Most of the output cost of a
20k-word vocabulary goes away, which is what makes training on CPU take minutes.
Vocabulary: ``</s>``, ``<unk>``, then the most frequent words; ``</s>`` marks both sentence ends
(as fairseq: the model reads ``</s> w1 .. wk`` and predicts ``w1 .. wk </s>``). Histories longer
than ``context`` tokens are cut to their last ``context`` tokens; sentences longer than that are
scored with windows sliding by ``context // 2`` tokens, so every word sees at least half a window.

Stable API for decoders: :func:`load_transformer_lm` and :class:`TransformerLM`
(``vocab``, ``bos_id``/``eos_id``/``unk_id``, :meth:`TransformerLM.score_sentences`,
:meth:`TransformerLM.next_log_probs`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from ..interop.model_dir import atomic_write

UNK, EOS = "<unk>", "</s>"


@dataclass
class TransformerLMConfig:
    vocab_size: int
    dim: int = 256
    layers: int = 2
    heads: int = 4
    ffn_dim: int = 1024
    context: int = 48  # input tokens the model sees (the sentence start included)
    dropout: float = 0.1
    cutoffs: tuple[int, ...] = (2000, 10000)  # adaptive input/softmax cluster bounds (by frequency rank)
    div_value: int = 4

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> TransformerLMConfig:
        try:
            d = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: cannot read language model config: {e}") from e
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"{path}: unknown language model config fields {sorted(unknown)}")
        return cls(**{**d, "cutoffs": tuple(d.get("cutoffs", cls.cutoffs))})


class AdaptiveEmbedding(nn.Module):
    """Tied adaptive input representations and adaptive softmax (Baevski & Auli 2019, section 3):
    cluster i holds ids ``bounds[i]:bounds[i+1]`` with embeddings of width ``dim / div**i``,
    projected to ``dim``; the output reuses both (``h P_i E_i^T``)."""

    def __init__(self, vocab_size: int, dim: int, cutoffs: tuple[int, ...], div_value: int) -> None:
        super().__init__()
        self.bounds = [0, *[c for c in cutoffs if 0 < c < vocab_size], vocab_size]
        widths = [max(1, dim // div_value ** i) for i in range(len(self.bounds) - 1)]
        self.embeds = nn.ModuleList(nn.Embedding(hi - lo, w) for lo, hi, w in zip(self.bounds, self.bounds[1:], widths))
        self.projs = nn.ModuleList(nn.Linear(w, dim, bias=False) for w in widths)
        self.clusters = nn.Parameter(torch.randn(len(widths) - 1, dim) * dim ** -0.5)  # head entries of the tails
        for e, p in zip(self.embeds, self.projs):  # unit-variance inputs (after * sqrt(dim)) and logits
            nn.init.normal_(e.weight, std=e.weight.shape[1] ** -0.5)
            nn.init.normal_(p.weight, std=dim ** -0.5)

    def forward(self, tokens: Tensor) -> Tensor:
        out = torch.zeros(*tokens.shape, self.projs[0].out_features, device=tokens.device)
        for i, (lo, hi) in enumerate(zip(self.bounds, self.bounds[1:])):
            inside = (tokens >= lo) & (tokens < hi)
            if inside.any():
                out[inside] = self.projs[i](self.embeds[i](tokens[inside] - lo)).to(out.dtype)
        return out

    def _logits(self, h: Tensor, i: int) -> Tensor:
        return (h @ self.projs[i].weight) @ self.embeds[i].weight.T

    def _head(self, h: Tensor) -> Tensor:
        return torch.log_softmax(torch.cat([self._logits(h, 0), h @ self.clusters.T], dim=-1).float(), dim=-1)

    def log_probs(self, h: Tensor) -> Tensor:
        """(..., dim) -> (..., V) log-probabilities of every word."""
        head = self._head(h)
        parts = [head[..., : self.bounds[1]]]
        for i in range(1, len(self.bounds) - 1):
            tail = torch.log_softmax(self._logits(h, i).float(), dim=-1)
            parts.append(head[..., self.bounds[1] + i - 1, None] + tail)
        return torch.cat(parts, dim=-1)

    def target_log_probs(self, h: Tensor, targets: Tensor) -> Tensor:
        """log p(target) at each position (0 where the target is -100), computing each tail
        softmax only where the target lies in that cluster."""
        head = self._head(h)
        out = torch.zeros(targets.shape, device=h.device)
        valid = targets >= 0
        first = valid & (targets < self.bounds[1])
        out[first] = head[first].gather(-1, targets[first, None]).squeeze(-1)
        for i, (lo, hi) in enumerate(zip(self.bounds[1:], self.bounds[2:]), 1):
            inside = (targets >= lo) & (targets < hi)
            if inside.any():
                tail = torch.log_softmax(self._logits(h[inside], i).float(), dim=-1)
                in_tail = tail.gather(-1, (targets[inside] - lo)[:, None]).squeeze(-1)
                out[inside] = head[inside, self.bounds[1] + i - 1] + in_tail
        return out


class TransformerLM(nn.Module):
    """Causal word Transformer; ``forward`` gives next-word log-probabilities at every position."""

    def __init__(self, cfg: TransformerLMConfig, vocab: dict[str, int]) -> None:
        super().__init__()
        if sorted(vocab.values()) != list(range(cfg.vocab_size)) or EOS not in vocab or UNK not in vocab:
            raise ValueError(f"vocabulary must map {cfg.vocab_size} words (with {EOS} and {UNK}) "
                             f"to 0..{cfg.vocab_size - 1}")
        self.cfg = cfg
        self.vocab = vocab
        self.bos_id = self.eos_id = vocab[EOS]
        self.unk_id = vocab[UNK]
        self.embed = AdaptiveEmbedding(cfg.vocab_size, cfg.dim, cfg.cutoffs, cfg.div_value)
        self.positions = nn.Embedding(cfg.context, cfg.dim)
        nn.init.normal_(self.positions.weight, std=0.02)
        block = nn.TransformerEncoderLayer(cfg.dim, cfg.heads, cfg.ffn_dim, cfg.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.dim)

    def hidden(self, tokens: Tensor) -> Tensor:
        """(B, T) token ids, T <= context -> (B, T, dim) states; position t sees tokens 0..t."""
        t = tokens.shape[1]
        if t > self.cfg.context:
            raise ValueError(f"{t} input tokens exceed the model's context of {self.cfg.context}")
        x = self.embed(tokens) * math.sqrt(self.cfg.dim) + self.positions.weight[:t]
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=tokens.device, dtype=x.dtype)
        return self.norm(self.blocks(x, mask=mask, is_causal=True))

    def forward(self, tokens: Tensor) -> Tensor:
        """(B, T) token ids -> (B, T, V) next-word log-probabilities."""
        return self.embed.log_probs(self.hidden(tokens))

    def target_log_probs(self, inputs: Tensor, targets: Tensor) -> Tensor:
        """(B, T) log p(targets | inputs up to each position); 0 where the target is -100."""
        return self.embed.target_log_probs(self.hidden(inputs), targets)

    def ids(self, words: list[str]) -> list[int]:
        """Word ids, unknown words -> ``unk_id``."""
        return [self.vocab.get(w, self.unk_id) for w in words]

    def windows(self, ids: list[int]) -> Iterator[tuple[list[int], list[int], int]]:
        """(inputs, targets, first target to count) covering ``</s> ids </s>``: one window when it
        fits the context, else windows sliding by ``context // 2``, each counting only the targets
        the previous window did not."""
        tokens = [self.bos_id, *ids, self.eos_id]
        c = self.cfg.context
        stride = max(1, c // 2)
        start = 0
        while True:
            end = min(start + c, len(tokens) - 1)
            yield tokens[start:end], tokens[start + 1: end + 1], 0 if start == 0 else c - stride
            if end == len(tokens) - 1:
                return
            start += stride

    @torch.no_grad()
    def score_sentences(self, sentences: list[list[str]], batch_size: int = 64) -> list[float]:
        """Natural-log probability of each ``w1 .. wk </s>`` after the sentence start (batched)."""
        jobs = [(i, w) for i, words in enumerate(sentences) for w in self.windows(self.ids(words))]
        totals = [0.0] * len(sentences)
        for b in range(0, len(jobs), batch_size):
            chunk = jobs[b: b + batch_size]
            width = max(len(w[0]) for _, w in chunk)
            inputs = torch.full((len(chunk), width), self.eos_id, dtype=torch.long)
            targets = torch.full((len(chunk), width), -100, dtype=torch.long)
            for row, (_, (inp, tgt, skip)) in enumerate(chunk):
                inputs[row, : len(inp)] = torch.tensor(inp)
                targets[row, skip: len(tgt)] = torch.tensor(tgt[skip:])
            logp = self.target_log_probs(inputs, targets)
            for row, (i, _) in enumerate(chunk):
                totals[i] += logp[row].sum().item()
        return totals

    @torch.no_grad()
    def next_log_probs(self, histories: list[list[int]]) -> Tensor:
        """(B, V) log-probabilities of the next word after each history (word ids so far, without
        the sentence start, which is prepended; only the last ``context`` tokens are used)."""
        rows = [([self.bos_id, *h])[-self.cfg.context:] for h in histories]
        width = max(len(r) for r in rows)
        inputs = torch.full((len(rows), width), self.eos_id, dtype=torch.long)
        for i, r in enumerate(rows):
            inputs[i, : len(r)] = torch.tensor(r)
        h = self.hidden(inputs)
        return self.embed.log_probs(h[torch.arange(len(rows)), torch.tensor([len(r) - 1 for r in rows])])


def perplexity(model: TransformerLM, sentences: list[list[str]]) -> float:
    """exp(-mean natural-log probability per predicted token: the words and each ``</s>``)."""
    total = sum(model.score_sentences(sentences))
    tokens = sum(len(s) + 1 for s in sentences)
    return math.exp(-total / tokens)


def save_transformer_lm(model: TransformerLM, out: str | Path) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write(out / "model.safetensors", lambda p: save_file(state, str(p), metadata={"format": "pt"}))
    atomic_write(out / "config.json", lambda p: model.cfg.save(p))
    atomic_write(out / "vocab.json", lambda p: p.write_text(json.dumps(model.vocab, indent=1, ensure_ascii=False)))


def load_transformer_lm(path: str | Path) -> TransformerLM:
    """Load ``config.json`` + ``model.safetensors`` + ``vocab.json`` written by ``w2v2 lm train``."""
    path = Path(path)
    for name in ("config.json", "model.safetensors", "vocab.json"):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path / name}: missing (a Transformer LM directory from `w2v2 lm train`)")
    cfg = TransformerLMConfig.load(path / "config.json")
    try:
        vocab = json.loads((path / "vocab.json").read_text(encoding="utf-8"))
        state = load_file(str(path / "model.safetensors"))
    except (OSError, json.JSONDecodeError, SafetensorError) as e:
        raise ValueError(f"{path}: unreadable language model files: {e}") from e
    model = TransformerLM(cfg, vocab)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{path / 'model.safetensors'}: weights do not fit config.json: {e}") from e
    return model.eval()
