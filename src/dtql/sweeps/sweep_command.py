"""The commands over grids: `dtql sweep` (``SweepArgs``, ``run_sweep``) and `dtql train
--seeds` (``train_seeds``). Both print what each run became and exit non-zero unless every run
finished."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import tyro

from dtql.algos import ALGORITHMS
from dtql.config import RunConfig
from dtql.files import write_bytes_atomic
from dtql.lock import FolderLock
from dtql.logger import SWEEP_SESSIONS_NAME
from dtql.sweeps.execute import ExecutionReport, engine_for, run_plan
from dtql.sweeps.grid import (
    PlannedRun,
    SweepError,
    parse_seeds,
    plan_grid,
    plan_runs,
    result_status,
)


@dataclass(frozen=True)
class SweepArgs:
    """Run a grid of tasks x algorithms [x hyperparameter values] x seeds, one folder per run
    (OUT/<task>/<algo>/seed_<k>).

    Finished runs are skipped and stopped ones resumed, so rerunning the command completes a
    grid; a run that fails is recorded as failed and the others go on."""

    tasks: str
    """Comma-separated task names (`dtql presets`), each with its preset and shipped/D4RL data."""
    out: str
    """The grid's folder."""
    algos: str = "dtql"
    """Comma-separated algorithms: dtql, kl, iql, iql-dtql, bc, bc-gaussian."""
    seeds: str = "0"
    """Seeds: 0-4, or 0,3,7."""
    # Appended: each --set adds its overrides to the earlier ones' (as -D or Hydra's do).
    set: Annotated[tuple[tuple[str, ...], ...], tyro.conf.UseAppendAction] = ()
    """Overrides, spelled as train's flags: --set steps=20000 agent.alpha=2; repeated --set
    flags add up; 'ALGO:' limits one to an algorithm: --set dtql:pretrain-steps=5000; a comma
    list sweeps the values, each in its own folder (DIR/<task>/<algo>@alpha=2/seed_<k>): --set
    agent.alpha=2,5,20."""

    @property
    def overrides(self) -> list[str]:
        """Every --set item, in the order given."""
        return [item for group in self.set for item in group]

    mode: Literal["auto", "stacked", "processes"] = "auto"
    """stacked: runs of one config in one vmapped program (accelerators); processes: one pinned
    process per CPU core; auto: stacked on a GPU/TPU, processes on CPU."""
    workers: int | None = None
    """Processes at a time (processes mode); default one per usable core."""
    max_group: int = 0
    """Most runs per stacked program; 0: no limit."""
    ray: bool = False
    """Run on Ray (needs dtql[ray]): a local Ray instance, or --ray-address's cluster. Each
    group is a Ray task asking for one GPU, or one CPU per run."""
    ray_address: str | None = None
    """With --ray: the address of the Ray cluster to join (default: start a local instance)."""
    dry_run: bool = False
    """Print what the grid holds and would do (each run finished, failed, to resume from its
    step, to extend, or new) and exit; changes nothing, and works while another sweep runs the
    grid."""
    extend: bool = False
    """Give the runs already in OUT whose config differs from the grid's only by fewer
    main-phase steps the grid's --set steps=N: finished or stopped, each goes on from its newest
    checkpoint (`dtql train --resume RUN --steps N`; a finished run's result.json is kept as
    result_step_<end>.json). Without it such a folder is refused."""


def _split(flag: str, text: str) -> list[str]:
    items = [part.strip() for part in text.split(",") if part.strip()]
    if not items:
        raise SweepError(f"{flag} {text!r}: expected a comma-separated list")
    return items


def run_sweep(args: SweepArgs) -> int:
    """`dtql sweep`: the grid, then what became of each run; the exit code says whether all
    finished."""
    if args.dry_run:
        print("\n".join(grid_status(args)))
        return 0
    report = sweep_grid(args)
    print("\n".join(report.lines()))
    print(f"report: dtql report {args.out}")
    return exit_code(report)


def grid_status(args: SweepArgs) -> list[str]:
    """A line per run of the grid with its state, then the counts (`dtql sweep --dry-run`)."""
    tasks, algos = _check_grid(args)
    seeds, out = parse_seeds(args.seeds), Path(args.out)
    runs = plan_grid(tasks, algos, seeds, args.overrides, out, False, args.extend)
    lines = []
    for run in runs:
        step = {
            "resume": f" from step {run.start_step} (or running now)",
            "extend": f" from step {run.start_step} to {run.cfg.learner.total_steps}",
        }.get(run.status, "")
        lines.append(f"{run.status:8s} {run.run_dir}{step}")
    counts = {s: sum(r.status == s for r in runs) for s in ("finished", "failed", "resume", "new")}
    extended = sum(r.status == "extend" for r in runs)
    lines.append(
        f"{len(runs)} runs: {counts['finished']} finished, {counts['failed']} failed, "
        f"{counts['resume']} to resume, {counts['new']} new"
        + (f", {extended} to extend" if extended else "")
    )
    return lines


