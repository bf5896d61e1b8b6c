"""Your own data as a .npz file (numpy.savez), already in the Q-learning view.

Layout, one row per transition, N rows in every array:

    observations       [N, obs_dim]  float   s
    actions            [N, act_dim]  float   a
    rewards            [N]           float   r (raw; reward transforms are applied in training)
    next_observations  [N, obs_dim]  float   s'
    terminals          [N]           0/1     1 = s' is terminal: the target does not bootstrap
    timeouts           [N]           0/1     optional, default all 0: 1 = the episode was cut here
                                             (time limit) without reaching a terminal state
    episode_returns    [E]           float   optional: the return of every episode; default:
                                             rewards summed between episode ends

Episodes are consecutive rows; an episode ends at a row with terminals=1 or timeouts=1, and at
the last row. Store episodes one after another and flag the last step of each, or the default
episode returns will merge episodes. The file is read without pickle (allow_pickle=False).

Example:

    np.savez("my_data.npz", observations=s, actions=a, rewards=r, next_observations=s2,
             terminals=done, timeouts=cut)
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from dtql.data.transitions import (
    DatasetError,
    Transitions,
    as_flags,
    as_matrix,
    as_vector,
    check_rows,
    episode_end_flags,
    returns_per_episode,
)

REQUIRED_KEYS = ("observations", "actions", "rewards", "next_observations", "terminals")


def read_npz(path: str | Path, source: str | None = None) -> Transitions:
    """Read a .npz file in the layout above."""
    src = source or str(path)
    # numpy reads a file that is not a zip archive as a pickle; say what is really wrong.
    if not zipfile.is_zipfile(path):
        raise DatasetError(f"{src}: not a zip archive, expected a .npz written by numpy.savez")
    try:
        with np.load(path, allow_pickle=False) as file:
            raw = {key: file[key] for key in file.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        reason = " ".join(str(e).split())
        raise DatasetError(f"{src}: cannot read ({reason}), expected a .npz of arrays") from e

    for key in REQUIRED_KEYS:
        if key not in raw:
            raise DatasetError(
                f"{src}: missing required key '{key}', expected keys {', '.join(REQUIRED_KEYS)} "
                "(optional: timeouts, episode_returns)"
            )
    fields = {
        "observations": as_matrix(src, "observations", raw["observations"]),
        "actions": as_matrix(src, "actions", raw["actions"]),
        "rewards": as_vector(src, "rewards", raw["rewards"]),
        "next_observations": as_matrix(src, "next_observations", raw["next_observations"]),
        "terminals": as_flags(src, "terminals", raw["terminals"]),
    }
    n = len(fields["observations"])
    if "timeouts" in raw:
        fields["timeouts"] = as_flags(src, "timeouts", raw["timeouts"])
    else:
        fields["timeouts"] = np.zeros(n, dtype=bool)
    check_rows(src, fields, reference="observations")

    terminals, timeouts = fields["terminals"], fields["timeouts"]
    if "episode_returns" in raw:
        as_vector(src, "episode_returns", raw["episode_returns"])  # checks shape and dtype
        episode_returns = raw["episode_returns"].reshape(-1).astype(np.float64)
    else:
        episode_returns = returns_per_episode(fields["rewards"], terminals | timeouts)
    terminals, timeouts, cut = episode_end_flags(terminals, timeouts)

    return Transitions(
        observations=fields["observations"],
        actions=fields["actions"],
        rewards=fields["rewards"],
        next_observations=fields["next_observations"],
        terminals=terminals.astype(np.float32),
        timeouts=timeouts.astype(np.float32),
        episode_returns=episode_returns,
        source=src,
        truncated_by_end=cut,
    )


def write_npz(path: str | os.PathLike[str], t: Transitions) -> None:
    """Save `t` in the layout above, so that `read_npz` gives it back unchanged.

    Like numpy.savez, this appends ".npz" to a path that does not end with it.
    """
    np.savez(
        path,
        observations=t.observations,
        actions=t.actions,
        rewards=t.rewards,
        next_observations=t.next_observations,
        terminals=t.terminals,
        timeouts=t.timeouts,
        episode_returns=t.episode_returns,
    )
