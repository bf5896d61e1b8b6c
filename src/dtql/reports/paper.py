"""The paper's Table 1 (D4RL data, 1M steps, 5 trained models): BC, IQL and DTQL ("Ours"), and
its Table 5's KL distillation on the medium tasks, as printed, for the report to set beside ours
where a task name matches. Numbers, not code."""

from __future__ import annotations

# task: (BC, IQL, DTQL mean, DTQL standard error)
PAPER_TABLE_1: dict[str, tuple[float, float, float, float]] = {
    "halfcheetah-medium-v2": (42.6, 47.4, 57.9, 0.13),
    "hopper-medium-v2": (52.9, 66.3, 99.6, 0.87),
    "walker2d-medium-v2": (75.6, 78.3, 89.4, 0.13),
    "halfcheetah-medium-replay-v2": (36.3, 44.2, 50.9, 0.11),
    "hopper-medium-replay-v2": (18.1, 94.7, 100.0, 0.13),
    "walker2d-medium-replay-v2": (26.0, 73.9, 88.5, 2.16),
    "halfcheetah-medium-expert-v2": (55.2, 86.7, 92.7, 0.2),
    "hopper-medium-expert-v2": (52.5, 91.5, 109.3, 1.49),
    "walker2d-medium-expert-v2": (101.9, 109.6, 110.0, 0.07),
    "antmaze-umaze-v0": (54.6, 87.5, 94.8, 1.00),
    "antmaze-umaze-diverse-v0": (45.6, 62.2, 78.8, 1.83),
    "antmaze-medium-play-v0": (0.0, 71.2, 79.6, 1.8),
    "antmaze-medium-diverse-v0": (0.0, 70.0, 82.2, 1.71),
    "antmaze-large-play-v0": (0.0, 39.6, 52.0, 2.23),
    "antmaze-large-diverse-v0": (0.0, 47.5, 54.0, 2.23),
    "pen-human-v1": (25.8, 71.5, 64.1, 2.97),
    "pen-cloned-v1": (38.3, 37.3, 81.3, 3.04),
    "kitchen-complete-v0": (33.8, 62.5, 80.8, 1.06),
    "kitchen-partial-v0": (33.8, 46.3, 74.4, 0.25),
    "kitchen-mixed-v0": (47.5, 51.0, 60.2, 0.59),
}

# Table 5: the policy trained with the KL loss instead of the trust region (50 rollouts).
PAPER_TABLE_5_KL: dict[str, float] = {
    "halfcheetah-medium-v2": 24.1,
    "hopper-medium-v2": 15.0,
    "walker2d-medium-v2": 3.4,
}
