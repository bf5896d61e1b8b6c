"""Flax modules: the raw diffusion network F, twin Q, V, and the policy heads.

Architectures follow Appendix E and the released code (REFERENCE.md). No losses here.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax


class ConcatDense(nn.Dense):
    """``nn.Dense`` applied to the concatenation of ``parts`` along the last axis, with the same
    parameters (names, shapes, initialisation) as ``nn.Dense`` on the concatenated input.

    When the parts' leading shapes differ (one state [n, 1, S] beside 1024 candidate actions
    [n, N, A]) the layer is computed as a sum of per-part matmuls over slices of the kernel,
    broadcast together: a part shared by many rows is multiplied once instead of being tiled.
    Equal leading shapes take the ordinary concatenate-then-matmul path (training's numbers).
    """

    @nn.compact
    def __call__(self, parts: tuple[jax.Array, ...]) -> jax.Array:  # type: ignore[override]
        widths = [p.shape[-1] for p in parts]
        kernel = self.param(
            "kernel", self.kernel_init, (sum(widths), self.features), self.param_dtype
        )
        bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
        if len({p.shape[:-1] for p in parts}) == 1:
            x = jnp.concatenate(parts, axis=-1)
            y = lax.dot_general(x, kernel, (((x.ndim - 1,), (0,)), ((), ())))
        else:
            y, start = 0.0, 0
            for part, width in zip(parts, widths, strict=True):
                y = y + part @ kernel[start : start + width]
                start += width
        return y + bias


class MLP(nn.Module):
    """Dense layers with an activation after each hidden layer (and LayerNorm if asked).

    ``activate_first=False`` leaves the first hidden layer linear (the released diffusion
    network); orthogonal init is sqrt(2) for hidden layers, 1 for the output, zero biases.
    The input is one array, or a tuple of parts whose concatenation is the input (see
    ``ConcatDense``: parts may broadcast against each other).
    """

    hidden: tuple[int, ...]
    out_dim: int
    activation: str = "mish"
    layer_norm: bool = False
    orthogonal_init: bool = False
    activate_first: bool = True

    @nn.compact
    def __call__(self, x: jax.Array | tuple[jax.Array, ...]) -> jax.Array:
        act = {"mish": mish, "relu": nn.relu}[self.activation]
        kwargs = {}
        if self.orthogonal_init:
            kwargs = {"kernel_init": nn.initializers.orthogonal(math.sqrt(2.0))}
        # Layers are named explicitly so that ConcatDense keeps nn.Dense's parameter names.
        for i, width in enumerate(self.hidden):
            dense = ConcatDense if i == 0 and isinstance(x, tuple) else nn.Dense
            x = dense(width, name=f"Dense_{i}", **kwargs)(x)
            if self.layer_norm:
                x = nn.LayerNorm(name=f"LayerNorm_{i}")(x)
            if i > 0 or self.activate_first:
                x = act(x)
        if self.orthogonal_init:
            kwargs = {"kernel_init": nn.initializers.orthogonal(1.0)}
        return nn.Dense(self.out_dim, name=f"Dense_{len(self.hidden)}", **kwargs)(x)


@jax.custom_vjp
def mish(x: jax.Array) -> jax.Array:
    """Mish activation x * tanh(softplus(x)) (not in flax.linen), computed with one exp.

    tanh(log(1 + e^x)) = n / (n + 2) with n = e^x (e^x + 2). On CPU, XLA's softplus and tanh
    made Mish the largest cost of the critics (16x slower than this form, measured); the two
    agree to float32 rounding (max relative difference 4e-7, tested). x is capped at 20 inside
    the exp, where n / (n + 2) is already 1 in float32, so n never overflows. The gradient is
    ``mish_derivative``, recomputed from x in the backward pass (see there).
    """
    e = jnp.exp(jnp.minimum(x, 20.0))
    n = e * (e + 2.0)
    return x * (n / (n + 2.0))


def mish_derivative(x: jax.Array) -> jax.Array:
    """d mish / dx = tanh(sp(x)) + x sech^2(sp(x)) sigmoid(x), sp = softplus, in one exp.

    With e = e^x, n = e (e + 2) and q = 1 / (n + 2): tanh(sp) = n q, sech^2(sp) = 4 (n + 1) q^2
    and sigmoid = e / (1 + e), so the second term is 4 x e (1 + e) q^2 (no cancellation for
    negative x). x is capped at 20 as in ``mish``, where the second term is below 1e-15.
    Mish's backward pass keeps only x and recomputes this, one fused elementwise pass: the
    DTQL update ran about 4% faster than with autodiff through ``mish``, whose backward pass
    reads intermediates stored by the forward pass (A/B on one core, issue 13).
    """
    x = jnp.minimum(x, 20.0)
    e = jnp.exp(x)
    n = e * (e + 2.0)
    q = 1.0 / (n + 2.0)
    return n * q + 4.0 * x * e * (1.0 + e) * q * q


mish.defvjp(lambda x: (mish(x), x), lambda x, cotangent: (cotangent * mish_derivative(x),))


def sinusoidal_embedding(x: jax.Array, dim: int) -> jax.Array:
    """Sinusoidal embedding of a scalar per sample: [B, 1] -> [B, dim]."""
    half = dim // 2
    freqs = jnp.exp(-math.log(10_000.0) * jnp.arange(half) / (half - 1))
    angles = x * freqs[None, :]
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


class DiffusionNetwork(nn.Module):
    """EDM's raw network F(c_in a_noisy, c_noise | s); the denoiser is D = ``edm.denoise``(F).

    Input: [c_in a_noisy, state, time embedding of c_noise]; a 4-layer Mish MLP (Appendix E),
    whose first layer is linear unless ``mish_after_input_layer`` (the released code's body).
    """

    act_dim: int
    hidden_dim: int = 256
    time_embed_dim: int = 16
    mish_after_input_layer: bool = False

    @nn.compact
    def __call__(self, scaled_noisy: jax.Array, c_noise: jax.Array, states: jax.Array) -> jax.Array:
        t = sinusoidal_embedding(c_noise, self.time_embed_dim)
        t = nn.Dense(2 * self.time_embed_dim)(t)
        t = nn.Dense(self.time_embed_dim)(mish(t))
        body = MLP((self.hidden_dim,) * 4, self.act_dim, activate_first=self.mish_after_input_layer)
        return body((scaled_noisy, states, t))


# The two critic architectures: DTQL's released ones and IQL's (Kostrikov et al. 2021).
CRITIC_LAYERS = {"dtql": 3, "iql": 2}


class QNetwork(nn.Module):
    """Q(s, a). DTQL: Linear-LayerNorm-Mish x3, then Linear(1); IQL: Linear-ReLU x2, Linear(1).

    ``states`` may broadcast against ``actions`` ([n, 1, S] with [n, N, A]): the state's share
    of the first layer is then computed once for all N actions.
    """

    hidden_dim: int = 256
    critics: str = "dtql"

    @nn.compact
    def __call__(self, states: jax.Array, actions: jax.Array) -> jax.Array:
        mlp = _critic_mlp(self.critics, self.hidden_dim, layer_norm=True)
        return mlp((states, actions))[..., 0]


class TwinQ(nn.Module):
    """Two independent Q networks evaluated in one call: returns [2, B]."""

    hidden_dim: int = 256
    critics: str = "dtql"

    @nn.compact
    def __call__(self, states: jax.Array, actions: jax.Array) -> jax.Array:
        ensemble = nn.vmap(
            QNetwork,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=2,
        )
        return ensemble(self.hidden_dim, self.critics)(states, actions)


class ValueNetwork(nn.Module):
    """V(s). DTQL: Linear-Mish x3, then Linear(1); IQL: Linear-ReLU x2, Linear(1). Returns [B]."""

    hidden_dim: int = 256
    critics: str = "dtql"

    @nn.compact
    def __call__(self, states: jax.Array) -> jax.Array:
        return _critic_mlp(self.critics, self.hidden_dim, layer_norm=False)(states)[..., 0]


def _critic_mlp(critics: str, hidden_dim: int, *, layer_norm: bool) -> MLP:
    """DTQL's critic body (Mish; LayerNorm in Q) or IQL's (ReLU, orthogonal init, no LayerNorm)."""
    hidden = (hidden_dim,) * CRITIC_LAYERS[critics]
    if critics == "iql":
        return MLP(hidden, 1, activation="relu", orthogonal_init=True)
    return MLP(hidden, 1, layer_norm=layer_norm)


class GaussianPolicyNetwork(nn.Module):
    """The one-step Gaussian policy's head: mean and clamped log std of the pre-tanh Gaussian.

    Linear-ReLU x3 (orthogonal init, zero bias), then Linear(2 A). Returns ([B, A], [B, A]).
    """

    act_dim: int
    hidden_dim: int = 256
    log_std_min: float = -5.0
    log_std_max: float = 2.0

    @nn.compact
    def __call__(self, states: jax.Array) -> tuple[jax.Array, jax.Array]:
        out = MLP(
            (self.hidden_dim,) * 3, 2 * self.act_dim, activation="relu", orthogonal_init=True
        )(states)
        mean, log_std = jnp.split(out, 2, axis=-1)
        return mean, jnp.clip(log_std, self.log_std_min, self.log_std_max)


class IQLPolicyNetwork(nn.Module):
    """IQL's actor: mean = tanh(MLP(s)) (Linear-ReLU x2, orthogonal init) and a learned
    state-independent log std, clamped. Returns ([B, A], [B, A]), in units of max_action."""

    act_dim: int
    hidden_dim: int = 256
    log_std_min: float = -10.0
    log_std_max: float = 2.0

    @nn.compact
    def __call__(self, states: jax.Array) -> tuple[jax.Array, jax.Array]:
        hidden = (self.hidden_dim,) * 2
        mean = MLP(hidden, self.act_dim, activation="relu", orthogonal_init=True)(states)
        log_std = self.param("log_std", nn.initializers.zeros, (self.act_dim,))
        log_std = jnp.clip(log_std, self.log_std_min, self.log_std_max)
        return jnp.tanh(mean), jnp.broadcast_to(log_std, mean.shape)


class DeterministicPolicyNetwork(nn.Module):
    """The standard BC actor of TD3+BC, IQL and CORL: Linear-ReLU x2, then tanh. Returns the
    action [B, A] in units of max_action."""

    act_dim: int
    hidden_dim: int = 256

    @nn.compact
    def __call__(self, states: jax.Array) -> jax.Array:
        hidden = (self.hidden_dim,) * 2
        return jnp.tanh(MLP(hidden, self.act_dim, activation="relu")(states))
