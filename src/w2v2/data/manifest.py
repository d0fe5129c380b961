"""Manifests: TSV files with a header and columns ``path`` (relative to the manifest's folder, or
absolute), ``samples`` (length at 16 kHz) and optional ``text``."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    path: Path
    samples: int
    text: str | None = None

    @property
    def id(self) -> str:
        return self.path.stem


class ManifestError(ValueError):
    pass


def read_manifest(path: str | Path) -> list[Entry]:
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    root = path.parent
    entries = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None or "path" not in header or "samples" not in header:
            raise ManifestError(f"{path}: first line must be a header with columns 'path' and 'samples' "
                                "(and optionally 'text')")
        col = {name: i for i, name in enumerate(header)}
        for lineno, row in enumerate(reader, start=2):
            if not row or not any(row):
                continue
            if len(row) != len(header):
                raise ManifestError(f"{path}:{lineno}: expected {len(header)} tab-separated columns, got {len(row)}")
            try:
                samples = int(row[col["samples"]])
            except ValueError:
                raise ManifestError(f"{path}:{lineno}: samples must be an integer, got {row[col['samples']]!r}") from None
            if samples < 0:
                raise ManifestError(f"{path}:{lineno}: negative sample count {samples}")
            p = Path(row[col["path"]])
            text = row[col["text"]] if "text" in col else None
            entries.append(Entry(p if p.is_absolute() else root / p, samples, text))
    return entries


def write_manifest(path: str | Path, entries: list[Entry], with_text: bool | None = None) -> None:
    """Paths are written relative to the manifest's folder when they lie below it."""
    from ..interop.model_dir import atomic_write

    path = Path(path)
    root = path.parent.resolve()
    with_text = any(e.text is not None for e in entries) if with_text is None else with_text

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("path\tsamples" + ("\ttext" if with_text else "") + "\n")
            for e in entries:
                p = e.path.resolve()
                rel = p.relative_to(root) if p.is_relative_to(root) else p
                f.write(f"{rel}\t{e.samples}" + (f"\t{e.text or ''}" if with_text else "") + "\n")

    atomic_write(path, write)
