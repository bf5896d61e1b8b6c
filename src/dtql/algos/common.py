"""Pieces every algorithm shares: parameters with their optimiser, the schedule, the critics'
update (Eqs. 6 and 7), batch sampling inside jit, and ``run_steps`` (a loop of steps in one jit).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from dtql.config import AgentConfig, TrainConfig
from dtql.losses import diffusion_bc_loss, q_loss, value_loss
from dtql.networks import DenoiserNetwork, GaussianPolicyNetwork, TwinQ, ValueNetwork

Metrics = dict[str, jax.Array]


class Batch(NamedTuple):
    """Device arrays; the whole dataset has the same layout with N rows."""

    observations: jax.Array  # [B, S]
    actions: jax.Array  # [B, A]
    rewards: jax.Array  # [B] (after the reward transform)
    next_observations: jax.Array  # [B, S]
    terminals: jax.Array  # [B]


@struct.dataclass
class Trainable:
    """One network's parameters and its optimiser state."""

    params: Any
    opt_state: Any


@struct.dataclass
class Critics:
    """IQL critics: twin Q with target parameters (no optimiser state of their own), and V."""

    q: Trainable
    target_q_params: Any
    value: Trainable


class Networks(NamedTuple):
    """Stateless Flax modules; built from the config wherever needed (cheap, trace-time only)."""

    diffusion: DenoiserNetwork
    policy: GaussianPolicyNetwork
    q: TwinQ
    value: ValueNetwork


def build_networks(cfg: AgentConfig, act_dim: int) -> Networks:
    return Networks(
        diffusion=DenoiserNetwork(act_dim, cfg.hidden_dim, cfg.time_embed_dim),
        policy=GaussianPolicyNetwork(act_dim, cfg.hidden_dim, cfg.log_std_min, cfg.log_std_max),
        q=TwinQ(cfg.hidden_dim),
        value=ValueNetwork(cfg.hidden_dim),
    )


# --- optimisers -------------------------------------------------------------------------------


def learning_rate(base_lr: float, cfg: TrainConfig, *, trains_in_pretrain: bool) -> optax.Schedule:
    """Constant, or cosine-annealed to 0 over the main phase (Table 4's 'Lr decay').

    Optimisers that also step during pretraining keep the constant rate until it ends.
    """
    if not cfg.agent.lr_decay:
        return optax.constant_schedule(base_lr)
    cosine = optax.cosine_decay_schedule(base_lr, max(cfg.steps, 1))
    if not trains_in_pretrain or cfg.pretrain_steps == 0:
        return cosine
    return optax.join_schedules(
        [optax.constant_schedule(base_lr), cosine], boundaries=[cfg.pretrain_steps]
    )


def make_optimizer(base_lr: float, cfg: TrainConfig, *, trains_in_pretrain: bool):
    """Adam with default betas, no gradient clipping (as released)."""
    return optax.adam(learning_rate(base_lr, cfg, trains_in_pretrain=trains_in_pretrain))


def init_trainable(params: Any, optimizer: optax.GradientTransformation) -> Trainable:
    return Trainable(params=params, opt_state=optimizer.init(params))


def apply_gradients(
    trainable: Trainable, grads: Any, optimizer: optax.GradientTransformation
) -> Trainable:
    updates, opt_state = optimizer.update(grads, trainable.opt_state, trainable.params)
    return Trainable(params=optax.apply_updates(trainable.params, updates), opt_state=opt_state)


def soft_update(target: Any, online: Any, tau: float) -> Any:
    """target <- (1 - tau) target + tau online (Algorithm 1, step 4)."""
    return optax.incremental_update(online, target, tau)


# --- critics ----------------------------------------------------------------------------------


def critic_optimizer(cfg: TrainConfig):
    return make_optimizer(cfg.agent.critic_lr, cfg, trains_in_pretrain=True)


