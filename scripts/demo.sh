#!/usr/bin/env bash
# Until the low-resource experiment exists: build a tiny model, inspect it, embed generated audio,
# export it to transformers' format.
set -euo pipefail
OUT=${OUT:-demo}
mkdir -p "$OUT"
.venv/bin/python - "$OUT" <<'PY'
import sys, numpy as np, soundfile as sf
from w2v2.model import preset, build_pretraining_model
from w2v2.interop.model_dir import save_model_dir
out = sys.argv[1]
cfg = preset("tiny")
save_model_dir(build_pretraining_model(cfg), cfg, f"{out}/tiny-random")
t = np.arange(32000) / 16000
sf.write(f"{out}/tone.flac", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
PY
.venv/bin/w2v2 info "$OUT/tiny-random"
.venv/bin/w2v2 embed --model "$OUT/tiny-random" "$OUT/tone.flac" --out "$OUT/tone.npy"
.venv/bin/w2v2 export --to hf "$OUT/tiny-random" "$OUT/tiny-random-hf"
