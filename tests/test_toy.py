"""The 2D bandit lab: datasets and rewards, metrics on hand-made samples, figures, argument
errors, and (slow) short training runs through the real algorithms."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dtql import toy
from dtql.data.toy import (
    GAUSSIAN_STD,
    gaussian_means,
    make_actions,
    make_reward,
    swiss_roll,
    twenty_five_gaussians,
)

# --- datasets and rewards -------------------------------------------------------------------


def test_25_gaussians_modes_have_the_stated_means_and_spread():
    actions, labels = twenty_five_gaussians()
    assert actions.shape == (10_000, 2) and actions.dtype == np.float32
    assert np.all(np.bincount(labels) == 400)
    means = gaussian_means()
    assert sorted(set(means[:, 0])) == [-10.0, -5.0, 0.0, 5.0, 10.0]
    for m in range(25):
        mode = actions[labels == m]
        # mean of 400 draws: standard error 0.3 / 20 = 0.015 per coordinate
        np.testing.assert_allclose(mode.mean(axis=0), means[m], atol=0.06)
        np.testing.assert_allclose(mode.std(axis=0), GAUSSIAN_STD, atol=0.04)


def test_swiss_roll_lies_on_the_spiral_with_small_noise():
    actions = swiss_roll()
    assert actions.shape == (10_000, 2) and actions.dtype == np.float32
    radius = np.linalg.norm(actions, axis=1)
    assert 1.5 * np.pi - 0.5 < radius.min() and radius.max() < 4.5 * np.pi + 0.5
    t = np.linspace(1.5 * np.pi, 4.5 * np.pi, 20_000)
    curve = np.stack([t * np.cos(t), t * np.sin(t)], axis=1)
    distance = toy.nearest_distance(actions[::10], curve)
    # noise 0.1 per coordinate: the distance to the curve is about |N(0, 0.1^2)|
    assert np.median(distance) < 0.1 and distance.max() < 0.5


def test_datasets_are_deterministic_given_the_seed():
    a, b = make_actions("swissroll", seed=3), make_actions("swissroll", seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(
        make_actions("25gaussians", seed=0), make_actions("25gaussians", seed=1)
    )
    with pytest.raises(ValueError, match="25gaussians, swissroll"):
        make_actions("moons")


def test_rewards_far_near_hard():
    data = make_actions("25gaussians")
    points = np.array([[-10.0, 10.0], [10.0, 10.0], [0.0, 0.0]])
    far, near, hard = (make_reward(name, data)(points) for name in ("far", "near", "hard"))
    np.testing.assert_allclose(far, [np.sqrt(200), np.sqrt(200), 0.0])
    max_distance = np.linalg.norm(data, axis=1).max()
    np.testing.assert_allclose(near, max_distance - far)
    np.testing.assert_allclose(hard, [2 * np.sqrt(200), np.sqrt(200), 0.0])
    assert make_reward("near", data)(data).min() == pytest.approx(0.0, abs=1e-9)


# --- metrics on hand-made samples -------------------------------------------------------------


def _problem(name: str) -> toy.Problem:
    return toy.make_problem(toy.SCENARIOS[name])


def _index(mean: tuple[float, float]) -> int:
    return int(np.flatnonzero((gaussian_means() == mean).all(axis=1))[0])


def test_top_modes_are_the_corners_the_centre_and_the_top_left():
    means = gaussian_means()
    corners = sorted(_index(c) for c in [(-10, -10), (-10, 10), (10, -10), (10, 10)])
    for name, expected in [
        ("25g-far", corners),
        ("25g-near", [_index((0, 0))]),
        ("25g-hard", [_index((-10, 10))]),
    ]:
        p = _problem(name)
        assert sorted(toy.top_modes(p.actions, p.rewards, means)) == expected, name


def test_metrics_of_samples_on_one_top_mode():
    p = _problem("25g-hard")
    rng = np.random.default_rng(0)
    samples = np.array([-10.0, 10.0]) + 0.1 * rng.standard_normal((1000, 2))
    m = toy.toy_metrics(samples, p)
    assert m["top_mode_share"] == 1.0 and m["modes_covered"] == 1
    assert m["off_manifold_share"] == 0.0
    expected = np.mean(p.reward_fn(samples)) / p.rewards.max()
    assert m["mean_reward_ratio"] == pytest.approx(expected) and 0.9 < expected <= 1.0


def test_metrics_of_samples_split_over_corners_and_off_the_data():
    p = _problem("25g-far")
    corners = np.array([[-10, -10], [-10, 10], [10, -10], [10, 10]], dtype=float)
    samples = np.concatenate([np.repeat(corners, 200, axis=0), np.full((200, 2), 2.5)])
    m = toy.toy_metrics(samples, p)
    assert m["top_mode_share"] == pytest.approx(0.8)
    assert m["modes_covered"] == 4 and m["modes_reached"] == 4
    assert m["off_manifold_share"] == pytest.approx(0.2)  # (2.5, 2.5) is 3.5 from every mode


def test_modes_covered_counts_modes_with_at_least_five_percent():
    means = gaussian_means()
    assert toy.modes_covered(np.repeat(means[:20], 5, axis=0), means) == 20  # 5 of 100 each
    assert toy.modes_covered(np.repeat(means, 4, axis=0), means) == 0  # 4 of 100 each
    # an even spread over all 25 modes is "reached" (>= 1% each), not "covered" (>= 5%)
    assert toy.modes_covered(np.repeat(means, 4, axis=0), means, min_share=0.01) == 25
    # the radius is 3 std = 0.9: just inside counts, just outside does not
    shares = toy.mode_shares(np.array([[0.0, 0.89], [0.0, 0.91]]), means)
    assert shares[_index((0, 0))] == 0.5 and shares.sum() == 0.5


def test_swiss_roll_has_no_modes():
    p = _problem("swiss-near")
    m = toy.toy_metrics(p.actions[:1000].astype(np.float64), p)
    assert m["top_mode_share"] is None and m["modes_covered"] is None
    assert m["modes_reached"] is None
    assert m["off_manifold_share"] == 0.0


def test_nearest_distance():
    reference = np.array([[0.0, 0.0], [3.0, 4.0]])
    points = np.array([[0.0, 1.0], [3.0, 5.0], [6.0, 8.0]])
    np.testing.assert_allclose(toy.nearest_distance(points, reference, chunk=2), [1.0, 1.0, 5.0])


def test_table_lists_every_metric_and_dashes_for_none():
    record = {"scenario": "swiss-far", "variant": "tr-gaussian", "seconds": 1.0}
    record |= {"mean_reward_ratio": 0.5, "top_mode_share": None}
    record |= {"off_manifold_share": 0.25, "modes_covered": None, "modes_reached": None}
    table = toy.format_table([record])
    assert "| swiss-far | tr-gaussian | 0.500 | - | 0.250 | - | - | 1.0 |" in table
    assert all(key in table.splitlines()[0] for key in toy.METRIC_KEYS)


# --- figures and arguments ----------------------------------------------------------------


def test_figures_are_written(tmp_path):
    problems = [_problem("25g-far"), _problem("swiss-far")]
    samples = [p.actions[:1000] for p in problems]
    records = [toy.toy_metrics(s, p) for s, p in zip(samples, problems, strict=True)]
    toy.plot_policy_grid(tmp_path / "grid.png", problems, [("row", samples, records)] * 2, "t")
    toy.plot_no_q(tmp_path / "no_q.png", problems, samples, records)
    maps = [np.random.default_rng(0).uniform(0.1, 100.0, (2, 16)) for _ in problems]
    toy.plot_trust_region_maps(tmp_path / "fig1.png", problems, maps, (0.5, 1.0), 4)
    for name in ("grid.png", "no_q.png", "fig1.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_trust_region_loss_map_has_one_row_per_sigma():
    agent = toy.toy_config(toy.TR_GAUSSIAN, toy.ToyArgs()).agent
    nets = toy.build_networks(agent, toy.ACT_DIM)
    params = nets.diffusion.init(
        jax.random.key(0), jnp.zeros((1, 2)), jnp.zeros((1, 1)), jnp.zeros((1, 1))
    )
    grid = np.array([[0.0, 0.0], [5.0, -5.0], [14.0, 14.0]], dtype=np.float32)
    maps = toy.trust_region_loss_map(params, grid, (0.1, 1.0), jax.random.key(1), agent, num_eps=2)
    assert maps.shape == (2, 3) and np.all(np.isfinite(maps)) and np.all(maps >= 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            toy.ToyArgs(scenario="25g-middle"),
            "unknown scenario '25g-middle'; expected one of "
            "25g-far, 25g-hard, 25g-near, swiss-far, swiss-near",
        ),
        (toy.ToyArgs(scenario="25g-far", reg="kl", policy="gaussian"), "needs the implicit"),
        (toy.ToyArgs(tr_steps=0), "--tr-steps must be at least 1"),
    ],
)
def test_bad_arguments_fail_with_one_line(args, message, capsys, tmp_path):
    assert toy.run_toy(dataclasses.replace(args, out=str(tmp_path))) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


# --- short training runs ----------------------------------------------------------------------


@pytest.mark.slow
def test_trust_region_samples_stay_on_the_data_manifold(capsys, tmp_path):
    """A short DTQL run through the CLI entry: BC model and critics pretrained briefly, then the
    far reward's Q pulls the implicit policy outwards while the trust region holds it on the
    data. Its JSON line matches the metrics file it writes."""
    args = toy.ToyArgs(
        scenario="25g-far",
        policy="implicit",
        json=True,
        out=str(tmp_path),
        batch_size=128,
        tr_pretrain_steps=500,
        tr_implicit_steps=200,
    )
    assert toy.run_toy(args) == 0
    record = json.loads(capsys.readouterr().out)
    assert set(toy.METRIC_KEYS) <= set(record)
    assert record["off_manifold_share"] <= 0.05, record
    assert record["modes_covered"] >= 1
    assert (tmp_path / "25g-far-tr-implicit.png").exists()
    saved = json.loads((tmp_path / "25g-far-tr-implicit.json").read_text())
    assert saved["runs"][0] == record


@pytest.mark.slow
def test_without_q_term_the_critics_stay_exactly_zero():
    p = _problem("25g-near")
    args = toy.ToyArgs(batch_size=16, tr_steps=5)
    variant = toy.Variant("tr", "gaussian", q_term=False)
    cfg = toy.toy_config(variant, args)
    start = toy.pretrain(p, cfg, jax.random.key(0))
    state, metrics = toy.train(start, p, variant, cfg, jax.random.key(1))
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
    args = toy.ToyArgs(batch_size=16)
    cfg = toy.toy_config(toy.KL_IMPLICIT, args, "pretrain")
    fresh = toy.fit_bc(p, cfg, 0, jax.random.key(0))
    fitted = toy.fit_bc(p, cfg, 5, jax.random.key(0))
    same = jax.tree.map(lambda a, b: bool(jnp.all(a == b)), fresh.critics, fitted.critics)
    assert all(jax.tree.leaves(same))
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), fresh.diffusion, fitted.diffusion)
    assert any(jax.tree.leaves(moved))
