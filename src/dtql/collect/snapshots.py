"""Choosing the medium snapshot by what offline RL sees: `--snapshot-every` saves a SAC run's
policy every k steps, `--score-snapshots` scores each both ways, and `--medium-step` picks one.

The first snapshot whose stochastic return reaches 1/3 of the expert's (the default rule) can
have a mean action close to expert: its data score is D4RL's, but BC, which fits the mean,
scores far above D4RL's BC. So each snapshot is scored with its stochastic actions (what the
data will score) and its mean action (close to what BC recovers), and the medium is the
snapshot nearest D4RL's medium file on both (`nearest_to_d4rl`), within the steps that give
medium-replay (the replay buffer up to the snapshot) D4RL's size.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dtql.collect.args import EVAL_SEED_OFFSET, CollectArgs, CollectError
from dtql.collect.behaviour_policy import file_sha256, policy_from_sb3
from dtql.collect.sac import import_sb3, snapshot_path
from dtql.collect.sources import evaluate_policy
from dtql.envs.d4rl_fingerprints import TRANSITIONS_TOLERANCE, d4rl_reference, transitions_window
from dtql.envs.registry import TaskSpec
from dtql.evaluation import evaluate
from dtql.files import write_json_atomic

SCORES_FILE = "snapshot_scores.json"


def medium_snapshot(
    args: CollectArgs, state: dict[str, Any], sac_dir: Path
) -> tuple[dict[str, Any] | None, Path]:
    """The medium snapshot's evaluation record and SB3 file: --medium-step's (None when the run
    has no evaluation at that step), else the run's own."""
    if args.medium_step is None:
        return state["medium"], sac_dir / "policy_medium.zip"
    evaluation = next((e for e in state["evals"] if e["step"] == args.medium_step), None)
    return evaluation, snapshot_path(sac_dir, args.medium_step)


def read_scores(sac_dir: Path) -> dict[int, dict[str, Any]]:
    """The scores written so far, by step ({} before the first)."""
    path = sac_dir / SCORES_FILE
    if not path.is_file():
        return {}
    return {int(r["step"]): r for r in json.loads(path.read_text())["snapshots"]}


def score_snapshot(args: CollectArgs, task: TaskSpec, path: Path, step: int) -> dict[str, Any]:
    """One snapshot's stochastic and mean-action evaluations (--eval-episodes each)."""
    _, sac_cls = import_sb3()
    policy = policy_from_sb3(sac_cls.load(path, device="cpu"), task, "medium", {})
    seed = args.seed + EVAL_SEED_OFFSET
    stochastic = evaluate_policy(task, policy, args.eval_episodes, seed)
    mean = evaluate(
        task,
        policy.mean_action,
        episodes=args.eval_episodes,
        seed=seed,
        num_envs=args.eval_episodes,
        act_mode="mean",
    )
    return {
        "step": step,
        "stochastic": stochastic.summary(),
        "mean_action": mean.summary(),
        "sha256": file_sha256(path),
    }


def nearest_to_d4rl(
    scores: dict[int, dict[str, Any]], targets: tuple[float, float], steps: tuple[int, int]
) -> dict[str, Any] | None:
    """The snapshot within `steps` (inclusive) whose worse distance to the targets (D4RL's
    medium data score for the stochastic score, its BC score for the mean action's) is least."""

    def distance(record: dict[str, Any]) -> float:
        stochastic = record["stochastic"]["normalized_score_mean"]
        mean = record["mean_action"]["normalized_score_mean"]
        return max(abs(stochastic - targets[0]), abs(mean - targets[1]))

    candidates = [r for step, r in scores.items() if steps[0] <= step <= steps[1]]
    return min(candidates, key=distance, default=None)


def score_snapshots(args: CollectArgs, task: TaskSpec, env_name: str, out: Path) -> int:
    """--score-snapshots: score every snapshot not scored yet (written after each, so a stopped
    run goes on), then print them beside D4RL's medium numbers and the nearest."""
    sac_dir = out / "sac"
    files = sorted((sac_dir / "snapshots").glob("step_*.zip"))
    if not files:
        raise CollectError(
            f"{sac_dir / 'snapshots'}: no snapshots, expected a SAC run made with --snapshot-every"
        )
    scores = read_scores(sac_dir)
    for path in files:
        step = int(path.stem.removeprefix("step_"))
        if step in scores and scores[step]["sha256"] == file_sha256(path):
            continue
        scores[step] = score_snapshot(args, task, path, step)
        record = {"env_id": task.env_id, "eval_episodes": args.eval_episodes}
        record["snapshots"] = [scores[s] for s in sorted(scores)]
        write_json_atomic(sac_dir / SCORES_FILE, record)
    reference = d4rl_reference(f"{env_name}-medium-v2")
    window = transitions_window(f"{env_name}-medium-replay-v2")
    print(f"| step | stochastic normalized | mean-action normalized | ({sac_dir / SCORES_FILE})")
    print("| --- | --- | --- |")
    for step in sorted(scores):
        s, m = scores[step]["stochastic"], scores[step]["mean_action"]
        print(
            f"| {step:,} | {s['normalized_score_mean']:.1f} ± {s['normalized_score_stderr']:.1f}"
            f" | {m['normalized_score_mean']:.1f} ± {m['normalized_score_stderr']:.1f} |"
        )
    targets = (reference["dataset_normalized_score"], reference["bc_normalized_score"])
    if window is None or None in targets:
        return 0
    print(
        f"D4RL's {env_name}-medium-v2: data {targets[0]}, BC {targets[1]}; its medium-replay "
        f"holds {window[0]:,}-{window[1]:,} rows (D4RL's size +- {TRANSITIONS_TOLERANCE:.0%})"
    )
    best = nearest_to_d4rl(scores, targets, (0, max(scores)))
    in_window = nearest_to_d4rl(scores, targets, window)
    if best is not None:
        cut = "" if window[0] <= best["step"] <= window[1] else " --replay-steps N (in the range)"
        print(f"nearest: step {best['step']:,} (--medium-step {best['step']}{cut})")
    if in_window is not None and in_window is not best:
        print(f"nearest within the range: step {in_window['step']:,}")
    return 0
