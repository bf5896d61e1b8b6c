"""medium-replay shipped compactly: the actions of the SAC run, replayed in the simulator.

SAC's replay buffer up to the medium snapshot is the trajectory of SAC's one env. MuJoCo is
deterministic, so that trajectory is fixed by the run's seed (the env's first reset; each later
reset draws on from the env's random stream) and the actions SAC took. ``<env>-medium-replay``
stores just those: ``.safetensors`` holds the actions ([rows, act_dim] float32 in SB3's [-1, 1]
scale: 12 bytes a row for Hopper, against the 200 MB pickled buffer), ``.json`` the seed, the
resets that a --resume reseeded, the counts, the sha256 of the dataset's arrays and the
provenance. `replay_actions` steps the env through them and rebuilds the buffer's transitions bit
for bit; the digest proves it (a simulator that differs is an error, never silently other data).

A --resume (see ``sac``) cuts the episode in progress (a timeout) and reseeds the env with
seed + step; the file lists such resets as ``reseeds`` ([row, seed] pairs), found by replaying
against the buffer when the file is written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dtql.collect.behaviour_policy import (
    FORMAT_VERSION,
    PolicyFileError,
    read_policy_files,
    unscale_action,
    write_tensors_and_record,
)
from dtql.data.transitions import Transitions, transitions_from_rows
from dtql.envs.make import make_single_env
from dtql.envs.registry import TaskSpec

REPLAY_ACTIONS = "replay-actions"
FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")


@dataclass(frozen=True)
class ReplayActions:
    """The actions of a SAC run's first ``rows`` steps and how to replay them."""

    record: dict[str, Any]
    """The json record: kind, env_id, level, rows, seed, reseeds, digest, provenance."""
    actions: np.ndarray
    """[rows, act_dim] float32, SB3's [-1, 1] scale (what its replay buffer holds)."""
    files: dict[str, str]


def transitions_digest(t: Transitions) -> str:
    """sha256 of a dataset's arrays (FIELDS in order, their float32 bytes)."""
    digest = hashlib.sha256()
    for name in FIELDS:
        digest.update(np.ascontiguousarray(getattr(t, name), dtype=np.float32).tobytes())
    return digest.hexdigest()


def replay_actions(
    task: TaskSpec,
    scaled: np.ndarray,
    seed: int,
    reseeds: dict[int, int] | None = None,
    expected: Transitions | None = None,
) -> tuple[Transitions, dict[int, int]]:
    """Step one env (the SAC env: the task's evaluation env) through `scaled` actions from
    reset(seed); returns the transitions (the last episode cut: a timeout) and the reseeds.

    `reseeds` ({row: seed}) resets the env with that seed at that row, cutting the episode
    before it. With `expected` (the buffer's transitions) the reseeds are found instead: an
    episode the buffer ends where the env does not, or a reset observation that the env's
    stream does not give, is taken as a --resume's reseed with seed + row, and checked.
    """
    reseeds = dict(reseeds or {})
    rows = len(scaled)
    ends = None if expected is None else (expected.terminals + expected.timeouts) > 0
    env = make_single_env(task)
    low, high = env.action_space.low, env.action_space.high
    arrays = {
        "observations": np.zeros((rows, task.obs_dim), np.float32),
        "next_observations": np.zeros((rows, task.obs_dim), np.float32),
        "rewards": np.zeros(rows, np.float32),  # float32 as in SB3's buffer: same returns
        "terminals": np.zeros(rows, bool),
        "timeouts": np.zeros(rows, bool),
    }
    try:
        obs, _ = env.reset(seed=seed)
        episode_start = True
        for i in range(rows):
            if expected is not None and episode_start and i > 0:
                if not np.array_equal(np.float32(obs), expected.observations[i]):
                    obs, _ = env.reset(seed=seed + i)  # a --resume reseeded the env here
                    reseeds[i] = seed + i
                    if not np.array_equal(np.float32(obs), expected.observations[i]):
                        raise PolicyFileError(
                            f"replaying {task.env_id} from seed {seed}: the reset at row {i} "
                            "gives another observation than the replay buffer's, expected the "
                            "same (a simulator that is not deterministic here?)"
                        )
            # SB3 steps the env with unscale_action of the buffer's action (as here).
            next_obs, reward, terminated, truncated, _ = env.step(
                unscale_action(low, high, scaled[i])
            )
            arrays["observations"][i], arrays["next_observations"][i] = obs, next_obs
            arrays["rewards"][i] = reward
            cut = (i + 1) in reseeds or (ends is not None and bool(ends[i]))
            arrays["terminals"][i] = terminated
            arrays["timeouts"][i] = not terminated and (truncated or cut)
            episode_start = terminated or truncated or cut
            if (i + 1) in reseeds:
                obs, _ = env.reset(seed=reseeds[i + 1])
            elif episode_start:
                obs, _ = env.reset()
            else:
                obs = next_obs
    finally:
        env.close()
    arrays["timeouts"][-1] = not arrays["terminals"][-1]  # the data stops here: a cut
    data = transitions_from_rows(
        **arrays, actions=unscale_action(low, high, scaled), source=f"{task.env_id} replay"
    )
    if expected is not None:
        for name in FIELDS:
            ours, theirs = getattr(data, name), getattr(expected, name)
            if ours.shape != theirs.shape or not np.array_equal(ours, theirs):
                row = int(np.argmax(np.any((ours != theirs).reshape(len(ours), -1), axis=1)))
                raise PolicyFileError(
                    f"replaying {task.env_id} from seed {seed}: {name} differs from the replay "
                    f"buffer's at row {row}, expected the same (not SAC's env or seed?)"
                )
    return data, reseeds


