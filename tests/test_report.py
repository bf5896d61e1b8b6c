"""`dtql report` on synthetic run folders whose scores are known: the means, standard errors,
domain averages and IQM it prints are checked against numbers worked out by hand here."""

import json
import math
import shutil
from pathlib import Path

import pytest

from dtql.cli import main
from dtql.config import replace, to_dict
from dtql.logger import RunLogger
from dtql.presets import run_config
from dtql.reports import copy_summaries, find_runs, format_cell, mean_stderr, write_report


def write_run(
    root: Path,
    task: str,
    algo: str,
    seed: int,
    score: float | None,
    status: str,
    variant="",
    dataset=None,
):
    """A run folder as `dtql train` (in a sweep) leaves it: config.json, metrics, result.json."""
    run_dir = root / task / f"{algo}{variant}" / f"seed_{seed}"
    run_dir.mkdir(parents=True)
    cfg = replace(run_config(task, algo), seed=seed, out=str(run_dir), dataset=dataset)
    (run_dir / "config.json").write_text(json.dumps(to_dict(cfg)))
    if status == "unfinished":
        return
    with RunLogger(run_dir) as logger:
        if algo != "bc":  # algorithms with critics log their mean Q on the training batch
            logger.log(500, {"critic/q_mean": 10.0 + seed})
        logger.log(1000, {"eval/normalized_score_mean": (score or 0.0) / 2})
        logger.log(2000, {"eval/normalized_score_mean": score if score is not None else math.nan})
    result = {"task": task, "algo": algo, "status": status, "device": "cpu"}
    if status == "finished":
        result["normalized_score_mean"] = score
    else:
        result["failure"] = f"{run_dir}: critic/q_loss = nan in the chunk ending at step 2000"
    (run_dir / "result.json").write_text(json.dumps(result))


@pytest.fixture
def runs(tmp_path) -> Path:
    root = tmp_path / "grid"
    for seed, score in enumerate([0.0, 10.0, 20.0, 100.0]):
        write_run(root, "hopper-medium-v2", "dtql", seed, score, "finished")
    write_run(root, "hopper-medium-v2", "bc", 0, 40.0, "finished")
    write_run(root, "hopper-medium-v2", "bc", 1, 44.0, "finished")
    write_run(root, "hopper-medium-v2", "bc", 2, None, "failed")
    write_run(root, "hopper-random-v2", "dtql", 0, 5.0, "finished")
    write_run(root, "hopper-random-v2", "dtql", 1, None, "unfinished")
    return root


def test_mean_and_standard_error_by_hand():
    mean, stderr = mean_stderr([0.0, 10.0, 20.0, 100.0])
    # sample std: sqrt(((-32.5)^2 + (-22.5)^2 + (-12.5)^2 + 67.5^2) / 3) = 45.73; / sqrt(4)
    assert mean == 32.5 and stderr == pytest.approx(45.7347 / 2, rel=1e-4)
    assert format_cell([40.0, 44.0], failed=1) == "42.0 ± 2.0 (n=2, 1 failed)"
    assert format_cell([5.0], unfinished=1) == "5.0 (n=1, 1 unfinished)"
    assert format_cell([], failed=2) == "— (2 failed)"


