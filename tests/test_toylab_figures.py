"""dtql.toylab.figures: the drawings are written as PNG files, and the trust-region loss map."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dtql.algos.common import build_networks
from dtql.toylab.figures import (
    plot_no_q,
    plot_policy_grid,
    plot_trust_region_maps,
    trust_region_loss_map,
)
from dtql.toylab.metrics import toy_metrics
from dtql.toylab.scenarios import ACT_DIM, SCENARIOS, TR_GAUSSIAN, Problem, make_problem
from dtql.toylab.toy_args import ToyArgs
from dtql.toylab.training import toy_config


def _problem(name: str) -> Problem:
    return make_problem(SCENARIOS[name])


def test_figures_are_written(tmp_path):
    problems = [_problem("25g-far"), _problem("swiss-far")]
    samples = [p.actions[:1000] for p in problems]
    records = [toy_metrics(s, p) for s, p in zip(samples, problems, strict=True)]
    plot_policy_grid(tmp_path / "grid.png", problems, [("row", samples, records)] * 2, "t")
    plot_no_q(tmp_path / "no_q.png", problems, samples, records)
    maps = [np.random.default_rng(0).uniform(0.1, 100.0, (2, 16)) for _ in problems]
    plot_trust_region_maps(tmp_path / "fig1.png", problems, maps, (0.5, 1.0), 4)
    for name in ("grid.png", "no_q.png", "fig1.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_trust_region_loss_map_has_one_row_per_sigma():
    agent = toy_config(TR_GAUSSIAN, ToyArgs()).agent
    nets = build_networks(agent, ACT_DIM)
    params = nets.diffusion.init(
        jax.random.key(0), jnp.zeros((1, 2)), jnp.zeros((1, 1)), jnp.zeros((1, 1))
    )
    grid = np.array([[0.0, 0.0], [5.0, -5.0], [14.0, 14.0]], dtype=np.float32)
    maps = trust_region_loss_map(params, grid, (0.1, 1.0), jax.random.key(1), agent, num_eps=2)
    assert maps.shape == (2, 3) and np.all(np.isfinite(maps)) and np.all(maps >= 0)
