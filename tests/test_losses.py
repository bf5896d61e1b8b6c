"""Loss functions, one per equation: Eqs. 2, 4, 5, 6, 7, KL's Eq. 12 and policy loss, NLL, AWR."""

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dtql.algos.common import build_networks, init_trainable
from dtql.algos.diffusion import diffusion_bc_step, diffusion_optimizer
from dtql.algos.policies import policy_nll, policy_sampler, sample_actions
from dtql.config import AgentConfig, EDMConfig, LearnerConfig
from dtql.losses import (
    action_space_nll,
    awr_loss,
    dataset_nll,
    dtql_policy_loss,
    expectile_loss,
    kl_policy_loss,
    kl_regularization_loss,
    mse_bc_loss,
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
    # The stop-gradient into the diffusion parameters is inside the loss, not the caller's job.
    nets, params = _tiny_diffusion()
    states = jax.random.normal(jax.random.key(1), (8, 3))
    actions = jnp.tanh(jax.random.normal(jax.random.key(2), (8, 2)))

    def loss(diffusion_params, policy_actions):
        return trust_region_loss(
            nets.diffusion.apply,
            diffusion_params,
            policy_actions,
            states,
            jax.random.key(3),
            EDMConfig(),
            1.0,
        )

    grad_diffusion, grad_actions = jax.grad(loss, argnums=(0, 1))(params, actions)
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(grad_diffusion))
    assert float(jnp.abs(grad_actions).max()) > 0.0


