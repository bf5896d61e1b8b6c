"""Pure loss functions, one per equation; the equation number is in each docstring.

- Eq. 2 ``diffusion_bc_loss``, Eq. 4 ``trust_region_loss``, Eq. 5 ``dtql_policy_loss``,
  Eq. 6 ``value_loss``, Eq. 7 ``q_loss``; Appendix D's Eq. 12 ``kl_regularization_loss`` and
  the KL baseline's policy loss ``kl_policy_loss``; the entropy term's ``dataset_nll``; IQL's
  ``awr_loss``; BC's ``mse_bc_loss``.

Networks come in as Flax ``apply`` functions with their parameters, so the gradient path is
explicit: a model that must not learn from a loss has its parameters under ``stop_gradient``
inside that loss, whatever the caller differentiates.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from dtql.config import AgentConfig, EDMConfig
from dtql.edm import (
    RawNetwork,
    add_noise,
    bound_denoised,
    denoise,
    sample_noise,
    weighted_denoising_loss,
)

Metrics = dict[str, jax.Array]
# The raw diffusion network's Flax apply: (params, c_in a_noisy, c_noise, s) -> F [B, A].
DiffusionApply = Callable[[Any, jax.Array, jax.Array, jax.Array], jax.Array]
# The twin critics' Flax apply: (params, s, a) -> [2, B].
TwinQApply = Callable[[Any, jax.Array, jax.Array], jax.Array]
# A one-step policy: (params, s, key) -> (a_theta [B, A], (mean, log_std) of the Gaussian or None).
SamplePolicy = Callable[
    [Any, jax.Array, jax.Array], tuple[jax.Array, tuple[jax.Array, jax.Array] | None]
]


def diffusion_bc_loss(
    raw_network: RawNetwork,
    actions: jax.Array,
    states: jax.Array,
    key: jax.Array,
    cfg: EDMConfig,
    max_action: float,
) -> jax.Array:
    """Eq. 2: behaviour cloning by the weighted denoising loss on dataset actions [B, A]."""
    return jnp.mean(weighted_denoising_loss(raw_network, actions, states, key, cfg, max_action))


def trust_region_loss(
    diffusion_apply: DiffusionApply,
    diffusion_params: Any,
    policy_actions: jax.Array,
    states: jax.Array,
    key: jax.Array,
    cfg: EDMConfig,
    max_action: float,
) -> jax.Array:
    """Eq. 4: the diffusion trust-region loss, the denoising loss at the policy's actions a_theta.

    The behaviour-cloning model is frozen here (its parameters are under ``stop_gradient``):
    only a_theta, and through it the one-step policy, learns from this loss. Fresh sigma and eps
    are drawn; the gradient reaches a_theta through the noisy input and through the target.
    """
    frozen = partial(diffusion_apply, jax.lax.stop_gradient(diffusion_params))
    return jnp.mean(weighted_denoising_loss(frozen, policy_actions, states, key, cfg, max_action))


def q_term(q_apply: TwinQApply, q_params: Any, states: jax.Array, actions: jax.Array) -> jax.Array:
    """-E[min(Q1, Q2)(s, a_theta)], the critics frozen: the Q term of Eqs. 5 and 12's loss."""
    q = q_apply(jax.lax.stop_gradient(q_params), states, actions)
    return -jnp.mean(jnp.min(q, axis=0))


