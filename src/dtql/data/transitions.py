"""The transitions record every reader returns and every writer takes, and its checks.

Every dataset, whatever its format, becomes one `Transitions` record: flat NumPy arrays in the
Q-learning view (s, a, r, s', done), plus the raw return of every episode in the file. The readers
and writers live beside this module (d4rl.py, minari.py, npz.py); load.py picks a reader.

Flag convention, shared by all readers so that episodes can be recovered from a `Transitions`:
the last transition of every episode has `terminals == 1` (the episode reached a terminal state)
or `timeouts == 1` (it ended without one: a time limit, or simply the end of the data), never both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from dtql.data.provenance_summary import provenance_summary
from dtql.upgrade import upgrade_collect_record

ObsAdapter = Callable[[dict], np.ndarray]
# The metadata entry (Minari's metadata.json, a D4RL file's metadata/ group) where `dtql collect`
# records how it made a dataset.
PROVENANCE_KEY = "dtql_collect"


class DatasetError(ValueError):
    """A dataset that cannot be used. The message is one line: source, field, expected value."""


@dataclass(frozen=True, eq=False)  # eq=False: comparing records of arrays has no single answer
class Transitions:
    """A dataset in the Q-learning view. All arrays are NumPy; rows are transitions."""

    observations: np.ndarray  # [N, obs_dim] float32
    actions: np.ndarray  # [N, act_dim] float32
    rewards: np.ndarray  # [N] float32, raw (before any reward transform)
    next_observations: np.ndarray  # [N, obs_dim] float32
    terminals: np.ndarray  # [N] float32 in {0, 1}: 1 = s' is terminal (no bootstrap)
    timeouts: np.ndarray  # [N] float32 in {0, 1}: 1 = the episode ended here without a terminal
    episode_returns: np.ndarray  # [E] float64: undiscounted return of every episode in the file
    source: str  # path or id, used in error messages
    # Episodes that end only because the data stops there (no flag in the source); the record
    # flags their last row as a timeout, so `timeouts` counts them too.
    truncated_by_end: int = 0
    # How the data was made, where the file says (`dtql collect`'s "dtql_collect" record).
    provenance: dict | None = None

    @property
    def num_transitions(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def obs_dim(self) -> int:
        return int(self.observations.shape[1])

    @property
    def act_dim(self) -> int:
        return int(self.actions.shape[1])

    @property
    def num_episodes(self) -> int:
        return int(self.episode_returns.shape[0])


# --------------------------------------------------------------------------- reward transforms


def _scale_by_return_range(rewards: np.ndarray, episode_returns: np.ndarray) -> np.ndarray:
    """IQL's locomotion rewards: r * 1000 / (max - min episode return of the dataset)."""
    spread = float(np.max(episode_returns) - np.min(episode_returns)) if len(episode_returns) else 0
    if not spread > 0:
        raise ValueError(
            "reward transform 'scale_by_return_range' needs episodes with different returns, "
            f"got {len(episode_returns)} episode(s) with a return range of {spread}"
        )
    return rewards * (1000.0 / spread)


# name -> f(rewards [N], episode returns [E]) -> rewards [N].
REWARD_TRANSFORMS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "none": lambda r, returns: r,
    # AntMaze: the sparse 0/1 goal reward becomes -1/0, as in IQL and the released DTQL code.
    "minus_one": lambda r, returns: r - 1.0,
    "scale_by_return_range": _scale_by_return_range,
}


def apply_reward_transform(
    rewards: np.ndarray, name: str, episode_returns: np.ndarray | None = None
) -> np.ndarray:
    """Return transformed rewards as a new float32 array (a name of ``REWARD_TRANSFORMS``).

    ``episode_returns`` (the dataset's, raw) is needed by 'scale_by_return_range' only.
    """
    if name not in REWARD_TRANSFORMS:
        known = ", ".join(repr(k) for k in REWARD_TRANSFORMS)
        raise ValueError(f"unknown reward transform {name!r}, expected one of {known}")
    rewards = np.asarray(rewards, dtype=np.float32)
    returns = np.zeros(0) if episode_returns is None else np.asarray(episode_returns)
    return np.asarray(REWARD_TRANSFORMS[name](rewards, returns), dtype=np.float32).copy()


# --------------------------------------------------------------------------- helpers for readers
# Readers use these to turn raw arrays into the record's dtypes and shapes with uniform messages.


def as_matrix(source: str, name: str, array: np.ndarray) -> np.ndarray:
    """A numeric [N, d] array as float32; anything else is a DatasetError."""
    array = np.asarray(array)
    _check_numeric(source, name, array)
    if array.ndim != 2:
        raise DatasetError(
            f"{source}: field '{name}' has shape {array.shape}, expected 2 dimensions [N, dim]"
        )
    return array.astype(np.float32, copy=False)


