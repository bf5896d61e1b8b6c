"""End-to-end runs on a real Hopper-v5 dataset made by the tests, with evaluation in the real
simulator; resuming a stopped run reproduces the uninterrupted run's logs exactly (CPU)."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import write_env_d4rl
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from dtql.assets import shipped_dataset
from dtql.checkpoint import latest_checkpoint, tensors_sha256
from dtql.cli import main
from dtql.config import RunConfig, replace
from dtql.envs.make import make_single_env
from dtql.envs.registry import get_task
from dtql.evaluation import SUMMARY_KEYS
from dtql.logger import read_metrics_csv
from dtql.presets import preset
from dtql.run.loop import RunSpec, run_group, run_training
from dtql.run.resume import extend_run, read_run_config, write_run_config
from dtql.run.schedule import next_boundary
from dtql.run.setup import RunError, load_training_data, resolve_dataset, task_spaces
from dtql.upgrade import upgrade_run_config

pytestmark = pytest.mark.slow

# One small config shared by the tests, so the jitted update compiles once per process.
FLAGS = [
    "--pretrain-steps",
    "100",
    "--steps",
    "200",
    "--batch-size",
    "64",
    "--log-every",
    "50",
    "--eval-every",
    "100",
    "--checkpoint-every",
    "100",
    "--eval-episodes",
    "2",
    "--num-eval-envs",
    "2",
    "--agent.hidden-dim",
    "64",
    "--agent.num-candidates",
    "16",
]


def small_config(dataset: Path, out: Path):
    cfg = preset("hopper-medium-v2")
    return replace(
        cfg,
        dataset=str(dataset),
        out=str(out),
        log_every=50,
        eval_every=100,
        checkpoint_every=100,
        eval_episodes=2,
        num_eval_envs=2,
        **{
            "learner.pretrain_steps": 100,
            "learner.steps": 200,
            "learner.batch_size": 64,
            "learner.agent.hidden_dim": 64,
            "learner.agent.num_candidates": 16,
        },
    )


def without_timing(rows):
    return [{k: v for k, v in row.items() if not k.startswith("perf/")} for row in rows]


@pytest.fixture(scope="module")
def finished_run(hopper_hdf5, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "full"
    assert (
        main(
            [
                "train",
                "--task",
                "hopper-medium-v2",
                "--dataset",
                str(hopper_hdf5),
                "--out",
                str(out),
                *FLAGS,
            ]
        )
        == 0
    )
    return out


def test_train_writes_a_complete_run_folder(finished_run):
    config = json.loads((finished_run / "config.json").read_text())
    learner = config["learner"]
    assert learner["agent"]["alpha"] == 5.0 and learner["steps"] == 200  # preset, then flags
    rows = read_metrics_csv(finished_run / "metrics.csv")
    assert [r["step"] for r in rows] == [50, 100, 150, 200, 250, 300]
    header = (finished_run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header[0] == "step" and "policy/tr_loss" in header and "critic/q_loss" in header
    evals = [r for r in rows if r.get("eval/normalized_score_mean") is not None]
    assert [r["step"] for r in evals] == [200, 300]  # none before pretraining ends
    assert all(r["eval/episodes"] == 2 for r in evals)
    jsonl = (finished_run / "metrics.jsonl").read_text().splitlines()
    assert len(jsonl) == len(rows)
    assert list((finished_run / "tb").glob("events.out.tfevents.*"))
    assert latest_checkpoint(finished_run).name == "step_000000300.safetensors"
    result = json.loads((finished_run / "result.json").read_text())
    assert result["act_mode"] == "mean" and result["episodes"] == 2
    assert result["normalized_score_mean"] == evals[-1]["eval/normalized_score_mean"]
    assert result["discounted_return_mean"] == evals[-1]["eval/discounted_return_mean"]
    assert result["device"] == "cpu" and result["cpu_threads_usable"] >= 1
    assert result["matmul_precision"] == "highest" and result["status"] == "finished"


def test_resumed_run_logs_the_same_numbers_as_an_uninterrupted_one(
    finished_run, hopper_hdf5, tmp_path
):
    cfg = small_config(hopper_hdf5, tmp_path / "resumed")
    # Stop after step 250 was logged; the last checkpoint is at 200, so step 250 is redone.
    run_training(cfg, progress=False, stop_at=250)
    assert latest_checkpoint(tmp_path / "resumed").name == "step_000000200.safetensors"
    assert main(["train", "--resume", str(tmp_path / "resumed")]) == 0
    full = without_timing(read_metrics_csv(finished_run / "metrics.csv"))
    resumed = without_timing(read_metrics_csv(tmp_path / "resumed" / "metrics.csv"))
    assert resumed == full


def test_a_run_given_more_steps_on_resume_logs_the_same_numbers_as_one_started_that_long(
    finished_run, hopper_hdf5, tmp_path
):
    out = tmp_path / "extended"
    run_training(replace(small_config(hopper_hdf5, out), **{"learner.steps": 100}), progress=False)
    first = json.loads((out / "result.json").read_text())
    assert main(["train", "--resume", str(out), "--steps", "200"]) == 0
    full = without_timing(read_metrics_csv(finished_run / "metrics.csv"))
    assert without_timing(read_metrics_csv(out / "metrics.csv")) == full
    assert json.loads((out / "result_step_200.json").read_text()) == first  # kept, not lost
    result = json.loads((out / "result.json").read_text())
    assert result["steps"] == 300 and result == {
        **json.loads((finished_run / "result.json").read_text()),
        "run_dir": str(out),
    }
    assert json.loads((out / "config.json").read_text())["learner"]["steps"] == 200


def test_resuming_a_finished_run_keeps_its_result(finished_run, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(finished_run, run)
    kept = (run / "result.json").read_text()
    assert main(["train", "--resume", str(run)]) == 0
    assert (run / "result.json").read_text() == kept
    # Stopped after its last checkpoint, before its result: evaluated there, the same numbers.
    (run / "result.json").unlink()
    assert main(["train", "--resume", str(run)]) == 0
    result = json.loads((run / "result.json").read_text())
    assert result == {**json.loads(kept), "run_dir": str(run)}


def test_a_resumed_run_cannot_be_shortened_or_extended_past_its_learning_rate_cosine(tmp_path):
    cfg = replace(preset("hopper-medium-v2"), **{"learner.steps": 100})
    write_run_config(tmp_path, cfg)
    with pytest.raises(RunError, match="learner.steps is 100; --steps 50 would shorten"):
        extend_run(tmp_path, 50)
    write_run_config(
        tmp_path,
        replace(cfg, **{"learner.agent.lr_decay": True, "learner.agent.lr_decay_steps": None}),
    )
    with pytest.raises(RunError, match="lr_decay_steps is null"):
        extend_run(tmp_path, 200)
    assert read_run_config(tmp_path).learner.steps == 100  # unchanged


def test_a_truncated_newest_checkpoint_resumes_from_the_one_before_it(
    finished_run, hopper_hdf5, tmp_path, capsys
):
    cfg = small_config(hopper_hdf5, tmp_path / "resumed")
    run_training(cfg, progress=False, stop_at=250)  # checkpoints at 100 and 200
    newest = latest_checkpoint(tmp_path / "resumed")
    assert newest.name == "step_000000200.safetensors"
    newest.write_bytes(newest.read_bytes()[:-100])
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "resumed")]) == 0
    out, err = capsys.readouterr()
    assert f"skipped checkpoint {newest}: not a valid safetensors file" in err
    assert "from step 100;" in out
    full = without_timing(read_metrics_csv(finished_run / "metrics.csv"))
    resumed = without_timing(read_metrics_csv(tmp_path / "resumed" / "metrics.csv"))
    assert resumed == full  # steps 101-300 redone from step 100, the same numbers


def test_eval_skips_a_damaged_checkpoint_and_step_picks_one(finished_run, tmp_path, capsys):
    run = tmp_path / "copy"
    shutil.copytree(finished_run, run)
    newest = latest_checkpoint(run)
    newest.write_bytes(newest.read_bytes()[:-100])
    capsys.readouterr()
    assert main(["eval", str(run), "--episodes", "1", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["step"] == 200
    assert f"skipped checkpoint {newest}" in err
    assert main(["eval", str(run), "--step", "300"]) == 2
    assert "no valid checkpoint (step_000000300.safetensors damaged)" in capsys.readouterr().err
    assert main(["eval", str(run), "--step", "7"]) == 2
    assert "no checkpoint at step 7 (300, 200)" in capsys.readouterr().err


def test_eval_command_reevaluates_the_latest_checkpoint(finished_run, capsys):
    assert main(["eval", str(finished_run), "--episodes", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["step"] == 300 and result["episodes"] == 3 and result["act_mode"] == "mean"
    assert main(["eval", str(finished_run), "--episodes", "2", "--act-mode", "candidates"]) == 0
    assert "act_mode candidates" in capsys.readouterr().out
    # Iterative sampling from the behaviour diffusion model, with its settings replaced.
    flags = ["--act-mode", "diffusion", "--diffusion-candidates", "1"]
    assert main(["eval", str(finished_run), "--episodes", "2", *flags, "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["act_mode"] == "diffusion" and result["diffusion_candidates"] == 1
    assert result["diffusion_sampling_steps"] == 5


def test_results_use_one_vocabulary_everywhere(finished_run, capsys):
    # result.json, `dtql eval --json` and the metric logs name every number the same way.
    result = json.loads((finished_run / "result.json").read_text())
    assert main(["eval", str(finished_run), "--episodes", "1", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(SUMMARY_KEYS) <= result.keys() and set(SUMMARY_KEYS) <= evaluated.keys()
    header = (finished_run / "metrics.csv").read_text().splitlines()[0].split(",")
    numeric = [key for key in SUMMARY_KEYS if key != "act_mode"]
    assert all(f"eval/{key}" in header for key in numeric)


def test_a_run_folder_from_before_the_learner_split_still_evaluates(finished_run, tmp_path, capsys):
    # Older runs wrote one flat config.json (algo, steps, agent beside task); it still loads.
    old = tmp_path / "old-run"
    shutil.copytree(finished_run, old)
    config = json.loads((old / "config.json").read_text())
    flat = {key: value for key, value in config.items() if key != "learner"}
    (old / "config.json").write_text(json.dumps({**flat, **config["learner"]}))
    assert upgrade_run_config(json.loads((old / "config.json").read_text())) == config
    assert main(["eval", str(old), "--episodes", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 300


def test_train_refuses_to_overwrite_a_run(finished_run, hopper_hdf5, capsys):
    code = main(["train", "--dataset", str(hopper_hdf5), "--out", str(finished_run), *FLAGS])
    assert code == 2 and "already holds a run" in capsys.readouterr().err


def test_chunks_end_at_every_boundary():
    cfg = replace(
        preset("hopper-medium-v2"),
        log_every=50,
        eval_every=40,
        checkpoint_every=1000,
        **{"learner.pretrain_steps": 70, "learner.steps": 100},
    )
    ends, step = [], 0
    while step < 170:
        step = next_boundary(cfg, step)
        ends.append(step)
    assert ends == [40, 50, 70, 80, 100, 120, 150, 160, 170]


def test_resume_needs_a_run_folder(tmp_path):
    with pytest.raises(RunError, match="config.json"):
        run_training(preset("hopper-medium-v2"), resume_dir=str(tmp_path))


@pytest.mark.parametrize("task_name", ["antmaze-umaze-v2", "pen-human-v1", "kitchen-complete-v0"])
def test_short_run_on_a_robotics_task(task_name, tmp_path, capsys):
    """Train on data from the task's own env (its D4RL observation layout) and evaluate one
    episode there: AntMaze (dict observations, reward r - 1), Adroit pen, FrankaKitchen."""
    env = make_single_env(get_task(task_name))  # observations in the task's D4RL layout
    env.action_space.seed(0)
    data = write_env_d4rl(tmp_path / f"{task_name}.hdf5", env, 300, env.action_space.sample, 0, 100)
    flags = ["--pretrain-steps", "20", "--steps", "20", "--eval-every", "40", "--log-every", "20"]
    flags += ["--eval-episodes", "1", "--num-eval-envs", "1", "--batch-size", "32"]
    flags += ["--agent.hidden-dim", "32", "--agent.num-candidates", "8"]
    out = tmp_path / "run"
    code = main(["train", "--task", task_name, "--dataset", str(data), "--out", str(out), *flags])
    assert code == 0, capsys.readouterr().err
    result = json.loads((out / "result.json").read_text())
    assert result["episodes"] == 1 and np.isfinite(result["normalized_score_mean"])
    config = json.loads((out / "config.json").read_text())
    expected_transform = "minus_one" if task_name.startswith("antmaze") else "none"
    assert config["reward_transform"] == expected_transform


def nothing_local(monkeypatch, root: Path) -> None:
    """Empty D4RL, Minari and dtql dataset folders: a name finds no local dataset."""
    for name in ("D4RL_DATASET_DIR", "MINARI_DATASETS_PATH", "DTQL_DATASETS_DIR"):
        monkeypatch.setenv(name, str(root / name.lower()))


def test_train_without_a_dataset_uses_the_shipped_default(monkeypatch, tmp_path):
    nothing_local(monkeypatch, tmp_path)
    cfg = RunConfig()  # task hopper-medium-v2, no --dataset
    path = Path(resolve_dataset(cfg))
    assert path == shipped_dataset(cfg.task) and (path / "collect_info.json").is_file()
    task = get_task(cfg.task)
    transitions = load_training_data(cfg, task, task_spaces(task))
    info = json.loads((path / "collect_info.json").read_text())
    assert transitions.num_transitions == info["transitions"] and info["env_id"] == "Hopper-v5"


def test_a_local_dataset_of_the_tasks_name_comes_before_the_shipped_one(
    monkeypatch, tmp_path, hopper_hdf5
):
    nothing_local(monkeypatch, tmp_path)
    d4rl_file = tmp_path / "d4rl_dataset_dir" / "hopper-medium-v2.hdf5"
    d4rl_file.parent.mkdir()
    shutil.copy(hopper_hdf5, d4rl_file)  # as if D4RL's own file were installed
    assert resolve_dataset(RunConfig()) == str(d4rl_file)
    assert resolve_dataset(RunConfig(dataset="mine.npz")) == "mine.npz"  # the flag first


def test_a_diverging_run_stops_with_one_line_and_keeps_its_last_finite_checkpoint(
    hopper_hdf5, tmp_path, capsys
):
    # IQL's policy at lr 1e30 overflows within its first main-phase chunk (steps 100-150); the
    # critics' pretraining up to step 100 is finite and checkpointed there.
    out = tmp_path / "diverged"
    argv = ["train", "--dataset", str(hopper_hdf5), "--out", str(out), *FLAGS]
    code = main([*argv, "--algo", "iql-dtql", "--agent.lr", "1e30"])
    message = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert code == 2 and message.startswith("dtql train: error: ")
    assert "in the chunk ending at step 150" in message and "step_000000100" in message
    assert latest_checkpoint(out).name == "step_000000100.safetensors"
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "failed" and "step 150" in result["failure"]
    last = read_metrics_csv(out / "metrics.csv")[-1]
    assert last["step"] == 150  # the evidence is logged


def test_sigterm_checkpoints_at_the_end_of_the_chunk_and_the_run_resumes_exactly(
    finished_run, hopper_hdf5, tmp_path
):
    out = tmp_path / "signalled"
    argv = [sys.executable, "-m", "dtql.cli", "train", "--dataset", str(hopper_hdf5)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [*argv, "--out", str(out), *FLAGS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    for line in proc.stdout:  # the header is printed once a signal stops the run well
        if line.startswith("run "):
            proc.send_signal(signal.SIGTERM)  # arrives while the first chunk compiles
            break
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert f"resume with: dtql train --resume {out}" in err
    assert latest_checkpoint(out).name == "step_000000050.safetensors"
    assert main(["train", "--resume", str(out)]) == 0
    full = without_timing(read_metrics_csv(finished_run / "metrics.csv"))
    assert without_timing(read_metrics_csv(out / "metrics.csv")) == full


def assert_close_rows(rows: list[dict], expected: list[dict]) -> None:
    """Equal up to float32 reassociation and constant folding: batched kernels sum in another
    order, and stacked hyperparameters are arrays where a lone run folds constants (measured
    up to 3e-5 relative in the losses over 300 steps; the bound leaves room).

    A spread over episodes (``*_std``, ``*_stderr``) is held to the same 1e-3 of its mean's
    scale rather than its own: episodes whose returns differ by 1e-4 relative move a spread
    that is small against their mean by more than that (measured 3e-3 of a return_std of 0.56).
    """
    assert [row["step"] for row in rows] == [row["step"] for row in expected]
    for row, want in zip(rows, expected, strict=True):
        for key, value in want.items():
            if value is None:
                continue
            scale = abs(value)
            if key.endswith(("_std", "_stderr")):
                mean_key = key.rsplit("_", 1)[0] + "_mean"
                scale = max(scale, abs(want.get(mean_key) or 0.0))
            assert abs(row[key] - value) <= 1e-3 * scale + 1e-5, (row["step"], key)


@pytest.fixture(scope="module")
def stacked_group(hopper_hdf5, tmp_path_factory):
    """Seeds 0 and 1 of the small config, trained in one vmapped program."""
    root = tmp_path_factory.mktemp("group")
    specs = [RunSpec(replace(small_config(hopper_hdf5, root / f"s{s}"), seed=s)) for s in (0, 1)]
    results = run_group(specs, progress=False)
    return root, results


def test_a_run_trained_in_a_stacked_group_logs_what_it_logs_alone(finished_run, stacked_group):
    root, results = stacked_group
    assert [r["runs_in_program"] for r in results] == [2, 2]
    assert [r["status"] for r in results] == ["finished", "finished"]
    alone = without_timing(read_metrics_csv(finished_run / "metrics.csv"))
    stacked = without_timing(read_metrics_csv(root / "s0" / "metrics.csv"))
    assert_close_rows(stacked, alone)
    # The other seed is a different run, not a copy.
    other = without_timing(read_metrics_csv(root / "s1" / "metrics.csv"))
    assert other[-1]["critic/q_loss"] != stacked[-1]["critic/q_loss"]


def test_a_stopped_group_resumes_exactly(stacked_group, hopper_hdf5, tmp_path):
    root, _ = stacked_group
    cfgs = [replace(small_config(hopper_hdf5, tmp_path / f"s{s}"), seed=s) for s in (0, 1)]
    run_group([RunSpec(cfg) for cfg in cfgs], progress=False, stop_at=250)
    results = run_group([RunSpec(None, str(tmp_path / f"s{s}")) for s in (0, 1)], progress=False)
    assert [r["status"] for r in results] == ["finished", "finished"]
    for s in (0, 1):
        full = without_timing(read_metrics_csv(root / f"s{s}" / "metrics.csv"))
        assert without_timing(read_metrics_csv(tmp_path / f"s{s}" / "metrics.csv")) == full


def test_a_diverging_run_leaves_its_group_and_the_others_finish(stacked_group, tmp_path):
    root, _ = stacked_group
    # Two stopped runs at step 200, one with a checkpoint whose critic weights are NaN.
    for s in (0, 1):
        shutil.copytree(root / f"s{s}", tmp_path / f"s{s}")
        (tmp_path / f"s{s}" / "result.json").unlink()
        (tmp_path / f"s{s}" / "checkpoints" / "step_000000300.safetensors").unlink()
    path = tmp_path / "s1" / "checkpoints" / "step_000000200.safetensors"
    with safe_open(path, framework="numpy") as file:
        header = file.metadata()
    tensors = load_file(path)
    poisoned = {
        name: np.full_like(a, np.nan) if "critics" in name and a.dtype.kind == "f" else a
        for name, a in tensors.items()
    }
    # A state that went NaN before it was saved: an intact file whose checksum matches.
    save_file(poisoned, path, metadata={**header, "sha256": tensors_sha256(poisoned)})
    specs = [RunSpec(None, str(tmp_path / f"s{s}")) for s in (0, 1)]
    ok, failed = run_group(specs, progress=False)
    assert ok["status"] == "finished" and failed["status"] == "failed"
    assert "in the chunk ending at step 250" in failed["failure"]
    # The survivor goes on in a program of one run: its numbers, up to reassociation.
    full = without_timing(read_metrics_csv(root / "s0" / "metrics.csv"))
    assert_close_rows(without_timing(read_metrics_csv(tmp_path / "s0" / "metrics.csv")), full)


def train_together_and_alone(finished_run, first, other, tmp_path) -> tuple[list, list]:
    """Train ``first`` (the config of ``finished_run``) and ``other`` in one stacked program,
    then ``other`` alone; check each grouped run against its run alone; return the two grouped
    runs' rows."""
    results = run_group([RunSpec(first), RunSpec(other)], progress=False)
    assert [r["status"] for r in results] == ["finished", "finished"]
    run_training(replace(other, out=str(tmp_path / "alone")), progress=False)
    rows = [without_timing(read_metrics_csv(Path(c.out) / "metrics.csv")) for c in (first, other)]
    assert_close_rows(rows[0], without_timing(read_metrics_csv(finished_run / "metrics.csv")))
    assert_close_rows(rows[1], without_timing(read_metrics_csv(tmp_path / "alone" / "metrics.csv")))
    return rows


