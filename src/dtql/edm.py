"""The EDM noise schedule and preconditioning (Karras et al. 2022; the paper's Appendix C).

Everything the diffusion model needs to know about noise lives here: how sigma is drawn, the four
preconditioning coefficients, the denoiser D built around a raw network F, and the one weighted
denoising error shared by behaviour cloning (Eq. 2), the trust-region loss (Eq. 4), the KL
baseline's noisy actions and the toy lab's loss map.

One deliberate difference from the paper's text: Appendix C prints c_in = 1 / (sigma^2 +
sigma_data^2), without the square root that EDM (which the paper says it follows) has. We use
EDM's c_in = 1 / sqrt(sigma^2 + sigma_data^2), which keeps the network input at unit variance.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from dtql.config import EDMConfig

# F(c_in * a_noisy, c_noise, state) -> [B, A]: the raw network, parameters already bound.
RawNetwork = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def precondition(
    sigma: jax.Array, sigma_data: float
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """The EDM coefficients (c_skip, c_out, c_in, c_noise) for noise levels ``sigma`` [B, 1]."""
    c_skip = sigma_data**2 / (sigma**2 + sigma_data**2)
    c_out = sigma * sigma_data / jnp.sqrt(sigma**2 + sigma_data**2)
    c_in = 1.0 / jnp.sqrt(sigma**2 + sigma_data**2)
    c_noise = jnp.log(sigma) / 4.0
    return c_skip, c_out, c_in, c_noise


def sample_sigma(key: jax.Array, shape: tuple[int, ...], cfg: EDMConfig) -> jax.Array:
    """ln(sigma) ~ Logistic(log_sigma_loc, log_sigma_scale) truncated to [sigma_min, sigma_max].

    Drawn by inverting the logistic CDF on the interval the truncation keeps, so it is exact and
    needs no rejection loop.
    """
    log_lo, log_hi = jnp.log(cfg.sigma_min), jnp.log(cfg.sigma_max)
    cdf_lo = jax.nn.sigmoid((log_lo - cfg.log_sigma_loc) / cfg.log_sigma_scale)
    cdf_hi = jax.nn.sigmoid((log_hi - cfg.log_sigma_loc) / cfg.log_sigma_scale)
    u = jax.random.uniform(key, shape, minval=cdf_lo, maxval=cdf_hi)
    log_sigma = cfg.log_sigma_loc + cfg.log_sigma_scale * jax.scipy.special.logit(u)
    return jnp.exp(jnp.clip(log_sigma, log_lo, log_hi))


def denoise(
    raw_network: RawNetwork,
    a_noisy: jax.Array,
    sigma: jax.Array,
    states: jax.Array,
    sigma_data: float,
) -> jax.Array:
    """The denoiser D(a_noisy, sigma | s) = c_skip a_noisy + c_out F(c_in a_noisy, c_noise | s)."""
    c_skip, c_out, c_in, c_noise = precondition(sigma, sigma_data)
    return c_skip * a_noisy + c_out * raw_network(c_in * a_noisy, c_noise, states)


def bound_denoised(denoised: jax.Array, cfg: EDMConfig, max_action: float) -> jax.Array:
    """D clamped to the action bounds [-max_action, max_action] when ``cfg.clamp_denoised``
    (the released code's losses), else D unchanged."""
    return jnp.clip(denoised, -max_action, max_action) if cfg.clamp_denoised else denoised


def loss_weight(sigma: jax.Array, sigma_data: float) -> jax.Array:
    """lambda(sigma) = 1 / c_out(sigma)^2 (Appendix C, 'Weight Schedule')."""
    _, c_out, _, _ = precondition(sigma, sigma_data)
    return 1.0 / c_out**2


def sample_noise(
    key: jax.Array, shape: tuple[int, ...], cfg: EDMConfig
) -> tuple[jax.Array, jax.Array]:
    """One noise draw for actions of ``shape`` [B, A]: sigma [B, 1] and eps [B, A]."""
    key_sigma, key_eps = jax.random.split(key)
    return sample_sigma(key_sigma, (shape[0], 1), cfg), jax.random.normal(key_eps, shape)


def add_noise(actions: jax.Array, sigma: jax.Array, eps: jax.Array) -> jax.Array:
    """The forward process a_t = alpha_t a + sigma_t eps with alpha_t = 1 (Appendix C)."""
    return actions + sigma * eps


def denoising_error(
    raw_network: RawNetwork,
    actions: jax.Array,
    states: jax.Array,
    sigma: jax.Array,
    eps: jax.Array,
    cfg: EDMConfig,
    max_action: float,
) -> jax.Array:
    """Per-sample weighted denoising error lambda(sigma) ||D(a + sigma eps, sigma | s) - a||^2.

    The one noising-and-weighting rule of the package: the BC loss (Eq. 2), the trust-region
    loss (Eq. 4) and the toy lab's loss map all go through it. ``actions`` [B, A], ``states``
    [B, S], ``sigma`` [B, 1] (or a scalar), ``eps`` [B, A]; returns [B] (mean over action
    dims). Gradients flow into ``actions`` through both the noisy input and the target, which
    the trust-region loss relies on.
    """
    denoised = denoise(raw_network, add_noise(actions, sigma, eps), sigma, states, cfg.sigma_data)
    denoised = bound_denoised(denoised, cfg, max_action)
    return jnp.mean(loss_weight(sigma, cfg.sigma_data) * (denoised - actions) ** 2, axis=-1)


def weighted_denoising_loss(
    raw_network: RawNetwork,
    actions: jax.Array,
    states: jax.Array,
    key: jax.Array,
    cfg: EDMConfig,
    max_action: float,
) -> jax.Array:
    """``denoising_error`` at a fresh noise draw: one sigma and one eps per sample. Returns [B]."""
    sigma, eps = sample_noise(key, actions.shape, cfg)
    return denoising_error(raw_network, actions, states, sigma, eps, cfg, max_action)


# --- sampling: iterative denoising from the behaviour model (acting the IDQL way) --------------


def sampling_sigmas(
    steps: int, cfg: EDMConfig, sigma_max: float | None = None, rho: float = 7.0
) -> jax.Array:
    """EDM's time steps: ``steps`` noise levels from ``sigma_max`` (default cfg.sigma_max) down
    to sigma_min, spaced uniformly in sigma^(1/rho) (Karras et al. 2022, Eq. 5), then a final 0.
    Returns [steps + 1]."""
    i = jnp.arange(steps)
    ramp = i / max(steps - 1, 1)
    sigma_max = cfg.sigma_max if sigma_max is None else sigma_max
    lo, hi = cfg.sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    return jnp.concatenate([sigmas, jnp.zeros(1)])


def sample_actions_edm(
    raw_network: RawNetwork,
    states: jax.Array,
    noise: jax.Array,
    steps: int,
    cfg: EDMConfig,
    max_action: float,
    sigma_max: float | None = None,
) -> jax.Array:
    """Actions drawn from the diffusion model by EDM's deterministic sampler (Karras et al.
    2022, Algorithm 1: Heun's second-order steps, Euler on the last one): ``2 steps - 1``
    evaluations of the denoiser. ``noise`` ~ N(0, I) of the actions' shape [..., A] (scaled by
    the first sigma here); ``states`` broadcast against it ([n, 1, S] for N candidates per state).
    Denoised estimates are bounded as in the losses (``bound_denoised``); the result is clipped
    to the action bounds. ``sigma_max`` starts the schedule lower than cfg.sigma_max (see
    ``sampling_sigmas``).
    """
    sigmas = sampling_sigmas(steps, cfg, sigma_max)

    def derivative(a: jax.Array, sigma: jax.Array) -> jax.Array:
        # One sigma for every action: its time embedding is computed once and broadcast.
        sigma_b = jnp.reshape(sigma, (1,) * a.ndim)
        denoised = denoise(raw_network, a, sigma_b, states, cfg.sigma_data)
        return (a - bound_denoised(denoised, cfg, max_action)) / sigma

    a = noise * sigmas[0]
    for i in range(steps):  # static: a handful of steps, each with its own fixed sigma
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        slope = derivative(a, sigma)
        euler = a + (sigma_next - sigma) * slope
        if i == steps - 1:  # the last step lands on sigma = 0: Euler
            a = euler
        else:  # Heun's second-order correction
            a = a + (sigma_next - sigma) * 0.5 * (slope + derivative(euler, sigma_next))
    return jnp.clip(a, -max_action, max_action)
