"""Read a D4RL .hdf5 file into the Q-learning view; write one (`write_d4rl`).

A D4RL file holds flat arrays, one row per environment step, episodes back to back:
observations, actions, rewards, terminals, and (v1/v2) timeouts; optionally next_observations
(v2 locomotion), infos/* and metadata/* (ignored here).

Episodes end at a row with terminals=1 or timeouts=1, and at the file's last row. The Q-learning
view of row i is (observations[i], actions[i], rewards[i], s'_i, done=terminals[i]):

- With next_observations in the file, s'_i = next_observations[i] and every row is kept.
- Without it, s'_i = observations[i + 1] within the same episode. The last row of an episode that
  did not end in a terminal state (a timeout, or the file's last row) has no s' and is dropped, as
  the D4RL helper `qlearning_dataset` does. A terminal row is kept: its s' is never used because
  done = 1, so it is observations[i + 1] when that row exists and the row's own observation at
  the end of the file.
- A timeout is not a terminal: the transition before a time limit bootstraps.

v0 files have no timeouts: they are read as all zeros, so episodes end only at terminals, and
locomotion episodes cut by the time limit run into the next one (D4RL's own behaviour on v0).

`episode_returns` sums the rewards of every raw row, dropped rows included.

`write_d4rl` writes the v2 locomotion layout (next_observations and timeouts included), so
`read_d4rl` gives every row back.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from dtql.data.transitions import (
    PROVENANCE_KEY,
    DatasetError,
    ObsAdapter,
    Transitions,
    as_flags,
    as_matrix,
    as_vector,
    check_finite,
    check_provenance,
    check_rows,
    returns_per_episode,
)
from dtql.files import atomic_path

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals")


def read_d4rl(
    path: str | Path, obs_adapter: ObsAdapter | None = None, source: str | None = None
) -> Transitions:
    """Read a D4RL-layout hdf5 file. `source` names it in messages (default: the path)."""
    path = Path(path)
    src = source or str(path)
    try:
        file = h5py.File(path, "r")
    except OSError as e:
        raise DatasetError(f"{src}: cannot open as hdf5 ({e}), expected a D4RL .hdf5 file") from e
    with file:
        for key in REQUIRED_KEYS:
            if key not in file:
                raise DatasetError(
                    f"{src}: missing required key '{key}', expected D4RL keys "
                    f"{', '.join(REQUIRED_KEYS)} (and timeouts)"
                )
        fields = {
            "observations": _read_observations(file, "observations", obs_adapter, src),
            "actions": as_matrix(src, "actions", file["actions"][()]),
            "rewards": as_vector(src, "rewards", file["rewards"][()]),
            "terminals": as_flags(src, "terminals", file["terminals"][()]),
        }
        if "timeouts" in file:
            fields["timeouts"] = as_flags(src, "timeouts", file["timeouts"][()])
        if "next_observations" in file:
            fields["next_observations"] = _read_observations(
                file, "next_observations", obs_adapter, src
            )
        provenance = _read_provenance(file, src)

    check_rows(src, fields, reference="observations")
    if len(fields["observations"]) == 0:
        raise DatasetError(
            f"{src}: dataset is empty: field 'observations' has 0 rows, expected at least 1"
        )
    for name in ("observations", "actions", "rewards", "next_observations"):
        if name in fields:
            check_finite(src, name, fields[name])  # rows here are the file's rows

    n = len(fields["observations"])
    view = qlearning_view(
        observations=fields["observations"],
        actions=fields["actions"],
        rewards=fields["rewards"],
        terminals=fields["terminals"],
        timeouts=fields.get("timeouts", np.zeros(n, dtype=bool)),
        next_observations=fields.get("next_observations"),
        source=src,
    )
    return dataclasses.replace(view, provenance=provenance)


def _read_provenance(file: h5py.File, src: str) -> dict | None:
    """`dtql collect`'s record of how the file was made (metadata/dtql_collect, a JSON string),
    or None: D4RL's own files have no such entry."""
    key = f"metadata/{PROVENANCE_KEY}"
    if key not in file:
        return None
    value = file[key][()]
    try:
        record = json.loads(value.decode() if isinstance(value, bytes) else value)
    except (TypeError, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise DatasetError(
            f"{src}: field '{key}' is not JSON text ({type(e).__name__}), expected the record "
            "`dtql collect` writes"
        ) from e
    return check_provenance(src, key, record)


def qlearning_view(
    *,
    observations: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    terminals: np.ndarray,
    timeouts: np.ndarray,
    next_observations: np.ndarray | None,
    source: str,
) -> Transitions:
    """Build transitions from flat D4RL rows (see the module docstring for the rules)."""
    n = len(observations)
    ends = terminals | timeouts
    cut = int(not ends[-1])  # the last episode stops with the file, unflagged
    ends[-1] = True  # the file's last row closes the last episode

    if next_observations is not None:
        keep = np.ones(n, dtype=bool)
        next_obs = next_observations
    else:
        # Within an episode, s' is the next row; an episode's last row has none unless terminal.
        keep = ~ends | terminals
        next_obs = np.concatenate([observations[1:], observations[-1:]], axis=0)

    # Episode index of every row: the number of episode ends strictly before it.
    episode = np.concatenate([[0], np.cumsum(ends)[:-1]])
    ended_in_terminal = terminals[ends]  # one entry per episode

    kept_episode = episode[keep]
    last_kept = np.ones(len(kept_episode), dtype=bool)
    last_kept[:-1] = kept_episode[1:] != kept_episode[:-1]
    out_timeouts = last_kept & ~ended_in_terminal[kept_episode]

    return Transitions(
        observations=observations[keep],
        actions=actions[keep],
        rewards=rewards[keep],
        next_observations=next_obs[keep],
        terminals=terminals[keep].astype(np.float32),
        timeouts=out_timeouts.astype(np.float32),
        episode_returns=returns_per_episode(rewards, ends),
        source=source,
        truncated_by_end=cut,
    )


def _read_observations(
    file: h5py.File, key: str, obs_adapter: ObsAdapter | None, src: str
) -> np.ndarray:
    """An observation array; a group of arrays (dict observations) goes through the adapter."""
    node = file[key]
    if isinstance(node, h5py.Dataset):
        return as_matrix(src, key, node[()])
    parts = {name: node[name][()] for name in node}
    if obs_adapter is None:
        raise DatasetError(
            f"{src}: field '{key}' is a dict with keys {sorted(parts)}, expected an array "
            "(pass obs_adapter to map the dict to [N, obs_dim])"
        )
    return as_matrix(src, key, obs_adapter(parts))


def write_d4rl(path: str | Path, data: Transitions, metadata: dict[str, Any]) -> None:
    """Write `data` in D4RL's hdf5 layout (v2 locomotion keys) to `path`, replaced whole.

    Each `metadata` entry is stored as a JSON string under ``metadata/<name>``.
    """
    with atomic_path(path) as temp, h5py.File(temp, "w") as f:
        f.create_dataset("observations", data=data.observations)
        f.create_dataset("actions", data=data.actions)
        f.create_dataset("rewards", data=data.rewards)
        f.create_dataset("next_observations", data=data.next_observations)
        f.create_dataset("terminals", data=data.terminals > 0)
        f.create_dataset("timeouts", data=data.timeouts > 0)
        for name, value in metadata.items():
            f.create_dataset(f"metadata/{name}", data=json.dumps(value))