def _check_grid(args: SweepArgs) -> tuple[list[str], list[str]]:
    """--tasks and --algos as lists; an unknown algorithm is a SweepError."""
    tasks, algos = _split("--tasks", args.tasks), _split("--algos", args.algos)
    unknown = [algo for algo in algos if algo not in ALGORITHMS]
    if unknown:
        raise SweepError(
            f"--algos {args.algos!r}: unknown algorithm {unknown[0]!r}, expected some of "
            f"{', '.join(ALGORITHMS)}"
        )
    return tasks, algos


def sweep_grid(args: SweepArgs) -> ExecutionReport:
    """Plan and run the grid of ``args`` under its folder's lock (`dtql.sweeps`'s work)."""
    out = Path(args.out)
    tasks, algos = _check_grid(args)
    with FolderLock(out, "grid"):  # one sweep per grid: two would resume each other's runs
        seeds = parse_seeds(args.seeds)
        runs = plan_grid(tasks, algos, seeds, args.overrides, out, extend=args.extend)
        print(f"sweep: {len(runs)} runs in {out}", flush=True)
        ray_address = (args.ray_address or "local") if args.ray else None
        engine = "{} ({})".format(*engine_for(args.mode, ray_address))
        with SessionRecord(out, args, runs, engine) as session:
            report = run_plan(
                runs,
                log_dir=out / "logs",
                mode=args.mode,
                workers=args.workers,
                max_group=args.max_group,
                ray_address=ray_address,
            )
            session.end(report)
    return report


class SessionRecord:
    """This sweep's line in OUT/sessions.jsonl: when it ran, its wall time, where and how, and
    what became of the runs, so a grid spread over sessions says what each part took (`dtql
    report` adds them up). The line is written when the sweep starts and rewritten every
    ``every_s`` seconds (status "running", the runs finished so far), then once more at the
    end (status "ended"): a sweep killed without warning, as a machine's session ends, still
    leaves its wall time to within ``every_s``. Written under the grid's lock."""

    def __init__(
        self, out: Path, args: SweepArgs, runs: list[PlannedRun], engine: str, every_s: float = 60
    ):
        self.path, self.runs, self.every_s = out / SWEEP_SESSIONS_NAME, runs, every_s
        self.started = time.time()
        finished_before = sum(r.status == "finished" for r in runs)
        self.line = {
            "started_utc": datetime.fromtimestamp(self.started, UTC).isoformat(timespec="seconds"),
            "status": "running",
            "wall_s": 0.0,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "cpu_threads_usable": len(os.sched_getaffinity(0)),
            "engine": engine,  # the final line adds what the engine learnt while running
            "tasks": args.tasks,
            "algos": args.algos,
            "seeds": args.seeds,
            "overrides": args.overrides,
            "planned": len(runs),
            "finished_now": 0,
            "finished_before": finished_before,
            "failed": 0,
            "could_not_run": 0,
            "interrupted": False,
        }
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True)

    def __enter__(self) -> SessionRecord:
        self._write()
        self._beat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._beat.join()
        if self.line["status"] == "running":  # the sweep raised: its last count stands
            self.line.update(status="ended", interrupted=True)
            self._write()

    def end(self, report: ExecutionReport) -> None:
        """The sweep's outcome, from its execution report."""
        self._stop.set()
        self._beat.join()
        self.line.update(
            status="ended",
            engine=f"{report.mode} ({report.reason})",
            finished_now=len(report.finished),
            finished_before=len(report.skipped),
            failed=len(report.failed) + len(report.failed_before),
            could_not_run=len(report.errors),
            interrupted=report.interrupted,
        )
        self._write()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.every_s):
            self.line["finished_now"] = sum(
                r.status != "finished" and result_status(r.run_dir) == "finished" for r in self.runs
            )
            self._write()

    def _write(self) -> None:
        self.line["wall_s"] = round(time.time() - self.started, 1)
        mine = (self.line["started_utc"], self.line["host"], self.line["pid"])
        kept = []
        if self.path.is_file():
            for text in self.path.read_text().splitlines():
                other = json.loads(text) if text.strip() else None
                if other and (other["started_utc"], other["host"], other.get("pid")) != mine:
                    kept.append(text)
        lines = [*kept, json.dumps(self.line)]
        write_bytes_atomic(self.path, ("\n".join(lines) + "\n").encode())


def train_seeds(cfg: RunConfig, seeds_text: str, mode: str) -> int:
    """The config once per seed, each in OUT/seed_<k> (OUT: --out, or a new folder in runs/)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(cfg.out or f"runs/{cfg.task}-{cfg.learner.algo}-{stamp}")
    seeds = parse_seeds(seeds_text)
    cfgs = [dataclasses.replace(cfg, seed=s, out=str(out / f"seed_{s}")) for s in seeds]
    with FolderLock(out, "group of seeds"):
        report = run_plan(plan_runs(cfgs), log_dir=out / "logs", mode=mode)
    print("\n".join(report.lines()))
    for run_dir in report.finished + report.skipped:
        result = json.loads((Path(run_dir) / "result.json").read_text())
        if "normalized_score_mean" in result:
            print(f"{run_dir}: normalized score {result['normalized_score_mean']:.1f}")
    return exit_code(report)


def exit_code(report: ExecutionReport) -> int:
    """0 when every run finished; 130 when interrupted (resumable); else 1."""
    if report.interrupted:
        return 130
    return 0 if report.all_finished else 1
