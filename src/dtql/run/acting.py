"""The trained policy in the simulator: act functions for ``evaluate``, the evaluation of a
run's state, and ``evaluate_run`` (`dtql eval`: re-evaluate a run folder's latest checkpoint).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dtql.algos import Algorithm, get_algorithm
from dtql.algos.common import COMPILER_OPTIONS
from dtql.algos.policies import acting_params
from dtql.config import RunConfig, replace
from dtql.envs.registry import TaskSpec, get_task
from dtql.evaluation import ActFn, EvalResult, evaluate, evaluate_many
from dtql.run.resume import read_run_config, restore_state
from dtql.run.setup import check_act_mode, check_config, task_spaces


def act_function(algo: Algorithm, act_mode: str) -> tuple[Callable[..., Any], bool]:
    """The algorithm's acting function for ``act_mode`` and whether it takes a key (the
    stochastic ways: candidates, diffusion). Raises RunError where the algorithm cannot."""
    check_act_mode(algo, act_mode)
    if act_mode == "mean":
        return algo.act_mean, False
    if act_mode == "candidates":
        return algo.act_candidates, True
    return algo.act_diffusion, True


@functools.cache
def _jitted(fn):
    """One jitted wrapper per acting function: ``ActingParams`` an argument, the config static
    (so a new checkpoint's parameters reuse the compiled code)."""
    return jax.jit(fn, static_argnames="cfg", compiler_options=COMPILER_OPTIONS)


def make_act_fn(algo: Algorithm, state: Any, cfg: RunConfig, key: jax.Array) -> ActFn:
    """A numpy act_fn for ``evaluate``: the jitted acting function of ``cfg.act_mode`` called
    with the state's ``ActingParams`` only; the keyed ways fold a call counter into ``key``."""
    fn, keyed = act_function(algo, cfg.act_mode)
    act, learner = _jitted(fn), cfg.learner
    acting = acting_params(state).needed_for(cfg.act_mode)
    # Observations go in as numpy: jit transfers them itself, faster than jnp.asarray first.
    if not keyed:
        return lambda obs: np.asarray(act(acting, obs, cfg=learner))
    calls = itertools.count()
    return lambda obs: np.asarray(
        act(acting, obs, jax.random.fold_in(key, next(calls)), cfg=learner)
    )


def run_evaluation(
    algo: Algorithm, state: Any, cfg: RunConfig, task: TaskSpec, *, episodes: int, step: int
) -> EvalResult:
    key = jax.random.fold_in(jax.random.key(cfg.seed + 1), step)
    act_fn = make_act_fn(algo, state, cfg, key)
    return evaluate(
        task,
        act_fn,
        episodes=episodes,
        seed=cfg.seed + 10_000,
        num_envs=cfg.num_eval_envs,
        act_mode=cfg.act_mode,
        discount=cfg.learner.agent.discount,
    )


@functools.cache
def _stacked(fn, keyed: bool):
    """``fn`` for a stacked group: acting params, observations (and key) carry a leading run
    axis."""
    if keyed:
        acts = lambda states, obs, keys, cfg: jax.vmap(  # noqa: E731
            lambda s, o, k: fn(s, o, k, cfg=cfg)
        )(states, obs, keys)
    else:
        acts = lambda states, obs, cfg: jax.vmap(lambda s, o: fn(s, o, cfg=cfg))(  # noqa: E731
            states, obs
        )
    return jax.jit(acts, static_argnames="cfg", compiler_options=COMPILER_OPTIONS)


def run_group_evaluation(
    algo: Algorithm,
    states: Any,
    cfgs: list[RunConfig],
    task: TaskSpec,
    *,
    episodes: int,
    step: int,
) -> list[EvalResult]:
    """Evaluate the runs of a stacked group (``states`` with a leading run axis) in one vector
    env, one batched act per step; each run's envs and keys are those it would use alone."""
    learner, first, runs = cfgs[0].learner, cfgs[0], len(cfgs)
    envs_per_run = min(first.num_eval_envs, episodes)

    def per_run(obs):
        return jnp.asarray(obs).reshape(runs, envs_per_run, -1)

    fn, keyed = act_function(algo, first.act_mode)
    act, acting = _stacked(fn, keyed), acting_params(states).needed_for(first.act_mode)
    if not keyed:

        def act_fn(obs):
            return np.asarray(act(acting, per_run(obs), cfg=learner)).reshape(len(obs), -1)
    else:
        keys = [jax.random.fold_in(jax.random.key(cfg.seed + 1), step) for cfg in cfgs]
        calls = itertools.count()

        def act_fn(obs):
            call = next(calls)
            step_keys = jnp.stack([jax.random.fold_in(key, call) for key in keys])
            actions = act(acting, per_run(obs), step_keys, cfg=learner)
            return np.asarray(actions).reshape(len(obs), -1)

    return evaluate_many(
        task,
        act_fn,
        episodes=episodes,
        seeds=[cfg.seed + 10_000 for cfg in cfgs],
        num_envs=first.num_eval_envs,
        act_mode=first.act_mode,
        discount=learner.agent.discount,
    )


def evaluate_run(
    run_dir: str,
    *,
    step: int | None = None,
    episodes: int | None = None,
    act_mode: str | None = None,
    diffusion_candidates: int | None = None,
    diffusion_sampling_steps: int | None = None,
) -> dict:
    """Re-evaluate a run's newest valid checkpoint, or the one at ``step`` (``dtql eval``), in
    the result vocabulary; the acting settings given replace the run's."""
    path = Path(run_dir)
    cfg = read_run_config(path)
    if act_mode is not None:
        cfg = dataclasses.replace(cfg, act_mode=act_mode)
    acting = {
        "learner.agent.diffusion_candidates": diffusion_candidates,
        "learner.agent.diffusion_sampling_steps": diffusion_sampling_steps,
    }
    cfg = replace(cfg, **{key: value for key, value in acting.items() if value is not None})
    check_config(cfg)
    task = get_task(cfg.task)
    spaces = task_spaces(task)
    state, step = restore_state(path, cfg, spaces, step)
    algo, episodes = get_algorithm(cfg.learner.algo), episodes or cfg.eval_episodes
    with jax.default_matmul_precision(cfg.matmul_precision):
        result = run_evaluation(algo, state, cfg, task, episodes=episodes, step=step)
    summary = result.summary()
    if cfg.act_mode == "diffusion":
        agent = cfg.learner.agent
        summary["diffusion_candidates"] = agent.diffusion_candidates
        summary["diffusion_sampling_steps"] = agent.diffusion_sampling_steps
    return {
        "run_dir": str(path),
        "task": task.name,
        "algo": cfg.learner.algo,
        "step": step,
        **summary,
    }
