"""Pieces every algorithm shares: the device data layout, parameters with their optimiser, the
learning-rate schedule, the networks, and ``run_steps`` (many updates in one jitted call, with
minibatches drawn on the device).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from dtql.config import AgentConfig, LearnerConfig
from dtql.networks import (
    DeterministicPolicyNetwork,
    DiffusionNetwork,
    GaussianPolicyNetwork,
    IQLPolicyNetwork,
    TwinQ,
    ValueNetwork,
)

Metrics = dict[str, jax.Array]


class DeviceTransitions(NamedTuple):
    """Transitions as device arrays: the whole dataset (N rows) or a minibatch of it (B rows)."""

    observations: jax.Array  # [N, S]
    actions: jax.Array  # [N, A]
    rewards: jax.Array  # [N] (after the reward transform)
    next_observations: jax.Array  # [N, S]
    terminals: jax.Array  # [N]


Batch = DeviceTransitions
"""A minibatch: the same record with B rows, drawn by ``sample_batch``."""


@struct.dataclass
class Trainable:
    """One network's parameters and its optimiser state."""

    params: Any
    opt_state: Any


class Networks(NamedTuple):
    """Stateless Flax modules; built from the config wherever needed (cheap, trace-time only)."""

    diffusion: DiffusionNetwork
    policy: GaussianPolicyNetwork | IQLPolicyNetwork | DeterministicPolicyNetwork
    q: TwinQ
    value: ValueNetwork


def build_networks(cfg: AgentConfig, act_dim: int) -> Networks:
    if cfg.policy == "deterministic":
        policy = DeterministicPolicyNetwork(act_dim, cfg.hidden_dim)
    else:  # a Gaussian head (the implicit policy uses the diffusion network instead)
        head = IQLPolicyNetwork if cfg.policy == "iql_gaussian" else GaussianPolicyNetwork
        policy = head(act_dim, cfg.hidden_dim, cfg.log_std_min, cfg.log_std_max)
    return Networks(
        diffusion=DiffusionNetwork(
            act_dim, cfg.hidden_dim, cfg.time_embed_dim, cfg.mish_after_input_layer
        ),
        policy=policy,
        q=TwinQ(cfg.hidden_dim, cfg.critics),
        value=ValueNetwork(cfg.hidden_dim, cfg.critics),
    )


# --- optimisers -------------------------------------------------------------------------------


def learning_rate(
    base_lr: float, cfg: LearnerConfig, *, trains_in_pretrain: bool, decays: bool = True
) -> optax.Schedule:
    """Constant, or (``agent.lr_decay`` and ``decays``) cosine-annealed to 0 over
    ``agent.lr_decay_steps`` main-phase steps (default: the run's steps; Table 4's 'Lr decay').

    The schedule counts this optimiser's own steps: one that also steps during pretraining
    keeps the constant rate until pretraining ends; one created at the main phase starts its
    cosine at once.
    """
    if not (cfg.agent.lr_decay and decays):
        return optax.constant_schedule(base_lr)
    length = cfg.steps if cfg.agent.lr_decay_steps is None else cfg.agent.lr_decay_steps
    cosine = optax.cosine_decay_schedule(base_lr, max(length, 1))
    if not trains_in_pretrain or cfg.pretrain_steps == 0:
        return cosine
    return optax.join_schedules(
        [optax.constant_schedule(base_lr), cosine], boundaries=[cfg.pretrain_steps]
    )


def make_optimizer(
    base_lr: float, cfg: LearnerConfig, *, trains_in_pretrain: bool, decays: bool = True
):
    """Adam with default betas, no gradient clipping (as released)."""
    schedule = learning_rate(base_lr, cfg, trains_in_pretrain=trains_in_pretrain, decays=decays)
    return optax.adam(schedule)


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


# --- running many steps in one jitted call ----------------------------------------------------


def sample_batch(
    data: DeviceTransitions,
    key: jax.Array,
    batch_size: int,
    source: jax.Array | None = None,
    size: jax.Array | None = None,
) -> Batch:
    """Uniform minibatch drawn on the device from the device-resident dataset. With ``source``,
    ``data`` stacks several datasets padded to one length ([M, N, ...]) and the rows come from
    dataset ``source``'s first ``size`` rows."""
    if source is None:
        idx = jax.random.randint(key, (batch_size,), 0, data.rewards.shape[0])
        return jax.tree.map(lambda x: x[idx], data)
    idx = jax.random.randint(key, (batch_size,), 0, size)
    return jax.tree.map(lambda x: x[source, idx], data)


