"""The DTQL update's share of the matmul bound under XLA:CPU flag settings (issue 13).

    python benchmarks/xla_flags.py [--rounds 2] [--steps 200] [--core 0]
    python benchmarks/xla_flags.py --hlo     # what one compiled update is made of, then exit

Each setting runs `dtql bench --sections training --algos dtql --json` in its own process
(XLA reads XLA_FLAGS once, when the backend starts), pinned to one core; the settings are run
in turn, ``--rounds`` times, so that drift of a shared machine shows as a spread rather than
as a difference between settings. A setting that fails to compile or run is reported with the
last line of its error. The bound is measured in the same process as the update, so each share
is a ratio on one machine state.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess

SETTINGS = {
    "default": "",
    "oneDNN": "--xla_cpu_use_onednn=true",
    "fast math": "--xla_cpu_enable_fast_math=true",
    "XNNPACK dot fusions": "--xla_cpu_experimental_xnn_fusion_type=dot",
    "XNNPACK off": "--xla_cpu_use_xnnpack=false",
    "concurrency scheduler off": "--xla_cpu_enable_concurrency_optimized_scheduler=false",
    "YNNPACK dot fusions": "--xla_cpu_experimental_ynn_fusion_type=dot",
    "YNNPACK dots + reductions": "--xla_cpu_experimental_ynn_fusion_type=individual_dot,reduce",
    "YNNPACK dots + elementwise": "--xla_cpu_experimental_ynn_fusion_type=individual_dot,eltwise",
    "YNNPACK dots alone": "--xla_cpu_experimental_ynn_fusion_type=individual_dot",
    "oneDNN dot fusions": "--xla_cpu_experimental_onednn_fusion_type=dot",
    "XNNPACK graph fusion": "--xla_cpu_experimental_xnn_graph_fusion_mode="
    "XNN_GRAPH_FUSION_MODE_GREEDY",
}


def measure(flags: str, steps: int, core: int) -> dict[str, float] | str:
    """One `dtql bench` run under ``flags``: its DTQL row, or the error's last line."""
    env = {**os.environ, "XLA_FLAGS": flags}
    command = ["taskset", "-c", str(core), "dtql", "bench", "--sections", "training"]
    command += ["--algos", "dtql", "--steps", str(steps), "--json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return lines[-1][:160] if lines else f"exit {done.returncode}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    row = report["training"][0]
    return {
        "steps_per_s": row["steps_per_s"],
        "share": row["share_of_matmul_bound"],
        "bound_gflop_s": report["matmul"]["bound_flops_per_s"] / 1e9,
    }


def hlo_counts() -> None:
    """Count the kinds of work in one compiled DTQL update (default flags)."""
    import jax

    from dtql.algos import get_algorithm
    from dtql.algos.common import sample_batch
    from dtql.bench.bench_command import BenchArgs, learner_config
    from dtql.bench.training_speed import synthetic_data
    from dtql.envs.registry import get_task

    task, cfg, algo = (
        get_task(BenchArgs().task),
        learner_config(BenchArgs(), "dtql"),
        get_algorithm("dtql"),
    )
    dims = (task.obs_dim, task.act_dim)
    data = synthetic_data(10_000, *dims)
    state = algo.start_main_phase(algo.init(jax.random.key(0), cfg, *dims, 1.0), cfg)

    def one_step(state, key):
        key_batch, key_step = jax.random.split(key)
        return algo.train_step(state, sample_batch(data, key_batch, cfg.batch_size), key_step, cfg)

    text = jax.jit(one_step).lower(state, jax.random.key(0)).compile().as_text()
    entry = text[text.index("\nENTRY") :].splitlines()
    instructions = [line for line in entry if " = " in line]
    ynn = [line for line in instructions if "__ynn_fusion" in line]
    fusions = [line for line in instructions if re.search(r" fusion\(", line) and line not in ynn]
    dots = [line.strip() for line in instructions if " dot(" in line]
    print(
        f"one DTQL update ({task.name} preset, batch {cfg.batch_size}), "
        f"compiled for {jax.devices()[0]}:"
    )
    print(
        f"  {len(instructions)} instructions: {len(fusions)} XLA fusions, {len(ynn)} YNNPACK "
        f"fusions, {len(dots)} dots in XLA's own kernels:"
    )
    for line in dots:
        print("   ", line.split(", metadata")[0][:150])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--core", type=int, default=0)
    parser.add_argument("--hlo", action="store_true", help="count the compiled update's parts")
    parser.add_argument(
        "--settings", default=",".join(SETTINGS), help="comma-separated names of SETTINGS to run"
    )
    args = parser.parse_args()
    if args.hlo:
        hlo_counts()
        return
    names = [name.strip() for name in args.settings.split(",")]
    unknown = [name for name in names if name not in SETTINGS]
    if unknown:
        parser.error(f"--settings: unknown {unknown}, expected names from {list(SETTINGS)}")
    results: dict[str, list] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:
            results[name].append(measure(SETTINGS[name], args.steps, args.core))
    print(
        f"DTQL update, halfcheetah-medium-v2 preset, batch 256, one core (taskset -c "
        f"{args.core}), {args.steps} steps per timed call, {args.rounds} rounds of all settings"
    )
    print("| setting | XLA_FLAGS | steps/s | share of matmul bound | bound GFLOP/s |")
    print("| --- | --- | --- | --- | --- |")
    for name, runs in results.items():
        failed = [r for r in runs if isinstance(r, str)]
        if failed:
            print(f"| {name} | `{SETTINGS[name]}` | fails: {failed[0]} | - | - |")
            continue
        cells = [
            " / ".join(f"{r[key]:{fmt}}" for r in runs)
            for key, fmt in (("steps_per_s", ".1f"), ("share", ".0%"), ("bound_gflop_s", ".0f"))
        ]
        median = statistics.median(r["share"] for r in runs)
        print(
            f"| {name} | `{SETTINGS[name] or '(none)'}` | {cells[0]} | {cells[1]} "
            f"(median {median:.0%}) | {cells[2]} |"
        )


if __name__ == "__main__":
    main()
