"""Behaviour cloning baseline: DTQL's tanh-Gaussian policy fitted by maximum likelihood of the
dataset actions. It has nothing to pretrain: the pretraining steps train the policy too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from dtql.algos.common import (
    Batch,
    Metrics,
    Trainable,
    apply_gradients,
    build_networks,
    init_trainable,
    make_optimizer,
)
from dtql.algos.policies import policy_nll
from dtql.config import LearnerConfig


@struct.dataclass
class BCState:
    policy: Trainable  # a Gaussian policy: DTQL's tanh-Gaussian or IQL's actor
    act_dim: int = struct.field(pytree_node=False)
    max_action: float = struct.field(pytree_node=False)


def policy_optimizer(cfg: LearnerConfig):
    return make_optimizer(cfg.agent.lr, cfg, trains_in_pretrain=True)


def init_bc(
    key: jax.Array, cfg: LearnerConfig, obs_dim: int, act_dim: int, max_action: float
) -> BCState:
    if cfg.agent.policy == "implicit":
        raise ValueError("algo 'bc' fits a Gaussian policy: set agent.policy=gaussian")
    nets = build_networks(cfg.agent, act_dim)
    params = nets.policy.init(key, jnp.zeros((1, obs_dim)))
    return BCState(init_trainable(params, policy_optimizer(cfg)), act_dim, max_action)


def train_step(
    state: BCState, batch: Batch, key: jax.Array, cfg: LearnerConfig
) -> tuple[BCState, Metrics]:
    nets = build_networks(cfg.agent, state.act_dim)

    def loss_fn(params):
        nll = policy_nll(
            nets, params, batch.observations, batch.actions, cfg.agent, state.max_action
        )
        return jnp.mean(nll)

    loss, grads = jax.value_and_grad(loss_fn)(state.policy.params)
    policy = apply_gradients(state.policy, grads, policy_optimizer(cfg))
    return state.replace(policy=policy), {"policy/loss": loss}
