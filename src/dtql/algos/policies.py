"""The one-step policy pi_theta, in its forms (Section 2.4), and how it acts:

- ``gaussian``: a = tanh(mean(s) + std(s) eps) * max_action (reparameterised);
- ``implicit``: the diffusion architecture used as a one-step generator, z ~ N(0, I): as released,
  the raw network a = F(scale z, time input scale | s); or the EDM denoiser
  a = D_theta(scale z; sigma = scale | s) (``agent.implicit_generator``). Unsquashed.
- ``iql_gaussian``: IQL's actor, a = (tanh(mean(s)) + std eps) * max_action with a
  state-independent std; its density is taken in action space.
- ``deterministic``: a = tanh(MLP(s)) * max_action, no noise (the standard BC actor).

All expose ``init_policy_params``, ``sample_actions`` (stochastic, differentiable in the
parameters), ``deterministic_actions`` (the mean action used at evaluation) and, for the
Gaussians, ``policy_nll`` (the likelihood the BC, IQL and entropy terms fit). Acting:
``act_mean`` and ``act_candidates``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dtql.algos.common import Networks, build_networks, make_optimizer
from dtql.algos.critics import min_q
from dtql.algos.diffusion import bind_raw_network
from dtql.config import AgentConfig, LearnerConfig
from dtql.edm import denoise
from dtql.losses import SamplePolicy, action_space_nll, dataset_nll


def policy_optimizer(cfg: LearnerConfig):
    """The one-step policy's Adam: it waits during pretraining, so its schedule starts after."""
    return make_optimizer(cfg.agent.lr, cfg, trains_in_pretrain=False)


def init_policy_params(
    key: jax.Array, nets: Networks, cfg: AgentConfig, obs_dim: int, act_dim: int
) -> Any:
    obs, act = jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim))
    if cfg.policy != "implicit":
        return nets.policy.init(key, obs)
    return nets.diffusion.init(key, act, act[:, :1], obs)


def tanh_gaussian_sample(
    mean: jax.Array, log_std: jax.Array, key: jax.Array, max_action: float
) -> jax.Array:
    """a = tanh(mean + std eps) * max_action, reparameterised."""
    eps = jax.random.normal(key, mean.shape)
    return jnp.tanh(mean + jnp.exp(log_std) * eps) * max_action


def _implicit_actions(
    nets: Networks, params: Any, states: jax.Array, z: jax.Array, cfg: AgentConfig
) -> jax.Array:
    scale = cfg.implicit_noise_scale
    time = jnp.full((states.shape[0], 1), scale)
    raw = bind_raw_network(nets, params)
    if cfg.implicit_generator == "raw":  # released: F itself, the scale as its time input
        return raw(scale * z, time, states)
    return denoise(raw, scale * z, time, states, cfg.edm.sigma_data)


def sample_actions(
    nets: Networks,
    params: Any,
    states: jax.Array,
    key: jax.Array,
    cfg: AgentConfig,
    max_action: float,
) -> tuple[jax.Array, tuple[jax.Array, jax.Array] | None]:
    """Stochastic actions [B, A] and, for the Gaussians, the head's (mean, log_std)."""
    if cfg.policy == "gaussian":
        mean, log_std = nets.policy.apply(params, states)
        return tanh_gaussian_sample(mean, log_std, key, max_action), (mean, log_std)
    if cfg.policy == "iql_gaussian":
        mean, log_std = nets.policy.apply(params, states)
        eps = jax.random.normal(key, mean.shape)
        return (mean + jnp.exp(log_std) * eps) * max_action, (mean, log_std)
    if cfg.policy == "deterministic":
        return nets.policy.apply(params, states) * max_action, None
    z = jax.random.normal(key, (states.shape[0], nets.diffusion.act_dim))
    return _implicit_actions(nets, params, states, z, cfg), None


def policy_sampler(nets: Networks, cfg: AgentConfig, max_action: float) -> SamplePolicy:
    """``sample_actions`` as the (params, states, key) function the policy losses take."""
    return lambda params, states, key: sample_actions(nets, params, states, key, cfg, max_action)


def deterministic_actions(
    nets: Networks, params: Any, states: jax.Array, cfg: AgentConfig, max_action: float
) -> jax.Array:
    """The policy's deterministic action [B, A], clipped to the action bounds."""
    if cfg.policy == "gaussian":
        mean, _ = nets.policy.apply(params, states)
        return jnp.tanh(mean) * max_action
    if cfg.policy == "iql_gaussian":
        mean, _ = nets.policy.apply(params, states)  # tanh(.) already
        return mean * max_action
    if cfg.policy == "deterministic":
        return nets.policy.apply(params, states) * max_action
    z = jnp.zeros((states.shape[0], nets.diffusion.act_dim))
    return jnp.clip(_implicit_actions(nets, params, states, z, cfg), -max_action, max_action)


def policy_nll(
    nets: Networks,
    params: Any,
    states: jax.Array,
    actions: jax.Array,
    cfg: AgentConfig,
    max_action: float,
) -> jax.Array:
    """-log pi(a | s) of dataset actions [B, A] under a Gaussian policy: [B].

    ``gaussian``: the pre-tanh density of atanh(a / max_action) (the released entropy term, no
    tanh Jacobian); ``iql_gaussian``: the density in action space, as IQL fits it.
    """
    mean, log_std = nets.policy.apply(params, states)
    if cfg.policy == "iql_gaussian":
        return action_space_nll(mean * max_action, log_std + jnp.log(max_action), actions)
    return dataset_nll(mean, log_std, actions, max_action)


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


def select_by_q(
    nets: Networks,
    target_q_params: Any,
    states: jax.Array,
    candidates: jax.Array,
    key: jax.Array,
) -> jax.Array:
    """The released code's acting: score N candidates [n, N, A] by min target Q, softmax, draw.

    ``states`` [n, S]; returns [n, A].
    """
    n, num, _ = candidates.shape
    tiled = jnp.repeat(states[:, None, :], num, axis=1)
    q = min_q(nets, target_q_params, tiled.reshape(n * num, -1), candidates.reshape(n * num, -1))
    choice = jax.random.categorical(key, q.reshape(n, num), axis=-1)
    return jnp.take_along_axis(candidates, choice[:, None, None], axis=1)[:, 0]


# --- acting, for any algorithm state with .policy, .critics, .act_dim and .max_action ---------


def act_mean(state: Any, observations: jax.Array, cfg: LearnerConfig) -> jax.Array:
    """The one-step policy's deterministic action [n, A]."""
    nets = build_networks(cfg.agent, state.act_dim)
    return deterministic_actions(
        nets, state.policy.params, observations, cfg.agent, state.max_action
    )


def act_candidates(
    state: Any, observations: jax.Array, key: jax.Array, cfg: LearnerConfig
) -> jax.Array:
    """Released-code acting: N policy samples, scored by min target Q, one drawn by softmax."""
    nets = build_networks(cfg.agent, state.act_dim)
    key_sample, key_choice = jax.random.split(key)
    candidates = sample_candidates(
        nets, state.policy.params, observations, key_sample, cfg.agent, state.max_action
    )
    return select_by_q(nets, state.critics.target_q_params, observations, candidates, key_choice)
