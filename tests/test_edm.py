"""The EDM schedule and preconditioning (Appendix C)."""

import jax
import jax.numpy as jnp
import numpy as np

from dtql.config import EDMConfig
from dtql.edm import (
    denoise,
    denoising_error,
    loss_weight,
    precondition,
    sample_actions_edm,
    sample_noise,
    sample_sigma,
    sampling_sigmas,
    weighted_denoising_loss,
)


def test_preconditioning_limits_at_small_and_large_sigma():
    c_skip, c_out, c_in, c_noise = precondition(jnp.array([1e-6, 1e6]), 0.5)
    np.testing.assert_allclose(c_skip, [1.0, 0.0], atol=1e-6)  # clean input passes through
    np.testing.assert_allclose(c_out, [0.0, 0.5], atol=1e-6)  # pure noise: predict at data scale
    np.testing.assert_allclose(c_in, [2.0, 1e-6], rtol=1e-4)
    np.testing.assert_allclose(c_noise, np.log([1e-6, 1e6]) / 4, rtol=1e-5)


def test_preconditioning_matches_formulas_at_sigma_data():
    c_skip, c_out, c_in, _ = precondition(jnp.array(0.5), 0.5)
    np.testing.assert_allclose(
        [c_skip, c_out, c_in], [0.5, 0.5 / np.sqrt(2), 1 / np.sqrt(0.5)], rtol=1e-6
    )


def test_loss_weight_is_inverse_c_out_squared():
    sigma = jnp.array([0.01, 0.5, 3.0, 80.0])
    _, c_out, _, _ = precondition(sigma, 0.5)
    np.testing.assert_allclose(loss_weight(sigma, 0.5), 1.0 / c_out**2, rtol=1e-6)


def test_sigma_samples_stay_in_range_and_follow_the_logistic():
    cfg = EDMConfig()
    sigma = np.asarray(sample_sigma(jax.random.key(0), (200_000,), cfg))
    assert sigma.min() >= cfg.sigma_min and sigma.max() <= cfg.sigma_max
    log_sigma = np.log(sigma)
    # Logistic(loc, s): median loc, variance s^2 pi^2 / 3 (truncation at [0.002, 80] is far out).
    assert abs(np.median(log_sigma) - np.log(0.5)) < 0.01
    assert abs(log_sigma.std() - 0.5 * np.pi / np.sqrt(3)) < 0.01


def test_truncation_is_respected_for_a_narrow_range():
    cfg = EDMConfig(sigma_min=0.4, sigma_max=0.6)
    sigma = np.asarray(sample_sigma(jax.random.key(1), (10_000,), cfg))
    assert sigma.min() >= 0.4 and sigma.max() <= 0.6


def test_denoiser_with_zero_network_is_the_skip_connection():
    a_noisy = jnp.ones((4, 2))
    sigma = jnp.full((4, 1), 0.5)

    def zero(x, c_noise, s):
        return jnp.zeros_like(x)

    np.testing.assert_allclose(denoise(zero, a_noisy, sigma, jnp.zeros((4, 1)), 0.5), 0.5)


def test_weighted_loss_matches_a_hand_computation():
    cfg = EDMConfig()
    actions = jnp.array([[0.3, -0.2], [0.9, 0.1], [-0.5, 0.5]])
    states = jnp.zeros((3, 1))
    key = jax.random.key(3)

    def zero_network(x, c_noise, s):
        return jnp.zeros_like(x)

    loss = weighted_denoising_loss(zero_network, actions, states, key, cfg, 1.0)
    key_sigma, key_eps = jax.random.split(key)
    sigma = np.asarray(sample_sigma(key_sigma, (3, 1), cfg))
    eps = np.asarray(jax.random.normal(key_eps, (3, 2)))
    c_skip = 0.25 / (sigma**2 + 0.25)
    c_out = sigma * 0.5 / np.sqrt(sigma**2 + 0.25)
    expected = np.mean((c_skip * (actions + sigma * eps) - actions) ** 2 / c_out**2, axis=-1)
    np.testing.assert_allclose(loss, expected, rtol=1e-4)


def test_clamp_option_bounds_the_denoised_action():
    actions = jnp.zeros((2, 2))
    cfg = EDMConfig(sigma_min=1.0, sigma_max=1.0, clamp_denoised=False)

    def huge(x, c_noise, s):
        return jnp.full_like(x, 1e6)

    free = weighted_denoising_loss(huge, actions, actions, jax.random.key(0), cfg, 1.0)
    clamped = weighted_denoising_loss(
        huge,
        actions,
        actions,
        jax.random.key(0),
        EDMConfig(sigma_min=1.0, sigma_max=1.0, clamp_denoised=True),
        1.0,
    )
    assert np.all(free > 1e10)
    # D is clamped to +-1, so |D - a| <= 1 and the loss is at most 1 / c_out(1)^2.
    assert np.all(clamped <= float(loss_weight(jnp.array(1.0), 0.5)) + 1e-5)


def test_the_loss_is_the_denoising_error_at_one_noise_draw():
    # Eq. 2 and Eq. 4 (weighted_denoising_loss) and the toy loss map (denoising_error at a chosen
    # sigma) share one rule: the loss is that error at sample_noise's draw for the same key.
    cfg = EDMConfig()
    actions = jnp.array([[0.3, -0.2], [0.9, 0.1]])
    states = jnp.ones((2, 1))

    def network(x, c_noise, s):
        return jnp.tanh(x + c_noise + s)

    key = jax.random.key(5)
    sigma, eps = sample_noise(key, actions.shape, cfg)
    assert sigma.shape == (2, 1) and eps.shape == (2, 2)
    expected = denoising_error(network, actions, states, sigma, eps, cfg, 1.0)
    np.testing.assert_array_equal(
        weighted_denoising_loss(network, actions, states, key, cfg, 1.0), expected
    )


def test_sampling_sigmas_run_from_sigma_max_to_sigma_min_then_zero():
    cfg = EDMConfig()
    sigmas = np.asarray(sampling_sigmas(5, cfg))
    assert sigmas.shape == (6,) and sigmas[-1] == 0.0
    np.testing.assert_allclose(sigmas[[0, 4]], [cfg.sigma_max, cfg.sigma_min], rtol=1e-5)
    assert np.all(np.diff(sigmas) < 0)


def test_edm_sampler_draws_from_the_distribution_of_an_exact_denoiser():
    # Data a ~ N(mu, s^2): the ideal denoiser is D(x, sigma) = (s^2 x + sigma^2 mu) / (s^2 +
    # sigma^2). Written as the raw network F that edm.denoise wraps, the sampler must return
    # samples of N(mu, s^2), with 2 steps - 1 calls of the network.
    cfg, mu, s = EDMConfig(), 0.3, 0.2
    calls = []

    def raw_network(scaled, c_noise, states):
        calls.append(1)
        sigma = jnp.exp(4.0 * c_noise)
        c_skip, c_out, c_in, _ = precondition(sigma, cfg.sigma_data)
        x = scaled / c_in
        ideal = (s**2 * x + sigma**2 * mu) / (s**2 + sigma**2)
        return (ideal - c_skip * x) / c_out

    noise = jax.random.normal(jax.random.key(0), (1, 4000, 1))
    samples = sample_actions_edm(raw_network, jnp.zeros((1, 1, 2)), noise, 18, cfg, 10.0)
    assert len(calls) == 2 * 18 - 1
    assert abs(float(samples.mean()) - mu) < 0.02
    assert abs(float(samples.std()) - s) < 0.02
