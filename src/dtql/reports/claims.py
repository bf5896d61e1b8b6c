"""The paper's claims, checked in words on the runs of a report.

Each claim compares two algorithms on a set of tasks by the field's reading of a run (the mean
of its last evaluations, averaged over seeds). A claim holds on a task when the first
algorithm's mean is above the second's (or, for "at or above", not below it); it is not
measured where either algorithm has no finished run. The verdict says on how many tasks it
held, and whether each gap is larger than the two standard errors together (a gap within them
could be seed noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dtql.reports.runs import LAST_EVALS, RunRecord
from dtql.reports.tables import by_cell, final_scores, format_cell, mean_stderr, task_count


@dataclass(frozen=True)
class Claim:
    text: str  # as the paper makes it
    first: str  # the algorithm claimed better
    second: str
    levels: tuple[str, ...]  # D4RL levels it speaks of ('medium' for '*-medium-v2')
    average: bool = False  # judged on the average over its tasks rather than task by task


# The claims issue 24 names, from the paper's Table 1 and Table 5.
PAPER_CLAIMS = (
    Claim("DTQL above BC on medium and medium-replay (Table 1)", "dtql", "bc",
          ("medium", "medium-replay")),
    Claim("DTQL at or above IQL on the locomotion average (Table 1)", "dtql", "iql",
          ("medium", "medium-replay", "medium-expert"), average=True),
    Claim("The trust region above KL distillation on medium (Table 5)", "dtql", "kl",
          ("medium",)),
)  # fmt: skip


def task_level(task: str) -> str | None:
    """'hopper-medium-replay-v2' -> 'medium-replay'; None for a task with no D4RL level."""
    name, _, _ = task.rpartition("-v")
    _, _, level = name.partition("-")
    return level or None


def claim_lines(records: list[RunRecord]) -> list[str]:
    """One paragraph per claim: its verdict and the numbers behind it."""
    cells = by_cell(records)
    lines = [
        f"Read as the field reads runs: each run's mean of its last {LAST_EVALS} evaluations, "
        "mean ± standard error over seeds. 'clear' marks a gap larger than the two standard "
        "errors together.",
        "",
    ]
    for claim in PAPER_CLAIMS:
        tasks = sorted({r.task for r in records if task_level(r.task) in claim.levels})
        measured = []
        for task in tasks:
            first = final_scores(cells.get((task, claim.first), []), last=True)
            second = final_scores(cells.get((task, claim.second), []), last=True)
            if first and second:
                measured.append((task, first, second))
        lines.append(f"- **{claim.text}**: {_verdict(claim, measured)}")
        for task, first, second in measured:
            lines.append(f"  - {task}: {_comparison(claim, first, second)}")
    return lines


def _verdict(claim: Claim, measured: list[tuple[str, list[float], list[float]]]) -> str:
    if not measured:
        return f"not measured (no task with finished {claim.first} and {claim.second} runs)"
    if claim.average:
        first = float(np.mean([np.mean(f) for _, f, _ in measured]))
        second = float(np.mean([np.mean(s) for _, _, s in measured]))
        held = "holds" if first >= second else "does not hold"
        return (
            f"{held} on the average over {task_count(len(measured))}: {claim.first} {first:.1f}, "
            f"{claim.second} {second:.1f}"
        )
    holds, total = sum(np.mean(f) > np.mean(s) for _, f, s in measured), len(measured)
    if holds == total:
        return f"holds on every task measured ({total})"
    if holds == 0:
        return f"does not hold on any of the {task_count(total)} measured"
    return f"holds on {holds} of the {task_count(total)} measured only"


def _comparison(claim: Claim, first: list[float], second: list[float]) -> str:
    (m1, e1), (m2, e2) = mean_stderr(first), mean_stderr(second)
    errors = [e for e in (e1, e2) if not math.isnan(e)]
    clear = len(errors) == 2 and abs(m1 - m2) > sum(errors)
    relation = "above" if m1 > m2 else "below" if m1 < m2 else "equal to"
    note = ", clear" if clear else ""
    return (
        f"{claim.first} {format_cell(first)} {relation} {claim.second} {format_cell(second)}{note}"
    )
