"""The IQL critics shared by DTQL, KL and IQL: twin Q with soft-updated targets and V, and their
update (Eqs. 6 and 7).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from dtql.algos.common import (
    Batch,
    Metrics,
    Networks,
    Trainable,
    apply_gradients,
    init_trainable,
    make_optimizer,
    soft_update,
)
from dtql.config import LearnerConfig
from dtql.losses import q_loss, value_loss


@struct.dataclass
class Critics:
    """Twin Q with target parameters (no optimiser state of their own), and V."""

    q: Trainable
    target_q_params: Any
    value: Trainable


def critic_optimizer(cfg: LearnerConfig):
    agent = cfg.agent
    return make_optimizer(
        agent.critic_lr, cfg, trains_in_pretrain=True, decays=agent.decay_critic_lr
    )


def init_critics(
    key: jax.Array, nets: Networks, cfg: LearnerConfig, obs_dim: int, act_dim: int
) -> Critics:
    """Twin Q (target = a copy of the online parameters) and V, each with its Adam state."""
    obs, act = jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim))
    key_q, key_v = jax.random.split(key)
    q_params = nets.q.init(key_q, obs, act)
    v_params = nets.value.init(key_v, obs)
    opt = critic_optimizer(cfg)
    return Critics(
        q=init_trainable(q_params, opt),
        target_q_params=q_params,
        value=init_trainable(v_params, opt),
    )


def critic_step(
    critics: Critics, batch: Batch, nets: Networks, cfg: LearnerConfig, *, update_target: bool
) -> tuple[Critics, Metrics]:
    """IQL: V by expectile regression on min Q (Eq. 6), then twin Q on r + gamma V(s') (Eq. 7),
    then (if ``update_target``) the targets' soft update (Algorithm 1, step 4).

    The paper's V target is the target critics' min Q; ``value_target='online_q'`` uses the
    online critics instead (released code).
    """
    agent, opt = cfg.agent, critic_optimizer(cfg)
    q_params_for_v = (
        critics.target_q_params if agent.value_target == "target_q" else critics.q.params
    )
    q_data = min_q(nets, q_params_for_v, batch.observations, batch.actions)

    def v_loss_fn(v_params):
        v = nets.value.apply(v_params, batch.observations)
        return value_loss(q_data, v, agent.expectile), v

    (v_loss, v), v_grads = jax.value_and_grad(v_loss_fn, has_aux=True)(critics.value.params)
    value = apply_gradients(critics.value, v_grads, opt)

    next_v = nets.value.apply(value.params, batch.next_observations)

    def q_loss_fn(q_params):
        q_pred = nets.q.apply(q_params, batch.observations, batch.actions)
        return q_loss(q_pred, batch.rewards, batch.terminals, next_v, agent.discount), q_pred

    (critic_loss, q_pred), q_grads = jax.value_and_grad(q_loss_fn, has_aux=True)(critics.q.params)
    q = apply_gradients(critics.q, q_grads, opt)
    target = (
        soft_update(critics.target_q_params, q.params, agent.tau)
        if update_target
        else critics.target_q_params
    )
    metrics = {
        "critic/q_loss": critic_loss,
        "critic/v_loss": v_loss,
        "critic/q_mean": jnp.mean(q_pred),
        "critic/v_mean": jnp.mean(v),
    }
    return Critics(q=q, target_q_params=target, value=value), metrics


def min_q(nets: Networks, q_params: Any, states: jax.Array, actions: jax.Array) -> jax.Array:
    """min(Q1, Q2)(s, a): [B]."""
    return jnp.min(nets.q.apply(q_params, states, actions), axis=0)