def as_vector(source: str, name: str, array: np.ndarray) -> np.ndarray:
    """A numeric [N] (or [N, 1]) array as float32 [N]."""
    array = np.asarray(array)
    _check_numeric(source, name, array)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise DatasetError(f"{source}: field '{name}' has shape {array.shape}, expected [N]")
    return array.astype(np.float32, copy=False)


def as_flags(source: str, name: str, array: np.ndarray) -> np.ndarray:
    """A [N] array of 0/1 (or bools) as bool [N]; any other value is a DatasetError."""
    values = as_vector(source, name, array)
    bad = (values != 0) & (values != 1)  # NaN lands here too
    if bad.any():
        row = int(np.argmax(bad))
        raise DatasetError(
            f"{source}: field '{name}' has value {values[row]} at row {row}, expected 0 or 1"
        )
    return values == 1


def check_rows(source: str, fields: dict[str, np.ndarray], reference: str) -> None:
    """Every field must have as many rows as `fields[reference]`."""
    expected = len(fields[reference])
    for name, array in fields.items():
        if len(array) != expected:
            raise DatasetError(
                f"{source}: field '{name}' has {len(array)} rows, "
                f"expected {expected} (same as '{reference}')"
            )


def check_finite(source: str, name: str, array: np.ndarray) -> None:
    """No NaN or inf; the message names the first bad row."""
    bad = ~np.isfinite(array)
    if bad.ndim > 1:
        bad = bad.reshape(len(bad), -1).any(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        values = np.asarray(array[row]).ravel()
        value = values[~np.isfinite(values)][0]
        raise DatasetError(
            f"{source}: field '{name}' has {value} at row {row}, expected finite values"
        )


def returns_per_episode(rewards: np.ndarray, episode_ends: np.ndarray) -> np.ndarray:
    """Sum rewards (in float64) per episode; `episode_ends` is a bool mask of last rows.

    The last row always closes an episode, flagged or not.
    """
    if len(rewards) == 0:
        return np.zeros(0, dtype=np.float64)
    ends = episode_ends.copy()
    ends[-1] = True
    starts = np.concatenate([[0], np.flatnonzero(ends)[:-1] + 1])
    return np.add.reduceat(rewards.astype(np.float64), starts)


def _check_numeric(source: str, name: str, array: np.ndarray) -> None:
    if array.dtype.kind not in "biuf":
        raise DatasetError(
            f"{source}: field '{name}' has dtype {array.dtype}, expected numbers (bool/int/float)"
        )


# --------------------------------------------------------------------------- episodes


def episode_end_flags(
    terminals: np.ndarray, timeouts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """The record's flag rule applied to raw 0/1 flags [N]: (terminals, timeouts, cut).

    A row flagged both ways is a terminal; the last row always ends an episode, as a timeout
    when it is not terminal (the data simply stops there). ``cut`` is 1 when that last flag was
    added (the source had none there), else 0.
    """
    terminals = np.asarray(terminals, dtype=bool).copy()
    raw_timeouts = np.asarray(timeouts, dtype=bool)
    timeouts = raw_timeouts & ~terminals
    cut = 0
    if len(timeouts):
        cut = int(not (terminals[-1] or raw_timeouts[-1]))
        timeouts[-1] = not terminals[-1]
    return terminals, timeouts, cut


def episode_slices(t: Transitions) -> Iterator[slice]:
    """Row ranges of the episodes of `t`: each ends at a row flagged terminal or timeout."""
    ends = np.flatnonzero((t.terminals > 0) | (t.timeouts > 0)) + 1
    start = 0
    for end in ends:
        yield slice(start, int(end))
        start = int(end)


def transitions_from_rows(
    *,
    observations: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    next_observations: np.ndarray,
    terminals: np.ndarray,
    timeouts: np.ndarray,
    source: str,
) -> Transitions:
    """A float32 record from flat rows, the flags put in the record's rule, returns summed."""
    terminals, timeouts, cut = episode_end_flags(terminals, timeouts)
    return Transitions(
        observations=np.asarray(observations, np.float32),
        actions=np.asarray(actions, np.float32),
        rewards=np.asarray(rewards, np.float32),
        next_observations=np.asarray(next_observations, np.float32),
        terminals=terminals.astype(np.float32),
        timeouts=timeouts.astype(np.float32),
        episode_returns=returns_per_episode(np.asarray(rewards), terminals | timeouts),
        source=source,
        truncated_by_end=cut,
    )


def concat_transitions(parts: list[Transitions], source: str) -> Transitions:
    """The records one after another (each keeps its own episode ends)."""
    fields = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")
    arrays = {name: np.concatenate([getattr(p, name) for p in parts]) for name in fields}
    returns = np.concatenate([p.episode_returns for p in parts])
    cut = sum(p.truncated_by_end for p in parts)
    return Transitions(**arrays, episode_returns=returns, source=source, truncated_by_end=cut)


# --------------------------------------------------------------------------- validation


def validate_transitions(
    t: Transitions,
    *,
    obs_dim: int | None = None,
    act_dim: int | None = None,
    action_low: np.ndarray | float | None = None,
    action_high: np.ndarray | float | None = None,
    atol: float = 1e-5,
) -> None:
    """Raise DatasetError unless `t` is usable, and (when given) matches the evaluation env.

    Checks, in order: not empty; shapes and row counts; flags are 0/1; no NaN/inf; observation and
    action dims equal `obs_dim` / `act_dim`; actions inside [low - atol, high + atol].
    """
    src = t.source
    if t.observations.ndim < 1 or len(t.observations) == 0:
        raise DatasetError(
            f"{src}: dataset is empty: field 'observations' has 0 rows, expected at least 1"
        )

    matrices = {
        "observations": t.observations,
        "actions": t.actions,
        "next_observations": t.next_observations,
    }
    vectors = {"rewards": t.rewards, "terminals": t.terminals, "timeouts": t.timeouts}
    for name, array in matrices.items():
        if array.ndim != 2:
            raise DatasetError(
                f"{src}: field '{name}' has shape {array.shape}, expected 2 dimensions [N, dim]"
            )
    for name, array in vectors.items():
        if array.ndim != 1:
            raise DatasetError(f"{src}: field '{name}' has shape {array.shape}, expected [N]")
    check_rows(src, {**matrices, **vectors}, reference="observations")
    if t.next_observations.shape[1] != t.observations.shape[1]:
        raise DatasetError(
            f"{src}: field 'next_observations' has {t.next_observations.shape[1]} columns, "
            f"expected {t.observations.shape[1]} (same as 'observations')"
        )

    for name in ("terminals", "timeouts"):
        as_flags(src, name, vectors[name])
    for name, array in {**matrices, **vectors, "episode_returns": t.episode_returns}.items():
        check_finite(src, name, array)

    if obs_dim is not None and t.obs_dim != obs_dim:
        raise DatasetError(
            f"{src}: field 'observations' has dim {t.obs_dim}, "
            f"expected {obs_dim} (the evaluation env's observation dim)"
        )
    if act_dim is not None and t.act_dim != act_dim:
        raise DatasetError(
            f"{src}: field 'actions' has dim {t.act_dim}, "
            f"expected {act_dim} (the evaluation env's action dim)"
        )
    if action_low is not None or action_high is not None:
        _check_action_bounds(t, action_low, action_high, atol)


def _check_action_bounds(
    t: Transitions,
    low: np.ndarray | float | None,
    high: np.ndarray | float | None,
    atol: float,
) -> None:
    shape = (t.act_dim,)
    low = np.broadcast_to(np.asarray(-np.inf if low is None else low, np.float64), shape)
    high = np.broadcast_to(np.asarray(np.inf if high is None else high, np.float64), shape)
    # How far each action component lies outside its bound (<= 0 when inside).
    excess = np.maximum(low - t.actions, t.actions - high)
    row, col = np.unravel_index(int(np.argmax(excess)), excess.shape)
    if excess[row, col] > atol:
        raise DatasetError(
            f"{t.source}: field 'actions' has value {t.actions[row, col]:.6g} at row {row}, "
            f"column {col}, expected within [{low[col]:.6g}, {high[col]:.6g}] (atol {atol:g})"
        )


# --------------------------------------------------------------------------- summary


def dataset_info(t: Transitions) -> dict:
    """Counts and return statistics as plain Python values (JSON-serialisable); a dataset made by
    `dtql collect` adds a summary of how (``made_by``, see ``provenance_summary``)."""
    returns = t.episode_returns

    def stat(fn: Callable[[np.ndarray], np.floating]) -> float | None:
        return float(fn(returns)) if len(returns) else None

    return {
        "source": t.source,
        "transitions": t.num_transitions,
        "episodes": t.num_episodes,
        "terminals": int(np.sum(t.terminals)),
        # The source's own timeout flags (as h5py or D4RL's tools count them); episodes cut by
        # the end of the data are counted apart.
        "timeouts": int(np.sum(t.timeouts)) - t.truncated_by_end,
        "truncated_by_end": t.truncated_by_end,
        "obs_dim": t.obs_dim,
        "act_dim": t.act_dim,
        "return_mean": stat(np.mean),
        "return_std": stat(np.std),
        "return_min": stat(np.min),
        "return_max": stat(np.max),
        "reward_mean": float(np.mean(t.rewards)) if t.num_transitions else None,
        **({"made_by": provenance_summary(t.provenance)} if t.provenance else {}),
    }


def check_provenance(source: str, field: str, value: Any) -> dict | None:
    """A `dtql collect` record read from a file: None when absent, else it must be an object."""
    if value is not None and not isinstance(value, dict):
        raise DatasetError(
            f"{source}: field '{field}' is a {type(value).__name__}, expected a JSON object "
            "(the record `dtql collect` writes)"
        )
    return upgrade_collect_record(value)
