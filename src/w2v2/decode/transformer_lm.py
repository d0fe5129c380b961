"""Word-level Transformer language model (the paper's second LM, section 4.3 / appendix C: the
fairseq ``transformer_lm`` of Baevski & Auli 2019, much smaller here).

Causal pre-LN Transformer over words with learned positions and tied input/output embeddings.
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
import torch.nn.functional as F
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
        return cls(**d)


class TransformerLM(nn.Module):
    """Causal word Transformer; ``forward`` gives next-word logits at every position."""

    def __init__(self, cfg: TransformerLMConfig, vocab: dict[str, int]) -> None:
        super().__init__()
        if sorted(vocab.values()) != list(range(cfg.vocab_size)) or EOS not in vocab or UNK not in vocab:
            raise ValueError(f"vocabulary must map {cfg.vocab_size} words (with {EOS} and {UNK}) to 0..{cfg.vocab_size - 1}")
        self.cfg = cfg
        self.vocab = vocab
        self.bos_id = self.eos_id = vocab[EOS]
        self.unk_id = vocab[UNK]
        self.embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        nn.init.normal_(self.embed.weight, std=cfg.dim ** -0.5)
        self.positions = nn.Embedding(cfg.context, cfg.dim)
        nn.init.normal_(self.positions.weight, std=0.02)
        block = nn.TransformerEncoderLayer(cfg.dim, cfg.heads, cfg.ffn_dim, cfg.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.dim)

    def forward(self, tokens: Tensor) -> Tensor:
        """(B, T) token ids, T <= context -> (B, T, V) next-token logits; position t sees tokens 0..t."""
        t = tokens.shape[1]
        if t > self.cfg.context:
            raise ValueError(f"{t} input tokens exceed the model's context of {self.cfg.context}")
        x = self.embed(tokens) * math.sqrt(self.cfg.dim) + self.positions.weight[:t]
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=tokens.device, dtype=x.dtype)
        x = self.blocks(x, mask=mask, is_causal=True)
        return self.norm(x) @ self.embed.weight.T

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
            inputs, targets = tokens[start: start + c], tokens[start + 1: start + c + 1]
            yield inputs, targets, 0 if start == 0 else c - stride
            if start + c + 1 >= len(tokens):
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
            logp = -F.cross_entropy(self(inputs).float().transpose(1, 2), targets, reduction="none")
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
        logits = self(inputs).float()
        last = logits[torch.arange(len(rows)), torch.tensor([len(r) - 1 for r in rows])]
        return torch.log_softmax(last, dim=-1)


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
