"""Running a planned grid: stacked groups in this process, one pinned process per CPU core, or
Ray tasks on a cluster. Whatever the engine, a run that fails does not stop the others, and the
report at the end says which engine ran and why, and what became of every run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from dtql.files import write_json_atomic
from dtql.run.resume import RESULT_NAME
from dtql.sweeps.grid import PlannedRun, group_runs
from dtql.sweeps.worker import group_spec, train_group_spec

Mode = Literal["auto", "stacked", "processes", "ray"]


@dataclass
class ExecutionReport:
    """What a sweep did: the engine and why, and each run's end."""

    mode: str
    reason: str
    skipped: list[str] = field(default_factory=list)  # finished before this sweep
    finished: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # diverged: result.json says why
    failed_before: list[str] = field(default_factory=list)  # kept as failed: it would again
    errors: list[str] = field(default_factory=list)  # could not run: "folder: message"
    interrupted: bool = False

    @property
    def all_finished(self) -> bool:
        return not (self.failed or self.failed_before or self.errors or self.interrupted)

    def lines(self) -> list[str]:
        out = [f"engine: {self.mode} ({self.reason})"]
        out.append(
            f"runs: {len(self.finished)} finished now, {len(self.skipped)} finished before "
            f"(skipped), {len(self.failed) + len(self.failed_before)} failed "
            f"({len(self.failed_before)} before this sweep), {len(self.errors)} could not run"
        )
        out += [f"failed: {path}" for path in self.failed + self.failed_before]
        out += [f"error: {line}" for line in self.errors]
        if self.interrupted:
            out.append("interrupted: checkpoints saved; run the same command again to resume")
        return out


def choose_mode(requested: Mode) -> tuple[str, str]:
    """The engine for ``requested``; 'auto' picks by the device JAX would use here."""
    if requested != "auto":
        return requested, "as asked"
    import jax

    backend = jax.default_backend()
    if backend == "cpu":
        return "processes", "CPU: one process per core measured faster than a stacked program"
    return "stacked", f"{backend}: one stacked program per group uses the device far better"


def engine_for(mode: Mode, ray_address: str | None) -> tuple[str, str]:
    """The engine `run_plan` uses and why: Ray where an address is given, else `choose_mode`."""
    return ("ray", f"cluster {ray_address}") if ray_address else choose_mode(mode)


def run_plan(
    runs: list[PlannedRun],
    *,
    log_dir: Path,
    mode: Mode = "auto",
    workers: int | None = None,
    max_group: int = 0,
    ray_address: str | None = None,
) -> ExecutionReport:
    """Train every new or stopped run of the plan; never stops at a failed run."""
    mode_used, reason = engine_for(mode, ray_address)
    report = ExecutionReport(mode_used, reason)
    report.skipped = [str(r.run_dir) for r in runs if r.status == "finished"]
    report.failed_before = [str(r.run_dir) for r in runs if r.status == "failed"]
    todo = [r for r in runs if r.status in ("new", "resume")]
    log_dir.mkdir(parents=True, exist_ok=True)
    if mode_used == "stacked":
        groups = group_runs(todo, max_group or len(todo))
        _run_stacked(groups, report)
    elif mode_used == "processes":
        _run_processes(group_runs(todo, 1), report, log_dir, workers)
    elif mode_used == "ray":
        _run_ray(todo, report, ray_address, max_group)
    else:
        raise ValueError(f"--mode {mode}: expected auto, stacked, processes or ray")
    return report


def _record(group: list[PlannedRun], report: ExecutionReport, error: str | None = None) -> None:
    """Each run's end, read from its folder (result.json), the only source of truth."""
    for run in group:
        path = run.run_dir / RESULT_NAME
        status = json.loads(path.read_text()).get("status") if path.exists() else None
        if status == "finished":
            report.finished.append(str(run.run_dir))
        elif status == "failed":
            report.failed.append(str(run.run_dir))
        elif not report.interrupted:
            report.errors.append(f"{run.run_dir}: {error or 'stopped without a result'}")


def _run_stacked(groups: list[list[PlannedRun]], report: ExecutionReport) -> None:
    from dtql.run.setup import RunError
    from dtql.run.stopping import RunInterrupted

    for group in groups:
        error = None
        try:
            train_group_spec(group_spec(group, stacked=True))
        except RunInterrupted:
            report.interrupted = True
        except (RunError, ValueError) as err:
            error = str(err)
        _record(group, report, error)
        if report.interrupted:
            return


def _run_processes(
    groups: list[list[PlannedRun]], report: ExecutionReport, log_dir: Path, workers: int | None
) -> None:
    """One worker process per run, at most one per usable core, each pinned to its core (two
    busy processes sharing a core both run at half speed)."""
    cores = sorted(os.sched_getaffinity(0))
    count = workers or len(cores)
    # More workers than cores asked for: no pinning, the OS shares the cores out.
    slots: list[int | None] = list(cores[:count]) if count <= len(cores) else [None] * count
    pending = list(groups)
    running: dict[int, tuple[subprocess.Popen, list[PlannedRun], Path]] = {}
    stopping: list[int] = []
    previous = {s: signal.signal(s, lambda n, f: stopping.append(n)) for s in (2, 15)}
    try:
        while pending or running:
            if stopping and not report.interrupted:
                report.interrupted, pending = True, []
                for proc, _, _ in running.values():
                    proc.send_signal(stopping[0])  # each run checkpoints at its chunk's end
            free = [i for i in range(len(slots)) if i not in running]
            while pending and free and not stopping:
                group, slot = pending.pop(0), free.pop(0)
                running[slot] = _start_worker(group, log_dir, slots[slot])
            for slot, (proc, group, log) in list(running.items()):
                if proc.poll() is not None:
                    del running[slot]
                    _record(group, report, f"worker exit {proc.returncode}; log {log}")
            time.sleep(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _start_worker(
    group: list[PlannedRun], log_dir: Path, core: int | None
) -> tuple[subprocess.Popen, list[PlannedRun], Path]:
    # Named after the run's folder (task, algo and variant, seed): a rerun overwrites its log.
    first = group[0]
    name = f"{first.cfg.task}-{first.run_dir.parent.name}-seed{first.cfg.seed}"
    spec_path, log_path = log_dir / f"{name}.json", log_dir / f"{name}.log"
    write_json_atomic(spec_path, {**group_spec(group, stacked=False), "cpu_core": core})
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dtql.sweeps", str(spec_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # signals reach it through the sweep, once
        )
    return proc, group, log_path


def _run_ray(runs: list[PlannedRun], report: ExecutionReport, address: str, max_group: int) -> None:
    """Each group is a Ray task asking for one GPU (stacked) or, with no GPU, one CPU per run."""
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=None if address == "local" else address, log_to_driver=False)
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        groups = group_runs(runs, (max_group or len(runs)) if gpus else 1)
        remote = ray.remote(train_group_spec)
        futures = {
            remote.options(num_gpus=1 if gpus else 0, num_cpus=1).remote(
                group_spec(group, stacked=bool(gpus))
            ): group
            for group in groups
        }
        report.reason += f"; {'one GPU per stacked group' if gpus else 'one CPU per run'}"
        for future, group in futures.items():
            error = None
            try:
                ray.get(future)
            except ray.exceptions.RayError as err:  # a run that could not start, or a crash
                error = str(err).strip().splitlines()[-1]
            _record(group, report, error)
    finally:
        if started_here:
            ray.shutdown()
