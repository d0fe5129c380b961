#!/usr/bin/env bash
# The small-compute study (docs/small_compute.md): one pre-training variant on the shared data,
# then (optionally) a fine-tuning on labeled_10min selected on kathleen_dev.
#   scripts/small_compute.sh pretrain NAME SEED MINUTES UPDATES [pretrain options ...]
#   scripts/small_compute.sh finetune NAME INIT_DIR|none SEED MINUTES UPDATES [finetune options ...]
# Runs go to $STUDY/runs/NAME (default /tmp/study: outside the repository); manifests are made
# once from ../shared/data. Each command resumes an interrupted run.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
W2V2=${W2V2:-$here/.venv/bin/w2v2}
STUDY=${STUDY:-/tmp/study}
DATA=${DATA:-$here/../shared/data}
mkdir -p "$STUDY/runs"
for s in unlabeled labeled_10min labeled_1h kathleen_dev; do
  [ -f "$STUDY/$s.tsv" ] && continue
  text=--with-text; [ $s = unlabeled ] && text=
  $W2V2 data manifest --split "$DATA/splits/$s.tsv" --data-root "$DATA" $text --out "$STUDY/$s.tsv"
done
kind=$1 name=$2; shift 2
run="$STUDY/runs/$name"
resume=; [ -d "$run" ] && resume=--resume
case $kind in
  pretrain)
    seed=$1 minutes=$2 updates=$3; shift 3
    model=(--preset tiny); [[ " $* " == *" --init "* ]] && model=()  # --init gives the model
    $W2V2 pretrain --train "$STUDY/unlabeled.tsv" --out "$run" "${model[@]}" --seed "$seed" \
      --max-minutes "$minutes" --max-updates "$updates" --validate-every "$((updates / 5))" \
      --save-every "$((updates / 5))" $resume "$@" ;;
  finetune)
    init=$1 seed=$2 minutes=$3 updates=$4; shift 4
    $W2V2 finetune --train "$STUDY/${LABELED:-labeled_10min}.tsv" --valid "$STUDY/kathleen_dev.tsv" --out "$run" \
      --init "$init" --arch tiny --recipe 10min --seed "$seed" --max-minutes "$minutes" \
      --max-updates "$updates" --validate-every 100 --save-every 100 --best-by cer --unknown map \
      --lr 1e-3 --max-tokens 320000 --freeze-encoder-updates 0 --set mask_prob=0.0 --set mask_channel_prob=0.0 \
      $resume "$@" ;;
  *) echo "usage: $0 pretrain|finetune NAME ..." >&2; exit 2 ;;
esac
