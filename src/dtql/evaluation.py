"""Run a policy in the task's simulator for a fixed number of episodes and score it.

The policy is any ``act_fn``: float32 observations [n, obs_dim] (D4RL layout) -> actions
[n, act_dim]. It is called once per step of a vector env of ``min(num_envs, episodes)`` copies.
The ``episodes`` are split into per-env quotas fixed up front (env i runs its quota, the first
``episodes % n`` envs one more), so exactly ``episodes`` episodes are counted and which episodes
count does not depend on how fast other envs finish. An env past its quota keeps being stepped
with the batch (a vector env steps all copies) but its extra episodes are ignored.

Seeding: one ``reset(seed=seed)`` seeds env i with ``seed + i``; later episodes start from the
envs' own autoresets, so the same seed and act_fn give the same returns. ``evaluate_many`` runs
several policies (a stacked group of runs) in one vector env, each seeded as if alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dtql.envs.make import make_env
from dtql.envs.registry import TaskSpec, normalized_score

# A policy as evaluation sees it: float32 observations [n, obs_dim] -> actions [n, act_dim].
ActFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class EvalResult:
    """Per-episode outcomes of one evaluation (ordered by env, then by episode)."""

    returns: np.ndarray
    """[E] undiscounted episode returns."""
    lengths: np.ndarray
    """[E] episode lengths in steps."""
    normalized_scores: np.ndarray
    """[E] D4RL normalized scores of the returns."""
    discounted_returns: np.ndarray
    """[E] sum_t discount^t r_t from each episode's first state: what the critics estimate, so
    it shows when the discounted objective and the undiscounted score disagree."""
    act_mode: str
    """How actions were chosen ('mean' or 'candidates'); a label only."""

    @property
    def episodes(self) -> int:
        return int(self.returns.size)

    @property
    def normalized_score_mean(self) -> float:
        return float(np.mean(self.normalized_scores))

    def summary(self) -> dict[str, float | int | str]:
        """The evaluation in the project's result vocabulary (``SUMMARY_KEYS``), plain numbers.

        Standard deviations are over episodes (population, ddof=0); the standard error of the
        normalized score is the sample std (ddof=1) / sqrt(E), 0 for one episode.
        """
        stderr = 0.0
        if self.episodes > 1:
            stderr = float(np.std(self.normalized_scores, ddof=1) / np.sqrt(self.episodes))
        return {
            "act_mode": self.act_mode,
            "episodes": self.episodes,
            "return_mean": float(np.mean(self.returns)),
            "return_std": float(np.std(self.returns)),
            "normalized_score_mean": self.normalized_score_mean,
            "normalized_score_std": float(np.std(self.normalized_scores)),
            "normalized_score_stderr": stderr,
            "episode_length_mean": float(np.mean(self.lengths)),
            "discounted_return_mean": float(np.mean(self.discounted_returns)),
        }


# The result vocabulary: one name per number, the same in metrics.csv/jsonl (with the "eval/"
# prefix), result.json, `dtql eval --json` and `dtql collect`'s records.
SUMMARY_KEYS = (
    "act_mode",
    "episodes",
    "return_mean",
    "return_std",
    "normalized_score_mean",
    "normalized_score_std",
    "normalized_score_stderr",
    "episode_length_mean",
    "discounted_return_mean",
)
EVAL_PREFIX = "eval/"


def eval_metrics(result: EvalResult) -> dict[str, float]:
    """The summary's numbers as metric-log keys: ``eval/<key>`` (the label act_mode is left out)."""
    return {
        EVAL_PREFIX + key: float(value)
        for key, value in result.summary().items()
        if not isinstance(value, str)
    }


def _split(episodes: int, num_envs: int) -> np.ndarray:
    """Episode quota of each env: as even as possible, the first envs taking the remainder."""
    quotas = np.full(num_envs, episodes // num_envs)
    quotas[: episodes % num_envs] += 1
    return quotas


def evaluate(
    task: TaskSpec,
    act_fn: ActFn,
    *,
    episodes: int,
    seed: int,
    num_envs: int = 10,
    act_mode: str = "mean",
    discount: float = 0.99,
) -> EvalResult:
    """Run ``episodes`` complete episodes of ``act_fn`` in the task's env and return their scores.

    Actions are clipped to the action space before stepping. An episode ends when the env
    terminates or hits the task's time limit. Besides the returns, the ``discount``-ed return of
    each episode is recorded.
    """
    (result,) = evaluate_many(
        task,
        act_fn,
        episodes=episodes,
        seeds=[seed],
        num_envs=num_envs,
        act_mode=act_mode,
        discount=discount,
    )
    return result


def evaluate_many(
    task: TaskSpec,
    act_fn: ActFn,
    *,
    episodes: int,
    seeds: list[int],
    num_envs: int = 10,
    act_mode: str = "mean",
    discount: float = 0.99,
) -> list[EvalResult]:
    """``evaluate`` for P policies at once, in one vector env of P x n copies: ``act_fn`` maps
    [P * n, obs_dim] to [P * n, act_dim], policy p acting in copies p * n to (p + 1) * n - 1,
    seeded ``seeds[p] + i`` as policy p alone would seed them, so each policy's result is the
    one ``evaluate`` gives it alone (one act call per step for all policies)."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    n = min(num_envs, episodes)
    policies = len(seeds)
    quotas = np.tile(_split(episodes, n), policies)
    total = n * policies

    envs = make_env(task, total)  # SAME_STEP autoreset: every step is a real transition
    try:
        space = envs.single_action_space
        obs, _ = envs.reset(seed=[seed + i for seed in seeds for i in range(n)])
        running_return = np.zeros(total)
        running_discounted = np.zeros(total)
        running_length = np.zeros(total, dtype=np.int64)
        finished: list[list[tuple[float, int, float]]] = [[] for _ in range(total)]

        while any(len(done) < quota for done, quota in zip(finished, quotas, strict=True)):
            actions = np.asarray(act_fn(obs.astype(np.float32)))
            if actions.shape != (total, task.act_dim):
                raise ValueError(
                    f"act_fn returned shape {actions.shape}, expected {(total, task.act_dim)}"
                )
            actions = np.clip(actions, space.low, space.high).astype(space.dtype)
            obs, rewards, terminated, truncated, _ = envs.step(actions)

            running_return += rewards
            running_discounted += discount**running_length * rewards
            running_length += 1
            ended = np.logical_or(terminated, truncated)
            for i in np.flatnonzero(ended):
                if len(finished[i]) < quotas[i]:
                    finished[i].append(
                        (running_return[i], running_length[i], running_discounted[i])
                    )
            running_return[ended] = 0.0
            running_discounted[ended] = 0.0
            running_length[ended] = 0
    finally:
        envs.close()

    results = []
    for p in range(policies):
        flat = [episode for per_env in finished[p * n : (p + 1) * n] for episode in per_env]
        returns, lengths, discounted = (np.array(column) for column in zip(*flat, strict=True))
        results.append(
            EvalResult(
                returns=returns,
                lengths=lengths,
                normalized_scores=np.asarray(normalized_score(task, returns)),
                discounted_returns=discounted,
                act_mode=act_mode,
            )
        )
    return results
