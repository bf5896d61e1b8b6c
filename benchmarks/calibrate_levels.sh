#!/usr/bin/env bash
# Issue 23: an env's medium, medium-replay and medium-expert levels from a SAC run made with
# --snapshot-every, and their fingerprints. What it ran for the shipped files is recorded in
# src/dtql/assets/policies/README.md.
#   bash benchmarks/calibrate_levels.sh ENV_ID SAC_OUT MEDIUM_STEP REPLAY_STEPS WORK_DIR
# ENV_ID e.g. HalfCheetah-v5; SAC_OUT the SAC run's --out; MEDIUM_STEP the snapshot chosen from
# `dtql collect ENV_ID --out SAC_OUT --score-snapshots`; REPLAY_STEPS D4RL's medium-replay size
# (rows of the SAC run's buffer, at most its last checkpoint's). Writes the policy files into
# src/dtql/assets/policies, the datasets and BC runs under WORK_DIR, and the fingerprints into
# src/dtql/assets/policies/fingerprints.json. Needs pip install -e ".[collect]".
set -euo pipefail
env_id=$1; sac_out=$(realpath "$2"); medium_step=$3; replay_steps=$4; work=$(realpath -m "$5")
repo=$(cd "$(dirname "$0")/.." && pwd); policies=$repo/src/dtql/assets/policies
name=$(echo "$env_id" | sed 's/-v5$//' | tr '[:upper:]' '[:lower:]')
mkdir -p "$work"; cd "$work"  # mujoco writes its log into the working directory
dtql collect "$env_id" --out "$sac_out" --levels medium,medium-replay \
  --medium-step "$medium_step" --replay-steps "$replay_steps" --save-policies "$policies"
dtql collect "$env_id" --from-policies --levels medium,medium-replay,medium-expert \
  --out "$work/data" --no-progress-bar
for level in medium medium-replay medium-expert; do
  dtql data fingerprint "$work/data/minari/dtql/$name-$level-v0" --task "$name-$level-v2" \
    --out "$work/bc/$name-$level" --record --catalogue "$policies/fingerprints.json"
done