StepFn = Callable[[Any, Batch, jax.Array, LearnerConfig], tuple[Any, Metrics]]


def run_steps(
    step_fn: StepFn,
    state: Any,
    data: DeviceTransitions,
    key: jax.Array,
    cfg: LearnerConfig,
    num_steps: Any,
    source: jax.Array | None = None,
    size: jax.Array | None = None,
) -> tuple[Any, Metrics]:
    """``num_steps`` updates in one ``lax.fori_loop``; returns the state and the metrics' means.

    Meant to be jitted with ``step_fn`` and ``cfg`` static. ``num_steps`` is a traced integer,
    so chunks of any length share one compiled program. Step ``i`` draws its batch and its
    update's randomness from ``fold_in(key, i)``. The metrics are summed on the device and
    fetched by the caller once per call.
    """

    def one_step(state, i):
        key_batch, key_step = jax.random.split(jax.random.fold_in(key, i))
        batch = sample_batch(data, key_batch, cfg.batch_size, source, size)
        return step_fn(state, batch, key_step, cfg)

    _, metric_shapes = jax.eval_shape(one_step, state, 0)
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), metric_shapes)

    def body(i, carry):
        state, sums = carry
        state, metrics = one_step(state, i)
        return state, jax.tree.map(jnp.add, sums, metrics)

    state, sums = jax.lax.fori_loop(0, num_steps, body, (state, zeros))
    return state, jax.tree.map(lambda x: x / num_steps, sums)


# For the programs that train and act (run_steps here, acting in run.acting). XLA:CPU emits
# 256-bit vector code unless asked for wider: 512-bit made the DTQL update about 5% faster on
# this project's AVX-512 CPU (its elementwise Mish and LayerNorm work; A/B on one core, issue
# 13). A CPU without AVX-512 uses the widest it has; other backends do not read the option.
COMPILER_OPTIONS = {"xla_cpu_prefer_vector_width": 512}

run_steps_jit = jax.jit(run_steps, static_argnums=(0, 4), compiler_options=COMPILER_OPTIONS)


# Fields of AgentConfig that runs of one stacked program may differ in: each is read only in
# arithmetic inside the update (never for a shape or a Python branch), so inside the program it
# can be a per-run traced value.
STACKED_HYPERPARAMETERS = (
    "alpha",
    "expectile",
    "entropy_coef",
    "lr",
    "critic_lr",
    "tau",
    "discount",
    "awr_temperature",
)


def with_hyperparameters(cfg: LearnerConfig, values: dict[str, Any]) -> LearnerConfig:
    """``cfg`` with some agent fields replaced (by one run's traced values)."""
    return dataclasses.replace(cfg, agent=dataclasses.replace(cfg.agent, **values))


def run_steps_stacked(
    step_fn: StepFn,
    states: Any,
    data: DeviceTransitions,
    keys: jax.Array,
    hyperparameters: dict[str, jax.Array],
    cfg: LearnerConfig,
    num_steps: Any,
    sources: jax.Array | None = None,
    sizes: jax.Array | None = None,
) -> tuple[Any, Metrics]:
    """``run_steps`` for K runs at once: ``states``, ``keys`` and each array of
    ``hyperparameters`` (a subset of ``STACKED_HYPERPARAMETERS``: run k's value at index k)
    carry a leading axis of K runs; the rest of the config is shared. ``data`` is one dataset
    for all, or, with ``sources`` and ``sizes`` ([K] each), M datasets of the same dims stacked
    and padded ([M, N, ...]) from which run k samples dataset ``sources[k]``'s ``sizes[k]``
    rows. One program, K times the work per kernel, which fills an accelerator that a single run
    at batch 256 leaves mostly idle. Each run's numbers are those of the same run alone, up to
    float reassociation in batched kernels.
    """

    def one_run(state, key, values, source, size):
        cfg_k = with_hyperparameters(cfg, values)
        return run_steps(step_fn, state, data, key, cfg_k, num_steps, source, size)

    return jax.vmap(one_run)(states, keys, hyperparameters, sources, sizes)


run_steps_stacked_jit = jax.jit(
    run_steps_stacked, static_argnums=(0, 5), compiler_options=COMPILER_OPTIONS
)


def stack_states(states: list[Any]) -> Any:
    """K states of one config -> one state whose array leaves have a leading axis of K."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)


def unstack_state(states: Any, index: int) -> Any:
    """Run ``index`` of a stacked state."""
    return jax.tree.map(lambda leaf: leaf[index], states)
