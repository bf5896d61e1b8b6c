"""Running a policy in the evaluation env's vector env into `Transitions` (`collect`), the act
function of an SB3 policy, and the progress bar that SAC training and collection show.

Collection runs ``num_envs`` copies of the evaluation env with one batched policy call per step.
Each env collects its share of the transitions as one sequential stream (so short episodes are
not favoured) and its last episode is cut at the share, flagged as a timeout. Terminals (the env
terminated) and timeouts (the time limit, or a cut) are recorded separately.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from tqdm import tqdm

from dtql.data.transitions import Transitions, transitions_from_rows
from dtql.envs.make import make_env
from dtql.envs.registry import TaskSpec

ActFn = Callable[[np.ndarray], np.ndarray]


def stochastic_act_fn(model: Any) -> ActFn:
    """Batched stochastic actions of an SB3 policy: [n, obs_dim] -> [n, act_dim] in the bounds."""

    def act(obs: np.ndarray) -> np.ndarray:
        actions, _ = model.policy.predict(obs, deterministic=False)
        return actions

    return act


def step_bar(total: int, desc: str, enabled: bool, initial: int = 0) -> tqdm:
    """A step counter: redrawn live on a terminal, every 30 s in a log file."""
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="step",
        disable=not enabled,
        mininterval=0.1 if sys.stderr.isatty() else 30.0,
    )


def collect(
    task: TaskSpec,
    act_fn: ActFn,
    transitions: int,
    num_envs: int,
    seed: int,
    desc: str = "collect",
    progress_bar: bool = True,
) -> Transitions:
    """`transitions` steps of `act_fn` on `num_envs` envs (env i seeded seed + i).

    Env i collects a fixed share of the steps as one sequential stream; its last episode is cut
    at the share and flagged as a timeout. The streams are concatenated env by env.
    """
    n = min(num_envs, transitions)
    shares = np.full(n, transitions // n)
    shares[: transitions % n] += 1
    envs = make_env(task, n)  # SAME_STEP autoreset: every step is a real transition
    space = envs.single_action_space
    # One [n, longest share, ...] block per field: env i's row r is [i, r], so a step's rows are
    # written with one fancy-indexed assignment per field rather than a Python loop over envs.
    fields = {
        "observations": ((task.obs_dim,), np.float32),
        "next_observations": ((task.obs_dim,), np.float32),
        "actions": ((task.act_dim,), np.float32),
        "rewards": ((), np.float32),
        "terminals": ((), bool),
        "timeouts": ((), bool),
    }
    rows = {
        key: np.zeros((n, int(shares.max()), *shape), dtype)
        for key, (shape, dtype) in fields.items()
    }
    counts = np.zeros(n, dtype=np.int64)
    bar = step_bar(transitions, desc, progress_bar)
    try:
        obs, _ = envs.reset(seed=seed)
        while (counts < shares).any():
            actions = np.asarray(act_fn(obs.astype(np.float32)), dtype=np.float32)
            actions = np.clip(actions, space.low, space.high)
            next_obs, rewards, terminated, truncated, info = envs.step(actions)
            final_obs = next_obs.copy()
            if "_final_obs" in info:
                for i in np.flatnonzero(info["_final_obs"]):
                    final_obs[i] = info["final_obs"][i]
            active = np.flatnonzero(counts < shares)
            at = (active, counts[active])
            rows["observations"][at] = obs[active]
            rows["next_observations"][at] = final_obs[active]
            rows["actions"][at] = actions[active]
            rows["rewards"][at] = rewards[active]
            rows["terminals"][at] = terminated[active]
            rows["timeouts"][at] = truncated[active] & ~terminated[active]
            counts[active] += 1
            bar.update(len(active))
            obs = next_obs
    finally:
        bar.close()
        envs.close()

    last = (np.arange(n), shares - 1)  # the stream's last episode is cut at the share
    rows["timeouts"][last] = ~rows["terminals"][last]
    arrays = {
        key: np.concatenate([block[i, :share] for i, share in enumerate(shares)])
        for key, block in rows.items()
    }
    return transitions_from_rows(**arrays, source=f"{task.env_id} collection")
