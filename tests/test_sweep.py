"""`dtql sweep` and `dtql train --seeds`: a 2-task x 2-algo x 2-seed grid on the shipped Hopper
datasets, run as pinned processes and through a local Ray instance; a rerun skips finished runs
and resumes stopped ones; a diverging run is recorded as failed while the others finish."""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dtql.cli import main
from dtql.config import RunConfig, replace
from dtql.logger import read_metrics_csv
from dtql.presets import run_config
from dtql.reports import write_report
from dtql.reports.tables import sessions_table
from dtql.run.loop import run_training
from dtql.sweeps import SweepError, parse_seeds, plan_grid
from dtql.sweeps.grid import apply_sets, group_runs, sets_for

pytestmark = pytest.mark.slow

# Tiny runs: what is tested is the grid's bookkeeping, not the learning.
SMALL = [
    "steps=100",
    "log-every=50",
    "eval-every=0",
    "checkpoint-every=50",
    "eval-episodes=1",
    "num-eval-envs=1",
    "agent.hidden-dim=32",
]
GRID = ["--tasks", "hopper-medium-v2,hopper-random-v2", "--algos", "bc,iql", "--seeds", "0-1"]


def statuses(out: Path) -> dict[str, str]:
    found = {}
    for path in sorted(out.glob("*/*/seed_*/config.json")):
        result = path.parent / "result.json"
        status = json.loads(result.read_text())["status"] if result.exists() else "none"
        found[str(path.parent.relative_to(out))] = status
    return found


def without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if not k.startswith("perf/")} for row in rows]


def test_seeds_parse_as_ranges_and_lists():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0,3,7") == [0, 3, 7]
    assert parse_seeds("0-1,9") == [0, 1, 9]
    for bad in ("4-0", "a", "1,1", ""):
        with pytest.raises(SweepError, match="--seeds"):
            parse_seeds(bad)


def test_set_overrides_are_typed_like_the_field_and_can_name_one_algorithm():
    cfg = apply_sets(RunConfig(), ["steps=20000", "agent.alpha=2", "eval-every=5000"])
    assert cfg.learner.steps == 20000 and cfg.learner.agent.alpha == 2.0
    assert cfg.eval_every == 5000 and isinstance(cfg.learner.agent.alpha, float)
    assert apply_sets(RunConfig(), ["agent.edm.clamp-denoised=false"]).learner.agent.edm
    assert sets_for("dtql", ["steps=5", "dtql:pretrain-steps=7", "bc:steps=9"]) == [
        "steps=5",
        "pretrain-steps=7",
    ]
    for bad, message in [
        ("agent.nope=1", "no such config field"),
        ("steps=many", "expected an int"),
        ("agent.lr_decay=maybe", "expected true or false"),
        ("seed=3", "set by the grid"),
        ("steps", "expected key=value"),
    ]:
        with pytest.raises(SweepError, match=message):
            apply_sets(RunConfig(), [bad])


def test_a_grid_plans_one_folder_per_run_and_groups_runs_that_share_a_config(tmp_path):
    runs = plan_grid(["hopper-medium-v2"], ["dtql", "bc"], [0, 1, 2], ["steps=10"], tmp_path)
    assert [str(r.run_dir.relative_to(tmp_path)) for r in runs][:2] == [
        "hopper-medium-v2/dtql/seed_0",
        "hopper-medium-v2/dtql/seed_1",
    ]
    assert all(r.status == "new" for r in runs)
    groups = group_runs(runs, max_group=2)
    assert [len(g) for g in groups] == [2, 1, 2, 1]
    assert all(len({r.cfg.learner.algo for r in g}) == 1 for g in groups)


def test_a_comma_list_sweeps_values_each_in_its_folder_and_they_share_a_program(tmp_path):
    sets = ["agent.alpha=2,20", "dtql:agent.lr=1e-4,3e-4", "steps=10"]
    runs = plan_grid(["hopper-medium-v2"], ["dtql", "bc"], [0], sets, tmp_path)
    names = [str(r.run_dir.relative_to(tmp_path / "hopper-medium-v2")) for r in runs]
    assert names == [
        "dtql@alpha=2@lr=1e-4/seed_0",
        "dtql@alpha=2@lr=3e-4/seed_0",
        "dtql@alpha=20@lr=1e-4/seed_0",
        "dtql@alpha=20@lr=3e-4/seed_0",
        "bc@alpha=2/seed_0",
        "bc@alpha=20/seed_0",
    ]
    assert [r.cfg.learner.agent.alpha for r in runs[:4]] == [2.0, 2.0, 20.0, 20.0]
    # Stacked hyperparameters: the four DTQL variants are one program, BC's two another.
    assert [len(g) for g in group_runs(runs, max_group=8)] == [4, 2]


