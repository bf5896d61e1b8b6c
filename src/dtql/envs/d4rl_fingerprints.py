"""D4RL's Gym files as offline RL sees them: each file's data score, BC's score on it and its
transition count (the fingerprint `dtql data fingerprint` measures on our datasets), and how
close a dataset must come to count as behaving like D4RL's. Numbers, not code."""

from __future__ import annotations

from typing import Any

# task: (the data's normalized score, BC's normalized score, transitions). Data scores are
# approximate, from D4RL's published dataset statistics; BC is the paper's Table 1 (the same
# numbers as dtql.reports.paper, checked by a test); None where neither source gives one.
# fmt: off
D4RL_FINGERPRINTS: dict[str, tuple[float, float | None, int]] = {
    "halfcheetah-medium-v2":        (40.7, 42.6, 1_000_000),
    "hopper-medium-v2":             (44.3, 52.9, 1_000_000),
    "walker2d-medium-v2":           (62.1, 75.6, 1_000_000),
    "halfcheetah-medium-replay-v2": (27.2, 36.3, 202_000),
    "hopper-medium-replay-v2":      (15.0, 18.1, 402_000),
    "walker2d-medium-replay-v2":    (14.8, 26.0, 302_000),
    "halfcheetah-medium-expert-v2": (64.3, 55.2, 2_000_000),
    "hopper-medium-expert-v2":      (64.8, 52.5, 2_000_000),
    "walker2d-medium-expert-v2":    (82.7, 101.9, 2_000_000),
    "halfcheetah-expert-v2":        (88.1, None, 1_000_000),
    "hopper-expert-v2":             (108.5, None, 1_000_000),
    "walker2d-expert-v2":           (106.7, None, 1_000_000),
}
# fmt: on
# How close a level must be to D4RL's to count as behaving like it (issue 23): both scores
# within this many normalized points, transitions within this fraction of D4RL's count.
SCORE_TOLERANCE = 10.0
TRANSITIONS_TOLERANCE = 0.25


def d4rl_reference(task: str) -> dict[str, Any]:
    """D4RL's fingerprint of the file of that name; each number None where unknown."""
    data, bc, transitions = D4RL_FINGERPRINTS.get(task, (None, None, None))
    return {"dataset_normalized_score": data, "bc_normalized_score": bc, "transitions": transitions}


def scores_pair(fingerprint: dict[str, Any]) -> str:
    """'44.1 / 55.0': a measured fingerprint's data score and BC score, as tables show them."""
    return (
        f"{fingerprint['dataset_normalized_score']:.1f} / {fingerprint['bc_normalized_score']:.1f}"
    )


def comparison(measured: dict[str, Any], d4rl: dict[str, Any]) -> dict[str, bool | None]:
    """Per number: whether it is within the tolerance of D4RL's (None where that is unknown)."""
    result: dict[str, bool | None] = {}
    for key in ("dataset_normalized_score", "bc_normalized_score"):
        ref = d4rl[key]
        result[key] = None if ref is None else abs(measured[key] - ref) <= SCORE_TOLERANCE
    ref = d4rl["transitions"]
    within = abs(measured["transitions"] - ref) <= TRANSITIONS_TOLERANCE * ref if ref else None
    result["transitions"] = within
    return result


def transitions_window(task: str) -> tuple[int, int] | None:
    """The transition counts within the tolerance of D4RL's file (None where unknown)."""
    ref = d4rl_reference(task)["transitions"]
    if ref is None:
        return None
    return round(ref * (1 - TRANSITIONS_TOLERANCE)), round(ref * (1 + TRANSITIONS_TOLERANCE))