def test_runs_with_other_hyperparameters_train_in_one_program_as_they_would_alone(
    finished_run, hopper_hdf5, tmp_path
):
    base = small_config(hopper_hdf5, tmp_path / "alpha5")
    changes = {"learner.agent.alpha": 2.0, "learner.agent.lr": 3e-4, "learner.agent.expectile": 0.9}
    other = replace(base, out=str(tmp_path / "alpha2"), **changes)
    alpha5, alpha2 = train_together_and_alone(finished_run, base, other, tmp_path)
    assert alpha2[-1]["policy/loss"] != pytest.approx(alpha5[-1]["policy/loss"])


def test_runs_on_other_datasets_of_one_env_train_in_one_program_as_they_would_alone(
    finished_run, hopper_hdf5, tmp_path
):
    medium = small_config(hopper_hdf5, tmp_path / "medium")
    random_data = str(shipped_dataset("hopper-random-v2"))  # 100k rows beside the test's few
    other = replace(medium, task="hopper-random-v2", dataset=random_data, out=str(tmp_path / "r"))
    train_together_and_alone(finished_run, medium, other, tmp_path)
    result = json.loads((tmp_path / "r" / "result.json").read_text())
    assert result["task"] == "hopper-random-v2" and result["runs_in_program"] == 2
