"""Shared fixtures: small real datasets made here, and a temporary working folder per test
(mujoco writes MUJOCO_LOG.TXT into the working directory)."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def write_hopper_d4rl(path: Path, transitions: int, seed: int = 0, max_steps: int = 200) -> Path:
    """A D4RL-layout hdf5 of Hopper-v5 under a noisy random policy, with terminals and timeouts.

    Episodes are cut at ``max_steps`` (a timeout) so the file has both kinds of episode end.
    """
    rng = np.random.default_rng(seed)
    env = gym.make("Hopper-v5")
    rows: dict[str, list] = {
        k: []
        for k in (
            "observations",
            "actions",
            "rewards",
            "terminals",
            "timeouts",
            "next_observations",
        )
    }
    obs, _ = env.reset(seed=seed)
    t = 0
    while len(rows["rewards"]) < transitions:
        action = np.clip(0.3 * rng.standard_normal(3), -1.0, 1.0).astype(np.float32)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        t += 1
        timeout = (not terminated) and (truncated or t >= max_steps)
        for key, value in (
            ("observations", obs),
            ("actions", action),
            ("rewards", reward),
            ("terminals", terminated),
            ("timeouts", timeout),
            ("next_observations", next_obs),
        ):
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


@pytest.fixture(scope="session")
def hopper_hdf5(tmp_path_factory) -> Path:
    return write_hopper_d4rl(tmp_path_factory.mktemp("data") / "hopper-random.hdf5", 3000)