def test_trust_region_loss_is_lower_on_the_data_than_off_it():
    # A diffusion model trained on actions near +0.5 assigns low TR loss there, high far away.
    cfg = LearnerConfig(agent=AgentConfig(hidden_dim=64, lr=3e-3))
    nets = build_networks(cfg.agent, 1)
    states = jnp.zeros((256, 1))
    params = nets.diffusion.init(
        jax.random.key(0), jnp.zeros((1, 1)), jnp.zeros((1, 1)), states[:1]
    )
    opt = diffusion_optimizer(cfg)
    model = init_trainable(params, opt)
    data = 0.5 + 0.05 * jax.random.normal(jax.random.key(1), (256, 1))

    @jax.jit
    def step(model, key):
        return diffusion_bc_step(model, opt, data, states, key, nets, cfg, 1.0)[0]

    for i in range(400):
        model = step(model, jax.random.key(i))

    def tr_at(value):
        actions = jnp.full((256, 1), value)
        key = jax.random.key(9)
        apply = nets.diffusion.apply
        return float(
            trust_region_loss(apply, model.params, actions, states, key, cfg.agent.edm, 1.0)
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
    grad = jax.grad(kl_regularization_loss)(actions, real, fake)
    weight = np.mean(np.abs(actions - real), axis=-1, keepdims=True)
    expected = (fake - real) / weight / actions.size  # 0.5 * mean((a - sg(a - g))^2)
    np.testing.assert_allclose(grad, expected, rtol=1e-5)


def test_awr_weights_are_clipped():
    nll = jnp.array([1.0, 1.0])
    loss = awr_loss(nll, jnp.array([100.0, 0.0]), temperature=3.0, max_weight=100.0)
    assert float(loss) == pytest.approx((100.0 + 1.0) / 2)


# --- Eq. 5 and the KL policy loss: the whole policy objective, checked term by term ------------


def _policy_problem(policy: str = "gaussian"):
    """Tiny networks and a batch for the policy losses (act_dim 2, obs_dim 3, 8 states)."""
    agent = AgentConfig(hidden_dim=16, policy=policy)
    nets = build_networks(agent, 2)
    keys = jax.random.split(jax.random.key(0), 5)
    states = jax.random.normal(keys[0], (8, 3))
    dataset_actions = 0.9 * jnp.tanh(jax.random.normal(keys[1], (8, 2)))
    zeros_a, zeros_s = jnp.zeros((1, 2)), jnp.zeros((1, 3))
    diffusion_params = nets.diffusion.init(keys[2], zeros_a, zeros_a[:, :1], zeros_s)
    q_params = nets.q.init(keys[3], zeros_s, zeros_a)
    if policy == "gaussian":
        policy_params = nets.policy.init(keys[4], zeros_s)
    else:
        policy_params = nets.diffusion.init(keys[4], zeros_a, zeros_a[:, :1], zeros_s)
    return agent, nets, states, dataset_actions, diffusion_params, q_params, policy_params


def _dtql_loss(agent, nets, diffusion_params, q_params):
    return partial(
        dtql_policy_loss,
        sample_policy=policy_sampler(nets, agent, 1.0),
        diffusion_apply=nets.diffusion.apply,
        diffusion_params=diffusion_params,
        q_apply=nets.q.apply,
        q_params=q_params,
        policy_key=jax.random.key(7),
        noise_key=jax.random.key(8),
        agent=agent,
        max_action=1.0,
    )


def test_dtql_policy_loss_is_alpha_tr_minus_min_q_plus_the_entropy_term():
    agent, nets, states, data_actions, diff_params, q_params, pol_params = _policy_problem()
    agent = AgentConfig(hidden_dim=16, alpha=2.5, entropy_coef=0.3)
    loss, m = _dtql_loss(agent, nets, diff_params, q_params)(pol_params, states, data_actions)

    # Rebuild each term by hand from the same draws.
    actions, (mean, log_std) = policy_sampler(nets, agent, 1.0)(
        pol_params, states, jax.random.key(7)
    )
    tr = trust_region_loss(
        nets.diffusion.apply, diff_params, actions, states, jax.random.key(8), agent.edm, 1.0
    )
    min_q = jnp.min(nets.q.apply(q_params, states, actions), axis=0)
    nll = jnp.mean(dataset_nll(mean, log_std, data_actions, 1.0))
    np.testing.assert_allclose(m["policy/tr_loss"], tr, rtol=1e-6)
    np.testing.assert_allclose(m["policy/q_term"], -jnp.mean(min_q), rtol=1e-6)
    np.testing.assert_allclose(m["policy/nll_term"], nll, rtol=1e-6)
    np.testing.assert_allclose(loss, 2.5 * tr - jnp.mean(min_q) + 0.3 * nll, rtol=1e-6)

    # alpha scales the trust-region term alone; without the entropy term it contributes 0.
    no_entropy = AgentConfig(hidden_dim=16, alpha=5.0)
    loss5, m5 = _dtql_loss(no_entropy, nets, diff_params, q_params)(
        pol_params, states, data_actions
    )
    np.testing.assert_allclose(loss5, 5.0 * tr - jnp.mean(min_q), rtol=1e-6)
    assert float(m5["policy/nll_term"]) == 0.0


def test_dtql_policy_loss_gradients_reach_only_the_policy():
    agent, nets, states, data_actions, diff_params, q_params, pol_params = _policy_problem()
    agent = AgentConfig(hidden_dim=16, entropy_coef=0.5)

    def loss(policy_params, diffusion_params, q_params):
        fn = _dtql_loss(agent, nets, diffusion_params, q_params)
        return fn(policy_params, states, data_actions)[0]

    g_policy, g_diffusion, g_q = jax.grad(loss, argnums=(0, 1, 2))(
        pol_params, diff_params, q_params
    )
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves((g_diffusion, g_q)))
    assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(g_policy)) > 0.0


def _kl_loss(agent, nets, states, generator, real, fake, q):
    """kl_policy_loss on the tiny problem, with fixed keys and max_action 1."""
    return kl_policy_loss(
        generator,
        states,
        sample_policy=policy_sampler(nets, agent, 1.0),
        diffusion_apply=nets.diffusion.apply,
        real_params=real,
        fake_params=fake,
        q_apply=nets.q.apply,
        q_params=q,
        policy_key=jax.random.key(1),
        noise_key=jax.random.key(2),
        agent=agent,
        max_action=1.0,
    )


def test_kl_policy_loss_gradients_reach_only_the_generator_and_return_its_actions():
    agent, nets, states, _, diff_params, q_params, gen_params = _policy_problem("implicit")
    fake_params = jax.tree.map(lambda x: 1.01 * x, diff_params)
    loss = partial(_kl_loss, agent, nets, states)
    grads, (actions, metrics) = jax.grad(loss, argnums=(0, 1, 2, 3), has_aux=True)(
        gen_params, diff_params, fake_params, q_params
    )
    assert actions.shape == (8, 2)
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(grads[1:]))
    assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads[0])) > 0.0
    expected = agent.alpha * metrics["policy/kl_loss"] + metrics["policy/q_term"]
    np.testing.assert_allclose(metrics["policy/loss"], expected, rtol=1e-6)


