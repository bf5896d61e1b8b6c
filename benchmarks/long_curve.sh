#!/usr/bin/env bash
# Issue 24's long-run curves: one algorithm on one fingerprinted dataset, on one core, evaluated
# every 10k steps (10 episodes) and checkpointed as often, so a stopped run resumes exactly
# (`kill -TERM` saves at the end of the chunk; rerunning this line continues it).
#   bash benchmarks/long_curve.sh TASK ALGO STEPS DATASET OUT_DIR [CORE] [FROM_RUN]
# e.g. bash benchmarks/long_curve.sh hopper-medium-v2 dtql 300000 \
#        DATASETS/minari/dtql/hopper-medium-v0 runs/curves 1
# STEPS counts main-phase steps (DTQL and KL pretrain first). With FROM_RUN (a finished or
# stopped run folder, such as a Table 1 grid's seed 0 of the same task and algorithm) the curve
# starts from a copy of it, given STEPS with `dtql train --resume RUN --steps STEPS`: the steps
# it has are not trained again, and the curve is the one a run started that long would draw.
# The runs go to OUT_DIR/<task>/<algo>/seed_0, the layout `dtql report OUT_DIR` reads
# (`dtql report OUT_DIR --out curves.md` also draws the curves).
set -euo pipefail
task=$1; algo=$2; steps=$3; dataset=$(realpath "$4"); out=$(realpath -m "$5"); core=${6:-0}
from=${7:-}
run=$out/$task/$algo/seed_0
mkdir -p "$out"; cd "$out"  # mujoco writes its log into the working directory
if [ -n "$from" ] && [ ! -f "$run/config.json" ]; then
  mkdir -p "$(dirname "$run")"
  cp -r "$from" "$run"
  rm -f "$run/.lock"  # the source's lock file: the copy is a new folder
fi
if [ -f "$run/config.json" ]; then
  exec taskset -c "$core" dtql train --resume "$run" --steps "$steps"
fi
exec taskset -c "$core" dtql train --task "$task" --dataset "$dataset" --algo "$algo" --seed 0 \
  --steps "$steps" --eval-every 10000 --eval-episodes 10 --checkpoint-every 10000 --out "$run"
