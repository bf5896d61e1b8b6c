"""Implicit Q-Learning baseline: the same critics as DTQL (Eqs. 6, 7), and a policy extracted by
advantage-weighted regression onto the dataset actions (Kostrikov et al. 2021).

The policy is DTQL's tanh-Gaussian network. Pretraining trains the critics alone.
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
)
from dtql.algos.critics import Critics, critic_step, init_critics, min_q
from dtql.algos.policies import policy_nll, policy_optimizer
from dtql.config import LearnerConfig
from dtql.losses import awr_loss


@struct.dataclass
class IQLState:
    critics: Critics
    policy: Trainable  # a Gaussian policy: DTQL's tanh-Gaussian or IQL's actor
    act_dim: int = struct.field(pytree_node=False)
    max_action: float = struct.field(pytree_node=False)


def init_iql(
    key: jax.Array, cfg: LearnerConfig, obs_dim: int, act_dim: int, max_action: float
) -> IQLState:
    if cfg.agent.policy == "implicit":
        raise ValueError(
            "algo 'iql' extracts a Gaussian policy: set agent.policy=iql_gaussian or gaussian"
        )
    nets = build_networks(cfg.agent, act_dim)
    key_critic, key_policy = jax.random.split(key)
    policy_params = nets.policy.init(key_policy, jnp.zeros((1, obs_dim)))
    return IQLState(
        critics=init_critics(key_critic, nets, cfg, obs_dim, act_dim),
        policy=init_trainable(policy_params, policy_optimizer(cfg)),
        act_dim=act_dim,
        max_action=max_action,
    )


def pretrain_step(
    state: IQLState, batch: Batch, key: jax.Array, cfg: LearnerConfig
) -> tuple[IQLState, Metrics]:
    nets = build_networks(cfg.agent, state.act_dim)
    critics, metrics = critic_step(
        state.critics, batch, nets, cfg, update_target=cfg.agent.target_update_in_pretrain
    )
    return state.replace(critics=critics), metrics


def train_step(
    state: IQLState, batch: Batch, key: jax.Array, cfg: LearnerConfig
) -> tuple[IQLState, Metrics]:
    agent = cfg.agent
    nets = build_networks(agent, state.act_dim)
    critics, critic_metrics = critic_step(state.critics, batch, nets, cfg, update_target=True)
    q = min_q(nets, critics.target_q_params, batch.observations, batch.actions)
    advantages = q - nets.value.apply(critics.value.params, batch.observations)

    def policy_loss_fn(policy_params):
        nll = policy_nll(
            nets, policy_params, batch.observations, batch.actions, agent, state.max_action
        )
        return awr_loss(nll, advantages, agent.awr_temperature, agent.awr_max_weight)

    loss, grads = jax.value_and_grad(policy_loss_fn)(state.policy.params)
    policy = apply_gradients(state.policy, grads, policy_optimizer(cfg))
    metrics = {**critic_metrics, "policy/loss": loss, "policy/advantage_mean": jnp.mean(advantages)}
    return state.replace(critics=critics, policy=policy), metrics