def test_kl_policy_loss_reports_the_share_of_generator_actions_outside_the_box():
    agent, nets, states, _, diff_params, q_params, gen_params = _policy_problem("implicit")
    for scale in (1.0, 50.0):  # 50x the weights: a generator far outside [-1, 1]
        generator = jax.tree.map(lambda x, s=scale: s * x, gen_params)
        _, (actions, metrics) = _kl_loss(agent, nets, states, generator, diff_params,
                                         diff_params, q_params)  # fmt: skip
        expected = float(np.mean(np.abs(np.asarray(actions)) > 1.0))
        assert float(metrics["policy/outside_box"]) == pytest.approx(expected)
    assert expected > 0.5


def test_action_space_nll_matches_a_hand_computation():
    mean, log_std = jnp.array([[0.1, -0.2]]), jnp.array([[-1.0, 0.5]])
    actions = jnp.array([[0.5, -0.9]])
    std = np.exp([-1.0, 0.5])
    expected = -np.sum(
        -0.5 * ((np.array([0.5, -0.9]) - [0.1, -0.2]) / std) ** 2
        - np.log(std)
        - 0.5 * np.log(2 * np.pi)
    )
    np.testing.assert_allclose(action_space_nll(mean, log_std, actions), [expected], rtol=1e-5)


def test_iql_actor_likelihood_is_in_action_space():
    agent = AgentConfig(hidden_dim=16, policy="iql_gaussian")
    nets = build_networks(agent, 2)
    states = jax.random.normal(jax.random.key(0), (4, 3))
    actions = 0.5 * jnp.tanh(jax.random.normal(jax.random.key(1), (4, 2)))
    params = nets.policy.init(jax.random.key(2), states[:1])
    mean, log_std = nets.policy.apply(params, states)
    np.testing.assert_allclose(
        policy_nll(nets, params, states, actions, agent, 1.0),
        action_space_nll(mean, log_std, actions),
        rtol=1e-6,
    )


def test_the_released_implicit_generator_is_the_raw_network():
    agent = AgentConfig(hidden_dim=16, policy="implicit")
    nets = build_networks(agent, 2)
    states = jax.random.normal(jax.random.key(0), (4, 3))
    params = nets.diffusion.init(
        jax.random.key(1), jnp.zeros((1, 2)), jnp.zeros((1, 1)), states[:1]
    )
    actions, _ = sample_actions(nets, params, states, jax.random.key(2), agent, 1.0)
    z = jax.random.normal(jax.random.key(2), (4, 2))
    expected = nets.diffusion.apply(params, 2.5 * z, jnp.full((4, 1), 2.5), states)
    np.testing.assert_allclose(actions, expected, rtol=1e-6)
    preconditioned = dataclasses.replace(agent, implicit_generator="preconditioned")
    other, _ = sample_actions(nets, params, states, jax.random.key(2), preconditioned, 1.0)
    assert not np.allclose(actions, other)


def test_kl_policy_loss_clamps_the_denoised_actions_when_asked():
    agent, nets, states, _, diff_params, q_params, gen_params = _policy_problem("implicit")
    big = jax.tree.map(lambda x: 50.0 * x, diff_params)  # denoisers far outside [-1, 1]

    def kl_loss(clamp: bool) -> float:
        edm = dataclasses.replace(agent.edm, clamp_denoised=clamp)
        cfg = dataclasses.replace(agent, edm=edm)
        _, (_, metrics) = _kl_loss(cfg, nets, states, gen_params, big, diff_params, q_params)
        return float(metrics["policy/kl_loss"])

    assert kl_loss(True) != kl_loss(False)


def test_mse_bc_loss_is_the_mean_squared_error_over_batch_and_dims():
    predicted = jnp.array([[0.5, -0.5], [0.0, 1.0]])
    actions = jnp.array([[0.0, -0.5], [0.0, 0.0]])
    assert float(mse_bc_loss(predicted, actions)) == pytest.approx((0.25 + 0 + 0 + 1) / 4)
