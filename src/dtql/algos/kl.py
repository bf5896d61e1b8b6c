"""KL behaviour regularisation, the comparison baseline (Section 3, Appendix D, Algorithm 2).

Pretraining is DTQL's (critics + diffusion BC). Then an implicit one-step generator
a_theta = G(scale z, s) and a "fake" diffusion model both start from the BC weights; each step the
generator follows alpha * L_KL - min(Q1, Q2), where L_KL's gradient is s_fake - s_real (Eq. 12),
and the fake model is fitted (Eq. 2) to the generator's detached actions. As in Algorithm 2 the
BC model is not trained after pretraining, unless ``agent.kl_train_bc`` (the released code).
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
    make_optimizer,
)
from dtql.algos.critics import Critics, critic_step, init_critics
from dtql.algos.diffusion import (
    diffusion_bc_step,
    diffusion_optimizer,
    init_diffusion,
    pretrain_critics_and_diffusion,
)
from dtql.config import LearnerConfig
from dtql.losses import kl_policy_loss


@struct.dataclass
class KLState:
    critics: Critics
    diffusion: Trainable  # the behaviour-cloning model mu_phi (the "real" score)
    policy: Trainable  # the implicit generator G_theta (diffusion architecture)
    fake: Trainable  # the fake diffusion model mu_xi, fitted to the generator's actions
    act_dim: int = struct.field(pytree_node=False)
    max_action: float = struct.field(pytree_node=False)


def init_kl(
    key: jax.Array, cfg: LearnerConfig, obs_dim: int, act_dim: int, max_action: float
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
        policy=init_trainable(diffusion.params, policies.policy_optimizer(cfg)),
        fake=diffusion,
        act_dim=act_dim,
        max_action=max_action,
    )


# Pretraining (Appendix E): critics and diffusion model only; the one-step policy waits.
pretrain_step = pretrain_critics_and_diffusion


def fake_optimizer(cfg: LearnerConfig):
    """The fake model's Adam. It is created at the main phase, so its schedule starts there."""
    return make_optimizer(cfg.agent.lr, cfg, trains_in_pretrain=False)


def start_main_phase(state: KLState, cfg: LearnerConfig) -> KLState:
    """Algorithm 2: theta <- phi, xi <- phi, with fresh optimiser states."""
    bc = state.diffusion.params
    return state.replace(
        policy=init_trainable(bc, policies.policy_optimizer(cfg)),
        fake=init_trainable(bc, fake_optimizer(cfg)),
    )


def train_step(
    state: KLState, batch: Batch, key: jax.Array, cfg: LearnerConfig
) -> tuple[KLState, Metrics]:
    """One iteration of Algorithm 2's second loop, with the IQL critics updated first."""
    agent = cfg.agent
    nets = build_networks(agent, state.act_dim)
    key_policy, key_noise, key_fake, key_bc = jax.random.split(key, 4)
    states = batch.observations
    critics, critic_metrics = critic_step(state.critics, batch, nets, cfg, update_target=True)
    diffusion, bc_metrics = state.diffusion, {}
    if agent.kl_train_bc:  # released code: the BC model keeps learning (Eq. 2)
        diffusion, bc_loss = diffusion_bc_step(
            diffusion,
            diffusion_optimizer(cfg),
            batch.actions,
            states,
            key_bc,
            nets,
            cfg,
            state.max_action,
        )
        bc_metrics = {"diffusion/loss": bc_loss}

    policy_loss = partial(
        kl_policy_loss,
        sample_policy=policies.policy_sampler(nets, agent, state.max_action),
        diffusion_apply=nets.diffusion.apply,
        real_params=diffusion.params,
        fake_params=state.fake.params,
        q_apply=nets.q.apply,
        q_params=critics.q.params,
        policy_key=key_policy,
        noise_key=key_noise,
        agent=agent,
        max_action=state.max_action,
    )
    grads, (actions, policy_metrics) = jax.grad(policy_loss, has_aux=True)(
        state.policy.params, states
    )
    policy = apply_gradients(state.policy, grads, policies.policy_optimizer(cfg))
    fake, fake_loss = diffusion_bc_step(
        state.fake,
        fake_optimizer(cfg),
        jax.lax.stop_gradient(actions),
        states,
        key_fake,
        nets,
        cfg,
        state.max_action,
    )
    state = state.replace(critics=critics, diffusion=diffusion, policy=policy, fake=fake)
    metrics = {**critic_metrics, **bc_metrics, **policy_metrics, "fake/loss": fake_loss}
    return state, metrics
