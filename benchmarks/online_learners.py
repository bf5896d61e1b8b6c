"""The online learner behind `dtql collect`, measured: SB3's SAC (PyTorch) against SBX's SAC and
CrossQ (Stable-Baselines-Jax), side by side on Hopper-v5, same budget, one pinned core each.

    python benchmarks/online_learners.py [--learners sb3-sac,sbx-sac,sbx-crossq] [--steps 50000]
        [--seeds 0,1] [--learning-starts 10000] [--jobs 2]

Each (learner, seed) trains in its own process pinned to one core (torch and XLA both see one
thread), with `dtql collect`'s SAC settings (rl-zoo's: lr 3e-4, batch 256, 256x256, gamma 0.99,
tau 0.005, one update per env step, automatic entropy) for both SACs and SBX's defaults for
CrossQ (its paper's), the same random warm-up for all. Printed per run: wall time, env steps/s
after the warm-up (each step is one update, CrossQ's included), and the deterministic policy's
return over 10 episodes in dtql's evaluator (seed 10_000 + seed), normalized with D4RL's
Hopper references. ``--jobs`` runs that many at once, one per core (2 here). Needs the sbx
extra: pip install -e ".[sbx]".
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time

from dtql.collect.sac import SAC_KWARGS


def make_model(learner: str, env, seed: int, learning_starts: int):
    # `dtql collect`'s settings; SB3 writes into policy_kwargs, so each model gets a copy.
    settings = copy.deepcopy(SAC_KWARGS)
    if learner == "sb3-sac":
        import torch
        from stable_baselines3 import SAC

        torch.set_num_threads(1)
        return SAC("MlpPolicy", env, seed=seed, learning_starts=learning_starts, **settings)
    if learner == "sbx-sac":
        from sbx import SAC

        return SAC("MlpPolicy", env, seed=seed, learning_starts=learning_starts, **settings)
    if learner == "sbx-crossq":
        from sbx import CrossQ

        return CrossQ("MlpPolicy", env, seed=seed, learning_starts=learning_starts)
    raise ValueError(f"unknown learner {learner!r}; expected sb3-sac, sbx-sac or sbx-crossq")


def child(args: argparse.Namespace) -> None:
    """One run in this (pinned) process; prints one JSON line."""
    from stable_baselines3.common.callbacks import BaseCallback

    from dtql.envs.make import make_single_env
    from dtql.envs.registry import get_task
    from dtql.evaluation import evaluate

    task = get_task("hopper")
    env = make_single_env(task)
    model = make_model(args.learner, env, args.seed, args.learning_starts)
    marks: dict[str, float] = {}

    class WarmupClock(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps == args.learning_starts:
                marks["warm"] = time.perf_counter()
            return True

    started = time.perf_counter()
    model.learn(total_timesteps=args.steps, callback=WarmupClock())
    ended = time.perf_counter()
    result = evaluate(
        task,
        lambda obs: model.predict(obs, deterministic=True)[0],
        episodes=10,
        seed=10_000 + args.seed,
        num_envs=10,
    )
    print(
        json.dumps(
            {
                "learner": args.learner,
                "seed": args.seed,
                "steps": args.steps,
                "wall_s": ended - started,
                "steps_per_s_after_warmup": (args.steps - args.learning_starts)
                / (ended - marks.get("warm", started)),
                "return_mean": float(result.returns.mean()),
                "normalized_score": result.normalized_score_mean,
                "threads": len(os.sched_getaffinity(0)),
            }
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", default="sb3-sac,sbx-sac,sbx-crossq")
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--learning-starts", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--learner", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    runs = [(lr, int(s)) for lr in args.learners.split(",") for s in args.seeds.split(",")]
    cores = sorted(os.sched_getaffinity(0))[: args.jobs]
    print(
        f"Hopper-v5, {args.steps} env steps ({args.learning_starts} random warm-up), one update "
        f"per step, {len(cores)} at a time, each pinned to one core"
    )
    print("| learner | seed | wall s | steps/s after warm-up | return | normalized |")
    print("| --- | --- | --- | --- | --- | --- |")
    pending, running = list(runs), []
    while pending or running:
        while pending and len(running) < len(cores):
            learner, seed = pending.pop(0)
            core = next(c for c in cores if c not in {r[1] for r in running})
            command = [sys.executable, __file__, "--child", "--learner", learner]
            command += ["--seed", str(seed), "--steps", str(args.steps)]
            command += ["--learning-starts", str(args.learning_starts)]
            proc = subprocess.Popen(
                ["taskset", "-c", str(core), *command], stdout=subprocess.PIPE, text=True
            )
            running.append((proc, core))
        for proc, core in list(running):
            if proc.poll() is not None:
                running.remove((proc, core))
                lines = [line for line in proc.stdout.read().splitlines() if line.startswith("{")]
                if not lines:
                    print(f"| run failed (exit {proc.returncode}) | | | | | |", flush=True)
                    continue
                r = json.loads(lines[-1])
                print(
                    f"| {r['learner']} | {r['seed']} | {r['wall_s']:.0f} | "
                    f"{r['steps_per_s_after_warmup']:.1f} | {r['return_mean']:.0f} | "
                    f"{r['normalized_score']:.1f} |",
                    flush=True,
                )
        time.sleep(1)


if __name__ == "__main__":
    main()