def test_report_table_averages_paper_numbers_and_problem_runs(runs, tmp_path):
    text = write_report(runs, tmp_path / "docs" / "results.md", tmp_path / "docs" / "figures")
    assert "| hopper-medium-v2 | 32.5 ± 22.9 (n=4) | 42.0 ± 2.0 (n=2, 1 failed) |" in text
    assert "| hopper-random-v2 | 5.0 (n=1, 1 unfinished) |  |" in text
    # Domain average: the mean of the task means, only for an algorithm with every task.
    assert "| **locomotion average** (2 tasks) | 18.8 | — |" in text
    assert "| hopper-medium-v2 | dtql | 3 | finished | 100.0 | 1k: 50.0, 2k: 100.0 |" in text
    # The paper's beside ours (means of the last evaluations: 0.75 x the final score here).
    assert (
        "| hopper-medium-v2 | 52.9 / 31.5 | 66.3 / — | 99.6 ± 0.87 / 24.4 | 15.0 / — | — |" in text
    )
    assert "| hopper-medium-v2 | 24.4 ± 17.2 (n=4) | 31.5 ± 1.5 (n=2, 1 failed) |" in text
    assert (
        "- **DTQL above BC on medium and medium-replay (Table 1)**: does not hold on any of "
        "the 1 task measured" in text
    )
    assert "  - hopper-medium-v2: dtql 24.4 ± 17.2 (n=4) below bc 31.5 ± 1.5 (n=2)\n" in text
    assert "on the locomotion average (Table 1)**: not measured (no task with fin" in text
    assert "- failed: " in text and "critic/q_loss = nan in the chunk" in text
    assert "unfinished (running, or stopped: rerun the sweep)" in text
    # IQM over the task both algorithms finished: trim 25% each side of [0, 10, 20, 100].
    assert "| dtql | 15.0 |" in text and "| bc | 42.0 |" in text
    figures = tmp_path / "docs" / "figures"
    assert (figures / "curves-hopper-medium-v2.png").stat().st_size > 1000
    assert (figures / "performance_profile.png").stat().st_size > 1000
    assert "![curves-hopper-medium-v2](figures/curves-hopper-medium-v2.png)" in text


def test_report_regenerates_the_same_text(runs, tmp_path):
    first = write_report(runs, tmp_path / "a.md", tmp_path / "figures")
    assert write_report(runs, tmp_path / "a.md", tmp_path / "figures") == first


def test_report_command_writes_into_the_folder_and_refuses_an_empty_one(runs, tmp_path, capsys):
    assert main(["report", str(runs)]) == 0
    assert (runs / "report.md").exists() and (runs / "figures").is_dir()
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "no run folders" in capsys.readouterr().err


def test_a_sweeps_variants_are_columns_of_their_own(tmp_path):
    root = tmp_path / "grid"
    write_run(root, "hopper-medium-v2", "dtql", 0, 30.0, "finished")
    write_run(root, "hopper-medium-v2", "dtql", 0, 50.0, "finished", variant="@alpha=20")
    write_run(root, "hopper-medium-v2", "bc", 0, 40.0, "finished")
    text = write_report(root, tmp_path / "r.md", tmp_path / "figures")
    assert "| task | dtql | dtql@alpha=20 | bc |" in text
    assert "| hopper-medium-v2 | 30.0 (n=1) | 50.0 (n=1) | 40.0 (n=1) |" in text


def test_claims_are_judged_on_the_last_evaluations_with_the_datas_fingerprint(tmp_path):
    data = tmp_path / "hopper-medium-v0"  # a dataset folder with a fingerprint in its record
    data.mkdir()
    fingerprint = {"dataset_normalized_score": 45.0, "bc_normalized_score": 50.5}
    (data / "collect_info.json").write_text(json.dumps({"fingerprint": fingerprint}))
    root = tmp_path / "grid"
    scores = {"dtql": [80.0, 90.0], "bc": [50.0, 54.0], "kl": [10.0, 30.0], "iql": [60.0, 64.0]}
    for algo, values in scores.items():
        for seed, score in enumerate(values):
            write_run(root, "hopper-medium-v2", algo, seed, score, "finished", dataset=str(data))
    text = write_report(root, tmp_path / "r.md", tmp_path / "figures")
    assert "| 45.0 / 50.5 (44.3 / 52.9) |" in text  # ours, then D4RL's file's
    claims = text.split("## The paper's claims")[1].split("##")[0]
    assert "(Table 1)**: holds on every task measured (1)" in claims
    assert "  - hopper-medium-v2: dtql 63.8 ± 3.8 (n=2) above bc 39.0 ± 1.5 (n=2), clear" in claims
    assert (
        "locomotion average (Table 1)**: holds on the average over 1 task: dtql 63.8, iql"
        in claims
    )
    assert "KL distillation on medium (Table 5)**: holds on every task measured (1)" in claims


