"""Reading run folders back: each run's config, end (finished, failed or unfinished), final
score and evaluation curve. The report is made from these files alone."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from dtql.data.collected import recorded_fingerprint
from dtql.files import write_bytes_atomic, write_json_atomic
from dtql.logger import CSV_NAME, SWEEP_SESSIONS_NAME, read_metrics_csv
from dtql.upgrade import upgrade_result, upgrade_run_config

SCORE = "eval/normalized_score_mean"
# The critics' mean Q on the batch: where it stops climbing, the policy's target settles.
Q_MEAN = "critic/q_mean"
# The field's reading of a run beside its final score (TD3+BC and IQL report the average of
# the final evaluations): the mean of its last this many evaluations.
LAST_EVALS = 3


class ReportError(ValueError):
    """No runs to report on, or a missing extra; the message says which."""


@dataclass(frozen=True)
class RunRecord:
    run_dir: Path
    task: str
    algo: str
    label: str  # the column: the algo, or a sweep's variant folder name ('dtql@alpha=20')
    seed: int
    status: str  # finished | failed | unfinished (running, or stopped and not resumed yet)
    total_steps: int
    pretrain_steps: int
    eval_episodes: int
    act_mode: str
    score: float | None  # final normalized score (finished runs)
    curve: list[tuple[int, float]] = field(default_factory=list)  # (step, normalized score)
    q_curve: list[tuple[int, float]] = field(default_factory=list)  # (step, critics' mean Q)
    failure: str = ""
    device: str = ""
    threads: int | None = None
    dataset: str = ""

    @property
    def last_mean(self) -> float | None:
        """The mean of the last LAST_EVALS evaluations of a finished run (of all, if fewer)."""
        if self.status != "finished" or not self.curve:
            return None
        return mean_of_last(self.curve, LAST_EVALS)


def mean_of_last(curve: list[tuple[int, float]], count: int) -> float:
    """The mean score of a curve's last ``count`` evaluations (of all, if it has fewer)."""
    scores = [score for _, score in curve[-count:]]
    return sum(scores) / len(scores)


def find_runs(root: Path) -> list[RunRecord]:
    """Every run folder (one holding config.json) under ``root``, sorted by task, algo, seed."""
    if not root.is_dir():
        raise ReportError(f"{root}: no such folder of runs")
    records = [read_run(path.parent) for path in root.rglob("config.json")]
    return sorted(records, key=lambda r: (r.task, r.label, r.seed, str(r.run_dir)))


def _label(run_dir: Path, algo: str) -> str:
    """A sweep's variant folder (``<task>/<algo>@key=value/seed_<k>``) names its column."""
    parent = run_dir.parent.name
    return parent if parent.startswith(algo + "@") else algo


def read_run(run_dir: Path) -> RunRecord:
    config = upgrade_run_config(json.loads((run_dir / "config.json").read_text()))
    learner = config["learner"]
    result_path = run_dir / "result.json"
    result = upgrade_result(json.loads(result_path.read_text())) if result_path.exists() else {}
    status = result.get("status", "unfinished") if result else "unfinished"
    curve, q_curve = [], []
    if (run_dir / CSV_NAME).exists():
        for row in read_metrics_csv(run_dir / CSV_NAME):
            if row.get(SCORE) is not None:
                curve.append((row["step"], row[SCORE]))
            if row.get(Q_MEAN) is not None:
                q_curve.append((row["step"], row[Q_MEAN]))
    return RunRecord(
        run_dir=run_dir,
        task=config["task"],
        algo=learner["algo"],
        label=_label(run_dir, learner["algo"]),
        seed=int(config["seed"]),
        status=status,
        total_steps=int(learner["pretrain_steps"]) + int(learner["steps"]),
        pretrain_steps=int(learner["pretrain_steps"]),
        eval_episodes=int(config["eval_episodes"]),
        act_mode=config.get("act_mode", "mean"),
        score=result.get("normalized_score_mean") if status == "finished" else None,
        curve=curve,
        q_curve=q_curve,
        failure=result.get("failure", ""),
        device=result.get("device", ""),
        threads=result.get("cpu_threads_usable"),
        dataset=config.get("dataset") or "",
    )


def read_sweep_sessions(root: Path) -> list[dict]:
    """The `dtql sweep` sessions recorded in ROOT/sessions.jsonl ([] when none)."""
    path = root / SWEEP_SESSIONS_NAME
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# What `dtql report` reads of a run folder; `copy_summaries` keeps exactly these.
SUMMARY_FILES = ("config.json", "result.json", CSV_NAME)
# Beside copied summaries: each run's dataset and its recorded fingerprint, so the report on the
# copies needs neither the datasets nor the machine that made them.
DATASETS_NAME = "datasets.json"


def copy_summaries(root: Path, dest: Path) -> int:
    """Copy what the report reads of the runs under ``root`` to ``dest`` (same layout): each
    run's config.json, result.json and metrics.csv, the sweep's sessions.jsonl, and
    datasets.json with every run's dataset and its recorded fingerprint (None where it has
    none). `dtql report DEST` then writes the page `dtql report ROOT` writes, without the
    checkpoints, TensorBoard logs or datasets. Returns the number of runs copied."""
    records = find_runs(root)
    if not records:
        raise ReportError(f"{root}: no run folders (config.json) below it")
    for record in records:
        target = dest / record.run_dir.relative_to(root)
        for name in SUMMARY_FILES:
            if (record.run_dir / name).is_file():
                write_bytes_atomic(target / name, (record.run_dir / name).read_bytes())
    if (root / SWEEP_SESSIONS_NAME).is_file():
        write_bytes_atomic(dest / SWEEP_SESSIONS_NAME, (root / SWEEP_SESSIONS_NAME).read_bytes())
    datasets = sorted({r.dataset for r in records if r.dataset})
    write_json_atomic(dest / DATASETS_NAME, {d: dataset_fingerprint(root, d) for d in datasets})
    _drop_stale_summaries(dest, {r.run_dir.relative_to(root) for r in records})
    return len(records)


def _drop_stale_summaries(dest: Path, kept: set[Path]) -> None:
    """Remove DEST's copies of runs ROOT no longer has (a sweep deletes a run stopped before
    its first checkpoint), so DEST reports what ROOT does. Only the summary files go, and a
    folder only once empty: anything else a user keeps in DEST stays."""
    for config in list(dest.rglob("config.json")):  # listed first: the loop removes folders
        run_dir = config.parent
        if run_dir.relative_to(dest) in kept:
            continue
        for name in SUMMARY_FILES:
            (run_dir / name).unlink(missing_ok=True)
        while run_dir != dest and not any(run_dir.iterdir()):
            run_dir.rmdir()
            run_dir = run_dir.parent


def dataset_fingerprint(root: Path, dataset: str) -> dict | None:
    """A dataset's recorded fingerprint: from ROOT/datasets.json where the runs are copies
    (`copy_summaries`), else from the dataset's own record."""
    copied = root / DATASETS_NAME
    if copied.is_file():
        return json.loads(copied.read_text()).get(dataset)
    return recorded_fingerprint(dataset)
