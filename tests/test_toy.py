"""The 2D bandit datasets and rewards (``dtql.data.toy``) that the lab (``dtql.toylab``) runs on;
the lab itself is tested in ``test_toylab_*.py``, one file per module."""

from __future__ import annotations

import numpy as np
import pytest

from dtql.data.toy import (
    GAUSSIAN_STD,
    gaussian_means,
    make_actions,
    make_reward,
    swiss_roll,
    twenty_five_gaussians,
)
from dtql.toylab.metrics import nearest_distance


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
    distance = nearest_distance(actions[::10], curve)
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
