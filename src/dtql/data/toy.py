"""The 2D bandit datasets and rewards of the paper's toy experiments (Figures 1, 2, 3, 6).

A bandit has one constant state (0), so a dataset is just 10,000 two-dimensional actions:

- ``25gaussians``: 25 isotropic Gaussians with means on the grid {-10, -5, 0, 5, 10}^2 and standard
  deviation 0.3, 400 actions each.
- ``swissroll``: the 3-D Swiss roll with noise 0.1, keeping its (x, z) coordinates, unscaled:
  t = 1.5 pi (1 + 2 u), u ~ U(0, 1); (x, y, z) = (t cos t, 21 v, t sin t) + 0.1 N(0, I_3).

Rewards, with d = ||a|| (``REFERENCE.md``, "2D bandit toys"):

- ``far``: r = d;
- ``near``: r = max(d) - d, with max(d) taken over the dataset;
- ``hard``: r = d, doubled where x < -7.5 and y > 7.5 (the top-left corner of the 25 Gaussians).

NumPy only; generation is deterministic given the seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

ToyDataset = Literal["25gaussians", "swissroll"]
ToyReward = Literal["far", "near", "hard"]

DATASETS: tuple[str, ...] = ("25gaussians", "swissroll")
REWARDS: tuple[str, ...] = ("far", "near", "hard")

NUM_SAMPLES = 10_000
GRID = (-10.0, -5.0, 0.0, 5.0, 10.0)
GAUSSIAN_STD = 0.3
SWISS_ROLL_NOISE = 0.1
HARD_CORNER = (-7.5, 7.5)  # "hard": reward doubled where x < -7.5 and y > 7.5
HARD_FACTOR = 2.0

RewardFn = Callable[[np.ndarray], np.ndarray]  # actions [N, 2] -> rewards [N]


def gaussian_means() -> np.ndarray:
    """The 25 mode centres [25, 2], row-major over the grid (x varies slowest)."""
    return np.array([(x, y) for x in GRID for y in GRID], dtype=np.float64)


def twenty_five_gaussians(
    *, seed: int = 0, num_samples: int = NUM_SAMPLES
) -> tuple[np.ndarray, np.ndarray]:
    """Actions [N, 2] float32 and their mode index [N] int; N / 25 actions per mode.

    ``num_samples`` must be a multiple of 25, so that every mode has the same count.
    """
    if num_samples % 25:
        raise ValueError(f"num_samples must be a multiple of 25, got {num_samples}")
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(25), num_samples // 25)
    actions = gaussian_means()[labels] + GAUSSIAN_STD * rng.standard_normal((num_samples, 2))
    return actions.astype(np.float32), labels


def swiss_roll(
    *, seed: int = 0, num_samples: int = NUM_SAMPLES, noise: float = SWISS_ROLL_NOISE
) -> np.ndarray:
    """Actions [N, 2] float32: the (x, z) coordinates of the noisy 3-D Swiss roll, unscaled.

    The roll parameter t runs over [1.5 pi, 4.5 pi], so points lie within radius ~14.4.
    """
    rng = np.random.default_rng(seed)
    t = 1.5 * np.pi * (1.0 + 2.0 * rng.uniform(size=num_samples))
    height = 21.0 * rng.uniform(size=num_samples)
    points = np.stack([t * np.cos(t), height, t * np.sin(t)], axis=1)
    points += noise * rng.standard_normal(points.shape)
    return points[:, [0, 2]].astype(np.float32)


def make_actions(dataset: str, *, seed: int = 0, num_samples: int = NUM_SAMPLES) -> np.ndarray:
    """The dataset's actions [N, 2] float32, by name ('25gaussians' or 'swissroll')."""
    if dataset == "25gaussians":
        return twenty_five_gaussians(seed=seed, num_samples=num_samples)[0]
    if dataset == "swissroll":
        return swiss_roll(seed=seed, num_samples=num_samples)
    raise ValueError(f"unknown toy dataset {dataset!r}; expected one of {', '.join(DATASETS)}")


def make_reward(name: str, data_actions: np.ndarray) -> RewardFn:
    """The reward function ``name`` for a dataset: maps any actions [N, 2] to rewards [N].

    'near' needs the dataset's largest distance from the origin, hence ``data_actions``; the
    returned function applies the same formula to actions off the data (e.g. policy samples).
    """
    if name == "far":
        return _distance
    if name == "near":
        max_distance = float(_distance(data_actions).max())
        return lambda actions: max_distance - _distance(actions)
    if name == "hard":
        return _hard
    raise ValueError(f"unknown toy reward {name!r}; expected one of {', '.join(REWARDS)}")


def _distance(actions: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.asarray(actions, dtype=np.float64), axis=-1)


def _hard(actions: np.ndarray) -> np.ndarray:
    actions = np.asarray(actions, dtype=np.float64)
    corner = (actions[:, 0] < HARD_CORNER[0]) & (actions[:, 1] > HARD_CORNER[1])
    return _distance(actions) * np.where(corner, HARD_FACTOR, 1.0)
