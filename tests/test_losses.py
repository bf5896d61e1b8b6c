"""Loss functions: expectile asymmetry, the trust-region gradient path, the entropy term, KL."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dtql.algos.common import bind_denoiser, build_networks
from dtql.config import AgentConfig, EDMConfig
from dtql.losses import (
    awr_loss,
    dataset_nll,
    expectile_loss,
    kl_distill_loss,
    q_loss,
    trust_region_loss,
    value_loss,
)


def test_expectile_loss_is_asymmetric():
    diff = jnp.array([-2.0, 2.0])
    np.testing.assert_allclose(expectile_loss(diff, 0.7), [0.3 * 4, 0.7 * 4])
    np.testing.assert_allclose(expectile_loss(diff, 0.5), [2.0, 2.0])


def test_value_loss_pushes_v_to_the_upper_expectile():
    q = jnp.array([0.0, 1.0, 2.0, 3.0])
    grid = jnp.linspace(0.0, 3.0, 301)
    losses = jax.vmap(lambda v: value_loss(q, jnp.full(4, v), 0.9))(grid)
    best = float(grid[jnp.argmin(losses)])
    assert best > 2.0  # the 0.9-expectile is above the mean 1.5
    assert float(
        grid[jnp.argmin(jax.vmap(lambda v: value_loss(q, jnp.full(4, v), 0.5))(grid))]
    ) == pytest.approx(1.5)


def test_q_loss_target_ignores_next_value_at_terminals():
    q_pred = jnp.zeros((2, 2))
    loss = q_loss(
        q_pred, jnp.array([1.0, 1.0]), jnp.array([1.0, 0.0]), jnp.array([10.0, 10.0]), 0.5
    )
    # targets: 1 (terminal) and 1 + 0.5 * 10 = 6; two heads each mean((0 - t)^2) = (1 + 36) / 2
    assert float(loss) == pytest.approx(2 * 37 / 2)


def _tiny_diffusion(act_dim=2, obs_dim=3):
    nets = build_networks(AgentConfig(hidden_dim=16), act_dim)
    params = nets.diffusion.init(
        jax.random.key(0), jnp.zeros((1, act_dim)), jnp.zeros((1, 1)), jnp.zeros((1, obs_dim))
    )
    return nets, params


def test_trust_region_gradient_reaches_only_the_policy_actions():
    nets, params = _tiny_diffusion()
    states = jax.random.normal(jax.random.key(1), (8, 3))
    actions = jnp.tanh(jax.random.normal(jax.random.key(2), (8, 2)))

    def loss(diffusion_params, policy_actions):
        frozen = bind_denoiser(nets, jax.lax.stop_gradient(diffusion_params))
        return trust_region_loss(
            frozen, policy_actions, states, jax.random.key(3), EDMConfig(), 1.0
        )

    grad_diffusion, grad_actions = jax.grad(loss, argnums=(0, 1))(params, actions)
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(grad_diffusion))
    assert float(jnp.abs(grad_actions).max()) > 0.0


def test_trust_region_loss_is_lower_on_the_data_than_off_it():
    # A diffusion model trained on actions near +0.5 assigns low TR loss there, high far away.
    from dtql.algos.common import diffusion_optimizer, init_trainable, update_denoiser
    from dtql.config import TrainConfig

    cfg = TrainConfig(agent=AgentConfig(hidden_dim=64, lr=3e-3))
    nets = build_networks(cfg.agent, 1)
    states = jnp.zeros((256, 1))
    params = nets.diffusion.init(
        jax.random.key(0), jnp.zeros((1, 1)), jnp.zeros((1, 1)), states[:1]
    )
    model = init_trainable(params, diffusion_optimizer(cfg))
    data = 0.5 + 0.05 * jax.random.normal(jax.random.key(1), (256, 1))

    @jax.jit
    def step(model, key):
        return update_denoiser(model, data, states, key, nets, cfg, 1.0)[0]

    for i in range(400):
        model = step(model, jax.random.key(i))
    frozen = bind_denoiser(nets, model.params)

    def tr_at(value):
        actions = jnp.full((256, 1), value)
        return float(
            trust_region_loss(frozen, actions, states, jax.random.key(9), cfg.agent.edm, 1.0)
        )

    assert tr_at(0.5) < tr_at(-0.5)


def test_dataset_nll_matches_a_hand_computation():
    mean = jnp.array([[0.1, -0.2]])
    log_std = jnp.array([[-1.0, 0.5]])
    actions = jnp.array([[0.5, -0.9]])
    pre = np.arctanh(np.array([0.5, -0.9]) / (1.0 + 1e-3))
    std = np.exp([-1.0, 0.5])
    expected = -np.sum(
        -0.5 * ((pre - [0.1, -0.2]) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    )
    np.testing.assert_allclose(dataset_nll(mean, log_std, actions, 1.0), [expected], rtol=1e-5)


def test_kl_surrogate_gradient_is_the_normalised_score_difference():
    actions = jnp.array([[0.2, 0.4], [0.0, -0.3]])
    real = jnp.array([[0.1, 0.1], [0.2, -0.1]])
    fake = jnp.array([[0.3, 0.2], [0.1, 0.0]])
    grad = jax.grad(kl_distill_loss)(actions, real, fake)
    weight = np.mean(np.abs(actions - real), axis=-1, keepdims=True)
    expected = (fake - real) / weight / actions.size  # 0.5 * mean((a - sg(a - g))^2)
    np.testing.assert_allclose(grad, expected, rtol=1e-5)


def test_awr_weights_are_clipped():
    nll = jnp.array([1.0, 1.0])
    loss = awr_loss(nll, jnp.array([100.0, 0.0]), temperature=3.0, max_weight=100.0)
    assert float(loss) == pytest.approx((100.0 + 1.0) / 2)
