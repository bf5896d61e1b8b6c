"""The one-step policy pi_theta, in its two forms (Section 2.4):

- ``gaussian``: a = tanh(mean(s) + std(s) eps) * max_action (reparameterised);
- ``implicit``: a = D_theta(scale * z, sigma=scale | s), z ~ N(0, I), the diffusion architecture
  used as a one-step generator (as in the released KL baseline); unsquashed.

Both expose the same three functions: ``init_policy_params``, ``sample_actions`` (stochastic,
differentiable in the parameters) and ``deterministic_actions`` (the mean action used at
evaluation: tanh(mean) for the Gaussian, z = 0 for the implicit policy).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dtql.algos.common import Networks, build_networks, select_by_q, tanh_gaussian_sample
from dtql.config import AgentConfig, TrainConfig
from dtql.edm import denoise


def init_policy_params(
    key: jax.Array, nets: Networks, cfg: AgentConfig, obs_dim: int, act_dim: int
) -> Any:
    obs, act = jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim))
    if cfg.policy == "gaussian":
        return nets.policy.init(key, obs)
    return nets.diffusion.init(key, act, act[:, :1], obs)


def _implicit_actions(
    nets: Networks, params: Any, states: jax.Array, z: jax.Array, cfg: AgentConfig
) -> jax.Array:
    scale = cfg.implicit_noise_scale
    sigma = jnp.full((states.shape[0], 1), scale)

    def raw(x, c_noise, s):
        return nets.diffusion.apply(params, x, c_noise, s)

    return denoise(raw, scale * z, sigma, states, cfg.edm.sigma_data)


def sample_actions(
    nets: Networks,
    params: Any,
    states: jax.Array,
    key: jax.Array,
    cfg: AgentConfig,
    max_action: float,
) -> tuple[jax.Array, tuple[jax.Array, jax.Array] | None]:
    """Stochastic actions [B, A] and, for the Gaussian policy, its (mean, log_std) pre-tanh."""
    if cfg.policy == "gaussian":
        mean, log_std = nets.policy.apply(params, states)
        return tanh_gaussian_sample(mean, log_std, key, max_action), (mean, log_std)
    z = jax.random.normal(key, (states.shape[0], nets.diffusion.act_dim))
    return _implicit_actions(nets, params, states, z, cfg), None


def deterministic_actions(
    nets: Networks, params: Any, states: jax.Array, cfg: AgentConfig, max_action: float
) -> jax.Array:
    """The policy's deterministic action [B, A], clipped to the action bounds."""
    if cfg.policy == "gaussian":
        mean, _ = nets.policy.apply(params, states)
        return jnp.tanh(mean) * max_action
    z = jnp.zeros((states.shape[0], nets.diffusion.act_dim))
    return jnp.clip(_implicit_actions(nets, params, states, z, cfg), -max_action, max_action)


def sample_candidates(
    nets: Networks,
    params: Any,
    states: jax.Array,
    key: jax.Array,
    cfg: AgentConfig,
    max_action: float,
) -> jax.Array:
    """``cfg.num_candidates`` stochastic actions per state: [n, N, A], within the bounds."""
    n, num = states.shape[0], cfg.num_candidates
    tiled = jnp.repeat(states, num, axis=0)
    actions, _ = sample_actions(nets, params, tiled, key, cfg, max_action)
    return jnp.clip(actions, -max_action, max_action).reshape(n, num, -1)


# --- acting, for any algorithm state with .policy, .critics, .act_dim and .max_action ---------


def act_mean(state: Any, observations: jax.Array, cfg: TrainConfig) -> jax.Array:
    """The one-step policy's deterministic action [n, A]."""
    nets = build_networks(cfg.agent, state.act_dim)
    return deterministic_actions(
        nets, state.policy.params, observations, cfg.agent, state.max_action
    )


def act_candidates(
    state: Any, observations: jax.Array, key: jax.Array, cfg: TrainConfig
) -> jax.Array:
    """Released-code acting: N policy samples, scored by min target Q, one drawn by softmax."""
    nets = build_networks(cfg.agent, state.act_dim)
    key_sample, key_choice = jax.random.split(key)
    candidates = sample_candidates(
        nets, state.policy.params, observations, key_sample, cfg.agent, state.max_action
    )
    return select_by_q(nets, state.critics.target_q_params, observations, candidates, key_choice)
