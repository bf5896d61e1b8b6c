"""How the update's time scales: with the batch size (a fixed cost per step against a cost per
row), and with the number of runs one machine trains (one pinned single-core process per core,
the other way `dtql sweep` can spread runs, beside one run and K runs stacked in one program).

Both time ``training_speed.update_speed``'s measurement on its synthetic data. The processes
measurement starts one child per usable core (``python -m dtql.bench.scaling``), each pinned to
its core before JAX starts, compiled, then released together so they share the machine while
they are timed; its throughput is the children's sum.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np

from dtql.bench.training_speed import MatmulChains, update_speed
from dtql.config import LearnerConfig


def batch_scaling(
    cfg: LearnerConfig,
    dims: tuple[int, int],
    batches: list[int],
    repeats: int,
    bound: MatmulChains,
) -> dict[str, Any]:
    """DTQL's step time at each batch size (about 20k rows per timed call), and the straight
    line t = fixed + per_row x batch fitted to the medians."""
    rows = []
    for batch in batches:
        steps = max(10, 20_000 // batch)
        speed = update_speed(
            "dtql", dataclasses.replace(cfg, batch_size=batch), dims, steps, repeats, bound
        )
        rows.append(
            {
                "batch": batch,
                "ms_per_step": 1e3 / speed.steps_per_s,
                "flops_per_step": speed.flops_per_step,
                "achieved_flops_per_s": speed.achieved_flops,
                "share_of_matmul_bound": speed.share_of_matmul_bound,
            }
        )
    seconds = np.asarray([row["ms_per_step"] / 1e3 for row in rows])
    fixed_s, per_row_s = float(seconds[0]), 0.0
    if len(batches) > 1:
        design = np.stack([np.ones(len(batches)), np.asarray(batches, float)], axis=1)
        fixed_s, per_row_s = map(float, np.linalg.lstsq(design, seconds, rcond=None)[0])
    return {"rows": rows, "fixed_ms": 1e3 * fixed_s, "per_row_us": 1e6 * per_row_s}


def processes_speed(
    task: str, algo: str, steps: int, repeats: int, hidden_dim: int | None
) -> dict[str, Any]:
    """Run-steps/s of one pinned single-core process per usable core, timed together."""
    cores = sorted(os.sched_getaffinity(0))
    command = [sys.executable, "-m", "dtql.bench.scaling", "--task", task, "--algo", algo]
    command += ["--steps", str(steps), "--repeats", str(repeats)]
    if hidden_dim is not None:
        command += ["--hidden-dim", str(hidden_dim)]
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "text": True}
    children = [subprocess.Popen([*command, "--core", str(core)], **pipes) for core in cores]
    try:
        for child in children:
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a timing child ended early: {' '.join(child.args)}")
        for child in children:  # released together, so they share the machine while measured
            child.stdin.write("go\n")
            child.stdin.flush()
        rates = [float(child.communicate()[0].strip()) for child in children]
    finally:
        for child in children:  # none outlives the measurement, whatever ended it
            if child.poll() is None:
                child.kill()
                child.wait()
    return {"algo": algo, "processes": len(cores), "run_steps_per_s": sum(rates)}


def _child(argv: list[str]) -> None:
    """One pinned process: compile, say ready, wait for 'go' on stdin, time, print steps/s."""
    parser = argparse.ArgumentParser()
    for flag, kind in (("--task", str), ("--algo", str), ("--steps", int), ("--repeats", int)):
        parser.add_argument(flag, type=kind, required=True)
    parser.add_argument("--core", type=int, required=True)
    parser.add_argument("--hidden-dim", type=int)
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {args.core})  # before JAX's CPU backend sizes its thread pool

    import jax  # after pinning

    from dtql.algos import get_algorithm
    from dtql.algos.common import run_steps_jit
    from dtql.bench.training_speed import DATA_ROWS, synthetic_data
    from dtql.config import replace
    from dtql.envs.registry import get_task
    from dtql.presets import run_config

    task = get_task(args.task)
    cfg = run_config(args.task, args.algo).learner
    if args.hidden_dim is not None:
        cfg = replace(cfg, **{"agent.hidden_dim": args.hidden_dim})
    algo = get_algorithm(args.algo)
    data = synthetic_data(DATA_ROWS, task.obs_dim, task.act_dim)
    state = algo.init(jax.random.key(args.core), cfg, task.obs_dim, task.act_dim, 1.0)
    state = algo.start_main_phase(state, cfg)
    state, metrics = run_steps_jit(algo.train_step, state, data, jax.random.key(0), cfg, 5)
    jax.block_until_ready(metrics)
    print("ready", flush=True)
    sys.stdin.readline()
    rates = []
    for repeat in range(args.repeats):
        started = time.perf_counter()
        state, metrics = run_steps_jit(
            algo.train_step, state, data, jax.random.key(1 + repeat), cfg, args.steps
        )
        jax.block_until_ready(metrics)
        rates.append(args.steps / (time.perf_counter() - started))
    print(statistics.median(rates), flush=True)


if __name__ == "__main__":
    _child(sys.argv[1:])
