#!/usr/bin/env bash
# The main job on a fresh machine: synthesize a small multi-speaker corpus with espeak-ng, then run
# the whole low-resource experiment on it (pre-training -> fine-tuning on 5 and 15 labeled minutes,
# and from scratch -> 4-gram LM and Transformer LM -> decoder tuning -> evaluation -> report). About
# 20 minutes on 2 CPU cores. The Transformer LM re-ranks the 4-gram search's n-best; inside the beam
# search it is slower than real time on 2 cores (about 1 CPU-s per second of audio at beam 10):
# DECODERS="greedy ngram rescore transformer" adds that too.
# Re-running resumes: finished stages are not redone.
set -euo pipefail
OUT=${OUT:-demo}
SCALE=${SCALE:-demo}
DECODERS=${DECODERS:-greedy ngram rescore}
W2V2=.venv/bin/w2v2
$W2V2 data synth --out "$OUT/corpus" --seed 0
$W2V2 experiment lowres --scale "$SCALE" \
  --unlabeled "$OUT/corpus/unlabeled.tsv" \
  --labeled "$OUT/corpus/labeled_5min.tsv" "$OUT/corpus/labeled_15min.tsv" \
  --dev "$OUT/corpus/dev.tsv" --test "$OUT/corpus/test.tsv" \
  --lm-text "$OUT/corpus/lm_text.txt" --out "$OUT/experiment" --decoders $DECODERS
echo "report: $OUT/experiment/report.md and $OUT/experiment/report.html"
