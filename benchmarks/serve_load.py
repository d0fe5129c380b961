"""Load on a running ``w2v2 serve``: N concurrent uploads of 5-30 s files (synthesized FLAC).

    w2v2 serve MODEL_DIR --port 8000 &
    .venv/bin/python benchmarks/serve_load.py --url http://127.0.0.1:8000 --pid $! --n 50

Every request is sent at once (one connection each); the table gives the status counts,
latency percentiles of the answered (200) requests, the 503 count and the server's peak resident
memory (VmHWM of --pid, Linux). tests/test_serve_load.py runs the same client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000


@dataclass
class Outcome:
    path: str
    status: int  # 0: no HTTP answer (connection error, timeout)
    seconds: float  # request sent -> answer read
    body: dict | None
    retry_after: str | None
    error: str | None  # why there was no answer


def synthesize(folder: Path, n: int, low: float, high: float, seed: int = 0) -> list[Path]:
    """``n`` 16-bit FLAC files of amplitude-modulated noise, durations uniform in [low, high] s."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        samples = int(rng.uniform(low, high) * SAMPLE_RATE)
        t = np.arange(samples) / SAMPLE_RATE
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(1, 4) * t) ** 2
        wave = (0.2 * envelope * rng.standard_normal(samples)).clip(-1, 1)
        path = folder / f"load_{i:03d}.flac"
        sf.write(path, wave.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
        paths.append(path)
    return paths


async def upload(client: httpx.AsyncClient, url: str, path: Path) -> Outcome:
    start = time.perf_counter()
    try:
        with path.open("rb") as f:
            r = await client.post(f"{url}/transcribe", files={"file": (path.name, f, "audio/flac")})
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else None
        return Outcome(str(path), r.status_code, time.perf_counter() - start, body, r.headers.get("retry-after"), None)
    except httpx.HTTPError as e:
        return Outcome(str(path), 0, time.perf_counter() - start, None, None, f"{type(e).__name__}: {e}")


async def fire(url: str, paths: list[Path], timeout: float = 600.0) -> list[Outcome]:
    """Upload every file at once, one connection each; the outcomes in the order of ``paths``."""
    limits = httpx.Limits(max_connections=len(paths), max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        return list(await asyncio.gather(*(upload(client, url, p) for p in paths)))


def peak_rss_mib(pid: int) -> float:
    """The high-water mark of a process's resident memory (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/{pid}/status: no VmHWM line")


def summary(outcomes: list[Outcome], audio_seconds: float, wall: float, rss_mib: float | None) -> dict:
    ok = sorted(o.seconds for o in outcomes if o.status == 200)
    pct = (lambda q: float(np.percentile(ok, q))) if ok else (lambda q: float("nan"))
    statuses: dict[str, int] = {}
    for o in outcomes:
        statuses[str(o.status)] = statuses.get(str(o.status), 0) + 1
    return {"requests": len(outcomes), "statuses": statuses, "ok": len(ok),
            "busy_503": statuses.get("503", 0), "no_answer": statuses.get("0", 0),
            "latency_p50_s": pct(50), "latency_p95_s": pct(95), "latency_max_s": pct(100),
            "audio_seconds": audio_seconds, "wall_seconds": wall, "peak_rss_mib": rss_mib}


def markdown(s: dict) -> str:
    rss = f"{s['peak_rss_mib']:.0f}" if s["peak_rss_mib"] is not None else "-"
    return "\n".join([
        "| requests | 200 | 503 | no answer | p50 latency (s) | p95 latency (s) | max (s) | audio (s) | wall (s) | peak RSS (MiB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {s['requests']} | {s['ok']} | {s['busy_503']} | {s['no_answer']} | {s['latency_p50_s']:.2f} | "
        f"{s['latency_p95_s']:.2f} | {s['latency_max_s']:.2f} | {s['audio_seconds']:.0f} | {s['wall_seconds']:.1f} | {rss} |"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--pid", type=int, help="the server's process id (for its peak RSS)")
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--min-seconds", type=float, default=5.0)
    p.add_argument("--max-seconds", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--audio-dir", type=Path, default=Path(tempfile.gettempdir()) / "w2v2_serve_load",
                   help="where the synthesized files go (not the repository)")
    p.add_argument("--out", type=Path, help="JSON summary")
    args = p.parse_args()
    paths = synthesize(args.audio_dir, args.n, args.min_seconds, args.max_seconds, args.seed)
    audio = sum(sf.info(q).frames for q in paths) / SAMPLE_RATE
    start = time.perf_counter()
    outcomes = asyncio.run(fire(args.url, paths))
    s = summary(outcomes, audio, time.perf_counter() - start, peak_rss_mib(args.pid) if args.pid else None)
    for o in outcomes:
        if o.status not in (200, 503):
            print(f"{o.path}: {o.status} {o.error or (o.body or {}).get('detail')}")
    print(markdown(s))
    if args.out:
        args.out.write_text(json.dumps({**s, "outcomes": [asdict(o) for o in outcomes]}, indent=1) + "\n")


if __name__ == "__main__":
    main()
