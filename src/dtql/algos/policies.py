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
Gaussians, ``policy_nll`` (the likelihood the BC, IQL and entropy terms fit).

Acting reads ``ActingParams`` (the policy, target critics and diffusion model parameters, not
the optimiser states) in three ways: ``act_mean`` (the one-step policy's deterministic action,
what DTQL deploys), ``act_candidates`` (the released code's: N one-step samples scored by min
target Q) and ``act_diffusion`` (the IDQL way, for comparison: N samples from the behaviour
diffusion model by K steps of EDM's sampler, the best by min target Q). Candidates share their
state's work: a Gaussian head runs once per state, and first layers see the state as a
broadcast part (``networks.ConcatDense``), so nothing is tiled N times.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from dtql.algos.common import Networks, build_networks, make_optimizer
from dtql.algos.critics import min_q
from dtql.algos.diffusion import bind_raw_network
from dtql.config import AgentConfig, LearnerConfig
from dtql.edm import denoise, sample_actions_edm
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


def _implicit_actions(
    nets: Networks, params: Any, states: jax.Array, z: jax.Array, cfg: AgentConfig
) -> jax.Array:
    scale = cfg.implicit_noise_scale
    time = jnp.full(states.shape[:-1] + (1,), scale)
    raw = bind_raw_network(nets, params)
    if cfg.implicit_generator == "raw":  # released: F itself, the scale as its time input
        return raw(scale * z, time, states)
    return denoise(raw, scale * z, time, states, cfg.edm.sigma_data)


def actions_from_noise(
    nets: Networks,
    params: Any,
    states: jax.Array,
    noise: jax.Array,
    cfg: AgentConfig,
    max_action: float,
) -> tuple[jax.Array, tuple[jax.Array, jax.Array] | None]:
    """The policy's actions for standard normal ``noise`` [..., A] and, for the Gaussians, the
    head's (mean, log_std). ``states`` [..., S] may broadcast against the noise: [n, 1, S]
    with [n, N, A] gives N actions per state, the state's share computed once."""
    if cfg.policy == "gaussian":
        mean, log_std = nets.policy.apply(params, states)
        return jnp.tanh(mean + jnp.exp(log_std) * noise) * max_action, (mean, log_std)
    if cfg.policy == "iql_gaussian":
        mean, log_std = nets.policy.apply(params, states)
        return (mean + jnp.exp(log_std) * noise) * max_action, (mean, log_std)
    if cfg.policy == "deterministic":
        actions = nets.policy.apply(params, states) * max_action
        return jnp.broadcast_to(actions, jnp.broadcast_shapes(actions.shape, noise.shape)), None
    return _implicit_actions(nets, params, states, noise, cfg), None


def sample_actions(
    nets: Networks,
    params: Any,
    states: jax.Array,
    key: jax.Array,
    cfg: AgentConfig,
    max_action: float,
) -> tuple[jax.Array, tuple[jax.Array, jax.Array] | None]:
    """Stochastic actions [B, A] (reparameterised) and, for the Gaussians, the head's
    (mean, log_std)."""
    noise = jax.random.normal(key, (states.shape[0], nets.diffusion.act_dim))
    return actions_from_noise(nets, params, states, noise, cfg, max_action)


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
    noise = jax.random.normal(key, (states.shape[0], cfg.num_candidates, nets.diffusion.act_dim))
    actions, _ = actions_from_noise(nets, params, states[:, None], noise, cfg, max_action)
    return jnp.clip(actions, -max_action, max_action)


def select_by_q(
    nets: Networks,
    target_q_params: Any,
    states: jax.Array,
    candidates: jax.Array,
    key: jax.Array | None,
) -> jax.Array:
    """Score N candidates [n, N, A] of states [n, S] by min target Q (both critics in one
    batched call, the state's share of their first layer computed once); then draw one by
    softmax over the scores (the released code), or, with ``key`` None, take the best.
    Returns [n, A]."""
    q = min_q(nets, target_q_params, states[:, None], candidates)  # [n, N]
    if key is None:
        choice = jnp.argmax(q, axis=-1)
    else:
        choice = jax.random.categorical(key, q, axis=-1)
    return jnp.take_along_axis(candidates, choice[:, None, None], axis=1)[:, 0]


# --- acting -----------------------------------------------------------------------------------


@struct.dataclass
class ActingParams:
    """What acting reads of a trained state: the one-step policy's parameters, the target
    critics' (None without critics: BC) and the behaviour diffusion model's (None without one:
    IQL, BC). The jitted act functions take this rather than the training state, whose optimiser
    states would otherwise be passed, and dispatched, on every call."""

    policy: Any
    target_q: Any
    diffusion: Any
    act_dim: int = struct.field(pytree_node=False)
    max_action: float = struct.field(pytree_node=False)

    def needed_for(self, act_mode: str) -> ActingParams:
        """Only what ``act_mode`` reads (the rest None): fewer leaves to pass on each call,
        which is most of the cost of a batch-1 action."""
        reads = ACT_MODE_READS[act_mode]
        return self.replace(
            **{name: None for name in ("policy", "target_q", "diffusion") if name not in reads}
        )


# The parameters each way of acting reads.
ACT_MODE_READS = {
    "mean": ("policy",),
    "candidates": ("policy", "target_q"),
    "diffusion": ("diffusion", "target_q"),
}


def acting_params(state: Any) -> ActingParams:
    """The ``ActingParams`` of any algorithm's state (stacked states give stacked params)."""
    critics = getattr(state, "critics", None)
    diffusion = getattr(state, "diffusion", None)
    return ActingParams(
        policy=state.policy.params,
        target_q=None if critics is None else critics.target_q_params,
        diffusion=None if diffusion is None else diffusion.params,
        act_dim=state.act_dim,
        max_action=state.max_action,
    )


def act_mean(acting: ActingParams, observations: jax.Array, cfg: LearnerConfig) -> jax.Array:
    """The one-step policy's deterministic action [n, A]."""
    nets = build_networks(cfg.agent, acting.act_dim)
    return deterministic_actions(nets, acting.policy, observations, cfg.agent, acting.max_action)


def act_candidates(
    acting: ActingParams, observations: jax.Array, key: jax.Array, cfg: LearnerConfig
) -> jax.Array:
    """Released-code acting: N policy samples, scored by min target Q, one drawn by softmax."""
    nets = build_networks(cfg.agent, acting.act_dim)
    key_sample, key_choice = jax.random.split(key)
    candidates = sample_candidates(
        nets, acting.policy, observations, key_sample, cfg.agent, acting.max_action
    )
    return select_by_q(nets, acting.target_q, observations, candidates, key_choice)


def act_diffusion(
    acting: ActingParams, observations: jax.Array, key: jax.Array, cfg: LearnerConfig
) -> jax.Array:
    """Iterative denoising, the way DTQL avoids (IDQL's acting): ``diffusion_candidates``
    actions per state from the behaviour diffusion model, each by ``diffusion_sampling_steps``
    steps of EDM's sampler, and the one with the highest min target Q. [n, A]."""
    agent = cfg.agent
    nets = build_networks(agent, acting.act_dim)
    n = observations.shape[0]
    noise = jax.random.normal(key, (n, agent.diffusion_candidates, acting.act_dim))
    candidates = sample_actions_edm(
        bind_raw_network(nets, acting.diffusion),
        observations[:, None],
        noise,
        agent.diffusion_sampling_steps,
        agent.edm,
        acting.max_action,
        agent.diffusion_sampling_sigma_max,
    )
    return select_by_q(nets, acting.target_q, observations, candidates, key=None)
