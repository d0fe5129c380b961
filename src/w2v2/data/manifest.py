"""Manifests: TSV files with a header and columns ``path`` (relative to the manifest's folder, or
absolute), ``samples`` (length at 16 kHz) and optional ``text`` and ``id``.

An utterance's identity (:attr:`Entry.id`: the key of cached features, alignments and
hypotheses) is its ``id`` cell when the manifest has that column, otherwise its path as written
in the manifest; file stems are not unique (TIMIT has an ``SA1`` for every speaker).

:func:`check_manifest` decodes every listed file and reports all unusable entries at once (the
reasons a trainer would otherwise hit one by one, hours in); the ``entries_from_*`` builders
collect the candidates of ``w2v2 data manifest`` from folders, a transcripts table or the split
lists of the shared data.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..config import BASE_CONV, ConvSpec, receptive_field
from ..model.feature_encoder import num_frames
from .audio import SAMPLE_RATE, AudioError, iter_audio_blocks
from .text import split_units

# Extensions of the formats libsndfile reads (soundfile.available_formats(), less headerless RAW
# and MATLAB files, which are rarely audio).
AUDIO_EXTENSIONS = ("wav", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff", "aifc", "au", "snd", "caf", "w64",
                    "rf64", "sph", "nist", "voc", "htk", "svx", "paf", "pvf", "sd2", "sds", "xi", "avr", "wve")


@dataclass(frozen=True)
class Entry:
    path: Path
    samples: int
    text: str | None = None
    uid: str | None = None  # as the manifest names it: its id cell, or its path as written

    @property
    def id(self) -> str:
        """Unique within a manifest: ``uid``, or for an entry built in code its full path."""
        return self.uid if self.uid is not None else self.path.as_posix()


class ManifestError(ValueError):
    pass


def read_manifest(path: str | Path) -> list[Entry]:
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    root = path.parent
    entries = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(reader, None)
            if header is None or "path" not in header or "samples" not in header:
                raise ManifestError(f"{path}: first line must be a header with columns 'path' and 'samples' "
                                    "(and optionally 'text' and 'id')")
            col = {name: i for i, name in enumerate(header)}
            for lineno, row in enumerate(reader, start=2):
                if not row or not any(row):
                    continue
                if len(row) != len(header):
                    raise ManifestError(f"{path}:{lineno}: expected {len(header)} tab-separated columns, "
                                        f"got {len(row)}")
                try:
                    samples = int(row[col["samples"]])
                except ValueError:
                    raise ManifestError(f"{path}:{lineno}: samples must be an integer, "
                                        f"got {row[col['samples']]!r}") from None
                if samples < 0:
                    raise ManifestError(f"{path}:{lineno}: negative sample count {samples}")
                p = Path(row[col["path"]])
                text = row[col["text"]] if "text" in col else None
                uid = row[col["id"]] if "id" in col else p.as_posix()
                if not uid:
                    raise ManifestError(f"{path}:{lineno}: empty id")
                entries.append(Entry(p if p.is_absolute() else root / p, samples, text, uid))
    except UnicodeDecodeError as e:
        raise ManifestError(f"{path}: not UTF-8 text ({e})") from None
    check_ids(((e.id, e.path) for e in entries), path)
    return entries


def check_ids(ids_and_paths: Iterable[tuple[str, str | Path]], manifest: Path) -> None:
    """Two different recordings must not share an id (the same file listed twice may)."""
    seen: dict[str, str | Path] = {}
    for uid, path in ids_and_paths:
        first = seen.setdefault(uid, path)
        if first != path:
            raise ManifestError(f"{manifest}: the id {uid!r} names two recordings, {first} and {path}")


def _written_path(path: Path, root: str) -> str:
    """``path`` relative to ``root`` when it lies below it, otherwise absolute."""
    p = os.path.abspath(path)
    return os.path.relpath(p, root) if os.path.commonpath([p, root]) == root else p


def _field(value: str, what: str, entry: Entry) -> str:
    if any(c in value for c in "\t\n\r"):
        raise ManifestError(f"{entry.path}: the {what} contains a tab or line break, which a TSV manifest "
                            f"cannot hold: {value!r}")
    return value


def write_manifest(path: str | Path, entries: list[Entry], with_text: bool | None = None) -> None:
    """Paths are written relative to the manifest's folder when they lie below it. The ids are
    kept: an ``id`` column is written when some entry's ``uid`` differs from the path written for
    it (an entry without one gets that path as its id). Written to a temporary file and renamed,
    so a failure never leaves half a manifest."""
    from ..interop.model_dir import atomic_write

    path = Path(path)
    root = os.path.abspath(path.parent)
    with_text = any(e.text is not None for e in entries) if with_text is None else with_text
    paths = [_written_path(e.path, root) for e in entries]
    ids = [p if e.uid is None else e.uid for e, p in zip(entries, paths)]
    check_ids(zip(ids, paths), path)
    with_id = ids != paths
    rows = ["\t".join((["id"] if with_id else []) + ["path", "samples"] + (["text"] if with_text else []))]
    for e, p, uid in zip(entries, paths, ids):
        cells = ([_field(uid, "id", e)] if with_id else []) + [_field(p, "path", e), str(e.samples)]
        if with_text:
            cells.append(_field(e.text or "", "transcript", e))
        rows.append("\t".join(cells))
    try:
        data = ("\n".join(rows) + "\n").encode("utf-8")
    except UnicodeEncodeError as e:
        raise ManifestError(f"{path}: cannot encode as UTF-8 ({e})") from None
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


# ---- checking ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """An unusable manifest entry and why."""

    entry: Entry
    reason: str

    def __str__(self) -> str:
        return f"{self.entry.path}: {self.reason}"


@dataclass(frozen=True)
class Requirements:
    """What an utterance needs: at least one frame of the feature encoder (its receptive field,
    400 samples for the paper's stack, section 2), and for CTC fine-tuning (section 4.3) one frame
    per target unit plus one blank between repeated units. ``max_seconds`` optionally bounds the
    length (memory in training)."""

    conv_layers: ConvSpec = BASE_CONV
    units: str = "char"
    max_seconds: float | None = None

    @property
    def min_samples(self) -> int:
        return receptive_field(self.conv_layers)

    def frames(self, samples: int) -> int:
        return num_frames(self.conv_layers, samples)


def ctc_min_frames(units: Sequence[object]) -> int:
    """Frames CTC needs for a target (units or their ids): one per unit, and a blank between two
    equal units."""
    return len(units) + sum(a == b for a, b in zip(units, units[1:]))


def measure(path: Path) -> int:
    """Samples at 16 kHz, by decoding the whole file (raises AudioError for anything unusable:
    unreadable, corrupt, truncated, non-finite samples)."""
    return sum(len(b) for b in iter_audio_blocks(path, 60.0))


def length_problem(samples: int, text: str | None, req: Requirements) -> str | None:
    if samples < req.min_samples:
        return f"too short: {samples} samples at 16 kHz, less than the receptive field ({req.min_samples})"
    if req.max_seconds is not None and samples > req.max_seconds * SAMPLE_RATE:
        return f"too long: {samples / SAMPLE_RATE:.1f} s > {req.max_seconds:g} s"
    if text is None:
        return None
    if not text.strip():
        return "empty transcript"
    need, have = ctc_min_frames(split_units(text, req.units)), req.frames(samples)
    if have < need:
        return (f"too short for its transcript: {have} frames ({samples / SAMPLE_RATE:.2f} s at 50 frames/s), "
                f"CTC needs {need} for {text!r}")
    return None


def check_manifest(entries: list[Entry], req: Requirements = Requirements(), measure_samples: bool = False,
                   progress: bool = True) -> tuple[list[Entry], list[Problem]]:
    """Decode every entry and split them into usable ones and :class:`Problem` s (all of them, in
    one pass). The recorded ``samples`` must equal the decoded 16 kHz length, unless
    ``measure_samples`` (building a manifest), where the decoded length replaces it."""
    good, problems = [], []
    for e in tqdm(entries, desc="checking audio", unit="file", disable=not progress):
        try:
            samples = measure(e.path)
        except AudioError as err:
            problems.append(Problem(e, err.problem))
            continue
        if measure_samples:
            e = dataclasses.replace(e, samples=samples)
        elif samples != e.samples:
            problems.append(Problem(e, f"the manifest says {e.samples} samples, the audio has {samples} at 16 kHz"))
            continue
        reason = length_problem(samples, e.text, req)
        if reason:
            problems.append(Problem(e, reason))
        else:
            good.append(e)
    return good, problems


# ---- building ---------------------------------------------------------------------------------


def entries_from_folders(folders: Iterable[str | Path], extensions: Iterable[str] = AUDIO_EXTENSIONS) -> list[Entry]:
    """Every file below the folders (recursively) whose extension is listed (case-insensitive);
    ``samples`` is 0 until :func:`check_manifest` measures it."""
    exts = {"." + x.lower().lstrip(".") for x in extensions}
    found = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise ManifestError(f"{folder}: not a folder")
        found += sorted(p for p in folder.rglob("*") if p.suffix.lower() in exts and p.is_file())
    return [Entry(p, 0) for p in found]


def _read_table(path: Path, required: tuple[str, ...]) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header + (line number, row) of a TSV; clear errors for a missing header or ragged rows."""
    if not path.is_file():
        raise ManifestError(f"{path}: file not found")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None) or []
        missing = [c for c in required if c not in header]
        if missing:
            raise ManifestError(f"{path}: the header must name the columns {', '.join(required)} "
                                f"(missing {', '.join(missing)}; found {header})")
        rows = []
        for lineno, row in enumerate(reader, start=2):
            if not any(row):
                continue
            if len(row) != len(header):
                raise ManifestError(f"{path}:{lineno}: expected {len(header)} tab-separated columns, got {len(row)}")
            rows.append((lineno, dict(zip(header, row))))
    return header, rows


