"""KL behaviour regularisation, the comparison baseline (Section 3, Appendix D, Algorithm 2).

Pretraining is DTQL's (critics + diffusion BC). Then an implicit one-step generator
a_theta = G(scale z, s) and a "fake" diffusion model both start from the BC weights; each step the
generator follows alpha * L_KL - min(Q1, Q2), where L_KL's gradient is s_fake - s_real (Eq. 12),
and the fake model is fitted (Eq. 2) to the generator's detached actions. As in Algorithm 2 the
BC model is not trained after pretraining.
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
    diffusion_optimizer,
    init_critics,
    init_diffusion,
    init_trainable,
    min_q,
    pretrain_critics_and_diffusion,
    update_critics,
    update_denoiser,
)
from dtql.algos.dtql import policy_optimizer
from dtql.config import TrainConfig
from dtql.edm import denoise, sample_sigma
from dtql.losses import kl_distill_loss


@struct.dataclass
class KLState:
    critics: Critics
    diffusion: Trainable  # the behaviour-cloning denoiser mu_phi (the "real" score)
    policy: Trainable  # the implicit generator G_theta (diffusion architecture)
    fake: Trainable  # the fake denoiser mu_xi, fitted to the generator's actions
    act_dim: int = struct.field(pytree_node=False)
    max_action: float = struct.field(pytree_node=False)


def init_kl(
    key: jax.Array, cfg: TrainConfig, obs_dim: int, act_dim: int, max_action: float
) -> KLState:
    if cfg.agent.policy != "implicit":
        raise ValueError("algo 'kl' needs the implicit one-step policy: set agent.policy=implicit")
    nets = build_networks(cfg.agent, act_dim)
    key_critic, key_diffusion = jax.random.split(key)
    diffusion = init_diffusion(key_diffusion, nets, cfg, obs_dim, act_dim)
    return KLState(
        critics=init_critics(key_critic, nets, cfg, obs_dim, act_dim),
        diffusion=diffusion,
        # Placeholders with the right structure; start_main_phase copies the BC weights in.
        policy=init_trainable(diffusion.params, policy_optimizer(cfg)),
        fake=diffusion,
        act_dim=act_dim,
        max_action=max_action,
    )


# Pretraining (Appendix E): critics and diffusion model only; the one-step policy waits.
pretrain_step = pretrain_critics_and_diffusion


def start_main_phase(state: KLState, cfg: TrainConfig) -> KLState:
    """Algorithm 2: theta <- phi, xi <- phi, with fresh optimiser states."""
    bc = state.diffusion.params
    return state.replace(
        policy=init_trainable(bc, policy_optimizer(cfg)),
        fake=init_trainable(bc, diffusion_optimizer(cfg)),
    )


def train_step(
    state: KLState, batch: Batch, key: jax.Array, cfg: TrainConfig
) -> tuple[KLState, Metrics]:
    """One iteration of Algorithm 2's second loop, with the IQL critics updated first."""
    agent = cfg.agent
    nets = build_networks(agent, state.act_dim)
    key_policy, key_sigma, key_eps, key_fake = jax.random.split(key, 4)
    states = batch.observations
    critics, critic_metrics = update_critics(state.critics, batch, nets, cfg, update_target=True)
    real = bind_denoiser(nets, state.diffusion.params)
    fake = bind_denoiser(nets, state.fake.params)

    def policy_loss_fn(policy_params):
        actions, _ = policies.sample_actions(
            nets, policy_params, states, key_policy, agent, state.max_action
        )
        # Shared sigma and eps for the real and fake denoisers; neither is differentiated.
        sigma = sample_sigma(key_sigma, (actions.shape[0], 1), agent.edm)
        noisy = jax.lax.stop_gradient(actions) + sigma * jax.random.normal(key_eps, actions.shape)
        real_denoised = denoise(real, noisy, sigma, states, agent.edm.sigma_data)
        fake_denoised = denoise(fake, noisy, sigma, states, agent.edm.sigma_data)
        kl_loss = kl_distill_loss(actions, real_denoised, fake_denoised)
        q_term = -jnp.mean(min_q(nets, critics.q.params, states, actions))
        loss = agent.alpha * kl_loss + q_term
        return loss, (
            actions,
            {"policy/loss": loss, "policy/kl_loss": kl_loss, "policy/q_term": q_term},
        )

    grads, (actions, policy_metrics) = jax.grad(policy_loss_fn, has_aux=True)(state.policy.params)
    policy = apply_gradients(state.policy, grads, policy_optimizer(cfg))
    fake_model, fake_loss = update_denoiser(
        state.fake, jax.lax.stop_gradient(actions), states, key_fake, nets, cfg, state.max_action
    )
    state = state.replace(critics=critics, policy=policy, fake=fake_model)
    return state, {**critic_metrics, **policy_metrics, "fake/loss": fake_loss}
