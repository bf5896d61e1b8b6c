"""How a dataset was made: the provenance record stored in its metadata.json ("dtql_collect"),
collect_info.json and the .hdf5's metadata, with the library versions and the machine. Where the
behaviour policies came from (this command's SAC run, or policy files) is the source's part of
the record (see ``sources``)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
from datetime import UTC, datetime
from typing import Any

import numpy as np

from dtql.collect.args import COLLECT_SEED_OFFSETS, CollectArgs, dataset_id, regenerate_command
from dtql.collect.behaviour_policy import ACTION_NOISE_KEY, SHIPPED_POLICIES
from dtql.collect.replay import transitions_digest
from dtql.data.transitions import Transitions
from dtql.envs.registry import TaskSpec, normalized_score
from dtql.upgrade import upgrade_dataset_score


def behaviour_policy(evaluation: dict[str, Any], kind: str) -> dict[str, Any]:
    """One behaviour policy of a dataset: what it is, its SAC step and its evaluation record."""
    return {"policy": kind, "sac_step": evaluation["step"], "evaluation": evaluation}


def provenance(
    args: CollectArgs,
    task: TaskSpec,
    env_name: str,
    level: str,
    data: Transitions,
    behaviour: list[dict[str, Any]],
    collection: dict[str, Any],
    collection_wall_s: float,
    origin: dict[str, Any],
    seeds: dict[str, int],
) -> dict[str, Any]:
    """How a dataset was made: stored in metadata.json ("dtql_collect") and collect_info.json.

    `origin` is the source's part (the SAC run and its thresholds, or the policy files) and
    `seeds` its seeds (the collection seeds are added here)."""
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
        **origin,
        "collection": {**collection, "wall_time_s": round(collection_wall_s, 1)},
        # SAC training up to the (last) behaviour snapshot, plus this dataset's collection: the
        # time to make the dataset from nothing (from policy files it takes the collection only).
        "generation_wall_time_s": round(
            max((b.get("evaluation") or {}).get("sac_wall_time_s", 0.0) for b in behaviour)
            + collection_wall_s,
            1,
        ),
        "seeds": {
            **seeds,
            **{f"collect_{k}": args.seed + v for k, v in COLLECT_SEED_OFFSETS.items()},
        },
        "versions": library_versions(),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
        "command": regenerate_command(args),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# The measured fingerprints of the datasets the shipped policy files make (`dtql data fingerprint
# NAME --catalogue FILE` writes an entry), keyed by the D4RL name of the level.
SHIPPED_FINGERPRINTS = SHIPPED_POLICIES / "fingerprints.json"


def shipped_fingerprints() -> dict[str, dict[str, Any]]:
    """The shipped fingerprints by D4RL name ({} when none is shipped)."""
    if not SHIPPED_FINGERPRINTS.is_file():
        return {}
    shipped = json.loads(SHIPPED_FINGERPRINTS.read_text())["fingerprints"]
    return {name: upgrade_dataset_score(fingerprint) for name, fingerprint in shipped.items()}


def matching_fingerprint(env_name: str, level: str, data: Transitions) -> dict[str, Any] | None:
    """The shipped fingerprint of a level when it was measured on these very arrays (the same
    policy files, seed and size), else None: a fingerprint describes one dataset."""
    fingerprint = shipped_fingerprints().get(f"{env_name}-{level}-v2")
    if fingerprint is None or fingerprint.get("data_sha256") != transitions_digest(data):
        return None
    return fingerprint


def collection_record(args: CollectArgs, parts: list[str]) -> dict[str, Any]:
    """How the transitions of a policy level were drawn (the record's "collection")."""
    return {
        "source": "stochastic actions of the behaviour policy",
        "num_envs": min(args.num_envs, args.transitions),
        "seeds": [args.seed + COLLECT_SEED_OFFSETS[p] for p in parts],
        "transitions_per_policy": args.transitions,
        # env i is reset with seed + i; the actions' noise is drawn from this numpy stream.
        "action_noise": f"numpy PCG64(SeedSequence(seed, spawn_key={ACTION_NOISE_KEY}))",
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
