"""Renaming other implementations' weights to w2v2's, shared by the transformers and fairseq readers."""

from __future__ import annotations

import re

import torch

from .model_dir import PREFIX


def rename_state(sd: dict[str, torch.Tensor], renames: list[tuple[str, str]], qkv: str,
                 source: str) -> dict[str, torch.Tensor]:
    """Each key goes through the first ``(regex, template)`` that matches it in full; keys matching
    ``qkv`` (groups: layer index, "q"/"k"/"v", "weight"/"bias") are fused into w2v2's single
    ``attention.qkv`` projection as cat(q, k, v). An unknown key is an error naming ``source``."""
    out: dict[str, torch.Tensor] = {}
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        m = re.fullmatch(qkv, key)
        if m:
            parts.setdefault(f"{PREFIX}encoder.layers.{m[1]}.attention.qkv.{m[3]}", {})[m[2]] = value
            continue
        for pattern, template in renames:
            if re.fullmatch(pattern, key):
                out[re.sub(pattern, template, key)] = value
                break
        else:
            raise ValueError(f"{source}: unexpected weight {key!r}")
    for name, p in parts.items():
        if set(p) != {"q", "k", "v"}:
            raise ValueError(f"{source}: {name} lacks one of q/k/v")
        out[name] = torch.cat([p["q"], p["k"], p["v"]], dim=0)
    return out
