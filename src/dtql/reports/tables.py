"""The report's markdown: the paper's Table 1 form (mean +- standard error over seeds per task
and algorithm, domain averages), the protocol each cell used, the paper's numbers beside ours,
and every failed or unfinished run by name."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dtql.envs.d4rl_fingerprints import d4rl_reference, scores_pair
from dtql.presets import UnknownPresetError, family_of
from dtql.reports.paper import PAPER_TABLE_1, PAPER_TABLE_5_KL
from dtql.reports.runs import RunRecord, dataset_fingerprint

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


def final_scores(runs: list[RunRecord], last: bool = False) -> list[float]:
    """The finished runs' final scores, or (``last``) the means of their last evaluations."""
    values = [r.last_mean if last else r.score for r in runs if r.status == "finished"]
    return [v for v in values if v is not None]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def score_table(records: list[RunRecord], last: bool = False) -> list[str]:
    """Per task and algorithm, the final normalized score over seeds (``last``: each run's mean
    of its last evaluations); then domain averages (the mean of the task means, for an
    algorithm that has every task of the domain)."""
    algos, cells = ordered_algos(records), by_cell(records)
    tasks = sorted({r.task for r in records}, key=lambda t: (_family(t), t))
    rows = []
    for task in tasks:
        row = [task]
        for algo in algos:
            runs = cells.get((task, algo), [])
            failed = sum(r.status == "failed" for r in runs)
            unfinished = sum(r.status == "unfinished" for r in runs)
            row.append(format_cell(final_scores(runs, last), failed, unfinished) if runs else "")
        rows.append(row)
    for family in sorted({_family(t) for t in tasks}):
        family_tasks = [t for t in tasks if _family(t) == family]
        row = [f"**{family} average** ({task_count(len(family_tasks))})"]
        for algo in algos:
            means = [final_scores(cells.get((t, algo), []), last) for t in family_tasks]
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


def paper_table(records: list[RunRecord], root: Path) -> list[str]:
    """The paper's Table 1 (and Table 5's KL) on matching task names (its numbers are on D4RL's
    data), beside our means of the last evaluations and each dataset's fingerprint (data / BC
    score, ours and D4RL's), so that a difference in the data shows next to a difference in the
    scores."""
    tasks = sorted({r.task for r in records} & PAPER_TABLE_1.keys())
    cells = by_cell(records)
    rows = []
    for task in tasks:
        bc, iql, dtql, dtql_se = PAPER_TABLE_1[task]
        ours = []
        for algo in ("bc", "iql", "dtql", "kl"):
            values = final_scores(cells.get((task, algo), []), last=True)
            ours.append(f"{np.mean(values):.1f}" if values else "—")
        kl = PAPER_TABLE_5_KL.get(task)
        datasets = sorted({r.dataset for r in records if r.task == task and r.dataset})
        rows.append(
            [
                task,
                f"{bc:.1f} / {ours[0]}",
                f"{iql:.1f} / {ours[1]}",
                f"{dtql:.1f} ± {dtql_se:.2f} / {ours[2]}",
                f"{kl:.1f} / {ours[3]}" if kl is not None else f"— / {ours[3]}",
                "; ".join(_fingerprint_cell(task, d, root) for d in datasets) or "—",
            ]
        )
    header = ["task", "BC: paper / ours", "IQL: paper / ours", "DTQL: paper / ours"]
    header += ["KL (Table 5): paper / ours", "data / BC of the data: ours (D4RL)"]
    return _table(header, rows) if rows else []


def _fingerprint_cell(task: str, dataset: str, root: Path) -> str:
    """A dataset's recorded fingerprint beside D4RL's: '44.1 / 55.0 (44.3 / 52.9)'."""
    fingerprint = dataset_fingerprint(root, dataset)
    d4rl = d4rl_reference(task)
    theirs = f"({d4rl['dataset_normalized_score']} / {d4rl['bc_normalized_score']})"
    if fingerprint is None:
        return f"not fingerprinted {theirs}"
    ours = scores_pair(fingerprint)
    return f"{ours} {theirs}"


def problem_runs(records: list[RunRecord]) -> list[str]:
    lines = []
    for record in records:
        if record.status == "failed":
            lines.append(f"- failed: {record.failure or f'`{record.run_dir}`'}")
        elif record.status == "unfinished":
            lines.append(f"- unfinished (running, or stopped: rerun the sweep): `{record.run_dir}`")
    return lines


def sessions_table(sessions: list[dict]) -> list[str]:
    """Each `dtql sweep` session on the grid: when, where, its wall time and what it ran; the
    last row adds the wall times up. A session without an end record (killed, or running)
    counts to its last heartbeat."""
    rows = [
        [
            s["started_utc"],
            f"{s['host']} ({s['cpu_threads_usable']} CPU threads), {s['engine'] or '-'}",
            f"{s['tasks']} x {s['algos']} x seeds {s['seeds']}"
            + (f", {' '.join(s['overrides'])}" if s["overrides"] else ""),
            f"{s['finished_now']} finished, {s['finished_before']} before, {s['failed']} failed"
            + (", interrupted" if s["interrupted"] else "")
            + (
                "; no end recorded (still running, or killed): wall time to its last heartbeat"
                if s.get("status") == "running"
                else ""
            ),
            f"{s['wall_s'] / 3600:.2f} h",
        ]
        for s in sessions
    ]
    total = sum(s["wall_s"] for s in sessions)
    rows.append(["total", "", "", "", f"{total / 3600:.2f} h"])
    return _table(["started (UTC)", "where", "grid", "runs", "wall time"], rows)


def task_count(count: int) -> str:
    """'1 task', '3 tasks': the count the tables and the claims print."""
    return f"{count} task" if count == 1 else f"{count} tasks"
