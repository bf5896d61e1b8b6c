"""`dtql data list`: every dataset `dtql collect` can name, whether it is in the local datasets
folder ($DTQL_DATASETS_DIR), and whether the shipped behaviour-policy files can make it offline.

Reads records (collect_info.json) and checks that files exist; never loads a dataset.
"""

from __future__ import annotations

from typing import Any

from dtql.collect.behaviour_policy import SHIPPED_POLICIES
from dtql.collect.provenance import shipped_fingerprints
from dtql.collect.save_policies import level_files
from dtql.data.collected import (
    COLLECTED_ENV_IDS,
    COLLECTED_LEVELS,
    collect_command,
    collected_dataset_id,
    local_collected_record,
)
from dtql.data.provenance_summary import evaluated_normalized_score
from dtql.envs.d4rl_fingerprints import (
    SCORE_TOLERANCE,
    TRANSITIONS_TOLERANCE,
    comparison,
    d4rl_reference,
    scores_pair,
)

# The fingerprint's numbers as the "within" column names them.
VERDICT_NAMES = {
    "dataset_normalized_score": "data",
    "bc_normalized_score": "bc",
    "transitions": "transitions",
}

# How `dtql data fingerprint` measures BC by default (its FingerprintArgs).
FINGERPRINT_RECIPE = (
    "30,000 steps x 3 seeds, each the mean of its last 3 evaluations of 10 episodes"
)


def collected_catalogue() -> list[dict[str, Any]]:
    """One row per (environment, level): its names, the local copy's counts, behaviour policies
    and how long collecting it took (None or empty when absent), and the command that makes it:
    from the shipped files when they are all there, else with a SAC run (hours on one core;
    random needs none: its policy is uniform)."""
    rows = []
    for environment, env_id in COLLECTED_ENV_IDS.items():
        for level in COLLECTED_LEVELS:
            local = local_collected_record(environment, level)
            path, record = local if local is not None else (None, {})
            shipped = all(f.is_file() for f in level_files(SHIPPED_POLICIES, environment, level))
            name = f"{environment}-{level}-v2"
            rows.append(
                {
                    "dataset": name,
                    "id": collected_dataset_id(environment, level),
                    "local_path": str(path) if path is not None else None,
                    "transitions": record.get("transitions"),
                    "episodes": record.get("episodes"),
                    "dataset_normalized_score": record.get("dataset_normalized_score"),
                    "behaviour_policies": [
                        {
                            "policy": policy.get("policy"),
                            "sac_step": policy.get("sac_step"),
                            "evaluated_normalized_score": evaluated_normalized_score(policy),
                        }
                        for policy in record.get("behaviour_policy", [])
                    ],
                    "collected_in_s": (record.get("collection") or {}).get("wall_time_s"),
                    "fingerprint": _fingerprint(record, shipped_fingerprints(), name),
                    "from_shipped_policies": shipped,
                    "needs_sac": not shipped and level != "random",
                    "make": collect_command(environment, level)
                    if shipped
                    else f"dtql collect {env_id} --levels {level}",
                }
            )
    return rows


def print_fingerprints(rows: list[dict[str, Any]]) -> None:
    """Each level's fingerprint beside D4RL's file's, with whether it is within the tolerance
    (`dtql data list --fingerprints`)."""
    print(
        f"within: data and BC scores within {SCORE_TOLERANCE:.0f} points of D4RL's, transitions "
        f"within {TRANSITIONS_TOLERANCE:.0%}; BC: steps x seeds, each seed the mean of its last "
        "evaluations (their number, and episodes each)\n"
    )
    print(
        "| dataset | data: ours / D4RL | BC: ours / D4RL | BC measured | transitions: ours / "
        "D4RL | within | measured on |\n| --- | --- | --- | --- | --- | --- | --- |"
    )
    for row in rows:
        fp = row["fingerprint"]
        if fp is None:
            continue
        d4rl, within = fp["d4rl"], comparison(fp, fp["d4rl"])
        verdict = ", ".join(
            f"{VERDICT_NAMES[key]} {'yes' if ok else 'NO'}"
            for key, ok in within.items()
            if ok is not None
        )
        counts = [
            f"{fp['transitions']:,}",
            "-" if d4rl["transitions"] is None else f"{d4rl['transitions']:,}",
        ]
        print(
            f"| {row['dataset']} | {fp['dataset_normalized_score']:.1f} / "
            f"{_or_dash(d4rl['dataset_normalized_score'])} | {fp['bc_normalized_score']:.1f} ± "
            f"{fp['bc_normalized_score_stderr']:.1f} / {_or_dash(d4rl['bc_normalized_score'])} | "
            f"{_recipe(fp['bc'])} | {counts[0]} / {counts[1]} | {verdict or '-'} | "
            f"{fp['measured_on']} |"
        )


