"""Small corpora and models for training tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from w2v2.config import W2V2Config
from w2v2.data.manifest import Entry, write_manifest
from w2v2.model import preset


def micro_config(**kw) -> W2V2Config:
    cfg = preset("tiny")
    return dataclasses.replace(cfg, conv_layers=((32, 10, 5),) + ((32, 3, 2),) * 4 + ((32, 2, 2),) * 2,
                               encoder_embed_dim=32, encoder_layers=2, encoder_ffn_embed_dim=64,
                               encoder_attention_heads=2, conv_pos=16, conv_pos_groups=4, latent_vars=16,
                               final_dim=16, num_negatives=10, **kw)


def write_corpus(folder: Path, n: int = 12, seed: int = 0, texts: list[str] | None = None) -> Path:
    """Clips of 0.8-1.6 s: tones with noise, different per clip; returns the manifest."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for i in range(n):
        samples = int(rng.integers(12800, 25600))
        t = np.arange(samples) / 16000
        wav = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 800) * t * (1 + 0.3 * t)) + 0.05 * rng.standard_normal(samples)
        path = folder / f"clip{i:03d}.flac"
        sf.write(path, wav.astype(np.float32), 16000)
        entries.append(Entry(path, samples, texts[i % len(texts)] if texts else None))
    manifest = folder / "manifest.tsv"
    write_manifest(manifest, entries)
    return manifest


TIMIT_PHONES = {"fcjf0": ("h#", "sh", "iy"), "mdab0": ("h#", "aa", "r")}  # per speaker, over 0-0.2-0.6-1 s


def write_timit_tree(root: Path, texts: dict[str, str] | None = None) -> Path:
    """TIMIT's layout in miniature: ``dr1/<speaker>/SA1.WAV`` (1 s of noise, different per speaker)
    next to ``SA1.PHN`` (the speaker's :data:`TIMIT_PHONES`, in samples), the same file names for
    every speaker; returns a manifest at ``root`` (with the speakers' ``texts`` if given)."""
    rng = np.random.default_rng(0)
    entries = []
    for speaker, phones in TIMIT_PHONES.items():
        folder = root / "dr1" / speaker
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / "SA1.WAV", (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000, format="WAV")
        bounds = [(0, 3200), (3200, 9600), (9600, 16000)]
        (folder / "SA1.PHN").write_text("".join(f"{a} {b} {p}\n" for (a, b), p in zip(bounds, phones)))
        entries.append(Entry(folder / "SA1.WAV", 16000, texts[speaker] if texts else None))
    write_manifest(root / "manifest.tsv", entries)
    return root / "manifest.tsv"


def tiny_train_args(updates: int) -> list[str]:
    """Training options of a few-update ``w2v2 pretrain`` run on write_corpus clips, in fp32."""
    return ["--max-updates", str(updates), "--precision", "fp32", "--num-workers", "0", "--max-tokens", "60000",
            "--min-sample-size", "4000", "--max-sample-size", "16000", "--validate-every", "100", "--save-every",
            "100", "--log-every", "1"]


def cpu_with_bf16(monkeypatch, avx512_bf16: bool, amx: bool) -> None:
    """Make torch's CPU probes report the given bf16 hardware (w2v2.train.precision reads them)."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
