"""The update's speed: steps/s of each algorithm, its FLOPs, the machine's matmul rate at the
update's own shapes, and K runs in one vmapped program against one run.

Data are synthetic with the task's sizes (100k rows); configs are what `dtql train --task T
--algo A` builds (the preset's batch and widths), optionally narrowed for quick checks.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from dtql.algos import get_algorithm
from dtql.algos.common import (
    Batch,
    run_steps_jit,
    run_steps_stacked_jit,
    sample_batch,
    stack_states,
)
from dtql.bench.timing import Timing, blocking, time_calls
from dtql.config import LearnerConfig

DATA_ROWS = 100_000


def synthetic_data(rows: int, obs_dim: int, act_dim: int) -> Batch:
    """Random transitions of the given sizes (actions inside (-1, 1))."""
    keys = jax.random.split(jax.random.key(0), 4)
    return Batch(
        observations=jax.random.normal(keys[0], (rows, obs_dim)),
        actions=0.9 * jnp.tanh(jax.random.normal(keys[1], (rows, act_dim))),
        rewards=jax.random.normal(keys[2], (rows,)),
        next_observations=jax.random.normal(keys[3], (rows, obs_dim)),
        terminals=jnp.zeros((rows,)),
    )


@dataclass(frozen=True)
class UpdateSpeed:
    """One algorithm's main-phase update: steps/s, compile time and FLOPs per step, and the
    matmul-bound rate measured right after each timed call."""

    algo: str
    steps_per_call: int
    compile_s: float
    flops_per_step: float
    call_s: tuple[float, ...]  # each timed call of steps_per_call updates
    bounds_flops_per_s: tuple[float, ...]  # the matmul-bound rate after each call, if measured

    @property
    def timing(self) -> Timing:
        """Seconds per call: median, min and max of the timed calls."""
        calls = self.call_s
        return Timing(statistics.median(calls), min(calls), max(calls), len(calls), warmup=0)

    @property
    def steps_per_s(self) -> float:
        return self.steps_per_call / self.timing.median_s

    @property
    def achieved_flops(self) -> float:
        return self.flops_per_step * self.steps_per_s

    @property
    def share_of_matmul_bound(self) -> float:
        """The median over timed calls of the call's FLOP rate over the bound measured next to
        it: the machine's speed drifts (shared cores, clocks), and a ratio of two numbers
        measured a second apart drifts less than one of numbers measured a minute apart."""
        if not self.bounds_flops_per_s:
            raise ValueError(f"{self.algo}'s update was timed without a matmul bound beside it")
        return statistics.median(
            self.flops_per_step * self.steps_per_call / (seconds * bound)
            for seconds, bound in zip(self.call_s, self.bounds_flops_per_s, strict=True)
        )


def update_speed(
    algo_name: str,
    cfg: LearnerConfig,
    dims: tuple[int, int],
    steps: int,
    repeats: int,
    bound: MatmulChains | None = None,
) -> UpdateSpeed:
    """Median steps/s of ``repeats`` jitted calls of ``steps`` main-phase updates, after a
    compiling call, each call followed by one measurement of ``bound`` if given; FLOPs of one
    update (minibatch draw included) by XLA's cost analysis."""
    obs_dim, act_dim = dims
    algo = get_algorithm(algo_name)
    data = synthetic_data(DATA_ROWS, obs_dim, act_dim)
    state = algo.start_main_phase(algo.init(jax.random.key(0), cfg, obs_dim, act_dim, 1.0), cfg)
    calls = iter(range(1, 1_000_000))

    def call():
        nonlocal state
        state, metrics = run_steps_jit(
            algo.train_step, state, data, jax.random.key(next(calls)), cfg, steps
        )
        return metrics

    compile_timing = time_calls(blocking(call), repeats=1, warmup=0)
    call_s, bounds = [], []
    for _ in range(repeats):
        call_s.append(time_calls(blocking(call), repeats=1, warmup=0).median_s)
        if bound is not None:
            bounds.append(bound.rate(repeats=1).bound_flops_per_s)
    flops = step_flops(algo, state, data, cfg)
    return UpdateSpeed(
        algo_name, steps, compile_timing.median_s, flops, tuple(call_s), tuple(bounds)
    )


def step_flops(algo: Any, state: Any, data: Batch, cfg: LearnerConfig) -> float:
    """FLOPs of one update (its minibatch draw included) by XLA's cost analysis."""

    def one_step(state, key):
        key_batch, key_step = jax.random.split(key)
        batch = sample_batch(data, key_batch, cfg.batch_size)
        return algo.train_step(state, batch, key_step, cfg)

    compiled = jax.jit(one_step).lower(state, jax.random.key(0)).compile()
    return _flops(compiled.cost_analysis())


def _flops(analysis: Any) -> float:
    # Older jax versions return a list with one dict per computation.
    if isinstance(analysis, list | tuple):
        return float(sum(a.get("flops", 0.0) for a in analysis))
    return float(analysis.get("flops", 0.0))


