"""The trained policy in the simulator: act functions for ``evaluate`` and the evaluation of a
run's state (in training, and for `dtql eval` through `dtql.api.evaluate`)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dtql.algos import Algorithm
from dtql.algos.common import COMPILER_OPTIONS
from dtql.algos.policies import acting_params
from dtql.config import RunConfig
from dtql.envs.registry import TaskSpec
from dtql.evaluation import ActFn, EvalResult, evaluate, evaluate_many
from dtql.run.setup import check_act_mode


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


def evaluation_key(cfg: RunConfig, step: int) -> jax.Array:
    """The key the keyed ways of acting draw from when a run's state at ``step`` is evaluated
    (in training, by `dtql eval` and by `dtql.load_policy`: the same draws everywhere)."""
    return jax.random.fold_in(jax.random.key(cfg.seed + 1), step)


def run_evaluation(
    algo: Algorithm, state: Any, cfg: RunConfig, task: TaskSpec, *, episodes: int, step: int
) -> EvalResult:
    act_fn = make_act_fn(algo, state, cfg, evaluation_key(cfg, step))
    return evaluate_act_fn(act_fn, cfg, task, episodes)


def evaluate_act_fn(act_fn: ActFn, cfg: RunConfig, task: TaskSpec, episodes: int) -> EvalResult:
    """``episodes`` episodes of ``act_fn`` in the run's evaluation envs and seeds."""
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
