"""The algorithms, each one module whose update step reads whole, behind one interface.

Shared pieces: ``common`` (device data, optimisers, ``run_steps``), ``critics`` (IQL, Eqs. 6, 7),
``diffusion`` (the BC model, Eq. 2), ``policies`` (the one-step policy and acting). Then one module
per algorithm: ``dtql`` (Algorithm 1), ``kl`` (Algorithm 2), ``iql`` and ``bc``. Algorithms import
config, networks, losses and edm; never data, envs, runs, evaluation or the CLI.

``Algorithm`` bundles what the training loop needs: build a state, one pretraining step, one
main-phase step, the switch between the phases, and the ways of acting (each reading the
state's ``ActingParams``; None where the algorithm lacks what that way needs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from dtql.algos import bc, dtql, iql, kl
from dtql.algos.common import StepFn
from dtql.algos.policies import act_candidates, act_diffusion, act_mean
from dtql.config import LearnerConfig


def _unchanged(state: Any, cfg: LearnerConfig) -> Any:
    return state


class Algorithm(NamedTuple):
    name: str
    init: Callable[..., Any]  # (key, cfg, obs_dim, act_dim, max_action) -> state
    pretrain_step: StepFn
    train_step: StepFn
    start_main_phase: Callable[[Any, LearnerConfig], Any]
    act_mean: Callable[..., Any]  # (acting params, observations, cfg) -> actions
    act_candidates: Callable[..., Any] | None  # (acting, observations, key, cfg); None: no critic
    act_diffusion: Callable[..., Any] | None  # (acting, obs, key, cfg); None: no diffusion model
    policies: tuple[str, ...]  # the agent.policy kinds its update can train


ALGORITHMS: dict[str, Algorithm] = {
    "dtql": Algorithm(
        "dtql",
        dtql.init_dtql,
        dtql.pretrain_step,
        dtql.train_step,
        _unchanged,
        act_mean,
        act_candidates,
        act_diffusion,
        ("gaussian", "implicit"),
    ),
    "kl": Algorithm(
        "kl",
        kl.init_kl,
        kl.pretrain_step,
        kl.train_step,
        kl.start_main_phase,
        act_mean,
        act_candidates,
        act_diffusion,
        ("implicit",),
    ),
    "iql": Algorithm(
        "iql",
        iql.init_iql,
        iql.pretrain_step,
        iql.train_step,
        _unchanged,
        act_mean,
        act_candidates,
        None,
        ("iql_gaussian", "gaussian"),
    ),
    "bc": Algorithm(
        "bc",
        bc.init_bc,
        bc.train_step,
        bc.train_step,
        _unchanged,
        act_mean,
        None,
        None,
        ("deterministic", "gaussian", "iql_gaussian"),
    ),
}
# IQL's update on DTQL's critics and settings (the paper's ablation); "iql" gets IQL's own
# recipe from the presets. The update is the same code: only the config differs.
ALGORITHMS["iql-dtql"] = ALGORITHMS["iql"]._replace(name="iql-dtql")
# Likewise "bc" (deterministic, MSE, its own settings) and "bc-gaussian" (DTQL's policy by
# maximum likelihood, on the task's DTQL settings).
ALGORITHMS["bc-gaussian"] = ALGORITHMS["bc"]._replace(name="bc-gaussian")


def get_algorithm(name: str) -> Algorithm:
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algo {name!r}; expected one of {', '.join(ALGORITHMS)}")
    return ALGORITHMS[name]
