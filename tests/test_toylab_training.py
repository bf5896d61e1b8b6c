"""dtql.toylab.training (slow): short runs through the real algorithms, without the Q term and
with Algorithm 2's BC-only fit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from dtql.toylab.scenarios import KL_IMPLICIT, SCENARIOS, Problem, Variant, make_problem
from dtql.toylab.toy_args import ToyArgs
from dtql.toylab.training import fit_bc, pretrain, toy_config, train_variant


def _problem(name: str) -> Problem:
    return make_problem(SCENARIOS[name])


@pytest.mark.slow
def test_without_q_term_the_critics_stay_exactly_zero():
    p = _problem("25g-near")
    args = ToyArgs(batch_size=16, tr_steps=5)
    variant = Variant("tr", "gaussian", q_term=False)
    cfg = toy_config(variant, args)
    start = pretrain(p, cfg, jax.random.key(0))
    state, metrics = train_variant(start, p, variant, cfg, jax.random.key(1))
    leaves = jax.tree.leaves(state.critics)
    assert all(
        not jnp.any(leaf != 0) for leaf in leaves if jnp.issubdtype(leaf.dtype, jnp.floating)
    )
    assert metrics["policy/q_term"] == 0.0
    moved = jax.tree.map(lambda a, b: jnp.any(a != b), start.policy.params, state.policy.params)
    assert any(jax.tree.leaves(moved))


@pytest.mark.slow
def test_kl_bc_fit_trains_the_bc_model_alone():
    """Algorithm 2's first loop: the BC model moves, the critics keep their initial values."""
    p = _problem("25g-far")
    args = ToyArgs(batch_size=16)
    cfg = toy_config(KL_IMPLICIT, args, "pretrain")
    fresh = fit_bc(p, cfg, 0, jax.random.key(0))
    fitted = fit_bc(p, cfg, 5, jax.random.key(0))
    same = jax.tree.map(lambda a, b: bool(jnp.all(a == b)), fresh.critics, fitted.critics)
    assert all(jax.tree.leaves(same))
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), fresh.diffusion, fitted.diffusion)
    assert any(jax.tree.leaves(moved))