def _recipe(bc: dict[str, Any]) -> str:
    """'30,000 x 3, last 3 of 10 episodes': how a fingerprint's BC was measured."""
    return (
        f"{bc['steps']:,} x {len(bc['seeds'])}, last {bc['last_evals']} of "
        f"{bc['eval_episodes']} episodes"
    )


def _or_dash(value: float | None) -> str:
    return "-" if value is None else f"{value}"


def _fingerprint(
    record: dict[str, Any], shipped: dict[str, dict[str, Any]], name: str
) -> dict[str, Any] | None:
    """The local dataset's measured fingerprint, else the one measured on the dataset the
    shipped files make (`dtql data fingerprint`), with D4RL's numbers; None if neither."""
    fingerprint, measured_on = record.get("fingerprint"), "the local dataset"
    if fingerprint is None and name in shipped:
        fingerprint, measured_on = shipped[name], "the dataset the shipped files make"
    if fingerprint is None:
        return None
    return {
        "dataset_normalized_score": fingerprint["dataset_normalized_score"],
        "bc_normalized_score": fingerprint["bc_normalized_score"],
        "bc_normalized_score_stderr": fingerprint["bc_normalized_score_stderr"],
        "transitions": fingerprint["transitions"],
        "bc": fingerprint["bc"],
        "d4rl": d4rl_reference(name),
        "measured_on": measured_on,
    }


def _fingerprint_cell(fingerprint: dict[str, Any] | None) -> str:
    """'44.1 / 55.0 (D4RL 44.3 / 52.9)': data and BC scores, D4RL's beside them."""
    if fingerprint is None:
        return "-"
    d4rl = fingerprint["d4rl"]
    ours = scores_pair(fingerprint)
    if d4rl["dataset_normalized_score"] is None:
        return ours
    theirs = [d4rl["dataset_normalized_score"], d4rl["bc_normalized_score"]]
    return ours + " (D4RL " + " / ".join("-" if v is None else f"{v}" for v in theirs) + ")"


def print_catalogue(rows: list[dict[str, Any]], datasets_dir: str) -> None:
    """The catalogue as a markdown table."""
    print(f"`dtql collect` datasets; local folder {datasets_dir} ($DTQL_DATASETS_DIR)")
    print(
        "fingerprint: the data's normalized score / BC's (`dtql data fingerprint NAME`), "
        "measured on the local dataset or else on the one the shipped files make\n"
    )
    print(
        "| dataset | local | transitions | episodes | normalized | behaviour policy: SAC step "
        "(evaluated normalized) | fingerprint: data / BC | collected in | make it with |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        counts = [
            f"{row[key]:,}" if row[key] is not None else "-" for key in ("transitions", "episodes")
        ]
        score = row["dataset_normalized_score"]
        how = f"`{row['make']}`" + (" (a SAC run: hours)" if row["needs_sac"] else "")
        collected_in = "-" if row["collected_in_s"] is None else f"{row['collected_in_s']:.0f} s"
        print(
            f"| {row['dataset']} | {'yes' if row['local_path'] else 'no'} | {counts[0]} | "
            f"{counts[1]} | {'-' if score is None else f'{score:.1f}'} | "
            f"{_behaviour_cell(row['behaviour_policies'])} | "
            f"{_fingerprint_cell(row['fingerprint'])} | {collected_in} | {how} |"
        )


def _behaviour_cell(policies: list[dict[str, Any]]) -> str:
    """'uniform', or each SAC policy's step and evaluated score: '175,000 (36.3) + 690,000 (90.6)';
    a replay buffer reads 'buffer to 175,000'."""
    cells = []
    for policy in policies:
        name, step, score = (
            policy["policy"] or "",
            policy["sac_step"],
            policy["evaluated_normalized_score"],
        )
        if name.startswith("uniform"):
            cells.append("uniform")
            continue
        cell = ("buffer to " if "replay" in name else "") + ("?" if step is None else f"{step:,}")
        cells.append(cell + ("" if score is None else f" ({score:.1f})"))
    return " + ".join(cells) or "-"
