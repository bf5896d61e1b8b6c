#!/usr/bin/env bash
# Issue 24's grid: the paper's Table 1 locomotion tasks on the fingerprinted datasets made from
# the shipped behaviour policies, at the budget the long-run curve chose (docs/curves.md):
#   DTQL and KL: 50k pretraining + 100k main-phase steps; IQL's recipe and BC: 150k steps;
#   each evaluated every 10k steps (10 episodes, mean action), checkpointed as often.
#   bash benchmarks/table1_grid.sh OUT_DIR            (run, or resume, the grid)
#   bash benchmarks/table1_grid.sh OUT_DIR --dry-run  (where it stands; changes nothing)
# Everything here resumes: datasets already written are kept (--resume), finished runs are
# skipped and stopped ones continue from their newest checkpoint, so rerunning the line after an
# interruption completes the grid. One pinned process per core (`dtql sweep` on a CPU); each
# sweep appends its wall time to OUT_DIR/sessions.jsonl, which `dtql report` sums.
# The datasets go to $DTQL_DATASETS_DIR (default ~/.dtql/datasets), where --task finds them;
# --hdf5 also writes the D4RL-layout copy the released code reads (for a side-by-side).
set -euo pipefail
out=$(realpath -m "${1:?usage: table1_grid.sh OUT_DIR}")
dry_run=${2:-}
mkdir -p "$out"; cd "$out"  # mujoco writes its log into the working directory

levels=medium,medium-replay,medium-expert
if [ "$dry_run" != --dry-run ]; then
taskset -c 0 dtql collect Hopper-v5 --from-policies --levels $levels --hdf5 --resume \
  --no-progress-bar &
taskset -c 1 dtql collect HalfCheetah-v5 --from-policies --levels $levels --hdf5 --resume \
  --no-progress-bar
wait
dtql collect Walker2d-v5 --from-policies --levels $levels --hdf5 --resume --no-progress-bar
fi

budget=(--set eval-every=10000 checkpoint-every=10000
  dtql:pretrain-steps=50000 dtql:steps=100000 kl:pretrain-steps=50000 kl:steps=100000
  iql:steps=150000 bc:steps=150000)
# The medium tasks first, with KL (the paper's Table 5 claim), then medium-replay, medium-expert.
# A sweep runs task by task, and within a task the algorithms in the order given: the cheap ones
# first, so that each task's comparison with BC and IQL is whole as soon as its DTQL runs are.
# A sweep exits non-zero when a run failed (diverged); the grid goes on and says so at the end.
# A sweep stopped by Ctrl-C or SIGTERM exits 130 (checkpoints saved): then the grid stops too,
# rather than starting the next level.
status=0
for level in medium medium-replay medium-expert; do
  tasks=hopper-$level-v2,walker2d-$level-v2,halfcheetah-$level-v2
  algos=bc,iql,dtql
  [ $level = medium ] && algos=bc,iql,dtql,kl
  dtql sweep --tasks "$tasks" --algos "$algos" --seeds 0-2 --out "$out" "${budget[@]}" $dry_run \
    || status=$?
  [ $status -eq 130 ] && exit 130
done
exit $status
