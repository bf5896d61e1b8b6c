"""Acting speed: one action at batch 1 in each way of acting, and whole 1000-step episodes.

The act functions are the ones evaluation uses (``run.acting.make_act_fn``: jitted over the
state's ``ActingParams`` only), called with a numpy observation and returning numpy, so a
latency here is what one env step pays. Parameters are a fresh initialisation: the arithmetic,
and so the time, does not depend on training.

Episodes run Hopper-v5 with ``terminate_when_unhealthy=False`` so that every episode is the full
1000 steps whatever the (untrained) policy does; the simulator's own time is an episode of the
same length whose actions cost nothing (zeros), and a policy's overhead is the difference.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import jax
import numpy as np

from dtql.algos import get_algorithm
from dtql.bench.timing import Timing, time_calls
from dtql.config import RunConfig
from dtql.evaluation import ActFn
from dtql.run.acting import make_act_fn

EPISODE_ENV = "Hopper-v5"
EPISODE_STEPS = 1000

# Calls per latency measurement: many for the microsecond action, fewer for the slow ones.
LATENCY_REPEATS = {"mean": 2000, "onnx": 2000, "candidates": 50, "diffusion": 50}


@dataclass(frozen=True)
class ActingSetup:
    """A DTQL state of the task's sizes and its run config, to build act functions from."""

    cfg: RunConfig
    state: object
    obs_dim: int

    def act_fn(self, act_mode: str) -> ActFn:
        """The evaluation's act function for ``act_mode`` (mean, candidates or diffusion)."""
        cfg = dataclasses.replace(self.cfg, act_mode=act_mode)
        algo = get_algorithm(cfg.learner.algo)
        return make_act_fn(algo, self.state, cfg, jax.random.key(0))


def acting_setup(cfg: RunConfig, obs_dim: int, act_dim: int) -> ActingSetup:
    algo = get_algorithm(cfg.learner.algo)
    state = algo.init(jax.random.key(0), cfg.learner, obs_dim, act_dim, 1.0)
    return ActingSetup(cfg, state, obs_dim)


def action_latency(act_fn: ActFn, obs_dim: int, repeats: int) -> Timing:
    """Seconds per call of ``act_fn`` on one observation [1, obs_dim] (numpy in, numpy out)."""
    obs = np.random.default_rng(0).standard_normal((1, obs_dim)).astype(np.float32)
    return time_calls(lambda: act_fn(obs), repeats=repeats, warmup=max(3, repeats // 10))


def episode_env() -> gym.Env:
    return gym.make(EPISODE_ENV, terminate_when_unhealthy=False, max_episode_steps=EPISODE_STEPS)


def episode_seconds(act_fn: ActFn | None, repeats: int) -> Timing:
    """Wall time of a full episode of ``EPISODE_STEPS`` steps acting with ``act_fn``, or with
    free zero actions (``None``: the simulator alone)."""
    env = episode_env()
    zeros = np.zeros(env.action_space.shape, np.float32)
    act: Callable[[np.ndarray], np.ndarray]
    if act_fn is None:
        act = lambda obs: zeros  # noqa: E731
    else:
        act = lambda obs: act_fn(obs[None].astype(np.float32))[0]  # noqa: E731

    def episode() -> None:
        obs, _ = env.reset(seed=0)
        for _ in range(EPISODE_STEPS):
            obs, _, terminated, truncated, _ = env.step(act(obs))
            if terminated:  # never, with terminate_when_unhealthy=False
                raise RuntimeError(f"{EPISODE_ENV} terminated before {EPISODE_STEPS} steps")

    try:
        return time_calls(episode, repeats=repeats, warmup=0)
    finally:
        env.close()
