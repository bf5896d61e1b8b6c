#!/usr/bin/env bash
# The accelerator check, run on a lent GPU machine from the repository root:
#   bash benchmarks/device_check.sh OUT_DIR
# 1. the `gpu` tests (GPU numbers = CPU numbers, repeatable, a short run with evaluation);
# 2. `dtql bench` on the GPU (update speed, 16 runs in one program, acting, the GPU targets),
#    a profile of the update there (kernels per update, how much of its time they fill), and
#    the bench's training section on 2 CPU cores of the same machine;
# 3. the README's main command, timed, on the GPU.
# Python packages the machine lacks travel as wheels in .whl/: make them here first with
# `bash benchmarks/device_wheels.sh`, then make one device call of this script with `.whl` in its
# carry and a 600 s limit. The steps' own limits add up to 560 s, so a slow step is cut, not the
# whole call (on this project's 2-core CPU the bench sections take 2 min).
set -o pipefail
OUT_DIR=${1:?usage: device_check.sh OUT_DIR}
REPO=$PWD
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$REPO/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())"
timeout 130 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_accelerator.py 2>&1 | tee "$OUT_DIR/gpu_tests.log"
timeout 210 python3 -m dtql.cli bench --sections training,stacked,acting 2>&1 | tee "$OUT_DIR/bench_gpu.log"
timeout 60 python3 benchmarks/update_profile.py --steps 100 2>&1 | tee "$OUT_DIR/profile_gpu.log"
JAX_PLATFORMS=cpu timeout 80 taskset -c 0,1 python3 -m dtql.cli bench --algos dtql,bc --sections training 2>&1 | tee "$OUT_DIR/bench_cpu2.log"
mkdir -p /tmp/run && cd /tmp/run || exit 1
started=$(date +%s)
timeout 80 python3 -m dtql.cli train --task hopper-random-v2 \
    --pretrain-steps 1000 --steps 9000 --eval-every 5000 --out /tmp/run/main 2>&1 \
    | tr '\r' '\n' | grep -v "it/s\]$" | tail -30 | tee "$OUT_DIR/main_command_gpu.log"
echo "main command wall time: $(( $(date +%s) - started )) s" | tee -a "$OUT_DIR/main_command_gpu.log"
