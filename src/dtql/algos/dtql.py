"""Diffusion Trusted Q-Learning (Algorithm 1).

Per step: IQL critics (Eqs. 6, 7) with the targets' soft update, the diffusion BC model (Eq. 2),
then the one-step policy on Eq. 5: alpha * L_TR - min(Q1, Q2) (+ entropy_coef * NLL of the dataset
action), with L_TR the trust-region loss of Eq. 4. Pretraining runs the first two only.
"""

from __future__ import annotations

from functools import partial

import jax
from flax import struct

from dtql.algos import policies
from dtql.algos.common import (
    Batch,
    Metrics,
    Trainable,
    apply_gradients,
    build_networks,
    init_trainable,
)
from dtql.algos.critics import Critics, critic_step, init_critics
from dtql.algos.diffusion import (
    diffusion_bc_step,
    diffusion_optimizer,
    init_diffusion,
    pretrain_critics_and_diffusion,
)
from dtql.config import LearnerConfig
from dtql.losses import dtql_policy_loss


@struct.dataclass
class DTQLState:
    critics: Critics
    diffusion: Trainable  # the behaviour-cloning model mu_phi
    policy: Trainable  # the one-step policy pi_theta
    act_dim: int = struct.field(pytree_node=False)
    max_action: float = struct.field(pytree_node=False)


def init_dtql(
    key: jax.Array, cfg: LearnerConfig, obs_dim: int, act_dim: int, max_action: float
) -> DTQLState:
    nets = build_networks(cfg.agent, act_dim)
    key_critic, key_diffusion, key_policy = jax.random.split(key, 3)
    policy_params = policies.init_policy_params(key_policy, nets, cfg.agent, obs_dim, act_dim)
    return DTQLState(
        critics=init_critics(key_critic, nets, cfg, obs_dim, act_dim),
        diffusion=init_diffusion(key_diffusion, nets, cfg, obs_dim, act_dim),
        policy=init_trainable(policy_params, policies.policy_optimizer(cfg)),
        act_dim=act_dim,
        max_action=max_action,
    )


# Pretraining (Appendix E): critics and diffusion model only; the one-step policy waits.
pretrain_step = pretrain_critics_and_diffusion


def train_step(
    state: DTQLState, batch: Batch, key: jax.Array, cfg: LearnerConfig
) -> tuple[DTQLState, Metrics]:
    """One step of Algorithm 1."""
    agent = cfg.agent
    nets = build_networks(agent, state.act_dim)
    key_diffusion, key_policy, key_tr = jax.random.split(key, 3)
    states = batch.observations

    # 1. Q-value function learning (Eqs. 6, 7) and 4. the target update.
    critics, critic_metrics = critic_step(state.critics, batch, nets, cfg, update_target=True)
    # 2. Diffusion policy learning (Eq. 2).
    diffusion, diffusion_loss = diffusion_bc_step(
        state.diffusion,
        diffusion_optimizer(cfg),
        batch.actions,
        states,
        key_diffusion,
        nets,
        cfg,
        state.max_action,
    )
    # 3. Trust-region policy learning (Eq. 5) against the updated diffusion model and critics,
    #    both frozen inside the loss.
    policy_loss = partial(
        dtql_policy_loss,
        sample_policy=policies.policy_sampler(nets, agent, state.max_action),
        diffusion_apply=nets.diffusion.apply,
        diffusion_params=diffusion.params,
        q_apply=nets.q.apply,
        q_params=critics.q.params,
        policy_key=key_policy,
        noise_key=key_tr,
        agent=agent,
        max_action=state.max_action,
    )
    grads, policy_metrics = jax.grad(policy_loss, has_aux=True)(
        state.policy.params, states, batch.actions
    )
    policy = apply_gradients(state.policy, grads, policies.policy_optimizer(cfg))

    state = state.replace(critics=critics, diffusion=diffusion, policy=policy)
    return state, {**critic_metrics, "diffusion/loss": diffusion_loss, **policy_metrics}
