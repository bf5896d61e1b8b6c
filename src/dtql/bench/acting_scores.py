"""Scores and wall time of the ways of acting on trained run folders, side by side (`dtql bench
--sections modes --run-dirs RUN,...`): the speed of a way of acting matters only beside what
it scores.

Each run's latest checkpoint is evaluated as `dtql eval RUN --act-mode MODE` does, on the same
seeds: the one-step policy's mean action (what DTQL deploys), the released code's candidate
selection (N one-step samples by min Q) and iterative diffusion sampling from the behaviour model
(IDQL's way; ``diffusion@N`` sets N candidates, and ``diffusion@1`` samples the behaviour model
alone). Runs are grouped by algorithm: a row is the mean normalized score over runs with its
standard error over runs, and the median evaluation wall time.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from typing import Any


def parse_mode(mode: str) -> tuple[str, int | None]:
    """'diffusion@4' -> ('diffusion', 4); 'mean' -> ('mean', None)."""
    act_mode, _, candidates = mode.partition("@")
    return act_mode, int(candidates) if candidates else None


def acting_scores(run_dirs: list[str], modes: list[str], episodes: int) -> list[dict[str, Any]]:
    """One row per algorithm and way of acting, over the given runs."""
    from dtql.api import evaluate  # the simulator and the run readers, only for this section

    scores: dict[tuple[str, str], list[float]] = defaultdict(list)
    walls: dict[tuple[str, str], list[float]] = defaultdict(list)
    steps: dict[str, set[int]] = defaultdict(set)
    for run in run_dirs:
        for mode in modes:
            act_mode, candidates = parse_mode(mode)
            started = time.perf_counter()
            result = evaluate(
                run, episodes=episodes, act_mode=act_mode, diffusion_candidates=candidates
            )
            walls[result["algo"], mode].append(time.perf_counter() - started)
            scores[result["algo"], mode].append(result["normalized_score_mean"])
            steps[result["algo"]].add(result["step"])
    rows = []
    for algo, mode in scores:
        values = scores[algo, mode]
        stderr = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0
        rows.append(
            {
                "algo": algo,
                "mode": mode,
                "runs": len(values),
                "steps": sorted(steps[algo]),
                "episodes": episodes,
                "normalized_score_mean": statistics.mean(values),
                "normalized_score_stderr": stderr,
                "wall_s_median": statistics.median(walls[algo, mode]),
            }
        )
    return rows
