"""``run_training``: one training run (or the rest of a stopped one) from config to result.json;
``run_group``: several runs of one config that differ only in seed and a few hyperparameters
(``STACKED_HYPERPARAMETERS``), trained in one program.

Data onto the device, jitted chunks of steps (``dtql.run.schedule``), evaluation in the
simulator, logs (metrics.csv/jsonl, TensorBoard) and checkpoints; a non-finite metric or a
SIGINT/SIGTERM stops the run well (``dtql.run.stopping``). A group stacks its runs' states and
vmaps the update over them (``run_steps_stacked``); everything on disk stays per run, exactly as
for a run trained alone.
"""

from __future__ import annotations

import dataclasses
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from dtql.algos.common import STACKED_HYPERPARAMETERS
from dtql.config import RunConfig
from dtql.lock import FolderLock
from dtql.run.group import group_key
from dtql.run.program import (
    drop_diverged,
    evaluate_log_checkpoint,
    finish,
    finish_resumed_at_end,
    interrupted,
    open_program,
    postfix,
    start_main_phase,
    train_chunk,
)
from dtql.run.resume import CONFIG_NAME, read_run_config
from dtql.run.schedule import next_boundary
from dtql.run.setup import RunError, check_config, default_run_dir, resolve_dataset
from dtql.run.stopping import RunDiverged, stop_requests


@dataclass(frozen=True)
class RunSpec:
    """A run to start from ``cfg`` or, with ``resume_dir``, to continue from its folder."""

    cfg: RunConfig | None = None
    resume_dir: str | None = None


def run_training(
    cfg: RunConfig,
    *,
    resume_dir: str | None = None,
    progress: bool = True,
    stop_at: int | None = None,
) -> dict:
    """Train (or continue) one run; returns the final result written to ``result.json``.

    With ``resume_dir`` the run folder's own config is used and ``cfg`` is ignored. ``stop_at``
    stops the loop early at that step, as an interrupted run would (for tests). A run whose
    metrics become non-finite raises ``RunDiverged`` after marking its result.json failed.
    """
    spec = RunSpec(None, resume_dir) if resume_dir is not None else RunSpec(cfg)
    (result,) = run_group([spec], progress=progress, stop_at=stop_at, stacked=False)
    if result.get("status") == "failed":
        raise RunDiverged(result["failure"])
    return result


def _open_run(spec: RunSpec) -> tuple[Path, RunConfig]:
    if spec.resume_dir is not None:
        run_dir = Path(spec.resume_dir)
        return run_dir, read_run_config(run_dir)
    cfg = spec.cfg
    run_dir = Path(cfg.out) if cfg.out else default_run_dir(cfg)
    if (run_dir / CONFIG_NAME).exists():
        raise RunError(f"{run_dir}: already holds a run; use --resume {run_dir} or a new --out")
    return run_dir, cfg


def _checked_runs(specs: list[RunSpec]) -> tuple[list[tuple[Path, RunConfig]], list[RunConfig]]:
    """Each run's folder and checked config, with the dataset it reads resolved."""
    opened = [_open_run(spec) for spec in specs]
    cfgs = []
    for run_dir, cfg in opened:
        check_config(cfg)
        # Record which dataset a run reads, so that config.json alone reproduces it.
        cfgs.append(dataclasses.replace(cfg, dataset=resolve_dataset(cfg)))
        if group_key(cfgs[-1]) != group_key(cfgs[0]):
            raise RunError(
                f"{run_dir}: its config differs from {opened[0][0]}'s in more than seed, out, "
                f"a dataset of the same env and {', '.join(STACKED_HYPERPARAMETERS)}; runs of "
                "one group must share everything else"
            )
    return opened, cfgs


def run_group(
    specs: list[RunSpec],
    *,
    progress: bool = True,
    stop_at: int | None = None,
    stacked: bool = True,
) -> list[dict]:
    """Train runs that differ only in seed, folder, dataset (of one env) and
    ``STACKED_HYPERPARAMETERS`` together (``group_key``); returns each run's result.

    ``stacked``: one vmapped program for all runs (on CPU a single run, unstacked, is also what
    ``run_training`` uses). A run that diverges is marked failed and dropped from the program;
    the others go on. Every run must be at the same step (all new, or resumed from checkpoints
    of the same step).
    """
    if not stacked and len(specs) > 1:
        raise ValueError("run_group: several runs need stacked=True (one program for all)")
    opened, cfgs = _checked_runs(specs)
    with ExitStack() as locks:  # one writer per run folder, for as long as it trains
        for (run_dir, _), spec in zip(opened, specs, strict=True):
            locks.enter_context(FolderLock(run_dir, "run"))
            if spec.resume_dir is None and (run_dir / CONFIG_NAME).exists():
                raise RunError(f"{run_dir}: already holds a run; use --resume {run_dir}")
        return _train_group(
            specs, opened, cfgs, progress=progress, stop_at=stop_at, stacked=stacked
        )


def _train_group(
    specs: list[RunSpec],
    opened: list[tuple[Path, RunConfig]],
    cfgs: list[RunConfig],
    *,
    progress: bool,
    stop_at: int | None,
    stacked: bool,
) -> list[dict]:
    """run_group's training once it holds every run folder's lock: Algorithm 1's outer loop,
    a chunk of steps at a time, with the evaluations, logs and checkpoints between chunks."""
    with ExitStack() as stack:
        # A signal from here on stops the run well; each run's header, printed once its data is
        # loaded, says so to a caller waiting to send one.
        stop = stack.enter_context(stop_requests())
        resumed = specs[0].resume_dir is not None
        program = open_program(stack, opened, cfgs, stacked, resumed)
        total = program.learner.total_steps
        if program.step >= total:  # resumed at its end: keep (or complete) its result
            return finish_resumed_at_end(program)
        bar = stack.enter_context(
            tqdm(
                total=total,
                initial=program.step,
                disable=not progress,
                unit="step",
                dynamic_ncols=True,
            )
        )
        while program.step < total and program.active:
            if stop_at is not None and program.step >= stop_at:
                return [
                    {"run_dir": str(m.run_dir), "stopped_at": program.step} for m in program.members
                ]
            start = program.step
            rows = train_chunk(program, next_boundary(program.first, start))
            bar.update(program.step - start)
            rows = drop_diverged(program, rows)
            if not program.active:
                break
            if program.step == program.learner.pretrain_steps:
                start_main_phase(program)
            evaluate_log_checkpoint(program, rows, checkpoint_now=stop.signum is not None)
            bar.set_postfix(postfix(rows[0], program.members[program.active[0]].last_eval))
            if stop.signum is not None and program.step < total:
                interrupted(program, stop.signum)
    return finish(program)
