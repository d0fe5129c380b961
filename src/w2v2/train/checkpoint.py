"""Training checkpoints: written atomically, the last K and the best kept, resumable.

A checkpoint is one ``torch.save`` file holding the model, optimizer and loss-scaler states, the
update count, the training time, the data position and the RNG state. It is written to a temporary
file and renamed, so a kill at any moment leaves the previous checkpoint intact; a full disk is
reported and the previous checkpoint kept.
"""

from __future__ import annotations

import errno
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch

from ..interop.model_dir import atomic_write

_NAME = re.compile(r"checkpoint_(\d+)\.pt$")


class CheckpointError(ValueError):
    pass


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    d = checkpoint_dir(run_dir)
    found = [(int(m[1]), p) for p in d.glob("checkpoint_*.pt") if (m := _NAME.search(p.name))]
    return sorted(found)


def save_checkpoint(run_dir: Path, state: dict[str, Any], keep_last: int, is_best: bool) -> Path | None:
    """Write checkpoint_<update>.pt (and checkpoint_best.pt); prune to the last ``keep_last``.
    Returns the path, or None when the disk was full (reported; previous checkpoints kept)."""
    d = checkpoint_dir(run_dir)
    path = d / f"checkpoint_{state['num_updates']}.pt"
    try:
        atomic_write(path, lambda p: torch.save(state, p))
        if is_best:
            atomic_write(d / "checkpoint_best.pt", lambda p: shutil.copyfile(path, p))
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            warnings.warn(f"{path}: disk full, checkpoint not written; the previous one is kept ({e})", stacklevel=2)
            return None
        raise
    for _, old in list_checkpoints(run_dir)[:-keep_last] if keep_last > 0 else []:
        old.unlink(missing_ok=True)
    return path


def read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, not a checkpoint, pickle refused
        raise CheckpointError(f"{path}: not a readable w2v2 checkpoint (truncated or corrupt?): {e}") from e
    if not isinstance(state, dict) or "model" not in state or "num_updates" not in state:
        raise CheckpointError(f"{path}: not a w2v2 training checkpoint")
    return state


def latest_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    """The newest readable checkpoint; unreadable newer ones are reported and skipped."""
    for _, path in reversed(list_checkpoints(run_dir)):
        try:
            return read_checkpoint(path)
        except CheckpointError as e:
            warnings.warn(f"{e}; trying the previous checkpoint", stacklevel=2)
    return None