def dtql_policy_loss(
    policy_params: Any,
    states: jax.Array,
    dataset_actions: jax.Array,
    *,
    sample_policy: SamplePolicy,
    diffusion_apply: DiffusionApply,
    diffusion_params: Any,
    q_apply: TwinQApply,
    q_params: Any,
    policy_key: jax.Array,
    noise_key: jax.Array,
    agent: AgentConfig,
    max_action: float,
) -> tuple[jax.Array, Metrics]:
    """Eq. 5: L_pi(theta) = alpha L_TR(theta) - E[min(Q1, Q2)(s, a_theta)] (+ entropy term).

    a_theta ~ pi_theta(. | s) is drawn with ``policy_key``; L_TR (Eq. 4) uses ``noise_key``. With
    ``agent.entropy_coef`` > 0 the entropy term of Section 2.4 / Appendix E adds
    entropy_coef * NLL of the dataset action under the Gaussian policy. The diffusion model
    and the critics are frozen inside: gradients reach the policy's parameters only.
    Returns (loss, metrics).
    """
    actions, gaussian = sample_policy(policy_params, states, policy_key)
    tr_loss = trust_region_loss(
        diffusion_apply, diffusion_params, actions, states, noise_key, agent.edm, max_action
    )
    q_loss_term = q_term(q_apply, q_params, states, actions)
    nll_term = jnp.zeros(())
    # In a stacked program the weight may be a per-run traced value: compute the term then.
    if not (isinstance(agent.entropy_coef, float | int) and agent.entropy_coef == 0):
        mean, log_std = gaussian
        nll_term = jnp.mean(dataset_nll(mean, log_std, dataset_actions, max_action))
    loss = agent.alpha * tr_loss + q_loss_term + agent.entropy_coef * nll_term
    std = jnp.exp(gaussian[1]).mean() if gaussian is not None else jnp.zeros(())
    return loss, {
        "policy/loss": loss,
        "policy/tr_loss": tr_loss,
        "policy/q_term": q_loss_term,
        "policy/nll_term": nll_term,
        "policy/std_mean": std,
    }


def expectile_loss(diff: jax.Array, expectile: float) -> jax.Array:
    """L_2^e(u) = |e - 1(u < 0)| u^2 for the expectile e, elementwise (the asymmetric loss of Eq. 6;
    the paper writes the expectile as tau, which this package keeps for the target-update rate)."""
    weight = jnp.where(diff < 0, 1.0 - expectile, expectile)
    return weight * diff**2


def value_loss(q_target: jax.Array, v: jax.Array, expectile: float) -> jax.Array:
    """Eq. 6: expectile regression of V(s) [B] on min(Q1', Q2')(s, a) [B] (no gradient to Q)."""
    return jnp.mean(expectile_loss(jax.lax.stop_gradient(q_target) - v, expectile))


def q_loss(
    q_pred: jax.Array,
    rewards: jax.Array,
    terminals: jax.Array,
    next_v: jax.Array,
    discount: float,
) -> jax.Array:
    """Eq. 7: sum over the twin heads of mean (r + gamma (1 - d) V(s') - Q_i(s, a))^2.

    ``q_pred`` [2, B]; ``rewards``, ``terminals``, ``next_v`` [B]. The target is not
    differentiated.
    """
    target = jax.lax.stop_gradient(rewards + discount * (1.0 - terminals) * next_v)
    return jnp.sum(jnp.mean((q_pred - target[None, :]) ** 2, axis=-1))


def dataset_nll(
    mean: jax.Array, log_std: jax.Array, actions: jax.Array, max_action: float
) -> jax.Array:
    """Per-sample -log N(atanh(a / (max_action + 1e-3)); mean, std), summed over dims: [B].

    The entropy term of Eq. 5 / Appendix E (as released): the negative log-likelihood of the
    DATASET action under the policy's pre-tanh Gaussian. The tanh Jacobian is left out: for a
    fixed dataset action it does not depend on the policy's parameters.
    """
    pre_tanh = jnp.arctanh(actions / (max_action + 1e-3))
    z = (pre_tanh - mean) / jnp.exp(log_std)
    log_prob = -0.5 * z**2 - log_std - 0.5 * jnp.log(2.0 * jnp.pi)
    return -jnp.sum(log_prob, axis=-1)


def action_space_nll(mean: jax.Array, log_std: jax.Array, actions: jax.Array) -> jax.Array:
    """Per-sample -log N(a; mean, std) summed over dims: [B] (IQL's actor, density in action
    space)."""
    z = (actions - mean) / jnp.exp(log_std)
    return -jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2.0 * jnp.pi), axis=-1)


