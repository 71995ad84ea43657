#!/usr/bin/env bash
# KD codes on PTB (docs/kd.md): the full small LSTM LM (teacher), the supplement's table-1
# ablation (K=32, D=32) and a smaller setting (K=16, D=8, recipe of row 4), under a CPU budget
# given by EPOCHS
# (Zaremba's lr schedule compressed: lr 1, then halved every epoch after DECAY_AFTER).
# Two chains run side by side with one thread each; run directories resume when re-run.
# Usage: EMBEDLAB_DATA_DIR=../shared/datasets bash benchmarks/kd_lm_ptb.sh [RUNS_DIR]
set -euo pipefail
RUNS=${1:-runs/kd-lm}
EPOCHS=${EPOCHS:-2}
DECAY_AFTER=${DECAY_AFTER:-1}
BUDGET=(--set train.max_epochs="$EPOCHS" --set train.decay_after="$DECAY_AFTER" --set train.num_threads=1)
ABL=configs/lm/ptb/kd-ablation
train() { embedlab lm train --config "$1" "${BUDGET[@]}" --out "$2" "${@:3}" > "$2.log" 2>&1; }
mkdir -p "$RUNS"
(
  train configs/lm/ptb/small.yaml "$RUNS/full"
  train configs/lm/ptb/small-kd-k16-d8.yaml "$RUNS/k16-d8"
  for c in 6-pdg-autoencode 5-pdg; do
    train "$ABL/$c.yaml" "$RUNS/$c" --set train.init_from="$RUNS/full"
  done
) &
(
  for c in 1-cr 2-cr-ste 3-cr-ste-temperature 4-cr-ste-entropy; do train "$ABL/$c.yaml" "$RUNS/$c"; done
) &
wait
