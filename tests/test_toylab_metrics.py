"""dtql.toylab.metrics on hand-made samples: top modes, shares, coverage, distances, the table."""

from __future__ import annotations

import numpy as np
import pytest

from dtql.data.toy import gaussian_means
from dtql.toylab.metrics import (
    METRIC_KEYS,
    format_table,
    mode_shares,
    modes_covered,
    nearest_distance,
    top_modes,
    toy_metrics,
)
from dtql.toylab.scenarios import SCENARIOS, Problem, make_problem


def _problem(name: str) -> Problem:
    return make_problem(SCENARIOS[name])


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
        assert sorted(top_modes(p.actions, p.rewards, means)) == expected, name


def test_metrics_of_samples_on_one_top_mode():
    p = _problem("25g-hard")
    rng = np.random.default_rng(0)
    samples = np.array([-10.0, 10.0]) + 0.1 * rng.standard_normal((1000, 2))
    m = toy_metrics(samples, p)
    assert m["top_mode_share"] == 1.0 and m["modes_covered"] == 1
    assert m["off_manifold_share"] == 0.0
    expected = np.mean(p.reward_fn(samples)) / p.rewards.max()
    assert m["mean_reward_ratio"] == pytest.approx(expected) and 0.9 < expected <= 1.0


def test_metrics_of_samples_split_over_corners_and_off_the_data():
    p = _problem("25g-far")
    corners = np.array([[-10, -10], [-10, 10], [10, -10], [10, 10]], dtype=float)
    samples = np.concatenate([np.repeat(corners, 200, axis=0), np.full((200, 2), 2.5)])
    m = toy_metrics(samples, p)
    assert m["top_mode_share"] == pytest.approx(0.8)
    assert m["modes_covered"] == 4 and m["modes_reached"] == 4
    assert m["off_manifold_share"] == pytest.approx(0.2)  # (2.5, 2.5) is 3.5 from every mode


def test_modes_covered_counts_modes_with_at_least_five_percent():
    means = gaussian_means()
    assert modes_covered(np.repeat(means[:20], 5, axis=0), means) == 20  # 5 of 100 each
    assert modes_covered(np.repeat(means, 4, axis=0), means) == 0  # 4 of 100 each
    # an even spread over all 25 modes is "reached" (>= 1% each), not "covered" (>= 5%)
    assert modes_covered(np.repeat(means, 4, axis=0), means, min_share=0.01) == 25
    # the radius is 3 std = 0.9: just inside counts, just outside does not
    shares = mode_shares(np.array([[0.0, 0.89], [0.0, 0.91]]), means)
    assert shares[_index((0, 0))] == 0.5 and shares.sum() == 0.5


def test_swiss_roll_has_no_modes():
    p = _problem("swiss-near")
    m = toy_metrics(p.actions[:1000].astype(np.float64), p)
    assert m["top_mode_share"] is None and m["modes_covered"] is None
    assert m["modes_reached"] is None
    assert m["off_manifold_share"] == 0.0


def test_nearest_distance():
    reference = np.array([[0.0, 0.0], [3.0, 4.0]])
    points = np.array([[0.0, 1.0], [3.0, 5.0], [6.0, 8.0]])
    np.testing.assert_allclose(nearest_distance(points, reference, chunk=2), [1.0, 1.0, 5.0])


def test_table_lists_every_metric_and_dashes_for_none():
    record = {"scenario": "swiss-far", "variant": "tr-gaussian", "seconds": 1.0}
    record |= {"mean_reward_ratio": 0.5, "top_mode_share": None}
    record |= {"off_manifold_share": 0.25, "modes_covered": None, "modes_reached": None}
    table = format_table([record])
    assert "| swiss-far | tr-gaussian | 0.500 | - | 0.250 | - | - | 1.0 |" in table
    assert all(key in table.splitlines()[0] for key in METRIC_KEYS)
