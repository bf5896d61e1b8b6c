"""Network shapes, parameter counts and output bounds."""

import jax
import jax.numpy as jnp
import numpy as np

from dtql.algos.common import build_networks
from dtql.config import AgentConfig
from dtql.networks import mish


def _count(params) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))


NETS = build_networks(AgentConfig(), act_dim=3)
OBS, ACT = jnp.zeros((5, 11)), jnp.zeros((5, 3))


def test_denoiser_shapes_and_parameter_count():
    params = NETS.diffusion.init(jax.random.key(0), ACT, ACT[:, :1], OBS)
    assert NETS.diffusion.apply(params, ACT, ACT[:, :1], OBS).shape == (5, 3)
    time_mlp = (16 * 32 + 32) + (32 * 16 + 16)
    body = (3 + 11 + 16) * 256 + 256 + 3 * (256 * 256 + 256) + 256 * 3 + 3
    assert _count(params) == time_mlp + body


def test_twin_q_returns_two_independent_heads():
    params = NETS.q.init(jax.random.key(0), OBS, ACT)
    out = NETS.q.apply(params, jax.random.normal(jax.random.key(1), (5, 11)), ACT)
    assert out.shape == (2, 5)
    assert not np.allclose(out[0], out[1])
    one_head = (14 * 256 + 256 + 2 * 256) + 2 * (256 * 256 + 256 + 2 * 256) + 257
    assert _count(params) == 2 * one_head


def test_value_network_shape():
    params = NETS.value.init(jax.random.key(0), OBS)
    assert NETS.value.apply(params, OBS).shape == (5,)
    assert _count(params) == (11 * 256 + 256) + 2 * (256 * 256 + 256) + 257


def test_gaussian_policy_log_std_is_clamped():
    params = NETS.policy.init(jax.random.key(0), OBS)
    big = 1e4 * jax.random.normal(jax.random.key(1), (5, 11))
    mean, log_std = NETS.policy.apply(params, big)
    assert mean.shape == log_std.shape == (5, 3)
    assert float(log_std.min()) >= -5.0 and float(log_std.max()) <= 2.0


def test_gaussian_policy_biases_start_at_zero():
    params = NETS.policy.init(jax.random.key(0), OBS)
    biases = [x for path, x in jax.tree_util.tree_leaves_with_path(params) if "bias" in str(path)]
    assert biases and all(float(jnp.abs(b).max()) == 0.0 for b in biases)


def test_diffusion_body_is_linear_after_its_input_layer_unless_asked():
    # Released: Linear(in, 256) then 3 x [Linear, Mish]; the paper's reading adds a Mish after
    # the first Linear. Same parameters (checkpoints fit both), different functions.
    mish_first = build_networks(AgentConfig(mish_after_input_layer=True), act_dim=3).diffusion
    params = NETS.diffusion.init(jax.random.key(0), ACT, ACT[:, :1], OBS)
    assert jax.tree.structure(params) == jax.tree.structure(
        mish_first.init(jax.random.key(0), ACT, ACT[:, :1], OBS)
    )
    x = jax.random.normal(jax.random.key(1), (5, 3))
    released = NETS.diffusion.apply(params, x, x[:, :1], OBS)
    paper = mish_first.apply(params, x, x[:, :1], OBS)
    assert not np.allclose(released, paper)


def test_iql_critics_are_two_relu_layers_without_layer_norm():
    nets = build_networks(AgentConfig(critics="iql"), act_dim=3)
    q_params = nets.q.init(jax.random.key(0), OBS, ACT)
    assert nets.q.apply(q_params, OBS, ACT).shape == (2, 5)
    assert _count(q_params) == 2 * ((14 * 256 + 256) + (256 * 256 + 256) + 257)
    assert "LayerNorm" not in str(jax.tree_util.tree_leaves_with_path(q_params))
    v_params = nets.value.init(jax.random.key(0), OBS)
    assert _count(v_params) == (11 * 256 + 256) + (256 * 256 + 256) + 257


def test_iql_actor_has_a_tanh_mean_and_one_learned_log_std():
    nets = build_networks(AgentConfig(policy="iql_gaussian"), act_dim=3)
    params = nets.policy.init(jax.random.key(0), OBS)
    mean, log_std = nets.policy.apply(params, 1e3 * jax.random.normal(jax.random.key(1), (5, 11)))
    assert float(jnp.abs(mean).max()) <= 1.0 and mean.shape == log_std.shape == (5, 3)
    assert params["params"]["log_std"].shape == (3,)  # state-independent
    assert np.all(log_std == log_std[0])


def test_mish_matches_its_definition_to_float32_rounding_with_finite_gradients():
    x = jnp.linspace(-100.0, 100.0, 20_001)
    reference = x * jnp.tanh(jax.nn.softplus(x))
    assert float(jnp.max(jnp.abs(mish(x) - reference) / (jnp.abs(reference) + 1e-30))) < 1e-6
    grads = jax.vmap(jax.grad(mish))(x)
    reference_grads = jax.vmap(jax.grad(lambda v: v * jnp.tanh(jax.nn.softplus(v))))(x)
    assert bool(jnp.isfinite(grads).all())
    np.testing.assert_allclose(grads, reference_grads, atol=2e-5)


def test_mish_gradient_is_its_float64_derivative_and_saturates_at_the_extremes():
    x = np.linspace(-100.0, 100.0, 20_001)
    tanh_softplus = np.tanh(np.logaddexp(0.0, x))
    exact = tanh_softplus + x * (1.0 - tanh_softplus**2) / (1.0 + np.exp(-x))
    grads = jax.vmap(jax.grad(mish))(jnp.asarray(x, jnp.float32))
    np.testing.assert_allclose(np.asarray(grads, np.float64), exact, rtol=0, atol=1e-6)
    extremes = jax.vmap(jax.grad(mish))(jnp.array([-1e30, 1e30, jnp.inf]))
    np.testing.assert_array_equal(extremes, [0.0, 1.0, 1.0])


def test_broadcast_state_gives_the_tiled_computation_and_the_same_parameters():
    # One state [1, 1, S] beside N actions [1, N, A]: ConcatDense multiplies the state once;
    # the result is the tiled input's, and the parameter tree is nn.Dense's (checkpoints fit).
    states = jax.random.normal(jax.random.key(1), (2, 1, 11))
    actions = jax.random.normal(jax.random.key(2), (2, 7, 3))
    tiled = jnp.broadcast_to(states, (2, 7, 11))
    q_params = NETS.q.init(jax.random.key(0), OBS, ACT)
    np.testing.assert_allclose(
        NETS.q.apply(q_params, states, actions),
        NETS.q.apply(q_params, tiled, actions),
        rtol=1e-5,
        atol=1e-5,
    )
    d_params = NETS.diffusion.init(jax.random.key(0), ACT, ACT[:, :1], OBS)
    sigma = jnp.full((1, 1, 1), 0.7)
    np.testing.assert_allclose(
        NETS.diffusion.apply(d_params, actions, sigma, states),
        NETS.diffusion.apply(d_params, actions, jnp.broadcast_to(sigma, (2, 7, 1)), tiled),
        rtol=1e-5,
        atol=1e-5,
    )
    first = d_params["params"]["MLP_0"]["Dense_0"]
    assert first["kernel"].shape == (3 + 11 + 16, 256) and first["bias"].shape == (256,)
