"""Shared pieces of the ``w2v2 serve`` tests: the real server in a subprocess, the offline reference
(``w2v2 transcribe --json``), and the load client of benchmarks/serve_load.py."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``w2v2 serve MODEL_DIR`` on a free loopback port, with TMPDIR pointed at ``tmpdir``."""

    def __init__(self, model_dir: Path, log: Path, tmpdir: Path, *options: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        tmpdir.mkdir(parents=True, exist_ok=True)
        self.log = log
        env = {**os.environ, "TMPDIR": str(tmpdir)}
        with log.open("w") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "w2v2.cli", "serve", str(model_dir), "--port",
                                          str(self.port), "--log-level", "warning", *options],
                                         stdout=out, stderr=subprocess.STDOUT, env=env)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"w2v2 serve exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"w2v2 serve did not answer within {timeout} s:\n{self.log.read_text()}")

    def alive(self) -> bool:
        return self.proc.poll() is None and httpx.get(f"{self.url}/health", timeout=10).status_code == 200

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def offline(model_dir: Path, paths: list[Path], *options: str) -> dict[str, dict]:
    """``w2v2 transcribe MODEL_DIR FILES --json``: each file's text and words, by path."""
    run = subprocess.run([sys.executable, "-m", "w2v2.cli", "transcribe", str(model_dir), *map(str, paths),
                          "--json", *options], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    return {line.pop("path"): line for line in lines}


def same_transcript(served: dict, reference: dict) -> bool:
    """Same words and times; confidences to 1e-4 (a batch's padding changes the float sums a little)."""
    def timed(t: dict) -> tuple:
        return t["text"], [(w["word"], w["start"], w["end"]) for w in t["words"]]
    return timed(served) == timed(reference) and all(
        abs(a["confidence"] - b["confidence"]) <= 1e-4 for a, b in zip(served["words"], reference["words"]))


def near_transcript(served: dict, reference: dict, max_edits: int = 2) -> bool:
    """The reference up to a frame or two whose greedy choice is a near tie: at most ``max_edits``
    character edits, and all but ``2 * max_edits`` of the reference's words served with the same
    times. A random model's posteriors have top-two margins down to ~2e-4 log-probability in a
    ~1,000-frame file, and a different batch composition moves log-probabilities by ~1e-5 (more on
    another CPU's kernels), so one frame of fifty files may flip; an answer for another request
    or a padding leak changes far more."""
    from collections import Counter

    from w2v2.decode.metrics import edit_distance

    def timed(t: dict) -> Counter:
        return Counter((w["word"], w["start"], w["end"]) for w in t["words"])
    kept = sum((timed(served) & timed(reference)).values())
    return (edit_distance(reference["text"], served["text"]) <= max_edits
            and kept >= len(reference["words"]) - 2 * max_edits)


def load_client():
    """benchmarks/serve_load.py as a module (the load test and the benchmark share its client)."""
    spec = importlib.util.spec_from_file_location("serve_load", ROOT / "benchmarks" / "serve_load.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module