def mse_bc_loss(predicted: jax.Array, actions: jax.Array) -> jax.Array:
    """Behaviour cloning by mean squared error: mean over batch and dims of (pi(s) - a)^2, for
    the deterministic BC actor [B, A] (TD3+BC's, IQL's and CORL's BC baseline)."""
    return jnp.mean((predicted - actions) ** 2)


def kl_regularization_loss(
    policy_actions: jax.Array, real_denoised: jax.Array, fake_denoised: jax.Array
) -> jax.Array:
    """Eq. 12 (Appendix D, Algorithm 2): the KL behaviour-regularisation surrogate.

    Its gradient with respect to a_theta is (D_fake - D_real) / w with w = mean_dims
    |a_theta - D_real|, i.e. proportional to s_fake - s_real. ``real_denoised`` and
    ``fake_denoised`` [B, A] are computed without gradient at a shared noisy a_theta.
    """
    real_denoised = jax.lax.stop_gradient(real_denoised)
    fake_denoised = jax.lax.stop_gradient(fake_denoised)
    weight = jnp.mean(jnp.abs(policy_actions - real_denoised), axis=-1, keepdims=True)
    grad = (fake_denoised - real_denoised) / jax.lax.stop_gradient(weight)
    target = jax.lax.stop_gradient(policy_actions - grad)
    return 0.5 * jnp.mean((policy_actions - target) ** 2)


def kl_policy_loss(
    policy_params: Any,
    states: jax.Array,
    *,
    sample_policy: SamplePolicy,
    diffusion_apply: DiffusionApply,
    real_params: Any,
    fake_params: Any,
    q_apply: TwinQApply,
    q_params: Any,
    policy_key: jax.Array,
    noise_key: jax.Array,
    agent: AgentConfig,
    max_action: float,
) -> tuple[jax.Array, tuple[jax.Array, Metrics]]:
    """The KL baseline's policy loss: alpha L_KL(theta) (Eq. 12) - E[min(Q1, Q2)(s, a_theta)].

    The real (BC) and fake denoisers see one shared noisy a_theta (one sigma and eps per sample
    from ``noise_key``) and are not differentiated; with ``agent.edm.clamp_denoised`` both are
    clamped to the action bounds, as released. The critics are frozen. Returns (loss,
    (a_theta, metrics)): the fake model is then fitted to the detached a_theta.
    """
    actions, _ = sample_policy(policy_params, states, policy_key)
    sigma, eps = sample_noise(noise_key, actions.shape, agent.edm)
    noisy = add_noise(jax.lax.stop_gradient(actions), sigma, eps)
    sigma_data = agent.edm.sigma_data
    real = partial(diffusion_apply, jax.lax.stop_gradient(real_params))
    fake = partial(diffusion_apply, jax.lax.stop_gradient(fake_params))
    real_denoised = bound_denoised(
        denoise(real, noisy, sigma, states, sigma_data), agent.edm, max_action
    )
    fake_denoised = bound_denoised(
        denoise(fake, noisy, sigma, states, sigma_data), agent.edm, max_action
    )
    kl_loss = kl_regularization_loss(actions, real_denoised, fake_denoised)
    q_loss_term = q_term(q_apply, q_params, states, actions)
    loss = agent.alpha * kl_loss + q_loss_term
    metrics = {
        "policy/loss": loss,
        "policy/kl_loss": kl_loss,
        "policy/q_term": q_loss_term,
        # The generator is unsquashed (as released); far outside the box both clamped
        # denoisers give the bound, so Eq. 12 pulls it back little: the share out there.
        "policy/outside_box": jnp.mean(jnp.abs(actions) > max_action),
    }
    return loss, (actions, metrics)


def awr_loss(
    nll: jax.Array, advantages: jax.Array, temperature: float, max_weight: float
) -> jax.Array:
    """IQL policy extraction: mean of min(exp(beta A), max_weight) * NLL(dataset action)."""
    weights = jnp.minimum(jnp.exp(temperature * jax.lax.stop_gradient(advantages)), max_weight)
    return jnp.mean(weights * nll)