def init_critics(
    key: jax.Array, nets: Networks, cfg: TrainConfig, obs_dim: int, act_dim: int
) -> Critics:
    """Twin Q (target = a copy of the online parameters) and V, each with its Adam state."""
    obs, act = jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim))
    key_q, key_v = jax.random.split(key)
    q_params = nets.q.init(key_q, obs, act)
    v_params = nets.value.init(key_v, obs)
    opt = critic_optimizer(cfg)
    return Critics(
        q=init_trainable(q_params, opt),
        target_q_params=q_params,
        value=init_trainable(v_params, opt),
    )


def update_critics(
    critics: Critics, batch: Batch, nets: Networks, cfg: TrainConfig, *, update_target: bool
) -> tuple[Critics, Metrics]:
    """IQL: V by expectile regression on min Q (Eq. 6), then twin Q on r + gamma V(s') (Eq. 7).

    The paper's V target is the target critics' min Q; ``value_target='online_q'`` uses the
    online critics instead (released code).
    """
    agent, opt = cfg.agent, critic_optimizer(cfg)
    q_params_for_v = (
        critics.target_q_params if agent.value_target == "target_q" else critics.q.params
    )
    q_data = jnp.min(nets.q.apply(q_params_for_v, batch.observations, batch.actions), axis=0)

    def v_loss_fn(v_params):
        v = nets.value.apply(v_params, batch.observations)
        return value_loss(q_data, v, agent.expectile), v

    (v_loss, v), v_grads = jax.value_and_grad(v_loss_fn, has_aux=True)(critics.value.params)
    value = apply_gradients(critics.value, v_grads, opt)

    next_v = nets.value.apply(value.params, batch.next_observations)

    def q_loss_fn(q_params):
        q_pred = nets.q.apply(q_params, batch.observations, batch.actions)
        return q_loss(q_pred, batch.rewards, batch.terminals, next_v, agent.discount), q_pred

    (critic_loss, q_pred), q_grads = jax.value_and_grad(q_loss_fn, has_aux=True)(critics.q.params)
    q = apply_gradients(critics.q, q_grads, opt)
    target = (
        soft_update(critics.target_q_params, q.params, agent.tau)
        if update_target
        else critics.target_q_params
    )
    metrics = {
        "critic/q_loss": critic_loss,
        "critic/v_loss": v_loss,
        "critic/q_mean": jnp.mean(q_pred),
        "critic/v_mean": jnp.mean(v),
    }
    return Critics(q=q, target_q_params=target, value=value), metrics


def min_q(nets: Networks, q_params: Any, states: jax.Array, actions: jax.Array) -> jax.Array:
    """min(Q1, Q2)(s, a): [B]."""
    return jnp.min(nets.q.apply(q_params, states, actions), axis=0)


# --- diffusion behaviour cloning -------------------------------------------------------------


def diffusion_optimizer(cfg: TrainConfig):
    return make_optimizer(cfg.agent.lr, cfg, trains_in_pretrain=True)


def bind_denoiser(nets: Networks, params: Any):
    """The raw network F with its parameters bound, as ``edm`` expects it."""
    return lambda x, c_noise, s: nets.diffusion.apply(params, x, c_noise, s)


def update_denoiser(
    model: Trainable,
    actions: jax.Array,
    states: jax.Array,
    key: jax.Array,
    nets: Networks,
    cfg: TrainConfig,
    max_action: float,
) -> tuple[Trainable, jax.Array]:
    """One Adam step of Eq. 2 on (states, actions): the BC model or the KL fake model."""

    def loss_fn(params):
        return diffusion_bc_loss(
            bind_denoiser(nets, params), actions, states, key, cfg.agent.edm, max_action
        )

    loss, grads = jax.value_and_grad(loss_fn)(model.params)
    return apply_gradients(model, grads, diffusion_optimizer(cfg)), loss