def test_copied_summaries_regenerate_the_page_without_the_datasets_or_checkpoints(tmp_path):
    data = tmp_path / "hopper-medium-v0"
    data.mkdir()
    fingerprint = {"dataset_normalized_score": 41.0, "bc_normalized_score": 58.3}
    (data / "collect_info.json").write_text(json.dumps({"fingerprint": fingerprint}))
    root = tmp_path / "grid"
    for algo, score in (("dtql", 90.0), ("bc", 55.0)):
        write_run(root, "hopper-medium-v2", algo, 0, score, "finished", dataset=str(data))
        (root / "hopper-medium-v2" / algo / "seed_0" / "checkpoints").mkdir()
    session = {"started_utc": "2026-12-07T09:53:56+00:00", "status": "ended", "wall_s": 60.0,
               "host": "vm", "cpu_threads_usable": 2, "engine": "processes", "tasks": "t",
               "algos": "dtql,bc", "seeds": "0", "overrides": [], "finished_now": 2,
               "finished_before": 0, "failed": 0, "interrupted": False}  # fmt: skip
    (root / "sessions.jsonl").write_text(json.dumps(session) + "\n")
    original = write_report(root, tmp_path / "a.md", tmp_path / "figures")

    dest = tmp_path / "published"
    assert (
        main(["report", str(root), "--summaries", str(dest), "--out", str(tmp_path / "b.md")]) == 0
    )
    copied = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert copied == [
        "datasets.json",
        *(f"hopper-medium-v2/{a}/seed_0/{f}" for a in ("bc", "dtql")
          for f in ("config.json", "metrics.csv", "result.json")),
        "sessions.jsonl",
    ]  # fmt: skip
    shutil.rmtree(data)  # the page must not need the dataset any more
    again = write_report(dest, tmp_path / "a.md", tmp_path / "figures")
    assert "| 41.0 / 58.3 (44.3 / 52.9) |" in again
    assert again == original.replace(f"dtql report {root}`", f"dtql report {dest}`")


def test_runs_read_back_their_critics_mean_q_and_each_task_gets_a_figure(runs, tmp_path):
    from dtql.reports import read_run

    dtql_run = read_run(runs / "hopper-medium-v2" / "dtql" / "seed_2")
    assert dtql_run.q_curve == [(500, 12.0)] and dtql_run.curve == [(1000, 10.0), (2000, 20.0)]
    assert read_run(runs / "hopper-medium-v2" / "bc" / "seed_0").q_curve == []
    write_report(runs, tmp_path / "r.md", tmp_path / "figures")
    figures = sorted(p.name for p in (tmp_path / "figures").glob("curves-*.png"))
    assert figures == ["curves-hopper-medium-v2.png", "curves-hopper-random-v2.png"]


def test_copied_summaries_drop_the_runs_the_source_no_longer_has(tmp_path):
    root, dest = tmp_path / "grid", tmp_path / "published"
    for seed in (0, 1):
        write_run(root, "hopper-medium-v2", "dtql", seed, 90.0, "finished")
    assert copy_summaries(root, dest) == 2
    (dest / "hopper-medium-v2" / "dtql" / "seed_1" / "notes.txt").write_text("mine")
    shutil.rmtree(root / "hopper-medium-v2" / "dtql" / "seed_1")  # a sweep deleted the run
    shutil.rmtree(root / "hopper-medium-v2" / "dtql" / "seed_0")
    write_run(root, "walker2d-medium-v2", "bc", 0, 50.0, "finished")
    assert copy_summaries(root, dest) == 1
    left = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert left == [
        "datasets.json",
        "hopper-medium-v2/dtql/seed_1/notes.txt",  # not a summary: the user's file stays
        *(f"walker2d-medium-v2/bc/seed_0/{f}" for f in ("config.json", "metrics.csv",
                                                         "result.json")),
    ]  # fmt: skip
    assert not (dest / "hopper-medium-v2" / "dtql" / "seed_0").exists()
    assert [r.task for r in find_runs(dest)] == ["walker2d-medium-v2"]
