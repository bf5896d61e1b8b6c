"""Pure loss functions. Each returns a scalar; the equation it implements is in its docstring.

Networks come in as bound callables (parameters already applied), so the gradient path is
explicit at the call site: whatever the caller differentiates with respect to is what learns.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dtql.config import EDMConfig
from dtql.edm import RawNetwork, weighted_denoising_loss


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
    frozen_diffusion: RawNetwork,
    policy_actions: jax.Array,
    states: jax.Array,
    key: jax.Array,
    cfg: EDMConfig,
    max_action: float,
) -> jax.Array:
    """Eq. 4: the diffusion trust-region loss, the denoising loss at the policy's actions a_theta.

    ``frozen_diffusion`` must be the behaviour-cloning network with its parameters under
    ``stop_gradient``: only the one-step policy learns from this loss. Fresh sigma and eps are
    drawn; the gradient reaches a_theta through the noisy input and through the target.
    """
    return jnp.mean(
        weighted_denoising_loss(frozen_diffusion, policy_actions, states, key, cfg, max_action)
    )


def expectile_loss(diff: jax.Array, expectile: float) -> jax.Array:
    """L_2^tau(u) = |tau - 1(u < 0)| u^2, elementwise (the asymmetric loss of Eq. 6)."""
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


def kl_distill_loss(
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


def awr_loss(
    nll: jax.Array, advantages: jax.Array, temperature: float, max_weight: float
) -> jax.Array:
    """IQL policy extraction: mean of min(exp(beta A), max_weight) * NLL(dataset action)."""
    weights = jnp.minimum(jnp.exp(temperature * jax.lax.stop_gradient(advantages)), max_weight)
    return jnp.mean(weights * nll)
