#!/bin/bash
# shape_probe.sh -- do rounded batch lengths buy updates? Short time-limited runs of the `real` budget's
# ten-minute fine-tuning (speed perturbation 0.9-1.1, feature encoder uncached) and of its pre-training,
# with batch lengths rounded to 0.5 s (--pad-multiple / --crop-multiple 8000) and without (0), alternated
# A B A B; prints the updates each made. Run it alone on the machine (timings swing with any other load).
#   bash benchmarks/shape_probe.sh MANIFEST_DIR PRETRAINED_DIR OUT [MINUTES [finetune|pretrain|both]]
# MANIFEST_DIR holds unlabeled.tsv, labeled_10min.tsv and kathleen_dev.tsv (README, `--scale real`);
# PRETRAINED_DIR is a pre-trained `tiny` model (for example a `real` run's pretrain/best).
set -eu
MAN=$1; INIT=$2; OUT=$3; MIN=${4:-2}; WHICH=${5:-both}
W=${W2V2:-.venv/bin/w2v2}
mkdir -p "$OUT"
ft() {  # ft NAME PAD
  rm -rf "$OUT/$1"
  $W finetune --train "$MAN/labeled_10min.tsv" --valid "$MAN/kathleen_dev.tsv" --out "$OUT/$1" --recipe 10min \
    --init "$INIT" --arch tiny --max-updates 100000 --max-minutes "$MIN" --schedule-pace time --lr 0.001 \
    --max-tokens 320000 --validate-every 100000 --save-every 100000 --freeze-encoder-updates 0 \
    --unfreeze-warmup-updates 0 --head-lr-scale 10.0 --set mask_prob=0.3 --set mask_channel_prob=0.15 \
    --augment-speed 0.1 --unknown map --seed 1 --pad-multiple "$2" > "$OUT/$1.log" 2>&1
  echo "finetune --pad-multiple $2: $(grep -ao 'done: [0-9]* updates' "$OUT/$1.log")"
}
pt() {  # pt NAME CROP
  rm -rf "$OUT/$1"
  $W pretrain --train "$MAN/unlabeled.tsv" --out "$OUT/$1" --preset tiny --max-updates 100000 --max-minutes "$MIN" \
    --schedule-pace time --lr 0.0005 --max-tokens 512000 --valid-max-clips 200 --validate-every 100000 \
    --save-every 100000 --seed 1 --set quantize_targets=False --set target_units=100 --crop-multiple "$2" \
    > "$OUT/$1.log" 2>&1
  echo "pretrain --crop-multiple $2: $(grep -ao 'done: [0-9]* updates' "$OUT/$1.log")"
}
if [ "$WHICH" != pretrain ]; then ft ft-a1 0; ft ft-b1 8000; ft ft-a2 0; ft ft-b2 8000; fi
if [ "$WHICH" != finetune ]; then pt pt-a1 0; pt pt-b1 8000; pt pt-a2 0; pt pt-b2 8000; fi
