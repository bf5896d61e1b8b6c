"""Throughput of many runs on one machine: one run, K runs stacked in one vmapped program, and
one pinned single-core process per core; the numbers behind `dtql sweep --mode auto`.

    python benchmarks/stacked_speed.py [--algo dtql] [--runs 1,2,4,8] [--steps 200] [--repeats 3]

Synthetic data with Hopper's sizes (obs 11, act 3, 100k rows) and the algorithm's
hopper-medium-v2 config as `dtql train` builds it (batch 256, hidden 256). Each measurement is
the median of ``--repeats`` jitted calls of ``--steps`` updates after a compiling warm-up; the
throughput is runs x steps/s, and every row is set against one run in this same invocation
(same machine, same threads). The processes row starts one child per usable core, each pinned
to its core, compiled, then released together; its throughput is the children's sum.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import jax

from dtql.algos import get_algorithm
from dtql.algos.common import run_steps_jit
from dtql.bench.training import stacked_speed, synthetic_data, update_speed
from dtql.presets import run_config

DIMS = (11, 3)  # Hopper's observation and action sizes


def rates(algo_name: str, runs_list: list[int], steps: int, repeats: int) -> dict[int, float]:
    """Median runs x steps/s for each K in ``runs_list`` (1: the plain program; more: stacked,
    `dtql bench`'s measurement)."""
    cfg = run_config("hopper-medium-v2", algo_name).learner
    one = update_speed(algo_name, cfg, DIMS, steps, repeats).steps_per_s
    return {
        runs: one
        if runs == 1
        else stacked_speed(algo_name, cfg, DIMS, runs, steps, repeats, one).stacked_run_steps_per_s
        for runs in runs_list
    }


def child(args: argparse.Namespace) -> None:
    """One pinned process: compile, say ready, wait for 'go' on stdin, measure, print."""
    os.sched_setaffinity(0, {args.core})  # before JAX's CPU backend sizes its thread pool
    algo = get_algorithm(args.algo)
    cfg = run_config("hopper-medium-v2", args.algo).learner
    data = synthetic_data(100_000, *DIMS)
    state = algo.init(jax.random.key(args.core), cfg, *DIMS, 1.0)
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


def processes_rate(args: argparse.Namespace) -> tuple[int, float]:
    cores = sorted(os.sched_getaffinity(0))
    command = [sys.executable, __file__, "--child", "--algo", args.algo]
    command += ["--steps", str(args.steps), "--repeats", str(args.repeats)]
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "text": True}
    children = [subprocess.Popen([*command, "--core", str(core)], **pipes) for core in cores]
    for proc in children:
        assert proc.stdout.readline().strip() == "ready"
    for proc in children:  # released together, so they share the machine while measured
        proc.stdin.write("go\n")
        proc.stdin.flush()
    total = sum(float(proc.communicate()[0].strip()) for proc in children)
    return len(cores), total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", default="dtql")
    parser.add_argument("--runs", default="1,2,4,8")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-processes", action="store_true", help="skip the processes row")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--core", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    device = jax.devices()[0]
    print(
        f"{args.algo}: device {device.platform} ({device.device_kind}), "
        f"{len(os.sched_getaffinity(0))} CPU threads usable; {args.steps} steps per call, "
        f"median of {args.repeats} calls after a compiling warm-up; batch 256, hidden 256"
    )
    print("| how | runs | runs x steps/s | vs one run |")
    print("| --- | --- | --- | --- |")
    measured = rates(args.algo, [int(k) for k in args.runs.split(",")], args.steps, args.repeats)
    one = measured.get(1)
    for runs, value in measured.items():
        how = "one run, all threads" if runs == 1 else "stacked (vmap), one program"
        ratio = f"{value / one:.2f}x" if one else "n/a"
        print(f"| {how} | {runs} | {value:.1f} | {ratio} |", flush=True)
    if device.platform == "cpu" and not args.no_processes:
        count, value = processes_rate(args)
        ratio = f"{value / one:.2f}x" if one else "n/a"
        print(f"| one pinned process per core | {count} | {value:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
