"""Resumable experiment stages: each one a ``w2v2`` sub-process with a done marker.

A finished stage (its ``stage.json`` exists) is not redone; an interrupted one is run again with
``--resume`` so that training continues from its last checkpoint. Every command is logged with
its wall time, for the report. Independent chains of stages can run side by side
(:meth:`StageRunner.run_chains`: decoding, which is single-threaded, on both cores).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..interop.model_dir import atomic_write


class StageFailed(ValueError):
    pass


@dataclass
class StageRunner:
    out: Path
    records: list[dict] = field(default_factory=list)

    def run(self, name: str, args: list[str], marker_dir: Path, resumable: bool = False) -> dict:
        """Run ``w2v2 ARGS`` unless ``marker_dir/stage.json`` says it already finished."""
        marker = marker_dir / "stage.json"
        if marker.is_file():
            record = json.loads(marker.read_text())
            record["skipped"] = True
            self.records.append(record)
            print(f"[{name}] done already ({record['seconds']:.0f} s), skipping")
            return record
        if resumable and any((marker_dir / "checkpoints").glob("checkpoint_*.pt")):
            args = args + ["--resume"]
        cmd = [sys.executable, "-m", "w2v2.cli", *args]
        shown = "w2v2 " + " ".join(shlex.quote(a) for a in args)
        print(f"[{name}] {shown}", flush=True)
        marker_dir.mkdir(parents=True, exist_ok=True)
        start = time.time()
        with open(marker_dir / "stage.log", "a") as log:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        seconds = time.time() - start
        if proc.returncode != 0:
            tail = (marker_dir / "stage.log").read_text().splitlines()[-15:]
            raise StageFailed(f"stage {name} failed (exit {proc.returncode}); see {marker_dir / 'stage.log'}:\n"
                              + "\n".join(tail))
        record = {"stage": name, "command": shown, "seconds": seconds, "skipped": False}
        atomic_write(marker, lambda p: p.write_text(json.dumps(record, indent=1)))
        self.records.append(record)
        print(f"[{name}] finished in {seconds:.0f} s", flush=True)
        return record

    def run_chains(self, chains: Sequence[Sequence[tuple[str, list[str], Path]]], workers: int) -> None:
        """Run each chain's stages (``run``'s name, args and marker folder) in order, up to ``workers``
        chains at a time; the first failure is raised once the running chains have stopped."""
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(lambda chain: [self.run(*stage) for stage in chain], c) for c in chains]
            for f in futures:
                f.result()
