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
from dtql.config import LearnerConfig
from dtql.losses import dataset_nll


@struct.dataclass
class BCState:
    policy: Trainable  # tanh-Gaussian policy
    act_dim: int = struct.field(pytree_node=False)
    max_action: float = struct.field(pytree_node=False)


def policy_optimizer(cfg: LearnerConfig):
    return make_optimizer(cfg.agent.lr, cfg, trains_in_pretrain=True)


def init_bc(
    key: jax.Array, cfg: LearnerConfig, obs_dim: int, act_dim: int, max_action: float
) -> BCState:
    if cfg.agent.policy != "gaussian":
        raise ValueError("algo 'bc' fits a Gaussian policy: set agent.policy=gaussian")
    nets = build_networks(cfg.agent, act_dim)
    params = nets.policy.init(key, jnp.zeros((1, obs_dim)))
    return BCState(init_trainable(params, policy_optimizer(cfg)), act_dim, max_action)


def train_step(
    state: BCState, batch: Batch, key: jax.Array, cfg: LearnerConfig
) -> tuple[BCState, Metrics]:
    nets = build_networks(cfg.agent, state.act_dim)

    def loss_fn(params):
        mean, log_std = nets.policy.apply(params, batch.observations)
        return jnp.mean(dataset_nll(mean, log_std, batch.actions, state.max_action))

    loss, grads = jax.value_and_grad(loss_fn)(state.policy.params)
    policy = apply_gradients(state.policy, grads, policy_optimizer(cfg))
    return state.replace(policy=policy), {"policy/loss": loss}
