"""Evaluation environments from task specs, and the observation adapters to D4RL's layout.

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

Episode ends that D4RL has and the Gymnasium env lacks (the pen drop) are added by a wrapper.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np

from dtql.envs.registry import TaskSpec

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
