#!/usr/bin/env bash
# One Table 1 task at twice the grid's budget, where its long-run curve was still rising at the
# grid's 150k: copies of the grid's finished runs of TASK, each given 150k more steps with
# `dtql sweep --extend` (DTQL and KL: 50k pretraining + 250k main-phase steps; IQL's recipe and
# BC: 300k), so the steps the grid took are not trained again. Every other setting is the
# grid's (benchmarks/table1_grid.sh): the sweep refuses a copy whose config differs otherwise.
#   bash benchmarks/table1_longer.sh GRID_DIR OUT_DIR TASK [ALGOS] [--dry-run]
# e.g. bash benchmarks/table1_longer.sh runs/table1 runs/table1-300k walker2d-medium-v2 bc,iql,dtql
# A run already in OUT_DIR is kept (copy a longer run there first to reuse it); a grid run not
# finished yet is not copied, and the sweep trains it from the start. Rerunning the line resumes.
set -euo pipefail
grid=$(realpath "${1:?usage: table1_longer.sh GRID_DIR OUT_DIR TASK [ALGOS] [--dry-run]}")
out=$(realpath -m "$2"); task=$3; algos=${4:-bc,iql,dtql}; dry_run=${5:-}
mkdir -p "$out"; cd "$out"  # mujoco writes its log into the working directory
for algo in ${algos//,/ }; do
  for source in "$grid/$task/$algo"/seed_{0,1,2}; do
    copy=$out/$task/$algo/$(basename "$source")
    if [ -e "$copy" ] || [ -n "$dry_run" ]; then continue; fi
    if ! grep -qs '"status": "finished"' "$source/result.json"; then
      echo "note: $source has not finished; the sweep trains $copy from the start"
      continue
    fi
    mkdir -p "$(dirname "$copy")"
    cp -r "$source" "$copy"
    rm -f "$copy/.lock"  # the source's lock file: the copy is a new folder
  done
done
exec dtql sweep --tasks "$task" --algos "$algos" --seeds 0-2 --out "$out" --extend \
  --set eval-every=10000 checkpoint-every=10000 \
  dtql:pretrain-steps=50000 dtql:steps=250000 kl:pretrain-steps=50000 kl:steps=250000 \
  iql:steps=300000 bc:steps=300000 $dry_run
