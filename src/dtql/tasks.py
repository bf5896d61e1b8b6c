"""Task registry: how each task is evaluated in a real simulator, and D4RL normalized scores.

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

Observation mapping (env observation -> D4RL layout, see ``adapt_observation``)
------------------------------------------------------------------------------
* Locomotion (Hopper-v5 11-d, HalfCheetah-v5 17-d, Walker2d-v5 17-d) and AdroitHandPen-v1 (45-d):
  the Box observation already has D4RL's layout; identity.
* AntMaze (29-d): D4RL's observation is the ant's qpos (15, starting with torso x, y) followed by
  its qvel (14). Gymnasium-Robotics' AntMaze gives a dict whose ``achieved_goal`` is qpos[:2] and
  whose ``observation`` is qpos[2:] + qvel, plus 78 contact-force entries unless the Ant-v5 kwarg
  ``include_cfrc_ext_in_observation=False`` is given (it is, here). The mapping is
  ``concat(achieved_goal, observation)`` = qpos + qvel (tests check it against
  ``env.unwrapped.data``). The goal is not part of D4RL's observation, so it is dropped.
  x, y are in Gymnasium-Robotics' frame (maze centred at the origin); D4RL's frame has the start
  cell at the origin and its y axis points the other way along the maze rows.
* Kitchen (60-d): D4RL's observation is robot joint positions (9), object positions (21) and the
  task goal (30: the goal value of each task's joints written at that joint's index in the
  30-entry qpos, zeros elsewhere). FrankaKitchen-v1's ``observation`` (59) is robot qpos (9),
  robot qvel (9), object qpos (21), object qvel (20); its ``desired_goal`` is a dict
  task -> goal values. The mapping is ``concat(obs[0:9], obs[18:39], goal_30)`` with goal_30
  rebuilt from ``desired_goal`` using the env's own task -> qpos-index table. Both envs add small
  observation noise (D4RL robot noise ratio 0.1, FrankaKitchen-v1 0.01 by default); not matched.

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

import contextlib
import difflib
import io
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import gymnasium as gym
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
    """Key of _OBS_ADAPTERS: maps the env's observation to the flat D4RL layout."""
    extra_termination: str = "none"
    """Key of _EXTRA_TERMINATIONS: a D4RL episode end the Gymnasium env does not have."""


# --------------------------------------------------------------------------------------------
# Observation adapters. Each maps one observation, or a batch ([..., ] leading dims, as in a
# vector env or a Minari episode's [T, ...] arrays), to float64 [..., obs_dim].
# --------------------------------------------------------------------------------------------


def _identity(obs: Any) -> np.ndarray:
    return np.asarray(obs, dtype=np.float64)


def _antmaze(obs: dict[str, Any]) -> np.ndarray:
    # achieved_goal is the torso's (x, y) = qpos[:2]; observation is qpos[2:] followed by qvel.
    return np.concatenate(
        [np.asarray(obs["achieved_goal"]), np.asarray(obs["observation"])], axis=-1
    ).astype(np.float64)


def _kitchen(obs: dict[str, Any]) -> np.ndarray:
    # The env's own task -> qpos-index table (same numbers as D4RL's), imported lazily because
    # gymnasium_robotics takes a while to import and only kitchen needs it.
    from gymnasium_robotics.envs.franka_kitchen.kitchen_env import OBS_ELEMENT_INDICES

    flat = np.asarray(obs["observation"], dtype=np.float64)
    robot_qpos, object_qpos = flat[..., 0:9], flat[..., 18:39]
    goal = np.zeros((*flat.shape[:-1], 30))
    for task, value in obs["desired_goal"].items():
        goal[..., OBS_ELEMENT_INDICES[task]] = np.asarray(value)
    return np.concatenate([robot_qpos, object_qpos, goal], axis=-1)


_OBS_ADAPTERS: dict[str, Callable[[Any], np.ndarray]] = {
    "identity": _identity,
    "antmaze": _antmaze,
    "kitchen": _kitchen,
}


def adapt_observation(task: TaskSpec, obs: Any) -> np.ndarray:
    """The env's observation (or a batch of them; dicts of arrays for dict envs) in D4RL layout."""
    return _OBS_ADAPTERS[task.obs_adapter](obs)


# --------------------------------------------------------------------------------------------
# Episode ends that D4RL has and the Gymnasium env lacks; each reads the flat D4RL observation.
# --------------------------------------------------------------------------------------------

# D4RL's pen ends the episode once the pen falls below this height (m); flat obs[24:27] is the
# pen's position (after the 24 hand joint angles).
_PEN_DROP_HEIGHT = 0.075


def _pen_dropped(obs: np.ndarray) -> bool:
    return bool(obs[26] < _PEN_DROP_HEIGHT)


_EXTRA_TERMINATIONS: dict[str, Callable[[np.ndarray], bool] | None] = {
    "none": None,
    "pen_dropped": _pen_dropped,
}


class _TerminateWhen(gym.Wrapper):
    """Also terminate when ``predicate(obs)`` holds after a step."""

    def __init__(self, env: gym.Env, predicate: Callable[[np.ndarray], bool]):
        super().__init__(env)
        self._predicate = predicate

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated or self._predicate(obs), truncated, info


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
        f"pen-human-v1, kitchen-mixed-v0 (dtql.tasks.task_names() lists all)."
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


# --------------------------------------------------------------------------------------------
# Environments
# --------------------------------------------------------------------------------------------


def _register_robotics_envs(env_id: str) -> None:
    # AntMaze, AdroitHandPen and FrankaKitchen live in gymnasium_robotics; it is imported only
    # for them, and its import-time notice about the Adroit *Dense* envs (not used here) is
    # kept off stdout so that `--json` output stays one JSON object.
    if env_id in gym.registry:
        return
    with contextlib.redirect_stdout(io.StringIO()):
        import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)


def make_single_env(task: TaskSpec) -> gym.Env:
    """One evaluation env whose observations are flat float64 [obs_dim] in the D4RL layout."""
    _register_robotics_envs(task.env_id)
    env = gym.make(task.env_id, max_episode_steps=task.max_episode_steps, **dict(task.env_kwargs))
    env = gym.wrappers.TransformObservation(
        env,
        partial(adapt_observation, task),
        gym.spaces.Box(-np.inf, np.inf, shape=(task.obs_dim,), dtype=np.float64),
    )
    predicate = _EXTRA_TERMINATIONS[task.extra_termination]
    if predicate is not None:
        env = _TerminateWhen(env, predicate)
    return env


def make_env(
    task: TaskSpec,
    num_envs: int = 1,
    autoreset_mode: gym.vector.AutoresetMode = gym.vector.AutoresetMode.SAME_STEP,
) -> gym.vector.VectorEnv:
    """``num_envs`` copies of ``make_single_env(task)`` stepped in this process.

    SAME_STEP autoreset: the step that ends an episode already returns the next episode's first
    observation, so every step is a real transition of every env (Gymnasium's default,
    NEXT_STEP, spends one extra step on the reset).
    """
    return gym.vector.SyncVectorEnv(
        [partial(make_single_env, task) for _ in range(num_envs)],
        autoreset_mode=autoreset_mode,
    )