def entries_from_table(path: str | Path, with_text: bool) -> list[Entry]:
    """A transcripts TSV with a header, a ``path`` column (relative to the table's folder or
    absolute) and, for ``with_text``, a ``text`` column."""
    path = Path(path)
    _, rows = _read_table(path, ("path", "text") if with_text else ("path",))
    entries = []
    for _, row in rows:
        p = Path(row["path"])
        entries.append(Entry(p if p.is_absolute() else path.parent / p, 0, row["text"] if with_text else None))
    return entries


def entries_from_split(split: str | Path, data_root: str | Path, with_text: bool) -> tuple[list[Entry], list[Problem]]:
    """A split list of the shared data (columns corpus, id, seconds): audio at
    ``<data_root>/<corpus>/audio/<id>.flac``, transcripts in ``<data_root>/<corpus>/transcripts.tsv``
    (columns id, speaker, seconds, text, raw_text). Ids without a transcript are problems."""
    root = Path(data_root)
    _, rows = _read_table(Path(split), ("corpus", "id"))
    transcripts: dict[str, dict[str, str]] = {}
    entries, problems = [], []
    for _, row in rows:
        corpus, uid = row["corpus"], row["id"]
        entry = Entry(root / corpus / "audio" / f"{uid}.flac", 0)
        if with_text:
            if corpus not in transcripts:
                table = root / corpus / "transcripts.tsv"
                transcripts[corpus] = {r["id"]: r["text"] for _, r in _read_table(table, ("id", "text"))[1]}
            text = transcripts[corpus].get(uid)
            if text is None:
                problems.append(Problem(entry, f"no transcript for {uid} in {root / corpus / 'transcripts.tsv'}"))
                continue
            entry = dataclasses.replace(entry, text=text)
        entries.append(entry)
    return entries, problems