def replay_from_buffer(
    task: TaskSpec, expected: Transitions, scaled: np.ndarray, seed: int, provenance: dict
) -> ReplayActions:
    """The compact form of a replay buffer's first rows (`expected`, with their [-1, 1]
    actions `scaled`): checked by replaying them, with the reseeds a --resume made."""
    data, reseeds = replay_actions(task, scaled, seed, expected=expected)
    record = {
        **_identity(task),
        "rows": int(len(scaled)),
        "episodes": data.num_episodes,
        "seed": int(seed),
        "reseeds": [[row, reseed] for row, reseed in sorted(reseeds.items())],
        "digest_sha256": transitions_digest(data),
        "provenance": provenance,
    }
    actions = np.ascontiguousarray(scaled, dtype=np.float32)
    return ReplayActions(record, actions, files={})


def _identity(task: TaskSpec) -> dict[str, Any]:
    """What a replay file says it is; a file is loaded for `task` only if it says exactly this."""
    return {
        "format_version": FORMAT_VERSION,
        "kind": REPLAY_ACTIONS,
        "env_id": task.env_id,
        "level": "medium-replay",
        "obs_dim": task.obs_dim,
        "act_dim": task.act_dim,
    }


def write_replay_actions(replay: ReplayActions, stem: str | Path) -> list[Path]:
    return write_tensors_and_record(replay.record, {"actions": replay.actions}, stem)


def load_replay_actions(stem: str | Path, task: TaskSpec) -> ReplayActions:
    """The replay file <stem>.json (+ its safetensors), checked against `task`."""
    record, tensors, files = read_policy_files(stem)
    where = files["json"]
    for name, value in _identity(task).items():
        if record.get(name) != value:
            raise PolicyFileError(
                f"{where}: field {name!r} is {record.get(name)!r}, expected {value!r}"
            )
    actions = tensors.get("actions")
    rows = record.get("rows")
    if actions is None or actions.shape != (rows, task.act_dim) or actions.dtype != np.float32:
        shape = None if actions is None else (actions.shape, str(actions.dtype))
        raise PolicyFileError(
            f"{where}: tensor 'actions' is {shape}, expected float32 of shape "
            f"({rows}, {task.act_dim})"
        )
    if not (isinstance(rows, int) and rows >= 1 and isinstance(record.get("seed"), int)):
        raise PolicyFileError(f"{where}: fields 'rows' and 'seed' must be integers (rows >= 1)")
    return ReplayActions(record, actions, files)


def regenerate(task: TaskSpec, replay: ReplayActions) -> Transitions:
    """The dataset of a replay file, checked against its recorded digest."""
    reseeds = {int(row): int(seed) for row, seed in replay.record.get("reseeds", [])}
    data, _ = replay_actions(task, replay.actions, replay.record["seed"], reseeds)
    digest = transitions_digest(data)
    if digest != replay.record.get("digest_sha256"):
        raise PolicyFileError(
            f"{replay.files.get('json', 'replay file')}: replaying gives data with sha256 "
            f"{digest}, expected {replay.record.get('digest_sha256')} (field 'digest_sha256'; "
            "another MuJoCo build?)"
        )
    return data
