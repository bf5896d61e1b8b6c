"""Task presets: the 26 rows of the paper's Table 4, and per-algorithm defaults, as data.

A run's starting config (``run_config``) is the dataclass defaults, then the family's settings
(batch size, reward transform and evaluation episodes from REFERENCE.md), then the row of Table 4
(when the task has one), then the algorithm's own defaults (``ALGORITHM_DEFAULTS``). Flags go on
top. One epoch is 1000 steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dtql.config import AgentConfig, RunConfig, replace
from dtql.envs.registry import get_task

STEPS_PER_EPOCH = 1000


@dataclass(frozen=True)
class Table4Row:
    """One row of Table 4."""

    task: str
    alpha: float
    expectile: float
    entropy_term: bool
    pretrain_epochs: int
    training_epochs: int
    lr: float
    lr_decay: bool


# fmt: off
TABLE_4: tuple[Table4Row, ...] = (
    Table4Row("halfcheetah-medium-v2",        1,    0.7, False, 50, 1000, 3e-4, False),
    Table4Row("halfcheetah-medium-replay-v2", 5,    0.7, False, 50, 1000, 3e-4, False),
    Table4Row("halfcheetah-medium-expert-v2", 50,   0.7, False, 50, 1000, 3e-4, False),
    Table4Row("hopper-medium-v2",             5,    0.7, False, 50, 1000, 1e-4, True),
    Table4Row("hopper-medium-replay-v2",      5,    0.7, False, 50, 1000, 3e-4, False),
    Table4Row("hopper-medium-expert-v2",      20,   0.7, False, 50, 1000, 3e-4, False),
    Table4Row("walker2d-medium-v2",           5,    0.7, False, 50, 1000, 3e-4, True),
    Table4Row("walker2d-medium-replay-v2",    5,    0.7, False, 50, 1000, 3e-4, True),
    Table4Row("walker2d-medium-expert-v2",    5,    0.7, False, 50, 1000, 3e-4, True),
    Table4Row("antmaze-umaze-v0",             1,    0.9, True,  50, 500,  3e-4, False),
    Table4Row("antmaze-umaze-diverse-v0",     1,    0.9, True,  50, 500,  3e-5, True),
    Table4Row("antmaze-medium-play-v0",       1,    0.9, True,  50, 400,  3e-4, False),
    Table4Row("antmaze-medium-diverse-v0",    1,    0.9, True,  50, 400,  3e-4, False),
    Table4Row("antmaze-large-play-v0",        1,    0.9, True,  50, 350,  3e-4, False),
    Table4Row("antmaze-large-diverse-v0",     0.5,  0.9, True,  50, 300,  3e-4, False),
    Table4Row("antmaze-umaze-v2",             1,    0.9, True,  50, 500,  3e-4, False),
    Table4Row("antmaze-umaze-diverse-v2",     1,    0.9, True,  50, 500,  3e-5, True),
    Table4Row("antmaze-medium-play-v2",       1,    0.9, True,  50, 500,  3e-4, False),
    Table4Row("antmaze-medium-diverse-v2",    1,    0.9, True,  50, 500,  3e-4, False),
    Table4Row("antmaze-large-play-v2",        1,    0.9, True,  50, 500,  3e-4, False),
    Table4Row("antmaze-large-diverse-v2",     0.5,  0.9, True,  50, 500,  3e-4, False),
    Table4Row("pen-human-v1",                 1500, 0.9, False, 50, 300,  3e-5, True),
    Table4Row("pen-cloned-v1",                1500, 0.7, False, 50, 200,  1e-5, False),
    Table4Row("kitchen-complete-v0",          200,  0.7, False, 50, 500,  1e-4, True),
    Table4Row("kitchen-partial-v0",           100,  0.7, False, 50, 1000, 1e-4, True),
    Table4Row("kitchen-mixed-v0",             200,  0.7, False, 50, 500,  3e-4, True),
)
# fmt: on

# Settings shared by a family of tasks (REFERENCE.md: batch size, reward transform, episodes).
FAMILY_SETTINGS: dict[str, dict[str, Any]] = {
    "locomotion": {"learner.batch_size": 256, "reward_transform": "none", "eval_episodes": 10},
    "antmaze": {"learner.batch_size": 2048, "reward_transform": "minus_one", "eval_episodes": 100},
    "adroit": {"learner.batch_size": 256, "reward_transform": "none", "eval_episodes": 100},
    "kitchen": {"learner.batch_size": 256, "reward_transform": "none", "eval_episodes": 100},
}

# IQL as its authors ran it (Kostrikov et al. 2021; REFERENCE.md): its own networks, no
# pretraining, 1M steps, Adam 3e-4 everywhere with the actor's rate cosine-decayed over 1M.
IQL_RECIPE: dict[str, Any] = {
    "learner.pretrain_steps": 0,
    "learner.steps": 1_000_000,
    "learner.batch_size": 256,
    "learner.agent.critics": "iql",
    "learner.agent.policy": "iql_gaussian",
    "learner.agent.log_std_min": -10.0,
    "learner.agent.lr": 3e-4,
    "learner.agent.critic_lr": 3e-4,
    "learner.agent.lr_decay": True,
    "learner.agent.lr_decay_steps": 1_000_000,
    "learner.agent.decay_critic_lr": False,
    "learner.agent.value_target": "target_q",
    "learner.agent.entropy_coef": 0.0,
}

# The standard BC of the offline-RL literature, as TD3+BC (Fujimoto & Gu 2021) and CORL's
# any_percent_bc run it: a 2 x 256 ReLU actor with a tanh output, mean squared error, Adam 3e-4
# without decay, batch 256, 1M steps. (Their state normalization is not implemented.)
BC_RECIPE: dict[str, Any] = {
    "learner.pretrain_steps": 0,
    "learner.steps": 1_000_000,
    "learner.batch_size": 256,
    "learner.agent.policy": "deterministic",
    "learner.agent.lr": 3e-4,
    "learner.agent.lr_decay": False,
}

# What an algorithm needs that the defaults do not give it; flags still override these.
ALGORITHM_DEFAULTS: dict[str, dict[str, Any]] = {
    # The KL baseline's generator is implicit (Appendix D).
    "kl": {"learner.agent.policy": "implicit"},
    "iql": IQL_RECIPE,
    "bc": BC_RECIPE,
    # "iql-dtql" and "bc-gaussian" run on the task's DTQL preset: nothing to add.
}

# The same, per (algorithm, family): IQL's reward scaling, expectile and temperature beta.
# (IQL's actor dropout of 0.1 on Adroit and Kitchen is not implemented.)
ALGORITHM_FAMILY_DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {
    ("iql", "locomotion"): {
        "reward_transform": "scale_by_return_range",
        "learner.agent.expectile": 0.7,
        "learner.agent.awr_temperature": 3.0,
    },
    ("iql", "antmaze"): {
        "reward_transform": "minus_one",
        "learner.agent.expectile": 0.9,
        "learner.agent.awr_temperature": 10.0,
    },
    ("iql", "adroit"): {"learner.agent.expectile": 0.7, "learner.agent.awr_temperature": 0.5},
    ("iql", "kitchen"): {"learner.agent.expectile": 0.7, "learner.agent.awr_temperature": 0.5},
}

FAMILY_OF_PREFIX = {
    "halfcheetah": "locomotion",
    "hopper": "locomotion",
    "walker2d": "locomotion",
    "ant": "locomotion",
    "antmaze": "antmaze",
    "pen": "adroit",
    "adroithandpen": "adroit",
    "kitchen": "kitchen",
}


class UnknownPresetError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def family_of(task: str) -> str:
    """The task's family, from its name's first word (any case: 'hopper-medium-v2', 'Hopper-v5')."""
    prefix = task.split("-", 1)[0].lower()
    if prefix not in FAMILY_OF_PREFIX:
        raise UnknownPresetError(
            f"task {task!r}: unknown family {prefix!r}; expected one of {sorted(FAMILY_OF_PREFIX)}"
        )
    return FAMILY_OF_PREFIX[prefix]


def preset_names() -> list[str]:
    return [row.task for row in TABLE_4]


def table4_row(task: str) -> Table4Row:
    for row in TABLE_4:
        if row.task == task:
            return row
    raise UnknownPresetError(f"unknown preset {task!r}; known presets: {', '.join(preset_names())}")


def preset(task: str) -> RunConfig:
    """Defaults, then the family's settings, then the task's row of Table 4."""
    row = table4_row(task)
    cfg = replace(RunConfig(task=task), **FAMILY_SETTINGS[family_of(task)])
    agent: AgentConfig = replace(
        cfg.learner.agent,
        alpha=float(row.alpha),
        expectile=row.expectile,
        entropy_coef=1.0 if row.entropy_term else 0.0,
        lr=row.lr,
        lr_decay=row.lr_decay,
    )
    steps = row.training_epochs * STEPS_PER_EPOCH
    # The released code's cosine spans the preset's whole schedule, however long a run is.
    agent = replace(agent, lr_decay_steps=steps)
    learner = replace(
        cfg.learner, agent=agent, pretrain_steps=row.pretrain_epochs * STEPS_PER_EPOCH, steps=steps
    )
    return replace(cfg, learner=learner)


def run_config(task: str, algo: str = "dtql") -> RunConfig:
    """A run's config before flags: the task's preset (or the defaults, for a task with no
    Table 4 row), with ``algo`` and its defaults (``ALGORITHM_DEFAULTS``, then
    ``ALGORITHM_FAMILY_DEFAULTS`` for the task's family). An unknown task is an error."""
    get_task(task)  # an unknown task fails here, with the list of known ones
    cfg = preset(task) if task in preset_names() else RunConfig(task=task)
    family_defaults = ALGORITHM_FAMILY_DEFAULTS.get((algo, family_of(task)), {})
    settings = {"learner.algo": algo, **ALGORITHM_DEFAULTS.get(algo, {}), **family_defaults}
    return replace(cfg, **settings)