@dataclass(frozen=True)
class MatmulRate:
    """The machine's float32 matrix-multiply rate at the update's shapes ([B, H] x [H, H])."""

    batch: int
    hidden: int
    forward_flops_per_s: float  # x @ W: forward passes
    input_grad_flops_per_s: float  # g @ W^T: gradients with respect to a layer's input
    weight_grad_flops_per_s: float  # x^T @ g: gradients with respect to the weights

    @property
    def bound_flops_per_s(self) -> float:
        """The rate if an update's FLOPs were a third of each kind (forward, input and weight
        gradients), each at its measured speed: the harmonic mean."""
        kinds = (
            self.forward_flops_per_s,
            self.input_grad_flops_per_s,
            self.weight_grad_flops_per_s,
        )
        return 3.0 / sum(1.0 / rate for rate in kinds)


MATMULS_PER_CALL = 64


@dataclass(frozen=True)
class MatmulChains:
    """Compiled chains of ``MATMULS_PER_CALL`` dependent matmuls of each kind (forward,
    input-gradient, weight-gradient), timed on demand: the bench measures the rate once up
    front and again after every timed update call."""

    batch: int
    hidden: int
    chains: int
    calls: tuple[Callable[[], Any], Callable[[], Any], Callable[[], Any]]

    def rate(self, repeats: int) -> MatmulRate:
        """The median rate of each kind over ``repeats`` timed calls."""
        flops = 2.0 * self.batch * self.hidden * self.hidden * MATMULS_PER_CALL * self.chains
        rates = [flops / time_calls(c, repeats, warmup=0).median_s for c in self.calls]
        return MatmulRate(self.batch, self.hidden, *rates)


def matmul_chains(batch: int, hidden: int, chains: int = 1) -> MatmulChains:
    """The three chains, compiled (each run once here), in one jitted loop each. Every product
    feeds the next, so none is hoisted or skipped. ``chains`` independent
    chains run side by side (one per CPU thread), so that the bound, like the update, can keep
    every thread busy: one chain of 256-wide products splits over threads only in part."""
    keys = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(keys[0], (batch, hidden))
    w = jax.random.normal(keys[1], (hidden, hidden)) / jnp.sqrt(hidden)  # keeps norms steady
    g = jax.random.normal(keys[2], (batch, hidden))

    def forward(x):  # [B, H] @ [H, H]
        return x @ w

    def input_grad(x):  # [B, H] @ [H, H]^T
        return x @ w.T

    def weight_grad(m):  # [H, B] @ [B, H], made to depend on the previous product by a row
        return x.T @ (g * m[:1]) / jnp.sqrt(batch)

    calls = []
    for step, start in ((forward, x), (input_grad, x), (weight_grad, w)):
        starts = tuple(start + k for k in range(chains))  # distinct, so none is deduplicated
        chain = jax.jit(
            lambda starts, step=step: jax.lax.fori_loop(
                0, MATMULS_PER_CALL, lambda _, carry: tuple(map(step, carry)), starts
            )
        )
        call = blocking(lambda c=chain, a=starts: c(a))
        call()  # compiles
        calls.append(call)
    return MatmulChains(batch, hidden, chains, tuple(calls))


@dataclass(frozen=True)
class StackedSpeed:
    """K runs of one algorithm in one vmapped program against one run, same steps."""

    algo: str
    runs: int
    one_run_steps_per_s: float
    stacked_run_steps_per_s: float  # runs x steps / s

    @property
    def ratio(self) -> float:
        """Throughput of the stacked program over one run's: K when stacking is free."""
        return self.stacked_run_steps_per_s / self.one_run_steps_per_s


def stacked_speed(
    algo_name: str,
    cfg: LearnerConfig,
    dims: tuple[int, int],
    runs: int,
    steps: int,
    repeats: int,
    one_run_steps_per_s: float,
) -> StackedSpeed:
    """Median runs x steps/s of ``runs`` runs stacked in one program (``run_steps_stacked``)."""
    obs_dim, act_dim = dims
    algo = get_algorithm(algo_name)
    data = synthetic_data(DATA_ROWS, obs_dim, act_dim)
    inits = [algo.init(jax.random.key(seed), cfg, obs_dim, act_dim, 1.0) for seed in range(runs)]
    states = stack_states([algo.start_main_phase(state, cfg) for state in inits])
    calls = iter(range(1, 1_000_000))

    def call():
        nonlocal states
        keys = jax.random.split(jax.random.key(next(calls)), runs)
        states, metrics = run_steps_stacked_jit(algo.train_step, states, data, keys, {}, cfg, steps)
        return metrics

    timing = time_calls(blocking(call), repeats=repeats, warmup=1)
    return StackedSpeed(algo_name, runs, one_run_steps_per_s, runs * steps / timing.median_s)
