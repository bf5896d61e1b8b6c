"""Diffusion Trusted Q-Learning (Algorithm 1).

Per step: IQL critics (Eqs. 6, 7), the diffusion BC model (Eq. 2), then the one-step policy on
alpha * L_TR - min(Q1, Q2) (+ entropy_coef * NLL of the dataset action) (Eqs. 4, 5), then the
target critics' soft update. Pretraining runs the first two only.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from dtql.algos import policies
from dtql.algos.common import (
    Batch,
    Critics,
    Metrics,
    Trainable,
    apply_gradients,
    bind_denoiser,
    build_networks,
    init_critics,
    init_diffusion,
    init_trainable,
    make_optimizer,
    min_q,
    pretrain_critics_and_diffusion,
    update_critics,
    update_denoiser,
)
from dtql.config import TrainConfig
from dtql.losses import dataset_nll, trust_region_loss


@struct.dataclass
class DTQLState:
    critics: Critics
    diffusion: Trainable  # the behaviour-cloning denoiser mu_phi
    policy: Trainable  # the one-step policy pi_theta
    act_dim: int = struct.field(pytree_node=False)
    max_action: float = struct.field(pytree_node=False)


def policy_optimizer(cfg: TrainConfig):
    return make_optimizer(cfg.agent.lr, cfg, trains_in_pretrain=False)


def init_dtql(
    key: jax.Array, cfg: TrainConfig, obs_dim: int, act_dim: int, max_action: float
) -> DTQLState:
    nets = build_networks(cfg.agent, act_dim)
    key_critic, key_diffusion, key_policy = jax.random.split(key, 3)
    policy_params = policies.init_policy_params(key_policy, nets, cfg.agent, obs_dim, act_dim)
    return DTQLState(
        critics=init_critics(key_critic, nets, cfg, obs_dim, act_dim),
        diffusion=init_diffusion(key_diffusion, nets, cfg, obs_dim, act_dim),
        policy=init_trainable(policy_params, policy_optimizer(cfg)),
        act_dim=act_dim,
        max_action=max_action,
    )


# Pretraining (Appendix E): critics and diffusion model only; the one-step policy waits.
pretrain_step = pretrain_critics_and_diffusion


def train_step(
    state: DTQLState, batch: Batch, key: jax.Array, cfg: TrainConfig
) -> tuple[DTQLState, Metrics]:
    """One step of Algorithm 1."""
    agent = cfg.agent
    nets = build_networks(agent, state.act_dim)
    key_diffusion, key_policy, key_tr = jax.random.split(key, 3)
    states = batch.observations

    # 1. Q-value function learning (Eqs. 6, 7); the target update (step 4) happens inside.
    critics, critic_metrics = update_critics(state.critics, batch, nets, cfg, update_target=True)
    # 2. Diffusion policy learning (Eq. 2).
    diffusion, diffusion_loss = update_denoiser(
        state.diffusion, batch.actions, states, key_diffusion, nets, cfg, state.max_action
    )
    # 3. Trust-region policy learning (Eq. 5). The diffusion model is frozen here: only the
    #    one-step policy's parameters receive gradients from L_TR.
    frozen_diffusion = bind_denoiser(nets, jax.lax.stop_gradient(diffusion.params))

    def policy_loss_fn(policy_params):
        actions, gaussian = policies.sample_actions(
            nets, policy_params, states, key_policy, agent, state.max_action
        )
        tr_loss = trust_region_loss(
            frozen_diffusion, actions, states, key_tr, agent.edm, state.max_action
        )
        q_term = -jnp.mean(min_q(nets, critics.q.params, states, actions))
        nll_term = jnp.zeros(())
        if agent.entropy_coef > 0.0:
            mean, log_std = gaussian
            nll_term = jnp.mean(dataset_nll(mean, log_std, batch.actions, state.max_action))
        loss = agent.alpha * tr_loss + q_term + agent.entropy_coef * nll_term
        std = jnp.exp(gaussian[1]).mean() if gaussian is not None else jnp.zeros(())
        return loss, {
            "policy/loss": loss,
            "policy/tr_loss": tr_loss,
            "policy/q_term": q_term,
            "policy/nll_term": nll_term,
            "policy/std_mean": std,
        }

    policy_grads, policy_metrics = jax.grad(policy_loss_fn, has_aux=True)(state.policy.params)
    policy = apply_gradients(state.policy, policy_grads, policy_optimizer(cfg))

    state = state.replace(critics=critics, diffusion=diffusion, policy=policy)
    return state, {**critic_metrics, "diffusion/loss": diffusion_loss, **policy_metrics}
