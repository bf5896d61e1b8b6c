"""Reading a `dtql collect` record (how a dataset was made) for people: the summary that
`dtql data info` prints and the scores `dtql data list` shows.

The record itself is written by `dtql.collect` and read from a dataset file by the readers
(`check_provenance` in transitions.py checks its type).
"""

from __future__ import annotations

from typing import Any


def evaluated_normalized_score(policy: dict) -> float | None:
    """The evaluated normalized score of one behaviour policy in a `dtql collect` record."""
    evaluation = policy.get("evaluation") or {}
    return evaluation.get("normalized_score_mean")  # old records: dtql.upgrade, when read


def provenance_summary(record: dict) -> dict[str, Any]:
    """The lines of a `dtql collect` record a user reads first: the command, each behaviour
    policy with its SAC step and evaluated return, the seeds, the versions and the date."""
    policies = []
    for policy in record.get("behaviour_policy", []):
        evaluation = policy.get("evaluation") or {}
        line = f"{policy.get('policy')} (SAC step {policy.get('sac_step')})"
        if "return_mean" in evaluation:
            line += f": evaluated return {evaluation['return_mean']:.1f}"
        normalized = evaluated_normalized_score(policy)
        if normalized is not None:
            line += f", normalized {normalized:.1f}"
        policies.append(line)
    return {
        "command": record.get("command"),
        "level": record.get("level"),
        "behaviour_policies": policies,
        "dataset_normalized_score": record.get("dataset_normalized_score"),
        "seeds": record.get("seeds"),
        "versions": record.get("versions"),
        "created_utc": record.get("created_utc"),
    }
