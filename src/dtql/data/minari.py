"""Read a local Minari dataset into the Q-learning view. Nothing is ever downloaded.

A Minari dataset lives at $MINARI_DATASETS_PATH/<id>/data (default ~/.minari/datasets) as
metadata.json plus the episodes (main_data.hdf5, or an Arrow layout that needs pyarrow). Each
episode of T steps has T + 1 observations and T actions, rewards, terminations and truncations,
so every step is a transition, the last one included:
s = observations[:-1], s' = observations[1:], terminals = terminations, timeouts = truncations.
An episode whose last step has neither flag is marked as a timeout there (see dataset.py).

The episodes are read with the `minari` library, imported only when a dataset is read. The
dataset folder is opened directly with `minari.MinariDataset(folder)`: `minari.load_dataset`
would create the datasets root folder as a side effect and can download.

Dict observations (AntMaze, Kitchen) need an `obs_adapter`: a function from the dict of arrays
(each [T + 1, ...]) to a [T + 1, obs_dim] array. Without one they are an error, never flattened.

`write_minari` writes a Minari dataset (hdf5) under a root folder the caller names, never under
$MINARI_DATASETS_PATH; minari and gymnasium are imported only when it runs.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dtql.data.transitions import (
    PROVENANCE_KEY,
    DatasetError,
    ObsAdapter,
    Transitions,
    as_flags,
    as_matrix,
    as_vector,
    check_provenance,
    check_rows,
    episode_end_flags,
    episode_slices,
)

if TYPE_CHECKING:
    from gymnasium.envs.registration import EnvSpec

METADATA_FILE = "metadata.json"


def minari_root() -> Path:
    """Where local Minari datasets live: $MINARI_DATASETS_PATH, default ~/.minari/datasets."""
    return Path(os.environ.get("MINARI_DATASETS_PATH", "~/.minari/datasets")).expanduser()


def minari_data_dir(path: Path) -> Path | None:
    """The folder holding metadata.json: `path` itself or `path`/data; None if neither."""
    for folder in (path, path / "data"):
        if (folder / METADATA_FILE).is_file():
            return folder
    return None


def read_minari(
    data_dir: str | Path, obs_adapter: ObsAdapter | None = None, source: str | None = None
) -> Transitions:
    """Read the Minari dataset whose metadata.json is in `data_dir`."""
    import minari

    data_dir = Path(data_dir)
    src = source or str(data_dir)
    try:
        dataset = minari.MinariDataset(str(data_dir))
    except (ValueError, KeyError, ImportError, OSError, AssertionError) as e:
        reason = " ".join(str(e).split())  # keep the message on one line
        raise DatasetError(
            f"{src}: cannot read Minari dataset ({type(e).__name__}: {reason}), "
            f"expected a readable {METADATA_FILE} and episodes in {data_dir}"
        ) from e

    columns: dict[str, list[np.ndarray]] = {
        "observations": [],
        "actions": [],
        "rewards": [],
        "next_observations": [],
        "terminals": [],
        "timeouts": [],
    }
    returns = []
    truncated_by_end = 0  # episodes whose last step has neither flag
    for episode in dataset.iterate_episodes():
        prefix = f"episode_{episode.id}"  # the group name in main_data.hdf5
        obs = _episode_observations(episode.observations, obs_adapter, src, prefix)
        if not isinstance(episode.actions, np.ndarray):
            raise DatasetError(
                f"{src}: field '{prefix}/actions' is a {type(episode.actions).__name__}, "
                "expected an array (a Box action space)"
            )
        fields = {
            "actions": as_matrix(src, f"{prefix}/actions", episode.actions),
            "rewards": as_vector(src, f"{prefix}/rewards", episode.rewards),
            "terminations": as_flags(src, f"{prefix}/terminations", episode.terminations),
            "truncations": as_flags(src, f"{prefix}/truncations", episode.truncations),
        }
        check_rows(src, {f"{prefix}/{k}": v for k, v in fields.items()}, f"{prefix}/rewards")
        steps = len(fields["rewards"])
        if len(obs) != steps + 1:
            raise DatasetError(
                f"{src}: field '{prefix}/observations' has {len(obs)} rows, "
                f"expected {steps + 1} (one more than '{prefix}/rewards')"
            )
        returns.append(float(np.sum(fields["rewards"], dtype=np.float64)))
        if steps == 0:
            continue

        # The episode's end is flagged one way or the other (transitions.episode_end_flags).
        terminals, timeouts, cut = episode_end_flags(fields["terminations"], fields["truncations"])
        truncated_by_end += cut
        columns["observations"].append(obs[:-1])
        columns["next_observations"].append(obs[1:])
        columns["actions"].append(fields["actions"])
        columns["rewards"].append(fields["rewards"])
        columns["terminals"].append(terminals.astype(np.float32))
        columns["timeouts"].append(timeouts.astype(np.float32))

    if not columns["rewards"]:
        raise DatasetError(f"{src}: dataset is empty: no episode has steps, expected at least 1")
    arrays = {name: np.concatenate(parts, axis=0) for name, parts in columns.items()}
    returns_array = np.asarray(returns, dtype=np.float64)
    return Transitions(
        **arrays,
        episode_returns=returns_array,
        source=src,
        truncated_by_end=truncated_by_end,
        provenance=check_provenance(
            src, f"{METADATA_FILE}/{PROVENANCE_KEY}", dataset.storage.metadata.get(PROVENANCE_KEY)
        ),
    )


def _episode_observations(
    observations: object, obs_adapter: ObsAdapter | None, src: str, prefix: str
) -> np.ndarray:
    name = f"{prefix}/observations"
    if isinstance(observations, dict):
        if obs_adapter is None:
            raise DatasetError(
                f"{src}: field '{name}' is a dict with keys {sorted(observations)}, expected an "
                "array (pass obs_adapter to map the dict to [T, obs_dim])"
            )
        observations = obs_adapter(observations)
    if not isinstance(observations, np.ndarray):
        raise DatasetError(
            f"{src}: field '{name}' is a {type(observations).__name__}, expected an array"
        )
    return as_matrix(src, name, observations)


def minari_metadata(spec: str | os.PathLike[str]) -> dict:
    """Reference scores and env ids of a local Minari dataset (an id or a folder path).

    Returns dataset_id, ref_min_score, ref_max_score, env_id (the env that collected the data) and
    eval_env_id (the env meant for evaluation; the collecting one when the dataset names none).
    A value the metadata does not hold is None. Reads metadata.json only; needs no simulator.
    """
    spec = os.fspath(spec)
    path = Path(spec).expanduser()
    if path.is_file() and path.name in (METADATA_FILE, "main_data.hdf5"):
        path = path.parent
    data_dir = minari_data_dir(path) if path.is_dir() else None
    if data_dir is None:
        data_dir = minari_data_dir(minari_root() / spec)
    if data_dir is None:
        raise DatasetError(
            f"{spec}: Minari dataset not found, expected {METADATA_FILE} in {path}, "
            f"{path / 'data'} or {minari_root() / spec / 'data'}"
        )
    try:
        metadata = json.loads((data_dir / METADATA_FILE).read_text())
    except (OSError, ValueError) as e:
        raise DatasetError(
            f"{spec}: field '{METADATA_FILE}' cannot be read ({e}), expected a JSON object"
        ) from e

    env_id = _env_id(metadata.get("env_spec"))
    eval_env_id = _env_id(metadata.get("eval_env_spec")) or env_id
    return {
        "dataset_id": metadata.get("dataset_id"),
        "ref_min_score": _float_or_none(metadata.get("ref_min_score")),
        "ref_max_score": _float_or_none(metadata.get("ref_max_score")),
        "env_id": env_id,
        "eval_env_id": eval_env_id,
    }


def _env_id(env_spec: object) -> str | None:
    """The id inside a serialised gymnasium EnvSpec (a JSON string in metadata.json)."""
    if isinstance(env_spec, str):
        try:
            env_spec = json.loads(env_spec)
        except ValueError:
            return None
    if isinstance(env_spec, dict) and isinstance(env_spec.get("id"), str):
        return env_spec["id"]
    return None


def _float_or_none(value: object) -> float | None:
    return None if value is None else float(value)


# --------------------------------------------------------------------------- writer


def write_minari(
    root: Path,
    dataset_id: str,
    data: Transitions,
    *,
    env_spec: EnvSpec,
    ref_min_score: float,
    ref_max_score: float,
    algorithm_name: str,
    author: str,
    description: str,
    requirements: list[str],
    metadata: dict[str, Any],
) -> None:
    """Write `data` as Minari dataset `dataset_id` under `root` (root/<dataset_id>/data).

    `env_spec` is both the collecting and the evaluation env; `metadata` entries are added to
    metadata.json. Observations are a Box of `data`'s width, actions the env's action space.
    """
    import gymnasium as gym
    import minari
    from minari.data_collector import EpisodeBuffer

    buffers = []
    for k, rows in enumerate(episode_slices(data)):
        last = rows.stop - 1
        buffers.append(
            EpisodeBuffer(
                id=k,
                observations=np.concatenate(
                    [data.observations[rows], data.next_observations[last : last + 1]]
                ),
                actions=data.actions[rows],
                rewards=data.rewards[rows],
                terminations=data.terminals[rows] > 0,
                truncations=data.timeouts[rows] > 0,
            )
        )
    env = gym.make(env_spec)
    action_space = env.action_space
    env.close()
    observation_space = gym.spaces.Box(-np.inf, np.inf, (data.obs_dim,), np.float32)
    root.mkdir(parents=True, exist_ok=True)
    with _minari_datasets_path(root), warnings.catch_warnings():
        # minari warns about fields it recommends (author email, code permalink) that we lack.
        warnings.simplefilter("ignore", UserWarning)
        dataset = minari.create_dataset_from_buffers(
            dataset_id=dataset_id,
            buffer=buffers,
            env=env_spec,
            eval_env=env_spec,
            algorithm_name=algorithm_name,
            author=author,
            description=description,
            ref_min_score=ref_min_score,
            ref_max_score=ref_max_score,
            observation_space=observation_space,
            action_space=action_space,
            requirements=requirements,
            data_format="hdf5",
        )
        dataset.storage.update_metadata(metadata)


@contextmanager
def _minari_datasets_path(root: Path) -> Iterator[None]:
    """Point minari at `root` for the duration (it writes under $MINARI_DATASETS_PATH)."""
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root.resolve())
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous
