"""The commands over grids: `dtql sweep` (``SweepArgs``, ``run_sweep``) and `dtql train
--seeds` (``train_seeds``). Both print what each run became and exit non-zero unless every run
finished."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
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
from dtql.sweeps.execute import ExecutionReport, run_plan
from dtql.sweeps.grid import SweepError, parse_seeds, plan_grid, plan_runs


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


def _split(flag: str, text: str) -> list[str]:
    items = [part.strip() for part in text.split(",") if part.strip()]
    if not items:
        raise SweepError(f"{flag} {text!r}: expected a comma-separated list")
    return items


def run_sweep(args: SweepArgs) -> int:
    """`dtql sweep`: the grid, then what became of each run; the exit code says whether all
    finished."""
    report = sweep_grid(args)
    print("\n".join(report.lines()))
    print(f"report: dtql report {args.out}")
    return exit_code(report)


def sweep_grid(args: SweepArgs) -> ExecutionReport:
    """Plan and run the grid of ``args`` under its folder's lock (`dtql.sweeps`'s work)."""
    out = Path(args.out)
    tasks, algos = _split("--tasks", args.tasks), _split("--algos", args.algos)
    unknown = [algo for algo in algos if algo not in ALGORITHMS]
    if unknown:
        raise SweepError(
            f"--algos {args.algos!r}: unknown algorithm {unknown[0]!r}, expected some of "
            f"{', '.join(ALGORITHMS)}"
        )
    with FolderLock(out, "grid"):  # one sweep per grid: two would resume each other's runs
        runs = plan_grid(tasks, algos, parse_seeds(args.seeds), args.overrides, out)
        print(f"sweep: {len(runs)} runs in {out}", flush=True)
        started = time.time()
        report = run_plan(
            runs,
            log_dir=out / "logs",
            mode=args.mode,
            workers=args.workers,
            max_group=args.max_group,
            ray_address=(args.ray_address or "local") if args.ray else None,
        )
        record_session(out, args, report, len(runs), started)
    return report


def record_session(
    out: Path, args: SweepArgs, report: ExecutionReport, planned: int, started: float
) -> None:
    """One line per `dtql sweep` on a grid in OUT/sessions.jsonl: when it ran, its wall time,
    where and how, and what became of the runs, so a grid spread over sessions says what each
    part took (`dtql report` adds them up). Written under the grid's lock."""
    session = {
        "started_utc": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "wall_s": round(time.time() - started, 1),
        "host": socket.gethostname(),
        "cpu_threads_usable": len(os.sched_getaffinity(0)),
        "engine": f"{report.mode} ({report.reason})",
        "tasks": args.tasks,
        "algos": args.algos,
        "seeds": args.seeds,
        "overrides": args.overrides,
        "planned": planned,
        "finished_now": len(report.finished),
        "finished_before": len(report.skipped),
        "failed": len(report.failed) + len(report.failed_before),
        "could_not_run": len(report.errors),
        "interrupted": report.interrupted,
    }
    path = out / SWEEP_SESSIONS_NAME
    before = path.read_bytes() if path.is_file() else b""
    write_bytes_atomic(path, before + (json.dumps(session) + "\n").encode())


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
