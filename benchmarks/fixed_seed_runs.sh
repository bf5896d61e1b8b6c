#!/usr/bin/env bash
# Short fixed-seed CPU runs of every algorithm (and the toy lab) whose logged numbers a refactor
# must not change. Run it on the old and the new tree, then compare the two folders:
#   bash benchmarks/fixed_seed_runs.sh /tmp/before   # on the old checkout
#   bash benchmarks/fixed_seed_runs.sh /tmp/after    # on the new one
#   python benchmarks/compare_runs.py /tmp/before /tmp/after
# About 3 minutes on 2 CPU cores. Uses the shipped hopper-medium-v0 dataset.
set -euo pipefail
out=$(realpath -m "$1"); mkdir -p "$out"; cd "$out"  # mujoco writes its log into the cwd
common=(--pretrain-steps 150 --steps 250 --eval-every 200 --log-every 50 --checkpoint-every 200
        --eval-episodes 2 --num-eval-envs 2 --batch-size 64 --agent.hidden-dim 64 --seed 3)
for algo in dtql kl iql bc; do
  dtql train "${common[@]}" --algo "$algo" --out "$out/$algo" > "$out/$algo.log" 2>&1
done
dtql train "${common[@]}" --algo dtql --agent.lr-decay --agent.entropy-coef 0.5 \
  --act-mode candidates --agent.num-candidates 16 --out "$out/dtql-decay" > "$out/dtql-decay.log" 2>&1
dtql eval "$out/dtql" --episodes 2 --json > "$out/eval.json"
dtql toy --scenario 25g-far --json --tr-steps 200 --batch-size 64 --out "$out/toy" \
  > "$out/toy-tr.json" 2> "$out/toy-tr.log"
dtql toy --scenario 25g-far --reg kl --json --kl-bc-steps 100 --kl-pretrain-steps 50 \
  --kl-steps 100 --batch-size 64 --out "$out/toy" > "$out/toy-kl.json" 2> "$out/toy-kl.log"
echo "fixed-seed runs in $out"