def pretrain_critics_and_diffusion(
    state: Any, batch: Batch, key: jax.Array, cfg: TrainConfig
) -> tuple[Any, Metrics]:
    """The pretraining step of DTQL and KL (Appendix E): the critics and the diffusion BC model
    learn, the one-step policy waits. ``state`` has ``critics``, ``diffusion``, ``act_dim`` and
    ``max_action``."""
    nets = build_networks(cfg.agent, state.act_dim)
    critics, critic_metrics = update_critics(
        state.critics, batch, nets, cfg, update_target=cfg.agent.target_update_in_pretrain
    )
    diffusion, diffusion_loss = update_denoiser(
        state.diffusion, batch.actions, batch.observations, key, nets, cfg, state.max_action
    )
    metrics = {**critic_metrics, "diffusion/loss": diffusion_loss}
    return state.replace(critics=critics, diffusion=diffusion), metrics


def init_diffusion(
    key: jax.Array, nets: Networks, cfg: TrainConfig, obs_dim: int, act_dim: int
) -> Trainable:
    """The behaviour-cloning denoiser's parameters and Adam state."""
    act = jnp.zeros((1, act_dim))
    params = nets.diffusion.init(key, act, act[:, :1], jnp.zeros((1, obs_dim)))
    return init_trainable(params, diffusion_optimizer(cfg))


# --- acting helpers ---------------------------------------------------------------------------


def tanh_gaussian_sample(
    mean: jax.Array, log_std: jax.Array, key: jax.Array, max_action: float
) -> jax.Array:
    """a = tanh(mean + std eps) * max_action, reparameterised."""
    eps = jax.random.normal(key, mean.shape)
    return jnp.tanh(mean + jnp.exp(log_std) * eps) * max_action


def select_by_q(
    nets: Networks,
    target_q_params: Any,
    states: jax.Array,
    candidates: jax.Array,
    key: jax.Array,
) -> jax.Array:
    """The released code's acting: score N candidates [n, N, A] by min target Q, softmax, draw.

    ``states`` [n, S]; returns [n, A].
    """
    n, num, _ = candidates.shape
    tiled = jnp.repeat(states[:, None, :], num, axis=1)
    q = min_q(nets, target_q_params, tiled.reshape(n * num, -1), candidates.reshape(n * num, -1))
    choice = jax.random.categorical(key, q.reshape(n, num), axis=-1)
    return jnp.take_along_axis(candidates, choice[:, None, None], axis=1)[:, 0]


# --- running many steps in one jitted call ----------------------------------------------------


def sample_batch(data: Batch, key: jax.Array, batch_size: int) -> Batch:
    """Uniform minibatch drawn on the device from the device-resident dataset."""
    idx = jax.random.randint(key, (batch_size,), 0, data.rewards.shape[0])
    return jax.tree.map(lambda x: x[idx], data)


StepFn = Callable[[Any, Batch, jax.Array, TrainConfig], tuple[Any, Metrics]]


def run_steps(
    step_fn: StepFn, state: Any, data: Batch, key: jax.Array, cfg: TrainConfig, num_steps: Any
) -> tuple[Any, Metrics]:
    """``num_steps`` updates in one ``lax.fori_loop``; returns the state and the metrics' means.

    Meant to be jitted with ``step_fn`` and ``cfg`` static. ``num_steps`` is a traced integer,
    so chunks of any length share one compiled program. Step ``i`` draws its batch and its
    update's randomness from ``fold_in(key, i)``. The metrics are summed on the device and
    fetched by the caller once per call.
    """

    def one_step(state, i):
        key_batch, key_step = jax.random.split(jax.random.fold_in(key, i))
        batch = sample_batch(data, key_batch, cfg.batch_size)
        return step_fn(state, batch, key_step, cfg)

    _, metric_shapes = jax.eval_shape(one_step, state, 0)
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), metric_shapes)

    def body(i, carry):
        state, sums = carry
        state, metrics = one_step(state, i)
        return state, jax.tree.map(jnp.add, sums, metrics)

    state, sums = jax.lax.fori_loop(0, num_steps, body, (state, zeros))
    return state, jax.tree.map(lambda x: x / num_steps, sums)


run_steps_jit = jax.jit(run_steps, static_argnums=(0, 4))
