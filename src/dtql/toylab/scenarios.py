"""The lab's problems: the five scenarios (dataset x reward), the variants (regulariser x
one-step policy x Q term), a scenario's data as a ``Problem``, and the bandit's constants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import jax.numpy as jnp
import numpy as np

from dtql.algos.common import Batch
from dtql.config import PolicyKind
from dtql.data.toy import make_actions, make_reward

Reg = Literal["tr", "kl"]

OBS_DIM = 1
ACT_DIM = 2
MAX_ACTION = 15.0
"""Action bound of the Gaussian policy; the data lie within |a_i| < 11.5 (25 Gaussians) and
radius 14.5 (Swiss roll)."""
NUM_POLICY_SAMPLES = 1000
"""Policy samples drawn per run, for the metrics and the figures."""


@dataclass(frozen=True)
class Scenario:
    name: str
    dataset: Literal["25gaussians", "swissroll"]
    reward: Literal["far", "near", "hard"]
    title: str


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("25g-far", "25gaussians", "far", "25 Gaussians, far"),
        Scenario("25g-hard", "25gaussians", "hard", "25 Gaussians, hard"),
        Scenario("25g-near", "25gaussians", "near", "25 Gaussians, near"),
        Scenario("swiss-far", "swissroll", "far", "Swiss roll, far"),
        Scenario("swiss-near", "swissroll", "near", "Swiss roll, near"),
    )
}
"""In the column order of Figures 3 and 6."""


@dataclass(frozen=True)
class Variant:
    """A behaviour regulariser with a one-step policy; ``q_term=False``: regulariser alone."""

    reg: Reg
    policy: PolicyKind
    q_term: bool = True

    @property
    def name(self) -> str:
        return f"{self.reg}-{self.policy}" + ("" if self.q_term else "-noq")

    @property
    def title(self) -> str:
        reg = "trust region" if self.reg == "tr" else "KL"
        return f"{reg} ({self.policy})" + ("" if self.q_term else ", no Q")


TR_GAUSSIAN = Variant("tr", "gaussian")
KL_IMPLICIT = Variant("kl", "implicit")
TR_IMPLICIT = Variant("tr", "implicit")
KL_NO_Q = Variant("kl", "implicit", q_term=False)
"""Figure 2: KL distillation alone."""


class Problem(NamedTuple):
    """A scenario's data: the dataset actions [N, 2], rewards [N], the reward on any actions,
    and the dataset as device transitions (constant state 0, never terminal)."""

    scenario: Scenario
    actions: np.ndarray
    rewards: np.ndarray
    reward_fn: Any
    data: Batch


def make_problem(scenario: Scenario, seed: int = 0) -> Problem:
    """The scenario's dataset (drawn with ``seed``), its rewards and its device transitions."""
    actions = make_actions(scenario.dataset, seed=seed)
    reward_fn = make_reward(scenario.reward, actions)
    rewards = reward_fn(actions).astype(np.float32)
    n = actions.shape[0]
    states = jnp.zeros((n, OBS_DIM), jnp.float32)
    data = Batch(states, jnp.asarray(actions), jnp.asarray(rewards), states, jnp.zeros(n))
    return Problem(scenario, actions, rewards, reward_fn, data)