def test_a_rerun_with_another_config_refuses_to_mix_runs(tmp_path):
    cfg = run_config("hopper-medium-v2", "bc")
    out = tmp_path / "hopper-medium-v2" / "bc" / "seed_0"
    small = replace(cfg, out=str(out), eval_every=0, eval_episodes=1, num_eval_envs=1)
    run_training(replace(small, **{"learner.steps": 20}), progress=False)
    same = ["eval-every=0", "eval-episodes=1", "num-eval-envs=1"]
    assert plan_grid(["hopper-medium-v2"], ["bc"], [0], ["steps=20", *same], tmp_path)
    with pytest.raises(SweepError, match=r"learner.steps \(20 there, 30 here\)"):
        plan_grid(["hopper-medium-v2"], ["bc"], [0], ["steps=30", *same], tmp_path)


def test_extend_gives_a_grid_s_shorter_runs_its_longer_main_phase(tmp_path, capsys):
    cfg = run_config("hopper-medium-v2", "bc")
    out = tmp_path / "hopper-medium-v2" / "bc" / "seed_0"
    small = replace(cfg, out=str(out), eval_every=0, eval_episodes=1, num_eval_envs=1)
    run_training(replace(small, **{"learner.steps": 20}), progress=False)
    first = (out / "result.json").read_text()
    same = ["eval-every=0", "eval-episodes=1", "num-eval-envs=1"]
    grid = ["hopper-medium-v2"], ["bc"], [0]
    with pytest.raises(SweepError, match="--extend gives it this grid's longer main phase"):
        plan_grid(*grid, ["steps=30", *same], tmp_path)
    with pytest.raises(SweepError, match=r"num_eval_envs \(1 there, 10 here\)"):
        plan_grid(*grid, ["steps=30", "eval-every=0", "eval-episodes=1"], tmp_path, extend=True)
    # A dry run says what it would do and changes nothing.
    (looked,) = plan_grid(*grid, ["steps=30", *same], tmp_path, clean=False, extend=True)
    assert (looked.status, looked.start_step) == ("extend", 20)
    assert (out / "result.json").read_text() == first
    argv = ["sweep", "--tasks", "hopper-medium-v2", "--algos", "bc", "--out", str(tmp_path)]
    argv += ["--set", "steps=30", *same, "--extend"]
    assert main([*argv, "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert f"extend   {out} from step 20 to 30" in printed and ", 1 to extend" in printed
    assert main(argv) == 0
    assert "1 finished now, 0 finished before" in capsys.readouterr().out
    assert (out / "result_step_20.json").read_text() == first
    assert json.loads((out / "result.json").read_text())["steps"] == 30
    assert [r["step"] for r in read_metrics_csv(out / "metrics.csv")][-1] == 30
    assert plan_grid(*grid, ["steps=30", *same], tmp_path)[0].status == "finished"
    # A grid copied elsewhere is the same grid there (its configs' out names the first place).
    shutil.copytree(tmp_path / "hopper-medium-v2", tmp_path / "copy" / "hopper-medium-v2")
    assert plan_grid(*grid, ["steps=30", *same], tmp_path / "copy")[0].status == "finished"


def stop_a_run(run_dir: Path) -> list[dict]:
    """Leave a finished run as a sweep killed after its step-50 checkpoint would; its rows."""
    (run_dir / "result.json").unlink()
    (run_dir / "checkpoints" / "step_000000100.safetensors").unlink()
    return without_timing(read_metrics_csv(run_dir / "metrics.csv"))


def test_local_grid_finishes_skips_finished_runs_and_resumes_a_stopped_one(tmp_path, capsys):
    out = tmp_path / "grid"
    argv = ["sweep", *GRID, "--out", str(out), "--set", *SMALL]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "engine: processes" in printed
    assert "8 finished now, 0 finished before" in printed
    assert set(statuses(out).values()) == {"finished"} and len(statuses(out)) == 8
    results = [json.loads(p.read_text()) for p in out.glob("*/*/seed_*/result.json")]
    assert {r["cpu_threads_usable"] for r in results} == {1}  # one pinned core per process

    stopped = out / "hopper-random-v2" / "iql" / "seed_1"
    before = stop_a_run(stopped)
    # A dry run says where the grid stands and changes nothing.
    assert main([*argv, "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert f"resume   {stopped} from step 50 (or running now)" in printed
    assert "8 runs: 7 finished, 0 failed, 1 to resume, 0 new" in printed
    assert not (stopped / "result.json").exists()
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "1 finished now, 7 finished before (skipped), 0 failed" in printed
    # Resumed from step 50: the same rows again.
    assert without_timing(read_metrics_csv(stopped / "metrics.csv")) == before
    assert json.loads((stopped / "result.json").read_text())["status"] == "finished"
    # Each session is one line of the grid's wall-time record, and the report adds them up.
    sessions = [json.loads(line) for line in (out / "sessions.jsonl").read_text().splitlines()]
    assert [(s["finished_now"], s["finished_before"], s["planned"]) for s in sessions] == [
        (8, 0, 8),
        (1, 7, 8),
    ]
    assert all(s["wall_s"] > 0 and s["engine"].startswith("processes") for s in sessions)
    text = write_report(out, tmp_path / "r.md", tmp_path / "figures")
    total = sum(s["wall_s"] for s in sessions) / 3600
    assert f"| total |  |  |  | {total:.2f} h |" in text


def test_a_diverging_run_is_recorded_as_failed_and_the_grid_goes_on(tmp_path, capsys):
    out = tmp_path / "grid"
    argv = ["sweep", "--tasks", "hopper-medium-v2", "--algos", "bc,iql", "--out", str(out)]
    code = main([*argv, "--set", *SMALL, "iql:agent.lr=1e30"])
    printed = capsys.readouterr().out
    assert code == 1 and "1 failed" in printed and "1 finished now" in printed
    assert statuses(out) == {
        "hopper-medium-v2/bc/seed_0": "finished",
        "hopper-medium-v2/iql/seed_0": "failed",
    }
    # A rerun leaves the failed run as it is (it would fail again) and reports it.
    assert main([*argv, "--set", *SMALL, "iql:agent.lr=1e30"]) == 1
    printed = capsys.readouterr().out
    assert "0 finished now, 1 finished before (skipped), 1 failed (1 before" in printed


def test_grid_through_a_local_ray_instance_with_resume(tmp_path, capsys):
    out = tmp_path / "grid"
    argv = ["sweep", *GRID, "--out", str(out), "--ray", "--set", *SMALL]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "engine: ray" in printed and "one CPU per run" in printed
    assert "8 finished now" in printed
    assert set(statuses(out).values()) == {"finished"}

    stopped = out / "hopper-medium-v2" / "bc" / "seed_0"
    before = stop_a_run(stopped)
    assert main(argv) == 0
    assert "1 finished now, 7 finished before" in capsys.readouterr().out
    assert without_timing(read_metrics_csv(stopped / "metrics.csv")) == before


def test_train_with_seeds_writes_one_folder_per_seed(tmp_path, capsys):
    out = tmp_path / "seeds"
    flags = ["--algo", "bc", "--steps", "60", "--log-every", "30", "--eval-every", "0"]
    flags += ["--eval-episodes", "1", "--num-eval-envs", "1", "--out", str(out)]
    assert main(["train", *flags, "--seeds", "0-1", "--stack", "stacked"]) == 0
    printed = capsys.readouterr().out
    assert "engine: stacked (as asked)" in printed
    for seed in (0, 1):
        result = json.loads((out / f"seed_{seed}" / "result.json").read_text())
        assert result["seed"] == seed and result["runs_in_program"] == 2


def test_sigterm_to_a_sweep_checkpoints_its_runs_and_a_rerun_would_resume_them(tmp_path):
    out = tmp_path / "grid"
    sets = ["steps=1000000", "log-every=50", "checkpoint-every=50", "eval-every=0"]
    argv = [sys.executable, "-m", "dtql.cli", "sweep", "--tasks", "hopper-medium-v2"]
    argv += ["--algos", "bc", "--out", str(out), "--set", *sets]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = out / "logs" / "hopper-medium-v2-bc-seed0.log"
    deadline = time.monotonic() + 120
    while not (log.exists() and "run " in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    printed, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, printed
    assert "interrupted: checkpoints saved; run the same command again to resume" in printed
    (run,) = plan_grid(["hopper-medium-v2"], ["bc"], [0], sets, out)
    assert run.status == "resume" and run.start_step >= 50


def test_repeated_set_flags_add_up_and_reach_the_runs_config(tmp_path):
    out = tmp_path / "grid"
    argv = ["sweep", "--tasks", "hopper-medium-v2", "--algos", "bc", "--out", str(out)]
    sets = ["--set", "steps=40", "log-every=20", "--set", "eval-every=0", "--set"]
    sets += ["eval-episodes=1", "num-eval-envs=1", "checkpoint-every=40"]
    assert main([*argv, *sets, "--mode", "stacked"]) == 0
    config = json.loads((out / "hopper-medium-v2" / "bc" / "seed_0" / "config.json").read_text())
    assert config["learner"]["steps"] == 40 and config["log_every"] == 20
    assert config["eval_every"] == 0 and config["eval_episodes"] == 1
    assert config["checkpoint_every"] == 40


def test_an_unknown_algorithm_is_refused_before_any_run_folder(tmp_path, capsys):
    out = tmp_path / "grid"
    argv = ["sweep", "--tasks", "hopper-medium-v2", "--algos", "bc,bcx", "--out", str(out)]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert "unknown algorithm 'bcx'" in error and "dtql, kl, iql" in error
    assert len(error.strip().splitlines()) == 1
    assert not out.exists()


KILLED_SWEEP = """
import os, signal, sys, time
from pathlib import Path
from dtql.sweeps.grid import PlannedRun
from dtql.sweeps.sweep_command import SessionRecord, SweepArgs
args = SweepArgs(tasks="hopper-medium-v2", out=sys.argv[1], algos="bc", seeds="0-1")
out = Path(sys.argv[1])
runs = [PlannedRun(None, out / name, "new") for name in ("a", "b")]
with SessionRecord(out, args, runs, "processes (as asked)", every_s=0.05):
    (out / "a").mkdir()
    (out / "a" / "result.json").write_text('{"status": "finished"}')
    time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGKILL)  # as a machine's session ends: no handler runs
"""


def test_a_sweep_killed_without_warning_leaves_its_wall_time_and_runs_so_far(tmp_path):
    out = tmp_path / "grid"
    out.mkdir()
    ended = {"started_utc": "2026-01-01T00:00:00+00:00", "status": "ended", "wall_s": 7200.0,
             "host": "h", "pid": 1, "cpu_threads_usable": 2, "engine": "processes (cpu)",
             "tasks": "t", "algos": "bc", "seeds": "0", "overrides": [], "planned": 1,
             "finished_now": 1, "finished_before": 0, "failed": 0, "could_not_run": 0,
             "interrupted": False}  # fmt: skip
    (out / "sessions.jsonl").write_text(json.dumps(ended) + "\n")
    killed = subprocess.run([sys.executable, "-c", KILLED_SWEEP, str(out)], cwd=tmp_path)
    assert killed.returncode == -signal.SIGKILL
    sessions = [json.loads(line) for line in (out / "sessions.jsonl").read_text().splitlines()]
    assert sessions[0] == ended  # an earlier session's line is kept as it was
    last = sessions[1]
    assert last["status"] == "running" and last["finished_now"] == 1 and last["planned"] == 2
    assert last["engine"] == "processes (as asked)"  # known from the start, not only at the end
    assert 0 < last["wall_s"] <= 30  # to its last heartbeat, one after the run finished
    table = "\n".join(sessions_table(sessions))
    assert "no end recorded (still running, or killed)" in table
    assert f"| total |  |  |  | {(7200 + last['wall_s']) / 3600:.2f} h |" in table
