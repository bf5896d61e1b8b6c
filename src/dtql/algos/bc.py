"""Behaviour cloning baselines. It has nothing to pretrain: pretraining steps train the policy too.

- ``bc``: the standard BC of the offline-RL literature (TD3+BC's, IQL's and CORL's baseline): a
  deterministic policy a = tanh(MLP(s)) * max_action fitted by mean squared error to the dataset
  action, with its own settings (``presets.ALGORITHM_DEFAULTS['bc']``).
- ``bc-gaussian``: DTQL's tanh-Gaussian policy (or IQL's actor) fitted by maximum likelihood of
  the dataset action, with the task's DTQL settings: DTQL without its Q and trust-region terms.
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
from dtql.algos.policies import deterministic_actions, policy_nll
from dtql.config import LearnerConfig
from dtql.losses import mse_bc_loss


@struct.dataclass
class BCState:
    policy: Trainable  # deterministic, or a Gaussian (DTQL's tanh-Gaussian or IQL's actor)
    act_dim: int = struct.field(pytree_node=False)
    max_action: float = struct.field(pytree_node=False)


def policy_optimizer(cfg: LearnerConfig):
    return make_optimizer(cfg.agent.lr, cfg, trains_in_pretrain=True)


def init_bc(
    key: jax.Array, cfg: LearnerConfig, obs_dim: int, act_dim: int, max_action: float
) -> BCState:
    if cfg.agent.policy == "implicit":
        raise ValueError(
            "algo 'bc' fits an explicit policy: set agent.policy=deterministic or gaussian"
        )
    nets = build_networks(cfg.agent, act_dim)
    params = nets.policy.init(key, jnp.zeros((1, obs_dim)))
    return BCState(init_trainable(params, policy_optimizer(cfg)), act_dim, max_action)


def train_step(
    state: BCState, batch: Batch, key: jax.Array, cfg: LearnerConfig
) -> tuple[BCState, Metrics]:
    agent = cfg.agent
    nets = build_networks(agent, state.act_dim)
    states, actions = batch.observations, batch.actions

    def loss_fn(params):
        if agent.policy == "deterministic":  # MSE to the dataset action
            predicted = deterministic_actions(nets, params, states, agent, state.max_action)
            return mse_bc_loss(predicted, actions)
        # maximum likelihood of the dataset action
        return jnp.mean(policy_nll(nets, params, states, actions, agent, state.max_action))

    loss, grads = jax.value_and_grad(loss_fn)(state.policy.params)
    policy = apply_gradients(state.policy, grads, policy_optimizer(cfg))
    return state.replace(policy=policy), {"policy/loss": loss}
