"""Everything a run needs before its first step: a checked config, the task's spaces, and the
dataset, checked against the evaluation env and put on the device.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from dtql.algos import Algorithm, get_algorithm
from dtql.algos.common import DeviceTransitions
from dtql.assets import shipped_dataset
from dtql.config import RunConfig
from dtql.data import Transitions, apply_reward_transform, load_dataset, validate_transitions
from dtql.data.load import locate_by_name
from dtql.envs.make import adapt_observation, make_single_env
from dtql.envs.registry import TaskSpec


class RunError(ValueError):
    """A run that cannot start or continue; the message says which file and why."""


@dataclass(frozen=True)
class Spaces:
    """What the networks need to know about the task's spaces."""

    obs_dim: int
    act_dim: int
    max_action: float


def task_spaces(task: TaskSpec) -> Spaces:
    """Observation and action sizes and the action bound, read from the real evaluation env."""
    env = make_single_env(task)
    try:
        low, high = env.action_space.low, env.action_space.high
    finally:
        env.close()
    if not (np.allclose(low, -high) and np.allclose(high, high.flat[0])):
        raise RunError(
            f"task {task.name}: action space [{low}, {high}] is not a symmetric box with one "
            "bound; the tanh policy needs [-m, m]"
        )
    return Spaces(task.obs_dim, task.act_dim, float(high.flat[0]))


def default_run_dir(cfg: RunConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.task}-{cfg.learner.algo}-s{cfg.seed}-{stamp}"


def resolve_dataset(cfg: RunConfig) -> str:
    """The dataset a run reads: the flag; else the task's name where it is found locally
    (D4RL's file, a Minari dataset, or the local `dtql collect` one); else the dataset dtql
    ships for the task; else the name (whose error says where it was looked for)."""
    if cfg.dataset is not None:
        return cfg.dataset
    found = locate_by_name(cfg.task)
    if isinstance(found, tuple):
        return str(found[1])
    shipped = shipped_dataset(cfg.task)
    return str(shipped) if shipped is not None else cfg.task


def load_training_data(cfg: RunConfig, task: TaskSpec, spaces: Spaces) -> Transitions:
    """Load and check the dataset against the evaluation env (dims, action bounds)."""
    transitions = load_dataset(resolve_dataset(cfg), obs_adapter=partial(adapt_observation, task))
    validate_transitions(
        transitions,
        obs_dim=spaces.obs_dim,
        act_dim=spaces.act_dim,
        action_low=-spaces.max_action,
        action_high=spaces.max_action,
    )
    return transitions


def to_device(transitions: Transitions, reward_transform: str) -> DeviceTransitions:
    rewards = apply_reward_transform(
        transitions.rewards, reward_transform, transitions.episode_returns
    )
    return DeviceTransitions(
        observations=jnp.asarray(transitions.observations, jnp.float32),
        actions=jnp.asarray(transitions.actions, jnp.float32),
        rewards=jnp.asarray(rewards, jnp.float32),
        next_observations=jnp.asarray(transitions.next_observations, jnp.float32),
        terminals=jnp.asarray(transitions.terminals, jnp.float32),
    )


def check_config(cfg: RunConfig) -> None:
    """Reject configs that cannot run, with the field and the expected value."""
    learner = cfg.learner
    positive = {
        "batch_size": learner.batch_size,
        "log_every": cfg.log_every,
        "eval_episodes": cfg.eval_episodes,
        "num_eval_envs": cfg.num_eval_envs,
        "checkpoint_every": cfg.checkpoint_every,
        "agent.num_candidates": learner.agent.num_candidates,
        "agent.diffusion_candidates": learner.agent.diffusion_candidates,
        "agent.diffusion_sampling_steps": learner.agent.diffusion_sampling_steps,
    }
    if not learner.agent.diffusion_sampling_sigma_max > 0:
        raise RunError(
            f"config: agent.diffusion_sampling_sigma_max="
            f"{learner.agent.diffusion_sampling_sigma_max}, expected a number > 0"
        )
    for name, value in positive.items():
        if value < 1:
            raise RunError(f"config: {name}={value}, expected an integer >= 1")
    non_negative = {
        "steps": learner.steps,
        "pretrain_steps": learner.pretrain_steps,
        "eval_every": cfg.eval_every,
    }
    for name, value in non_negative.items():
        if value < 0:
            raise RunError(f"config: {name}={value}, expected an integer >= 0")
    if learner.total_steps < 1:
        raise RunError("config: steps + pretrain_steps is 0, expected at least one step")
    if learner.agent.entropy_coef > 0 and learner.agent.policy != "gaussian":
        raise RunError("config: agent.entropy_coef > 0 needs agent.policy=gaussian (a density)")
    algo = get_algorithm(learner.algo)
    if learner.agent.policy not in algo.policies:
        raise RunError(
            f"config: agent.policy={learner.agent.policy}, expected one of "
            f"{', '.join(algo.policies)} for algo {algo.name}"
        )
    check_act_mode(algo, cfg.act_mode)


def check_act_mode(algo: Algorithm, act_mode: str) -> None:
    """Candidate selection needs critics; diffusion sampling also a behaviour diffusion model."""
    if act_mode == "candidates" and algo.act_candidates is None:
        raise RunError(
            f"config: act_mode=candidates needs a critic; algo {algo.name} has none (use mean)"
        )
    if act_mode == "diffusion" and algo.act_diffusion is None:
        raise RunError(
            f"config: act_mode=diffusion needs a behaviour diffusion model and critics; algo "
            f"{algo.name} has none (use dtql or kl, or act_mode mean)"
        )
