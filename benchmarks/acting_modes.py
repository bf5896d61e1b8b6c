"""Scores and wall time of the three ways of acting on trained run folders, side by side.

    python benchmarks/acting_modes.py RUN_DIR [RUN_DIR ...] [--episodes 10]
        [--modes mean,candidates,diffusion,diffusion@1]

Each run's latest checkpoint is evaluated (`dtql eval RUN --act-mode MODE`, the same seeds) with
the one-step policy's mean action (what DTQL deploys), the released code's candidate selection
(N one-step samples by min Q) and iterative diffusion sampling from the behaviour model (IDQL's
way: K-step EDM sampler, N candidates, the best by min Q; ``diffusion@N`` sets N, and
``diffusion@1`` samples the behaviour model alone). Runs are grouped by algorithm; each
cell is the mean normalized score over runs ± its standard error (over runs), with the median
evaluation wall time. Threads: whatever the process is given (run under `taskset -c 0` for one
core); the header says how many.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict

import jax

from dtql.api import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--modes", default="mean,candidates,diffusion,diffusion@1")
    args = parser.parse_args()
    modes = args.modes.split(",")
    device = jax.devices()[0]
    print(
        f"device {device.platform}, {len(os.sched_getaffinity(0))} CPU threads usable; "
        f"{args.episodes} episodes per evaluation; {len(args.runs)} run folders"
    )
    scores: dict[tuple[str, str], list[float]] = defaultdict(list)
    walls: dict[tuple[str, str], list[float]] = defaultdict(list)
    steps: dict[str, set[int]] = defaultdict(set)
    for run in args.runs:
        for mode in modes:
            act_mode, _, candidates = mode.partition("@")
            started = time.perf_counter()
            result = evaluate(
                run,
                episodes=args.episodes,
                act_mode=act_mode,
                diffusion_candidates=int(candidates) if candidates else None,
            )
            walls[result["algo"], mode].append(time.perf_counter() - started)
            scores[result["algo"], mode].append(result["normalized_score_mean"])
            steps[result["algo"]].add(result["step"])
            print(
                f"{run}: {mode}: normalized {result['normalized_score_mean']:.1f} "
                f"(length {result['episode_length_mean']:.0f})",
                flush=True,
            )
    print("\n| algo (runs, step) | " + " | ".join(modes) + " |")
    print("| --- |" + " --- |" * len(modes))
    for algo in sorted({a for a, _ in scores}):
        cells = []
        for mode in modes:
            values = scores[algo, mode]
            se = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0
            wall = statistics.median(walls[algo, mode])
            cells.append(f"{statistics.mean(values):.1f} ± {se:.1f} ({wall:.1f} s)")
        label = f"{algo} ({len(scores[algo, modes[0]])}, {'/'.join(map(str, sorted(steps[algo])))})"
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
