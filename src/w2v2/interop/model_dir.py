"""The w2v2 model directory: ``config.json`` (W2V2Config), ``model.safetensors`` and, for CTC
models, ``vocab.json`` ({token: index}, the CTC blank at index 0)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..config import W2V2Config
from ..data.text import Vocabulary
from ..model import build_ctc_model, build_model, build_pretraining_model

PREFIX = "wav2vec2."


def atomic_write(path: Path, write) -> None:
    """Write through ``write(tmp_path)`` to a temporary file in the same folder, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file ordinary permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """State dict with the encoder under ``wav2vec2.`` whatever the wrapper."""
    sd = model.state_dict()
    if not hasattr(model, "wav2vec2"):
        sd = {PREFIX + k: v for k, v in sd.items()}
    return {k: v.detach().contiguous().cpu() for k, v in sd.items()}


def save_model_dir(model: nn.Module, cfg: W2V2Config, out: str | Path, vocab: dict[str, int] | None = None) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sd = full_state_dict(model)
    atomic_write(out / "model.safetensors", lambda p: save_file(sd, str(p), metadata={"format": "pt"}))
    atomic_write(out / "config.json", lambda p: cfg.save(p))
    if vocab is not None:
        atomic_write(out / "vocab.json", lambda p: p.write_text(json.dumps(vocab, indent=1, ensure_ascii=False)))


BUILDERS = {"ctc": build_ctc_model, "pretraining": build_pretraining_model, "encoder": build_model}


def state_kind(cfg: W2V2Config, keys: set[str]) -> str:
    """What a state dict holds: "ctc" (a fine-tuned model), "pretraining" (with its quantizer and
    projections, or its unit targets) or "encoder" (the bare Wav2Vec2Model)."""
    if cfg.vocab_size > 0 and "lm_head.weight" in keys:
        return "ctc"
    if any(k.startswith(("quantizer.", "project_q.", "units.")) for k in keys):
        return "pretraining"
    return "encoder"


def model_for_state(cfg: W2V2Config, keys: set[str]) -> nn.Module:
    """The module whose parameters the state dict holds: CTC, pre-training or the bare encoder."""
    return BUILDERS[state_kind(cfg, keys)](cfg)


def load_state(model: nn.Module, sd: dict[str, torch.Tensor], source: str) -> None:
    if not hasattr(model, "wav2vec2"):
        sd = {k[len(PREFIX):]: v for k, v in sd.items() if k.startswith(PREFIX)}
    own = model.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    bad = [f"{k}: {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or bad:
        raise ValueError(f"{source}: weights do not fit the architecture in its config"
                         + (f"; missing {missing[:5]}" if missing else "")
                         + (f"; shape mismatch {bad[:5]}" if bad else ""))
    if unexpected and hasattr(model, "wav2vec2") and any(k.startswith(PREFIX) for k in unexpected):
        raise ValueError(f"{source}: unexpected encoder weights {unexpected[:5]}")
    model.load_state_dict({k: v for k, v in sd.items() if k in own})


def read_model_dir(path: str | Path) -> tuple[W2V2Config, dict[str, torch.Tensor], dict[str, int] | None]:
    """The config, weights and vocabulary (or None) of a model directory, without building a model."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: not a model directory")
    for name in ("config.json", "model.safetensors"):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path / name}: missing (a w2v2 model directory holds config.json and "
                                    "model.safetensors; use `w2v2 import` for other formats)")
    cfg = W2V2Config.load(path / "config.json")
    try:
        sd = load_file(str(path / "model.safetensors"))
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{path / 'model.safetensors'}: unreadable or truncated weights file: {e}") from e
    vocab = None
    if (path / "vocab.json").is_file():
        vocab = json.loads((path / "vocab.json").read_text())
    return cfg, sd, vocab


def load_model_dir(path: str | Path, kind: str = "auto") -> tuple[nn.Module, W2V2Config, dict[str, int] | None]:
    """Load a model directory. ``kind``: "auto", "ctc", "pretraining" or "encoder"."""
    if kind != "auto" and kind not in BUILDERS:
        raise ValueError(f"unknown model kind {kind!r}")
    cfg, sd, vocab = read_model_dir(path)
    model = BUILDERS[state_kind(cfg, set(sd)) if kind == "auto" else kind](cfg)
    load_state(model, sd, str(path))
    model.eval()
    return model, cfg, vocab


def encoder_of(model: nn.Module) -> nn.Module:
    return getattr(model, "wav2vec2", model)


def load_ctc(path: str | Path) -> tuple[nn.Module, W2V2Config, Vocabulary]:
    """A fine-tuned CTC model directory: the model, its config and its output vocabulary."""
    model, cfg, vocab = load_model_dir(path)
    if vocab is None or not hasattr(model, "lm_head"):
        raise ValueError(f"{path}: not a CTC model directory (needs a CTC head and vocab.json)")
    return model, cfg, Vocabulary.from_dict(vocab, units=cfg.extra.get("units", "char"))
