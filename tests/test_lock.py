"""One writer per folder: a second `dtql train --resume` on a run another process trains, or a
second sweep on a grid, is refused naming the holder; after the holder is killed with -9 the
next writer takes over, saying so. Real processes, real run folders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dtql.checkpoint import latest_checkpoint
from dtql.cli import main
from dtql.config import RunConfig
from dtql.lock import LOCK_NAME, FolderLock, FolderLocked
from dtql.logger import read_metrics_csv
from dtql.run.loop import run_training


def dtql(*args: str) -> list[str]:
    return [sys.executable, "-m", "dtql.cli", *args]


def wait_for(condition, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition did not hold in time")
        time.sleep(0.2)


@pytest.mark.slow
def test_resume_while_another_process_trains_is_refused_until_it_is_killed(
    hopper_hdf5, tmp_path, capsys
):
    run = tmp_path / "run"
    holder = subprocess.Popen(
        dtql(
            "train",
            "--task",
            "hopper-medium-v2",
            "--dataset",
            str(hopper_hdf5),
            "--algo",
            "bc",
            "--pretrain-steps",
            "0",
            "--steps",
            "10000000",
            "--eval-every",
            "0",
            "--log-every",
            "100",
            "--checkpoint-every",
            "100",
            "--out",
            str(run),
        ),  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: latest_checkpoint(run) is not None)
        second = subprocess.run(
            dtql("train", "--resume", str(run)), capture_output=True, text=True, timeout=120
        )
        assert second.returncode != 0
        assert f"pid {holder.pid} on host" in second.stderr
        assert "another process writes this run" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()

    step = int(json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"])
    capsys.readouterr()
    run_training(RunConfig(), resume_dir=str(run), progress=False, stop_at=step + 300)
    err = capsys.readouterr().err
    assert f"took over the lock left by pid {holder.pid}" in err
    assert read_metrics_csv(run / "metrics.csv")[-1]["step"] >= step + 200
    assert (run / LOCK_NAME).read_text() == ""  # released: nothing to take over next time


def test_a_second_sweep_on_a_grid_is_refused_naming_the_first(tmp_path, capsys):
    grid = tmp_path / "grid"
    with FolderLock(grid, "grid"):
        argv = ["sweep", "--tasks", "hopper-medium-v2", "--algos", "bc", "--out", str(grid)]
        assert main(argv) == 2
        error = capsys.readouterr().err
        assert f"pid {os.getpid()} on host" in error and "writes this grid" in error
    assert not (grid / "hopper-medium-v2").exists()


def test_a_released_lock_is_taken_silently_and_a_held_one_refused(tmp_path, capsys):
    with FolderLock(tmp_path / "f", "run"):
        with pytest.raises(FolderLocked, match="another process writes this run"):
            FolderLock(tmp_path / "f", "run").__enter__()
    with FolderLock(tmp_path / "f", "run"):
        pass
    assert "took over" not in capsys.readouterr().err
    assert Path(tmp_path / "f" / LOCK_NAME).read_text() == ""
