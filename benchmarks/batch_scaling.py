"""The DTQL update's time against its batch size (issue 13): how much of a step is fixed cost
(Adam over every parameter, the soft update, dispatching the step's kernels), which does not
grow with the batch, and how much grows with it (matrix products, LayerNorm, Mish).

    taskset -c 1 python benchmarks/batch_scaling.py [--batches 128,256,512,1024] [--repeats 5]

The halfcheetah-medium-v2 preset as `dtql bench` builds it, with only the batch size changed;
synthetic data (100k rows). Each batch size is timed by `dtql bench`'s own measurement (median
of ``--repeats`` jitted calls after a compiling one, about 20k rows per call), and a straight
line t = fixed + per_row x batch is fitted to the medians. The matmul bound is `dtql bench`'s,
measured in the same process: up front (printed) and after every timed call, and each share is
the median over calls of the call's rate over the bound measured beside it.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from dtql.bench.command import BenchArgs, _learner
from dtql.bench.timing import machine
from dtql.bench.training import matmul_chains, update_speed
from dtql.envs.registry import get_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", default="128,256,512,1024")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    task = get_task(BenchArgs().task)
    base = _learner(BenchArgs(), "dtql")
    hidden = base.agent.hidden_dim
    chains = matmul_chains(256, hidden)
    bound = chains.rate(args.repeats).bound_flops_per_s
    where = machine()
    print(
        f"DTQL update, {task.name} preset (hidden {hidden}); {where['device']}, "
        f"{where['cpu_threads_usable']} usable CPU thread(s), jax {where['versions']['jax']}, "
        f"XLA_FLAGS '{where['xla_flags']}'; matmul bound up front {bound / 1e9:.0f} GFLOP/s "
        f"([256, {hidden}] x [{hidden}, {hidden}], dtql bench's measurement); "
        f"median of {args.repeats} calls per batch size"
    )
    print("| batch | ms per step | GFLOP per step | GFLOP/s | share of matmul bound |")
    print("| --- | --- | --- | --- | --- |")
    seconds = []
    for batch in batches:
        cfg = dataclasses.replace(base, batch_size=batch)
        steps = max(10, 20_000 // batch)
        dims = (task.obs_dim, task.act_dim)
        speed = update_speed("dtql", cfg, dims, steps, args.repeats, chains)
        seconds.append(1.0 / speed.steps_per_s)
        print(
            f"| {batch} | {1e3 * seconds[-1]:.2f} | {speed.flops_per_step / 1e9:.3f} | "
            f"{speed.achieved_flops / 1e9:.1f} | {speed.share_of_matmul_bound:.0%} |"
        )
    design = np.stack([np.ones(len(batches)), np.asarray(batches, float)], axis=1)
    fixed, per_row = np.linalg.lstsq(design, np.asarray(seconds), rcond=None)[0]
    at_256 = fixed + 256 * per_row
    print(
        f"fit: {1e3 * fixed:.2f} ms fixed + {1e6 * per_row:.1f} us per batch row; "
        f"at batch 256 the fixed part is {fixed / at_256:.0%} of a step"
    )


if __name__ == "__main__":
    main()
