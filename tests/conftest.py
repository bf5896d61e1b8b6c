"""Shared fixtures: small real datasets made here, and a temporary working folder per test
(mujoco writes MUJOCO_LOG.TXT into the working directory)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def write_env_d4rl(
    path: Path,
    env: gym.Env,
    transitions: int,
    act: Callable[[], np.ndarray],
    seed: int = 0,
    max_steps: int = 200,
) -> Path:
    """A D4RL-layout hdf5 of ``act()`` actions in ``env`` (flat observations), with terminals and
    timeouts: episodes are cut at ``max_steps`` (a timeout), so the file has both kinds of end."""
    keys = ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations")
    rows: dict[str, list] = {k: [] for k in keys}
    obs, _ = env.reset(seed=seed)
    t = 0
    while len(rows["rewards"]) < transitions:
        action = act()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        t += 1
        timeout = (not terminated) and (truncated or t >= max_steps)
        values = (np.array(obs), action, reward, terminated, timeout, np.array(next_obs))
        for key, value in zip(keys, values, strict=True):
            rows[key].append(value)
        obs = next_obs
        if terminated or timeout:
            obs, _ = env.reset()
            t = 0
    env.close()
    with h5py.File(path, "w") as f:
        for key, values in rows.items():
            dtype = bool if key in ("terminals", "timeouts") else np.float32
            f.create_dataset(key, data=np.asarray(values, dtype=dtype))
    return path


def write_hopper_d4rl(path: Path, transitions: int, seed: int = 0, max_steps: int = 200) -> Path:
    """A D4RL-layout hdf5 of Hopper-v5 under a noisy random policy (see ``write_env_d4rl``)."""
    rng = np.random.default_rng(seed)

    def act() -> np.ndarray:
        return np.clip(0.3 * rng.standard_normal(3), -1.0, 1.0).astype(np.float32)

    return write_env_d4rl(path, gym.make("Hopper-v5"), transitions, act, seed, max_steps)


@pytest.fixture(scope="session")
def hopper_hdf5(tmp_path_factory) -> Path:
    return write_hopper_d4rl(tmp_path_factory.mktemp("data") / "hopper-random.hdf5", 3000)
