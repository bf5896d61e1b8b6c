"""The diffusion behaviour-cloning model mu_phi (EDM's raw network F inside the denoiser D):
its parameters, one Adam step of Eq. 2, and the pretraining step DTQL and KL share.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from dtql.algos.common import (
    Batch,
    Metrics,
    Networks,
    Trainable,
    apply_gradients,
    build_networks,
    init_trainable,
    make_optimizer,
)
from dtql.algos.critics import critic_step
from dtql.config import LearnerConfig
from dtql.edm import RawNetwork
from dtql.losses import diffusion_bc_loss


def diffusion_optimizer(cfg: LearnerConfig):
    return make_optimizer(cfg.agent.lr, cfg, trains_in_pretrain=True)


def bind_raw_network(nets: Networks, params: Any) -> RawNetwork:
    """The raw network F with its parameters bound, as ``edm.denoise`` expects it."""
    return lambda x, c_noise, s: nets.diffusion.apply(params, x, c_noise, s)


def init_diffusion(
    key: jax.Array, nets: Networks, cfg: LearnerConfig, obs_dim: int, act_dim: int
) -> Trainable:
    """The behaviour-cloning model's parameters and Adam state."""
    act = jnp.zeros((1, act_dim))
    params = nets.diffusion.init(key, act, act[:, :1], jnp.zeros((1, obs_dim)))
    return init_trainable(params, diffusion_optimizer(cfg))


def diffusion_bc_step(
    model: Trainable,
    optimizer: optax.GradientTransformation,
    actions: jax.Array,
    states: jax.Array,
    key: jax.Array,
    nets: Networks,
    cfg: LearnerConfig,
    max_action: float,
) -> tuple[Trainable, jax.Array]:
    """One Adam step of Eq. 2 on (states, actions): the BC model (``diffusion_optimizer``), or
    KL's fake model (its own optimiser, whose schedule starts at the main phase)."""

    def loss_fn(params):
        raw = bind_raw_network(nets, params)
        return diffusion_bc_loss(raw, actions, states, key, cfg.agent.edm, max_action)

    loss, grads = jax.value_and_grad(loss_fn)(model.params)
    return apply_gradients(model, grads, optimizer), loss


def bc_only_step(
    state: Any, batch: Batch, key: jax.Array, cfg: LearnerConfig
) -> tuple[Any, Metrics]:
    """One step of the diffusion BC model alone (Eq. 2), for any state with ``diffusion``,
    ``act_dim`` and ``max_action``: Algorithm 2's first loop, and half of pretraining."""
    nets = build_networks(cfg.agent, state.act_dim)
    diffusion, loss = diffusion_bc_step(
        state.diffusion,
        diffusion_optimizer(cfg),
        batch.actions,
        batch.observations,
        key,
        nets,
        cfg,
        state.max_action,
    )
    return state.replace(diffusion=diffusion), {"diffusion/loss": loss}


def pretrain_critics_and_diffusion(
    state: Any, batch: Batch, key: jax.Array, cfg: LearnerConfig
) -> tuple[Any, Metrics]:
    """The pretraining step of DTQL and KL (Appendix E): the critics and the diffusion BC model
    learn, the one-step policy waits. ``state`` has ``critics``, ``diffusion``, ``act_dim`` and
    ``max_action``."""
    nets = build_networks(cfg.agent, state.act_dim)
    critics, critic_metrics = critic_step(
        state.critics, batch, nets, cfg, update_target=cfg.agent.target_update_in_pretrain
    )
    state, diffusion_metrics = bc_only_step(state, batch, key, cfg)
    return state.replace(critics=critics), {**critic_metrics, **diffusion_metrics}
