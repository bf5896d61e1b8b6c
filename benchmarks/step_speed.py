"""Training speed of the jitted update: steps/s of each algorithm on one device.

    python benchmarks/step_speed.py [--algos dtql,kl,iql,iql-dtql,bc] [--steps 1000] [--repeats 3]
        [--matmul-precision highest|default]

Synthetic data with Hopper's sizes (obs 11, act 3, 100k rows), each algorithm's config for the
hopper-medium-v2 preset as `dtql train` builds it (batch 256, hidden 256; iql: IQL's recipe).
Each repeat runs ``--steps`` updates in one jitted call after a warm-up call that compiles; the
median is reported with the device, the thread count and the float32 matmul precision (which
matters on a GPU only: 'default' allows TF32).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp

from dtql.algos import get_algorithm
from dtql.algos.common import Batch, run_steps_jit
from dtql.presets import run_config


def synthetic_data(rows: int, obs_dim: int, act_dim: int) -> Batch:
    keys = jax.random.split(jax.random.key(0), 4)
    return Batch(
        observations=jax.random.normal(keys[0], (rows, obs_dim)),
        actions=0.9 * jnp.tanh(jax.random.normal(keys[1], (rows, act_dim))),
        rewards=jax.random.normal(keys[2], (rows,)),
        next_observations=jax.random.normal(keys[3], (rows, obs_dim)),
        terminals=jnp.zeros((rows,)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", default="dtql,kl,iql,iql-dtql,bc")
    parser.add_argument("--matmul-precision", choices=("highest", "default"), default="highest")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = synthetic_data(100_000, 11, 3)
    device = jax.devices()[0]
    print(
        f"device {device.platform} ({device.device_kind}), "
        f"{len(os.sched_getaffinity(0))} CPU threads usable, "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}, matmul precision "
        f"{args.matmul_precision}; {args.steps} steps per call, "
        f"median of {args.repeats} calls after a compiling warm-up"
    )
    for name in args.algos.split(","):
        with jax.default_matmul_precision(args.matmul_precision):
            measure(name, data, args.steps, args.repeats)


def measure(name: str, data: Batch, steps: int, repeats: int) -> None:
    """Print the median steps/s of one algorithm's jitted update."""
    algo = get_algorithm(name)
    cfg = run_config("hopper-medium-v2", name).learner
    state = algo.init(jax.random.key(0), cfg, 11, 3, 1.0)
    started = time.perf_counter()
    state, metrics = run_steps_jit(algo.train_step, state, data, jax.random.key(1), cfg, 10)
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - started
    rates = []
    for repeat in range(repeats):
        started = time.perf_counter()
        state, metrics = run_steps_jit(
            algo.train_step, state, data, jax.random.key(2 + repeat), cfg, steps
        )
        jax.block_until_ready(metrics)
        rates.append(steps / (time.perf_counter() - started))
    print(
        f"{name:>8}: {statistics.median(rates):7.1f} steps/s (min {min(rates):.1f}, "
        f"max {max(rates):.1f}); first call incl. compile {compile_s:.1f} s"
    )


if __name__ == "__main__":
    main()
