"""One short check of the project on a CUDA GPU, printed as one table (benchmarks/gpu_check.sh).

    bash benchmarks/gpu_check.sh            # on a machine with one CUDA GPU: at most ~8 minutes
    bash benchmarks/gpu_check.sh --smoke    # the same steps at tiny sizes, on CPU if there is no GPU

Rows:
1. parity on the device: w2v2 against transformers (identical weights, same masks) in fp32, BASE
   encoder output in eval mode; a file's CTC emissions alone and in a padded batch (both layouts);
2. one BASE pre-training update against transformers' in bf16 and in fp16 (with the loss
   scaler): time ratio (median of interleaved rounds) and peak device memory of each;
3. `w2v2 pretrain --preset base` for two minutes in bf16 and in fp16 (GradScaler) on a synthetic
   tone corpus: loss finite and falling, skipped updates counted;
4. inference real-time factor of a BASE CTC model on 60 s of audio (`compute_emissions`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from train_step import Case, build_pair, check_parity, make_batch, update_fn
from w2v2.config import W2V2Config
from w2v2.data.manifest import Entry, write_manifest
from w2v2.decode.inference import compute_emissions
from w2v2.model import Wav2Vec2ForCTC, build_model, preset

ROOT = Path(__file__).resolve().parent.parent


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_memory_mb(device: torch.device, fn) -> float | None:
    """Peak device memory of one call (CUDA only)."""
    if device.type != "cuda":
        fn()
        return None
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    sync(device)
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def parity_rows(size: str, device: torch.device) -> list[list[str]]:
    case = Case("pretrain", size, 2, 2.0, "fp32")
    ours, theirs = build_pair(case)
    diff = check_parity(case, ours, theirs)  # the reference, on CPU
    rows = [["parity", f"{size} encoder vs transformers, fp32 (CPU reference)", f"max abs diff {diff:.1e}", "ok"]]
    d = check_parity(case, ours.to(device), theirs.to(device), tol=1e-3)  # TF32 convolutions on CUDA
    rows.append(["parity", f"{size} encoder vs transformers, fp32 on {device.type}", f"max abs diff {d:.1e}", "ok"])
    for mode in ("group", "layer"):
        cfg = W2V2Config(conv_layers=((32, 10, 5),) + ((32, 3, 2),) * 4 + ((32, 2, 2),) * 2, extractor_mode=mode,
                         conv_bias=mode == "layer", encoder_embed_dim=64, encoder_layers=2, encoder_ffn_embed_dim=128,
                         encoder_attention_heads=2, conv_pos=16, conv_pos_groups=4, vocab_size=8,
                         layer_norm_first=mode == "layer")
        torch.manual_seed(0)
        model = Wav2Vec2ForCTC(cfg, build_model(cfg)).eval().to(device)
        rng = np.random.default_rng(0)
        waves = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (9000, 30000, 24000)]
        alone = compute_emissions(model, cfg, waves[:1], progress=False)[0]
        together = compute_emissions(model, cfg, waves, progress=False)[0]
        d = (alone - together).abs().max().item()
        rows.append(["parity", f"{mode} layout: emissions alone = in a padded batch", f"max abs diff {d:.1e}",
                     "ok" if d < 1e-4 else "FAIL"])
    return rows


def update_rows(size: str, device: torch.device, dtypes: list[str], reps: int) -> list[list[str]]:
    rows = []
    for dtype in dtypes:
        case = Case("pretrain", size, 2, 4.0, dtype)
        ours, theirs = build_pair(case)
        wave, targets = make_batch(case)
        wave = wave.to(device)
        fns = {name: update_fn(case, name, m.to(device), wave, targets, []) for name, m in
               (("w2v2", ours), ("transformers", theirs))}
        memory = {name: peak_memory_mb(device, fn) for name, fn in fns.items()}  # also the warm-up
        times: dict[str, list[float]] = {name: [] for name in fns}
        for r in range(reps):
            for name in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
                sync(device)
                t0 = time.perf_counter()
                fns[name]()
                sync(device)
                times[name].append(time.perf_counter() - t0)
        ratio = statistics.median(h / w for h, w in zip(times["transformers"], times["w2v2"]))
        mem = " / ".join("-" if memory[n] is None else f"{memory[n]:.0f} MB" for n in fns)
        rows.append(["update", f"{case.label} {dtype}: w2v2 {1e3 * statistics.median(times['w2v2']):.0f} ms, "
                     f"transformers {1e3 * statistics.median(times['transformers']):.0f} ms; peak memory {mem}",
                     f"{ratio:.2f}x faster", "ok"])
    return rows


def tone_corpus(folder: Path, clips: int, seconds: float) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for i in range(clips):
        n = int(seconds * 16000 * rng.uniform(0.7, 1.0))
        t = np.arange(n) / 16000
        f0 = rng.uniform(100, 400) * (1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))
        wav = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / 16000) + 0.03 * rng.standard_normal(n)
        sf.write(folder / f"tone{i:04d}.flac", wav.astype(np.float32), 16000)
        entries.append(Entry(folder / f"tone{i:04d}.flac", n))
    write_manifest(folder / "train.tsv", entries)
    return folder / "train.tsv"


def pretrain_rows(size: str, device: torch.device, dtypes: list[str], minutes: float, updates: int,
                  work: Path) -> list[list[str]]:
    manifest = tone_corpus(work / "tones", 200, 4.0)
    rows = []
    for dtype in dtypes:
        out = work / f"pt-{dtype}"
        cmd = [sys.executable, "-m", "w2v2.cli", "pretrain", "--train", str(manifest), "--out", str(out),
               "--preset", size, "--max-minutes", str(minutes), "--max-updates", str(updates), "--precision", dtype,
               "--device", device.type, "--max-tokens", "512000", "--max-sample-size", "64000",
               "--min-sample-size", "16000", "--log-every", "1" if updates < 10 else "5",
               "--validate-every", "100000", "--num-workers", "2"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()] if proc.returncode == 0 else []
        train = [r for r in log if r["kind"] == "train"]
        if not train:
            rows.append(["pre-train", f"{size} {dtype}: failed", "-", "FAIL"])
            print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
            continue
        first, last = train[0], train[-1]
        finite = all(np.isfinite(r["loss"]) for r in train)
        falling = last["loss"] < first["loss"]
        skipped = int(last["skipped"])
        ok = finite and falling and skipped <= max(5, last["update"] // 20)
        rows.append(["pre-train", f"{size} {dtype}: {last['update']} updates, loss {first['loss']:.3f} -> "
                     f"{last['loss']:.3f}, {skipped} skipped, {statistics.median(r['audio_h_per_h'] for r in train):.0f} "
                     "audio h/h", f"acc {last.get('acc', float('nan')):.2f}", "ok" if ok else "FAIL"])
    return rows


def rtf_row(size: str, device: torch.device, seconds: float) -> list[str]:
    cfg = preset(size)
    cfg.vocab_size = 32
    model = Wav2Vec2ForCTC(cfg, build_model(cfg)).eval().to(device)
    wave = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * 16000))).astype(np.float32)
    compute_emissions(model, cfg, [wave[:16000 * 5]], progress=False)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    compute_emissions(model, cfg, [wave], progress=False)
    sync(device)
    rtf = (time.perf_counter() - t0) / seconds
    return ["inference", f"{size} CTC, {seconds:g} s of audio (30 s windows), fp32", f"RTF {rtf:.4f}", "ok"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny sizes and seconds-long runs (CPU is fine)")
    p.add_argument("--out", type=Path, help="also write the table here (Markdown)")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not args.smoke:
        raise SystemExit("no CUDA device: run with --smoke for the CPU rehearsal")
    size = "tiny" if args.smoke else "base"
    dtypes = ["bf16", "fp16"] if device.type == "cuda" else ["bf16"]  # fp16 autocast + scaler needs CUDA
    start = time.time()
    rows = parity_rows(size, device)
    rows += update_rows(size, device, dtypes, reps=2 if args.smoke else 10)
    with tempfile.TemporaryDirectory() as work:
        rows += pretrain_rows(size, device, dtypes, 5.0 if args.smoke else 2.0, 3 if args.smoke else 100_000,
                              Path(work))
    rows.append(rtf_row(size, device, 10.0 if args.smoke else 60.0))
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    lines = [f"gpu_check on {name} (torch {torch.__version__}, {time.time() - start:.0f} s)", "",
             "| check | what | figure | result |", "|---|---|---:|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    if any(r[-1] != "ok" for r in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
