"""What a run's policy samples are measured by: reward, distance to the data, mode shares and
coverage; the record of one run (``toy_metrics``), its Markdown table and the definitions."""

from __future__ import annotations

from typing import Any

import numpy as np

from dtql.data.toy import GAUSSIAN_STD, gaussian_means
from dtql.toylab.scenarios import NUM_POLICY_SAMPLES, Problem

OFF_MANIFOLD_DISTANCE = 0.5
"""A sample is off the data manifold if its nearest dataset action is farther than this."""
MODE_RADIUS = 3.0 * GAUSSIAN_STD
"""A sample belongs to a 25-Gaussians mode if it lies within 3 standard deviations (0.9) of the
mode's mean; modes are 5 apart, so a sample belongs to at most one mode."""
MIN_MODE_SHARE = 0.05
"""A mode is covered if at least this share of the samples belongs to it (the issue's metric; an
even spread over all 25 modes gives each 4%, so it counts at most 20 modes)."""
MIN_REACHED_SHARE = 0.01
"""A mode is reached if at least this share (10 of 1000 samples) belongs to it: counts all 25
modes under an even spread, which is what Figure 2's 'covers all modes' claim needs."""
TOP_MODE_TOLERANCE = 0.02
"""Top modes: modes whose mean dataset reward is within this fraction of the between-mode reward
range of the best mode (the four 'far' corners tie)."""

METRIC_KEYS = (
    "mean_reward_ratio",
    "top_mode_share",
    "off_manifold_share",
    "modes_covered",
    "modes_reached",
)


def nearest_distance(points: np.ndarray, reference: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Distance from each of ``points`` [n, 2] to its nearest row of ``reference`` [m, 2]: [n]."""
    points = np.asarray(points, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    out = np.empty(points.shape[0])
    for start in range(0, points.shape[0], chunk):
        block = points[start : start + chunk]
        sq = ((block[:, None, :] - reference[None, :, :]) ** 2).sum(-1)
        out[start : start + chunk] = np.sqrt(sq.min(axis=1))
    return out


def mean_reward_ratio(samples: np.ndarray, reward_fn: Any, data_rewards: np.ndarray) -> float:
    """Mean reward of the samples divided by the dataset's maximum reward (1 = best data action)."""
    return float(np.mean(reward_fn(samples)) / np.max(data_rewards))


def off_manifold_share(
    samples: np.ndarray, data_actions: np.ndarray, threshold: float = OFF_MANIFOLD_DISTANCE
) -> float:
    """Share of samples farther than ``threshold`` from every dataset action."""
    return float(np.mean(nearest_distance(samples, data_actions) > threshold))


def mode_shares(samples: np.ndarray, means: np.ndarray, radius: float = MODE_RADIUS) -> np.ndarray:
    """Share of the samples within ``radius`` of each mode mean: [num_modes]."""
    dist = np.linalg.norm(np.asarray(samples)[:, None, :] - means[None, :, :], axis=-1)
    return (dist <= radius).mean(axis=0)


def modes_covered(
    samples: np.ndarray,
    means: np.ndarray,
    radius: float = MODE_RADIUS,
    min_share: float = MIN_MODE_SHARE,
) -> int:
    """Number of modes that receive at least ``min_share`` of the samples."""
    return int(np.sum(mode_shares(samples, means, radius) >= min_share))


def top_modes(
    data_actions: np.ndarray,
    data_rewards: np.ndarray,
    means: np.ndarray,
    tolerance: float = TOP_MODE_TOLERANCE,
) -> np.ndarray:
    """Indices of the modes with the highest mean dataset reward (ties within ``tolerance`` of
    the between-mode range). Each dataset action belongs to the mode of the nearest mean."""
    labels = np.argmin(np.linalg.norm(data_actions[:, None, :] - means[None], axis=-1), axis=1)
    mode_reward = np.array([data_rewards[labels == m].mean() for m in range(len(means))])
    spread = mode_reward.max() - mode_reward.min()
    return np.flatnonzero(mode_reward >= mode_reward.max() - tolerance * spread)


def top_mode_share(
    samples: np.ndarray, means: np.ndarray, top: np.ndarray, radius: float = MODE_RADIUS
) -> float:
    """Share of the samples within ``radius`` of one of the ``top`` modes."""
    return float(mode_shares(samples, means, radius)[top].sum())


def toy_metrics(samples: np.ndarray, problem: Problem) -> dict[str, Any]:
    """The metrics of one run (definitions in the functions above and the module constants).

    ``top_mode_share``, ``modes_covered`` and ``modes_reached`` are None for the Swiss roll,
    which has no modes.
    """
    record: dict[str, Any] = {
        "mean_reward_ratio": mean_reward_ratio(samples, problem.reward_fn, problem.rewards),
        "top_mode_share": None,
        "off_manifold_share": off_manifold_share(samples, problem.actions),
        "modes_covered": None,
        "modes_reached": None,
    }
    if problem.scenario.dataset == "25gaussians":
        means = gaussian_means()
        top = top_modes(problem.actions, problem.rewards, means)
        record["top_mode_share"] = top_mode_share(samples, means, top)
        record["modes_covered"] = modes_covered(samples, means)
        record["modes_reached"] = modes_covered(samples, means, min_share=MIN_REACHED_SHARE)
    return record


def metric_definitions() -> dict[str, str]:
    """Each metric (and ``seconds``) in words, as written beside the metrics."""
    return {
        "mean_reward_ratio": f"mean reward of {NUM_POLICY_SAMPLES} policy samples / the "
        "dataset's maximum reward",
        "top_mode_share": f"share of samples within {MODE_RADIUS:g} (3 std) of a mode with "
        f"the highest mean reward (ties within {TOP_MODE_TOLERANCE:.0%} of the range of "
        "mode rewards); 25 Gaussians only",
        "off_manifold_share": f"share of samples farther than {OFF_MANIFOLD_DISTANCE:g} from "
        "every dataset action",
        "modes_covered": f"modes with >= {MIN_MODE_SHARE:.0%} of the samples within "
        f"{MODE_RADIUS:g} of their mean; 25 Gaussians only",
        "modes_reached": f"the same with >= {MIN_REACHED_SHARE:.0%} of the samples",
        "seconds": "wall time of the run, its pretraining included unless shared",
    }


def format_table(records: list[dict[str, Any]]) -> str:
    """The metrics as a Markdown table, one row per run."""
    head = ["scenario", "variant", *METRIC_KEYS, "seconds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        cells = [r["scenario"], r["variant"]]
        for key in (*METRIC_KEYS, "seconds"):
            value = r.get(key)
            if value is None:
                cells.append("-")
            elif isinstance(value, float):
                cells.append(f"{value:.3f}" if key != "seconds" else f"{value:.1f}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
