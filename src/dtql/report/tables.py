"""The report's markdown: the paper's Table 1 form (mean +- standard error over seeds per task
and algorithm, domain averages), the protocol each cell used, the paper's numbers beside ours,
and every failed or unfinished run by name."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from dtql.presets import UnknownPresetError, family_of
from dtql.report.paper import PAPER_TABLE_1
from dtql.report.runs import RunRecord

ALGO_ORDER = ("dtql", "kl", "iql", "iql-dtql", "bc", "bc-gaussian")


def mean_stderr(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error (sample std with ddof=1 over sqrt(n)); NaN error for one value."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        raise ValueError("mean_stderr of no values")
    if array.size == 1:
        return float(array[0]), math.nan
    return float(array.mean()), float(array.std(ddof=1) / math.sqrt(array.size))


def format_cell(values: Sequence[float], failed: int = 0, unfinished: int = 0) -> str:
    notes = [f"n={len(values)}"]
    notes += [f"{failed} failed"] if failed else []
    notes += [f"{unfinished} unfinished"] if unfinished else []
    if not values:
        return "— (" + ", ".join(notes[1:] or ["no runs"]) + ")"
    mean, stderr = mean_stderr(values)
    shown = f"{mean:.1f}" if math.isnan(stderr) else f"{mean:.1f} ± {stderr:.1f}"
    return f"{shown} ({', '.join(notes)})"


def ordered_algos(records: list[RunRecord]) -> list[str]:
    """The columns: each algorithm (the paper's order), then its variants by name."""
    order = {algo: i for i, algo in enumerate(ALGO_ORDER)}
    labels = {(r.algo, r.label) for r in records}
    ranked = sorted(labels, key=lambda al: (order.get(al[0], len(order)), al[0], al[1]))
    return [label for _, label in ranked]


def _family(task: str) -> str:
    try:
        return family_of(task)
    except UnknownPresetError:
        return "other"


def by_cell(records: list[RunRecord]) -> dict[tuple[str, str], list[RunRecord]]:
    cells: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    for record in records:
        cells[(record.task, record.label)].append(record)
    return cells


def final_scores(runs: list[RunRecord]) -> list[float]:
    return [r.score for r in runs if r.status == "finished" and r.score is not None]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def score_table(records: list[RunRecord]) -> list[str]:
    """Per task and algorithm, the final normalized score over seeds; then domain averages
    (the mean of the task means, for an algorithm that has every task of the domain)."""
    algos, cells = ordered_algos(records), by_cell(records)
    tasks = sorted({r.task for r in records}, key=lambda t: (_family(t), t))
    rows = []
    for task in tasks:
        row = [task]
        for algo in algos:
            runs = cells.get((task, algo), [])
            failed = sum(r.status == "failed" for r in runs)
            unfinished = sum(r.status == "unfinished" for r in runs)
            row.append(format_cell(final_scores(runs), failed, unfinished) if runs else "")
        rows.append(row)
    for family in sorted({_family(t) for t in tasks}):
        family_tasks = [t for t in tasks if _family(t) == family]
        count = f"{len(family_tasks)} task{'s' if len(family_tasks) != 1 else ''}"
        row = [f"**{family} average** ({count})"]
        for algo in algos:
            means = [final_scores(cells.get((t, algo), [])) for t in family_tasks]
            complete = all(means)
            row.append(f"{np.mean([np.mean(m) for m in means]):.1f}" if complete else "—")
        rows.append(row)
    return _table(["task", *algos], rows)


def protocol_table(records: list[RunRecord]) -> list[str]:
    """What each cell measured: steps, episodes, act mode, seeds, device."""
    rows = []
    for (task, algo), runs in sorted(by_cell(records).items()):
        first = runs[0]
        devices = sorted({_device(r) for r in runs if r.device})
        rows.append(
            [
                task,
                algo,
                f"{first.total_steps} ({first.pretrain_steps} pretraining)",
                str(first.eval_episodes),
                first.act_mode,
                ", ".join(str(r.seed) for r in runs),
                ", ".join(devices) or "—",
            ]
        )
    header = ["task", "algo", "steps", "episodes per run", "act mode", "seeds", "device"]
    return _table(header, rows)


def _device(record: RunRecord) -> str:
    if not record.threads:
        return record.device
    return f"{record.device} ({record.threads} thread{'s' if record.threads != 1 else ''})"


def runs_table(records: list[RunRecord]) -> list[str]:
    """Every run: its end and its score at each evaluation, so no mean hides a seed."""
    rows = []
    for r in records:
        curve = ", ".join(f"{step // 1000}k: {score:.1f}" for step, score in r.curve)
        final = f"{r.score:.1f}" if r.score is not None else "—"
        rows.append([r.task, r.label, str(r.seed), r.status, final, curve or "—"])
    return _table(["task", "algo", "seed", "status", "final", "evaluations"], rows)


def paper_table(records: list[RunRecord]) -> list[str]:
    """The paper's Table 1 on matching task names (its numbers are on D4RL's data)."""
    tasks = sorted({r.task for r in records} & PAPER_TABLE_1.keys())
    rows = []
    for task in tasks:
        bc, iql, dtql, dtql_se = PAPER_TABLE_1[task]
        rows.append([task, f"{bc:.1f}", f"{iql:.1f}", f"{dtql:.1f} ± {dtql_se:.2f}"])
    return _table(["task", "BC (paper)", "IQL (paper)", "DTQL (paper)"], rows) if rows else []


def problem_runs(records: list[RunRecord]) -> list[str]:
    lines = []
    for record in records:
        if record.status == "failed":
            lines.append(f"- failed: {record.failure or f'`{record.run_dir}`'}")
        elif record.status == "unfinished":
            lines.append(f"- unfinished (running, or stopped: rerun the sweep): `{record.run_dir}`")
    return lines
