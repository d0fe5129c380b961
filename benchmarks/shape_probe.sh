#!/bin/bash
# shape_probe.sh -- do rounded batch lengths buy updates? Short time-limited runs of the `real` budget's
# ten-minute fine-tuning (speed perturbation 0.9-1.1, feature encoder uncached) and of its pre-training,
# with batch lengths rounded to 0.5 s (--pad-multiple / --crop-multiple 8000) and without (0), alternated
# A B A B; prints the updates each made. Run it alone on the machine (timings swing with any other load).
#   bash benchmarks/shape_probe.sh MANIFEST_DIR PRETRAINED_DIR OUT [MINUTES [finetune|pretrain|both]]
# MANIFEST_DIR holds unlabeled.tsv, labeled_10min.tsv and kathleen_dev.tsv (README, `--scale real`);
# PRETRAINED_DIR is a pre-trained `tiny` model (for example a `real` run's pretrain/best).
# The commands are the budget's own (experiment/budget.py), with the probe's limits appended (later
# options win): no update cap, MINUTES of wall time, no validation or checkpoint before the end.
set -eu
MAN=$1; INIT=$2; OUT=$3; MIN=${4:-2}; WHICH=${5:-both}
W=${W2V2:-.venv/bin/w2v2}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"
budget_args() {  # budget_args finetune|pretrain RUN_DIR: the real budget's arguments, NUL-separated
  "$PY" -c '
import sys
from pathlib import Path
from w2v2.experiment.budget import SCALES
which, man, init, out = sys.argv[1:]
b = SCALES["real"]
args = (b.finetune_args(f"{man}/labeled_10min.tsv", 10.0, f"{man}/kathleen_dev.tsv", Path(out), init, seed=1)
        if which == "finetune" else b.pretrain_args(f"{man}/unlabeled.tsv", Path(out), seed=1))
sys.stdout.write("\0".join(args))' "$1" "$MAN" "$INIT" "$2"
}
probe() {  # probe finetune|pretrain NAME OPTION VALUE
  rm -rf "$OUT/$2"
  mapfile -d '' args < <(budget_args "$1" "$OUT/$2")
  $W "${args[@]}" --max-updates 100000 --max-minutes "$MIN" --validate-every 100000 --save-every 100000 \
    "$3" "$4" > "$OUT/$2.log" 2>&1
  echo "$1 $3 $4: $(grep -ao 'done: [0-9]* updates' "$OUT/$2.log")"
}
if [ "$WHICH" != pretrain ]; then
  for n in 1 2; do probe finetune ft-a$n --pad-multiple 0; probe finetune ft-b$n --pad-multiple 8000; done
fi
if [ "$WHICH" != finetune ]; then
  for n in 1 2; do probe pretrain pt-a$n --crop-multiple 0; probe pretrain pt-b$n --crop-multiple 8000; done
fi
