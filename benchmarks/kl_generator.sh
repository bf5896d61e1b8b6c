#!/usr/bin/env bash
# The Table 5 comparison (trust region vs KL distillation) with KL's one-step generator as the
# EDM denoiser D(2.5 z; sigma = 2.5 | s) instead of the released raw network F, whose actions
# leave the action box (docs/results.md, "KL distillation"): how much of "TR above KL" the
# released generator accounts for. KL only, 3 seeds, at the Table 1 grid's budget and settings
# (benchmarks/table1_grid.sh), in a folder of its own beside the grid's, whose KL runs are the
# released form; `dtql report OUT_DIR` reads it.
#   bash benchmarks/kl_generator.sh OUT_DIR [TASKS] [--dry-run]
# e.g. bash benchmarks/kl_generator.sh runs/kl-preconditioned hopper-medium-v2
# About 55 min per run on one core; rerunning the line resumes.
set -euo pipefail
out=$(realpath -m "${1:?usage: kl_generator.sh OUT_DIR [TASKS] [--dry-run]}")
tasks=${2:-hopper-medium-v2,walker2d-medium-v2,halfcheetah-medium-v2}; dry_run=${3:-}
mkdir -p "$out"; cd "$out"  # mujoco writes its log into the working directory
exec dtql sweep --tasks "$tasks" --algos kl --seeds 0-2 --out "$out" \
  --set eval-every=10000 checkpoint-every=10000 kl:pretrain-steps=50000 kl:steps=100000 \
  kl:agent.implicit-generator=preconditioned $dry_run
