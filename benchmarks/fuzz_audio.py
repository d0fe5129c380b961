"""Fuzz the audio loader: mutate valid WAV and FLAC files (bit flips, byte overwrites, truncation,
header garbage, inserted/deleted/duplicated chunks, extreme header integers) and check that
``load_audio`` either returns a finite float32 mono array or raises AudioError, never anything
else, never hangs, and that ``iter_audio_blocks`` agrees with it.

A plain seeded mutation loop (reproducible from --seed, no extra dependency). A watchdog
(faulthandler) aborts the run if one input takes longer than --timeout seconds; the input under
test is always saved first (``--out``/current.bin), so a hang or crash leaves it behind.
Inputs that end in anything other than success or AudioError are saved to ``--out``/failures/.

    .venv/bin/python benchmarks/fuzz_audio.py --inputs 5000 --seed 0 --out benchmarks/fuzz_audio
"""

from __future__ import annotations

import argparse
import faulthandler
import io
import json
import random
import resource
import struct
import tempfile
import traceback
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from w2v2.data.audio import AudioError, iter_audio_blocks, load_audio


def seed_files() -> dict[str, bytes]:
    """Valid files of every kind the loader handles: 8/16/24-bit, float, stereo, other rates."""
    rng = np.random.default_rng(0)
    x = (0.3 * np.sin(2 * np.pi * 220 * np.arange(4000) / 16000) + 0.05 * rng.standard_normal(4000)).astype(np.float32)
    kinds = {"wav16": ("WAV", "PCM_16", 16000, 1), "wav_u8": ("WAV", "PCM_U8", 8000, 1),
             "wav24_stereo": ("WAV", "PCM_24", 22050, 2), "wav_float": ("WAV", "FLOAT", 16000, 1),
             "flac16": ("FLAC", "PCM_16", 16000, 1), "flac24_stereo": ("FLAC", "PCM_24", 48000, 2),
             "flac8": ("FLAC", "PCM_S8", 16000, 1)}
    out = {}
    for name, (fmt, subtype, sr, ch) in kinds.items():
        buf = io.BytesIO()
        sf.write(buf, np.stack([x] * ch, axis=1), sr, format=fmt, subtype=subtype)
        out[name] = buf.getvalue()
    return out


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    b = bytearray(data)
    kind = rng.choice(["bitflip", "bytes", "truncate", "header", "insert", "delete", "duplicate", "header_int"])
    if kind == "bitflip":
        for _ in range(rng.randint(1, 16)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif kind == "bytes":
        i = rng.randrange(len(b))
        n = rng.randint(1, 64)
        b[i:i + n] = rng.randbytes(n)
    elif kind == "truncate":
        del b[rng.randrange(len(b)):]
    elif kind == "header":
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(min(64, len(b)))] = rng.randrange(256)
    elif kind == "insert":
        i = rng.randrange(len(b))
        b[i:i] = rng.randbytes(rng.randint(1, 512))
    elif kind == "delete":
        i = rng.randrange(len(b))
        del b[i:i + rng.randint(1, 512)]
    elif kind == "duplicate":
        i = rng.randrange(len(b))
        b[i:i] = b[i:i + rng.randint(1, 2048)]
    else:  # a header size / rate / channel count set to an extreme value
        i = rng.randrange(0, min(60, len(b) - 4))
        b[i:i + 4] = struct.pack("<I", rng.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, rng.getrandbits(32)]))
    return kind, bytes(b)


def check(path: Path) -> str:
    """'ok', 'AudioError: <problem class>' or raises (anything else is a finding)."""
    try:
        wav = load_audio(path)
    except AudioError as e:
        return "AudioError: " + e.problem.split(" (")[0].split(":")[0][:60]
    assert wav.dtype == np.float32 and wav.ndim == 1 and len(wav) > 0, (wav.dtype, wav.shape)
    assert np.isfinite(wav).all()
    blocks = list(iter_audio_blocks(path, 0.1))
    assert np.array_equal(np.concatenate(blocks), wav), "iter_audio_blocks disagrees with load_audio"
    return "ok"


def plot(by_kind: dict[str, Counter], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = sorted(by_kind)
    groups = ["ok", "AudioError", "other"]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    bottom = np.zeros(len(kinds))
    for g in groups:
        vals = np.array([sum(n for k, n in by_kind[kind].items() if k.split(":")[0] == g) for kind in kinds])
        ax.bar(kinds, vals, bottom=bottom, label=g)
        bottom += vals
    ax.set_ylabel("inputs")
    ax.set_title("load_audio on mutated WAV/FLAC: outcome per mutation")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inputs", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per input before declaring a hang")
    ap.add_argument("--memory-gb", type=float, default=4.0, help="address-space limit: huge allocations fail")
    ap.add_argument("--out", default="benchmarks/fuzz_audio")
    args = ap.parse_args()
    out = Path(args.out)
    (out / "failures").mkdir(parents=True, exist_ok=True)
    limit = int(args.memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    rng = random.Random(args.seed)
    seeds = seed_files()
    outcomes: Counter = Counter()
    by_kind: dict[str, Counter] = defaultdict(Counter)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in tqdm(range(args.inputs), desc="fuzzing load_audio", unit="input"):
            name = rng.choice(sorted(seeds))
            kind, data = mutate(seeds[name], rng)
            for _ in range(rng.randrange(3)):  # stack a few mutations now and then
                kind, data = mutate(data, rng) if len(data) > 8 else (kind, data)
            path = Path(tmp) / f"input.{'flac' if name.startswith('flac') else 'wav'}"
            path.write_bytes(data)
            (out / "current.bin").write_bytes(data)
            faulthandler.dump_traceback_later(args.timeout, exit=True)
            try:
                result = check(path)
            except Exception as e:  # a finding: anything but success or AudioError
                result = f"other: {type(e).__name__}"
                saved = out / "failures" / f"{i:05d}_{name}_{kind}{path.suffix}"
                saved.write_bytes(data)
                failures.append({"input": str(saved), "error": repr(e), "trace": traceback.format_exc(limit=3)})
            finally:
                faulthandler.cancel_dump_traceback_later()
            outcomes[result] += 1
            by_kind[kind][result] += 1
    (out / "current.bin").unlink(missing_ok=True)
    summary = {"inputs": args.inputs, "seed": args.seed, "outcomes": dict(outcomes.most_common()),
               "by_mutation": {k: dict(v) for k, v in sorted(by_kind.items())}, "failures": failures}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(by_kind, out / "outcomes.png")
    print(f"{'outcome':<60} {'inputs':>7}")
    for result, n in outcomes.most_common():
        print(f"{result:<60} {n:>7}")
    print(f"{len(failures)} findings (anything but ok / AudioError); summary in {out / 'summary.json'}")


if __name__ == "__main__":
    main()
