"""Network shapes, parameter counts and output bounds."""

import jax
import jax.numpy as jnp
import numpy as np

from dtql.algos.common import build_networks
from dtql.config import AgentConfig


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
