"""`dtql data list`: every dataset `dtql collect` can name, whether it is in the local datasets
folder ($DTQL_DATASETS_DIR), and whether the shipped behaviour-policy files can make it offline.

Reads records (collect_info.json) and checks that files exist; never loads a dataset.
"""

from __future__ import annotations

from typing import Any

from dtql.collect.export import level_files
from dtql.collect.policies import SHIPPED_POLICIES
from dtql.data.collected import (
    COLLECTED_ENV_IDS,
    COLLECTED_LEVELS,
    collect_command,
    collected_dataset_id,
    local_collected_record,
)
from dtql.data.provenance import evaluated_normalized_score


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
            rows.append(
                {
                    "dataset": f"{environment}-{level}-v2",
                    "id": collected_dataset_id(environment, level),
                    "local_path": str(path) if path is not None else None,
                    "transitions": record.get("transitions"),
                    "episodes": record.get("episodes"),
                    "normalized_score": record.get("dataset_normalized_score"),
                    "behaviour_policies": [
                        {
                            "policy": policy.get("policy"),
                            "sac_step": policy.get("sac_step"),
                            "evaluated_normalized_score": evaluated_normalized_score(policy),
                        }
                        for policy in record.get("behaviour_policy", [])
                    ],
                    "collected_in_s": (record.get("collection") or {}).get("wall_time_s"),
                    "from_shipped_policies": shipped,
                    "needs_sac": not shipped and level != "random",
                    "make": collect_command(environment, level)
                    if shipped
                    else f"dtql collect {env_id} --levels {level}",
                }
            )
    return rows


def print_catalogue(rows: list[dict[str, Any]], datasets_dir: str) -> None:
    """The catalogue as a markdown table."""
    print(f"`dtql collect` datasets; local folder {datasets_dir} ($DTQL_DATASETS_DIR)\n")
    print(
        "| dataset | local | transitions | episodes | normalized | behaviour policy: SAC step "
        "(evaluated normalized) | collected in | make it with |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        counts = [
            f"{row[key]:,}" if row[key] is not None else "-" for key in ("transitions", "episodes")
        ]
        score = row["normalized_score"]
        how = f"`{row['make']}`" + (" (a SAC run: hours)" if row["needs_sac"] else "")
        collected_in = "-" if row["collected_in_s"] is None else f"{row['collected_in_s']:.0f} s"
        print(
            f"| {row['dataset']} | {'yes' if row['local_path'] else 'no'} | {counts[0]} | "
            f"{counts[1]} | {'-' if score is None else f'{score:.1f}'} | "
            f"{_behaviour_cell(row['behaviour_policies'])} | {collected_in} | {how} |"
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
