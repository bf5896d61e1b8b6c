"""Old formats in one place: what a file written by an earlier dtql means today.

Every reader of a file that outlives a session (a run's config.json, a SAC run's state.json, a
dataset's `dtql collect` record and its fingerprint) passes what it read through one function
here, so the rest of the package knows only today's names. Each shim says which files it serves:
the commit that changed the format (the package was 0.1.0 throughout, so commits, not versions).

| file | written before | old form | today |
| --- | --- | --- | --- |
| run config.json | cde1034 (2026-11-29) | one flat dict | ``learner`` holds the learner's fields |
| run config.json | cde1034 | no ``ADDED_FIELDS`` | the value those runs used |
| SAC state.json, collect record | 43d1c8e (2026-11-29) | ``OLD_EVAL_KEYS`` | ``SUMMARY_KEYS`` |
| collect record's fingerprint | issue 26 (12-07) | ``data_normalized_score`` | ``DATASET_SCORE`` |
| run result.json | issue 26 (12-07) | ``behaviour_normalized_score`` | ``DATASET_SCORE`` |
| run result.json | issue 26 (12-07) | ``behaviour_return_mean`` | ``dataset_return_mean`` |

Each function returns a new dict (the input is not changed) and is the identity on today's form.
"""

from __future__ import annotations

import copy
from typing import Any

from dtql.config import LEARNER_FIELDS

# Fields added after run folders were first written, with the value that reproduces those runs
# (a new default can differ: the released code's choices became the defaults later).
ADDED_FIELDS: dict[str, Any] = {
    "learner.agent.mish_after_input_layer": True,
    "learner.agent.implicit_generator": "preconditioned",
    "matmul_precision": "default",
}

# Evaluation records (SAC state.json, a collect record's behaviour policies) before the result
# vocabulary of dtql.evaluation.SUMMARY_KEYS.
OLD_EVAL_KEYS = {"normalized_score": "normalized_score_mean", "length_mean": "episode_length_mean"}

# The dataset's own normalized score had three names; `dataset_normalized_score` is the one.
OLD_DATASET_SCORE_KEYS = ("data_normalized_score", "behaviour_normalized_score")
DATASET_SCORE = "dataset_normalized_score"


def upgrade_run_config(data: dict[str, Any]) -> dict[str, Any]:
    """A run's config.json as ``RunConfig`` reads it today, meaning what it meant when written.

    Run folders written before the learner/run split hold one flat dict (``algo``, ``steps``,
    ``agent`` ... beside ``task``); their learner fields move under ``learner``. A field added
    since (``ADDED_FIELDS``) gets the value those runs used.
    """
    if "learner" not in data:
        learner = {key: data[key] for key in LEARNER_FIELDS if key in data}
        rest = {key: value for key, value in data.items() if key not in LEARNER_FIELDS}
        data = {**rest, "learner": learner}
    data = copy.deepcopy(data)
    for dotted, value in ADDED_FIELDS.items():
        *parents, name = dotted.split(".")
        node = data
        for parent in parents:
            node = node.setdefault(parent, {})
        node.setdefault(name, value)
    return data


def upgrade_eval_record(evaluation: dict[str, Any]) -> dict[str, Any]:
    """One evaluation record with ``OLD_EVAL_KEYS`` renamed."""
    return {OLD_EVAL_KEYS.get(key, key): value for key, value in evaluation.items()}


def upgrade_sac_state(state: dict[str, Any]) -> dict[str, Any]:
    """A SAC run's state.json with every evaluation record (``evals`` and the ``random``,
    ``medium`` and ``final`` snapshots') renamed: a run saved before still resumes."""
    state = copy.deepcopy(state)
    state["evals"] = [upgrade_eval_record(e) for e in state.get("evals", [])]
    for name in ("random", "medium", "final"):
        if state.get(name) is not None:
            state[name] = upgrade_eval_record(state[name])
    return state


def upgrade_dataset_score(record: dict[str, Any]) -> dict[str, Any]:
    """A dict that names the dataset's normalized score by an old name, with today's name."""
    record = dict(record)
    for old in OLD_DATASET_SCORE_KEYS:
        if old in record:
            record.setdefault(DATASET_SCORE, record.pop(old))
    return record


def upgrade_result(result: dict[str, Any]) -> dict[str, Any]:
    """A run's result.json in today's names (the dataset's score and mean return)."""
    result = upgrade_dataset_score(result)
    if "behaviour_return_mean" in result:
        result.setdefault("dataset_return_mean", result.pop("behaviour_return_mean"))
    return result


def upgrade_collect_record(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """A dataset's `dtql collect` record: its behaviour policies' evaluations and its
    fingerprint in today's names (None stays None: a dataset with no record)."""
    if record is None:
        return None
    record = copy.deepcopy(record)
    for policy in record.get("behaviour_policy", []):
        if isinstance(policy, dict) and isinstance(policy.get("evaluation"), dict):
            policy["evaluation"] = upgrade_eval_record(policy["evaluation"])
    if isinstance(record.get("fingerprint"), dict):
        record["fingerprint"] = upgrade_dataset_score(record["fingerprint"])
    return record
