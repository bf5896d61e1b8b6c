"""How a dataset was made: the provenance record stored in its metadata.json ("dtql_collect"),
collect_info.json and the .hdf5's metadata, with the library versions and the machine."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from datetime import UTC, datetime
from typing import Any

import numpy as np

from dtql.collect.args import (
    COLLECT_SEED_OFFSETS,
    EVAL_SEED_OFFSET,
    CollectArgs,
    dataset_id,
    regenerate_command,
)
from dtql.collect.sac import SAC_KWARGS, SacRun
from dtql.data.transitions import Transitions
from dtql.envs.registry import TaskSpec, normalized_score


def behaviour_policy(evaluation: dict[str, Any], kind: str) -> dict[str, Any]:
    """One behaviour policy of a dataset: what it is, its SAC step and its evaluation record."""
    return {"policy": kind, "sac_step": evaluation["step"], "evaluation": evaluation}


def provenance(
    args: CollectArgs,
    task: TaskSpec,
    env_name: str,
    level: str,
    data: Transitions,
    trainer: SacRun,
    behaviour: list[dict[str, Any]],
    collection: dict[str, Any],
    collection_wall_s: float,
) -> dict[str, Any]:
    """How a dataset was made: stored in metadata.json ("dtql_collect") and collect_info.json."""
    state = trainer.state
    return_mean = float(np.mean(data.episode_returns))
    return {
        "format_version": 1,
        "dataset_id": dataset_id(env_name, level),
        "level": level,
        "env_id": task.env_id,
        "max_episode_steps": task.max_episode_steps,
        "ref_min_score": task.ref_min_score,
        "ref_max_score": task.ref_max_score,
        "transitions": data.num_transitions,
        "episodes": data.num_episodes,
        "terminals": int(np.sum(data.terminals)),
        "timeouts": int(np.sum(data.timeouts)),
        "dataset_return_mean": return_mean,
        "dataset_normalized_score": float(normalized_score(task, return_mean)),
        "subsampled": False,
        "behaviour_policy": behaviour,
        "medium_fraction": args.medium_fraction,
        "medium_threshold_return": trainer.medium_threshold,
        "expert_fraction": args.expert_fraction,
        "expert_threshold_return": trainer.expert_threshold,
        "sac": {
            "library": "stable-baselines3",
            "seed": args.seed,
            "steps_trained": int(state["num_timesteps"]),
            "budget": args.sac_steps,
            "learning_starts": args.learning_starts,
            "hyperparameters": SAC_KWARGS,
            "eval_every": args.eval_every,
            "eval_episodes": args.eval_episodes,
            "train_wall_time_s": round(float(state["train_wall_time_s"]), 1),
            "resumed": int(state.get("resumed", 0)),
            "torch_threads": trainer.torch.get_num_threads(),
        },
        "collection": {**collection, "wall_time_s": round(collection_wall_s, 1)},
        # SAC training up to the (last) behaviour snapshot, plus this dataset's collection.
        "generation_wall_time_s": round(
            max(b["evaluation"].get("sac_wall_time_s", 0.0) for b in behaviour) + collection_wall_s,
            1,
        ),
        "seeds": {
            "sac": args.seed,
            "eval": args.seed + EVAL_SEED_OFFSET,
            **{f"collect_{k}": args.seed + v for k, v in COLLECT_SEED_OFFSETS.items()},
        },
        "versions": library_versions(),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
        "command": regenerate_command(args),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def library_versions() -> dict[str, str | None]:
    """Python's version and the installed version of each library the data depend on (or None)."""
    names = ("dtql", "gymnasium", "mujoco", "stable-baselines3", "torch", "minari", "numpy")
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions
