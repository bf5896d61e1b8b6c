"""The task registry: how each task is evaluated, and D4RL normalized scores. No simulator here.

This module imports neither gymnasium nor mujoco, so checking a task name or scoring a return is
cheap; ``dtql.envs.make`` builds the environments from these specs.

Naming scheme
-------------
A task name is one of

* an *environment* name, version-less: ``halfcheetah``, ``hopper``, ``walker2d``, ``ant``, ``pen``,
  ``antmaze-umaze``, ``antmaze-medium``, ``antmaze-large``,
  ``kitchen-microwave-kettle-light-slider``, ``kitchen-microwave-kettle-bottomburner-light``.
  Use these with your own data;
* a D4RL dataset name, ``<environment>-<dataset>-<version>`` as D4RL spells it:
  ``hopper-medium-v2``, ``antmaze-large-play-v0``, ``pen-cloned-v1``, ``kitchen-mixed-v0``, ...
  It is evaluated in its environment (kitchen-complete/partial are the light-slider kitchen,
  kitchen-mixed the bottom-burner one, as in D4RL);
* the Gymnasium id of a Box-observation environment: ``Hopper-v5``, ``HalfCheetah-v5``,
  ``Walker2d-v5``, ``Ant-v5``, ``AdroitHandPen-v1`` (same as the environment name).

Every name resolves through one dict, ``_TASKS``, built from the tables below.

Evaluation environments (what differs from D4RL, and why)
----------------------------------------------------------
* AntMaze: ``AntMaze_{UMaze,Medium,Large}-v5`` with sparse reward and ``continuing_task=False``:
  the episode ends when the ant reaches the goal, so the return is 1 (reached) or 0, as in D4RL's
  evaluation envs (reference returns 0 and 1). The maze map fixes D4RL's evaluation start ('r')
  and goal ('g') cells on Gymnasium-Robotics' wall layouts, which copy D4RL's row by row. For
  medium and large this is D4RL's evaluation map row by row, i.e. D4RL's task mirrored in y
  (Gymnasium's y axis runs up the rows, D4RL's down) and the same map as Minari's AntMaze
  evaluation env. The U-maze is symmetric under that mirror, so there start and goal rows are
  swapped to keep D4RL's start -> goal route (and that of Minari's umaze data). Known
  differences from D4RL: the goal radius is 0.45 (D4RL 0.5); start and goal noise is uniform
  +-1 around the cell centre; and Gymnasium's ant model (timestep 0.01, gear 150) is not D4RL's
  (timestep 0.02, ctrl range +-30), so policies trained on D4RL's own AntMaze data do not
  transfer; Minari's regenerated AntMaze data does. v0 and v2 (goal drawn once per env vs per
  episode in D4RL) use the same env: Gymnasium draws the goal noise at every reset.
* Pen: ``AdroitHandPen-v1`` (dense reward, as D4RL) with D4RL's 100-step episodes (Gymnasium
  registers 200), and the episode ends when the pen is dropped (its height < 0.075), as in D4RL.
* Kitchen: ``FrankaKitchen-v1`` with D4RL's four tasks; reward = tasks completed on the step,
  episode ends when all four are done or after 280 steps, as in D4RL.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

# --------------------------------------------------------------------------------------------
# The task description
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskSpec:
    """How a task is evaluated. Frozen and hashable, so it can sit in configs and caches."""

    name: str
    """The name it was looked up by, e.g. 'hopper-medium-v2'."""
    env_id: str
    """Gymnasium id used for evaluation, e.g. 'Hopper-v5'."""
    env_kwargs: tuple[tuple[str, Any], ...]
    """Extra gym.make kwargs as (key, value) pairs (hashable; values are tuples, not lists)."""
    ref_min_score: float
    """D4RL random return: normalized score 0."""
    ref_max_score: float
    """D4RL expert return: normalized score 100."""
    obs_dim: int
    """Size of the flat observation the policy sees (D4RL layout)."""
    act_dim: int
    max_episode_steps: int
    """Time limit of an evaluation episode (D4RL's)."""
    obs_adapter: str = "identity"
    """Which adapter of ``dtql.envs.make`` maps the env's observation to D4RL's flat layout."""
    extra_termination: str = "none"
    """Which episode end of ``dtql.envs.make`` D4RL has and the Gymnasium env lacks."""


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def _maze(*rows: str) -> tuple[tuple[int | str, ...], ...]:
    """A Gymnasium-Robotics maze_map from a drawing: '#' wall, '.' free, 'r' start, 'g' goal."""
    cell = {"#": 1, ".": 0, "r": "r", "g": "g"}
    return tuple(tuple(cell[c] for c in row) for row in rows)


# Walls are Gymnasium-Robotics' U_MAZE / MEDIUM_MAZE / LARGE_MAZE (= D4RL's, row by row); start
# and goal cells are D4RL's evaluation cells (see the module docstring for the U-maze's swap).
_UMAZE = _maze(
    "#####",
    "#g..#",
    "###.#",
    "#r..#",
    "#####",
)
_MEDIUM_MAZE = _maze(
    "########",
    "#r.##..#",
    "#..#...#",
    "##...###",
    "#..#...#",
    "#.#..#.#",
    "#...#.g#",
    "########",
)
_LARGE_MAZE = _maze(
    "############",
    "#r...#.....#",
    "#.##.#.#.#.#",
    "#......#...#",
    "#.####.###.#",
    "#..#.#.....#",
    "##.#.#.#.###",
    "#..#...#.g.#",
    "############",
)


def _antmaze_kwargs(maze_map: tuple[tuple[int | str, ...], ...]) -> tuple[tuple[str, Any], ...]:
    return (
        ("maze_map", maze_map),
        ("reward_type", "sparse"),
        ("continuing_task", False),  # reaching the goal ends the episode (D4RL evaluation)
        ("include_cfrc_ext_in_observation", False),  # no contact forces: 27-d 'observation'
    )


_KITCHEN_LIGHT_SLIDER = ("microwave", "kettle", "light switch", "slide cabinet")
_KITCHEN_BOTTOMBURNER_LIGHT = ("microwave", "kettle", "bottom burner", "light switch")

_LOCOMOTION = dict(obs_adapter="identity", max_episode_steps=1000)
_ANTMAZE = dict(ref_min_score=0.0, ref_max_score=1.0, obs_dim=29, act_dim=8, obs_adapter="antmaze")
_KITCHEN = dict(
    env_id="FrankaKitchen-v1",
    ref_min_score=0.0,
    ref_max_score=4.0,
    obs_dim=60,
    act_dim=9,
    max_episode_steps=280,
    obs_adapter="kitchen",
)

# One row per evaluation environment; D4RL dataset names and Gymnasium ids point at these.
_ENVIRONMENTS: tuple[TaskSpec, ...] = (
    TaskSpec("halfcheetah", "HalfCheetah-v5", (), -280.178953, 12135.0, 17, 6, **_LOCOMOTION),
    TaskSpec("hopper", "Hopper-v5", (), -20.272305, 3234.3, 11, 3, **_LOCOMOTION),
    TaskSpec("walker2d", "Walker2d-v5", (), 1.629008, 4592.3, 17, 6, **_LOCOMOTION),
    # Ant-v5's default observation (105-d); D4RL's ant datasets (Ant-v2, 111-d) do not fit it,
    # so only data made for Ant-v5 (e.g. by `dtql collect Ant-v5`) trains for this task.
    TaskSpec("ant", "Ant-v5", (), -325.6, 3879.7, 105, 8, **_LOCOMOTION),
    TaskSpec(
        "antmaze-umaze",
        env_id="AntMaze_UMaze-v5",
        env_kwargs=_antmaze_kwargs(_UMAZE),
        max_episode_steps=700,
        **_ANTMAZE,
    ),
    TaskSpec(
        "antmaze-medium",
        env_id="AntMaze_Medium-v5",
        env_kwargs=_antmaze_kwargs(_MEDIUM_MAZE),
        max_episode_steps=1000,
        **_ANTMAZE,
    ),
    TaskSpec(
        "antmaze-large",
        env_id="AntMaze_Large-v5",
        env_kwargs=_antmaze_kwargs(_LARGE_MAZE),
        max_episode_steps=1000,
        **_ANTMAZE,
    ),
    TaskSpec(
        "pen",
        env_id="AdroitHandPen-v1",
        env_kwargs=(),
        ref_min_score=96.262799,
        ref_max_score=3076.8331017826877,
        obs_dim=45,
        act_dim=24,
        max_episode_steps=100,  # D4RL's; Gymnasium registers 200
        obs_adapter="identity",
        extra_termination="pen_dropped",
    ),
    TaskSpec(
        "kitchen-microwave-kettle-light-slider",
        env_kwargs=(("tasks_to_complete", _KITCHEN_LIGHT_SLIDER),),
        **_KITCHEN,
    ),
    TaskSpec(
        "kitchen-microwave-kettle-bottomburner-light",
        env_kwargs=(("tasks_to_complete", _KITCHEN_BOTTOMBURNER_LIGHT),),
        **_KITCHEN,
    ),
)

_LOCOMOTION_DATASETS = (
    "random",
    "medium",
    "expert",
    "medium-replay",
    "medium-expert",
    "full-replay",
)
_ANTMAZE_DATASETS = {
    "umaze": "antmaze-umaze",
    "umaze-diverse": "antmaze-umaze",
    "medium-play": "antmaze-medium",
    "medium-diverse": "antmaze-medium",
    "large-play": "antmaze-large",
    "large-diverse": "antmaze-large",
}

# D4RL dataset name -> the environment it is evaluated in.
_DATASETS: dict[str, str] = {
    **{
        f"{robot}-{dataset}-v2": robot
        for robot in ("halfcheetah", "hopper", "walker2d")
        for dataset in _LOCOMOTION_DATASETS
    },
    **{
        f"antmaze-{dataset}-{version}": env
        for dataset, env in _ANTMAZE_DATASETS.items()
        for version in ("v0", "v1", "v2")
    },
    **{
        f"pen-{dataset}-{version}": "pen"
        for dataset in ("human", "cloned", "expert")
        for version in ("v0", "v1")
    },
    "kitchen-complete-v0": "kitchen-microwave-kettle-light-slider",
    "kitchen-partial-v0": "kitchen-microwave-kettle-light-slider",
    "kitchen-mixed-v0": "kitchen-microwave-kettle-bottomburner-light",
}

# Gymnasium ids accepted as names: those whose environment needs no extra kwargs.
_GYMNASIUM_IDS = {
    "HalfCheetah-v5": "halfcheetah",
    "Hopper-v5": "hopper",
    "Walker2d-v5": "walker2d",
    "Ant-v5": "ant",
    "AdroitHandPen-v1": "pen",
}

_BY_ENVIRONMENT = {spec.name: spec for spec in _ENVIRONMENTS}
_TASKS: dict[str, TaskSpec] = {
    name: replace(_BY_ENVIRONMENT[env], name=name)
    for name, env in {
        **{name: name for name in _BY_ENVIRONMENT},
        **_DATASETS,
        **_GYMNASIUM_IDS,
    }.items()
}


# --------------------------------------------------------------------------------------------
# Lookup and scores
# --------------------------------------------------------------------------------------------


class UnknownTaskError(KeyError):
    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0])


def task_names() -> list[str]:
    """Every accepted task name."""
    return sorted(_TASKS)


def get_task(name: str) -> TaskSpec:
    """The evaluation setup of a task name (see the module docstring for the naming scheme)."""
    if name in _TASKS:
        return _TASKS[name]
    close = difflib.get_close_matches(name, _TASKS, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UnknownTaskError(
        f"unknown task {name!r}.{hint} Known environments: {', '.join(_BY_ENVIRONMENT)}; "
        f"Gymnasium ids: {', '.join(_GYMNASIUM_IDS)}; D4RL datasets "
        f"<environment>-<dataset>-<version>, e.g. hopper-medium-v2, antmaze-large-play-v2, "
        f"pen-human-v1, kitchen-mixed-v0 (dtql.envs.registry.task_names() lists all)."
    )


def normalized_score(task: TaskSpec | str, returns: ArrayLike) -> np.ndarray | float:
    """D4RL normalized score 100 * (return - random) / (expert - random); arrays element-wise."""
    spec = get_task(task) if isinstance(task, str) else task
    scores = (
        100.0
        * (np.asarray(returns, dtype=np.float64) - spec.ref_min_score)
        / (spec.ref_max_score - spec.ref_min_score)
    )
    return scores if scores.ndim else float(scores)
