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
import os
import signal
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from dtql.algos import Algorithm, get_algorithm
from dtql.algos.common import (
    STACKED_HYPERPARAMETERS,
    run_steps_jit,
    run_steps_stacked_jit,
    stack_states,
    unstack_state,
    with_hyperparameters,
)
from dtql.assets import shipped_note
from dtql.checkpoint import latest_checkpoint
from dtql.config import RunConfig
from dtql.data import dataset_info
from dtql.envs.registry import TaskSpec, get_task, normalized_score
from dtql.evaluation import EvalResult, eval_metrics
from dtql.files import write_json_atomic
from dtql.lock import FolderLock
from dtql.logger import RunLogger
from dtql.run.acting import run_evaluation, run_group_evaluation
from dtql.run.group import group_data, group_key, source_key, stacked_hyperparameters
from dtql.run.resume import (
    CONFIG_NAME,
    RESULT_NAME,
    read_run_config,
    restore_state,
    save_run_checkpoint,
    write_run_config,
)
from dtql.run.schedule import is_checkpoint_step, is_eval_step, next_boundary
from dtql.run.setup import RunError, check_config, default_run_dir, resolve_dataset
from dtql.run.stopping import RunDiverged, RunInterrupted, first_non_finite, stop_requests


@dataclass(frozen=True)
class RunSpec:
    """A run to start from ``cfg`` or, with ``resume_dir``, to continue from its folder."""

    cfg: RunConfig | None = None
    resume_dir: str | None = None


@dataclass
class Member:
    """One run of a group: where it writes, and what it has reported so far."""

    run_dir: Path
    cfg: RunConfig
    task: TaskSpec
    train_key: jax.Array
    logger: RunLogger
    result: dict[str, Any]
    last_eval: dict[str, float] = field(default_factory=dict)
    last_summary: dict[str, Any] = field(default_factory=dict)


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
    """run_group's training, once it holds every run folder's lock."""
    first = cfgs[0]
    learner = first.learner  # all that the jitted update sees
    algo = get_algorithm(learner.algo)
    spaces, sources, data, per_run_data = group_data(cfgs)
    threads = len(os.sched_getaffinity(0))  # what taskset allows, not the machine's count
    dims = (spaces.obs_dim, spaces.act_dim, spaces.max_action)

    states, steps = [], []
    for (run_dir, _), spec, cfg in zip(opened, specs, cfgs, strict=True):
        if spec.resume_dir is not None:
            state, step = restore_state(run_dir, cfg, spaces)
        else:
            init_key = jax.random.split(jax.random.key(cfg.seed))[0]
            state, step = algo.init(init_key, learner, *dims), 0
        states.append(state)
        steps.append(step)
    if len(set(steps)) > 1:
        raise RunError(
            "runs of one group must start at the same step; their checkpoints are at steps "
            + ", ".join(f"{s} ({d})" for s, (d, _) in zip(steps, opened, strict=True))
        )
    step, total = steps[0], learner.total_steps
    resumed = specs[0].resume_dir is not None
    stacked = stacked and len(specs) > 1
    state = stack_states(states) if stacked else states[0]
    hyperparameters = stacked_hyperparameters(cfgs)

    with ExitStack() as stack:
        members = []
        for (run_dir, _), cfg in zip(opened, cfgs, strict=True):
            task = get_task(cfg.task)
            transitions = sources[source_key(cfg)]
            behaviour = dataset_info(transitions)
            if not resumed:
                run_dir.mkdir(parents=True, exist_ok=True)
                write_run_config(run_dir, cfg)
            logger = stack.enter_context(
                RunLogger(run_dir, resume_from_step=step if resumed else None)
            )
            result = {
                "run_dir": str(run_dir),
                "task": task.name,
                "algo": learner.algo,
                "seed": cfg.seed,
                "steps": total,
                "behaviour_return_mean": behaviour["return_mean"],
                "behaviour_normalized_score": float(
                    normalized_score(task, behaviour["return_mean"])
                ),
                "device": jax.devices()[0].platform,  # where the steps ran, for any speed quoted
                "matmul_precision": cfg.matmul_precision,  # float32 or TF32 matmuls on a GPU
                "cpu_threads_usable": threads,
                "runs_in_program": len(specs),  # >1: trained stacked with other runs
            }
            train_key = jax.random.split(jax.random.key(cfg.seed))[1]
            summary = {"act_mode": cfg.act_mode}
            members.append(
                Member(run_dir, cfg, task, train_key, logger, result, last_summary=summary)
            )
        bar = stack.enter_context(
            tqdm(total=total, initial=step, disable=not progress, unit="step", dynamic_ncols=True)
        )
        stop = stack.enter_context(stop_requests())
        for member in members:
            # Printed once a signal would stop the run well, so a caller may send one from here.
            task, dataset = member.task, member.cfg.dataset
            print(
                f"run {member.run_dir}: {learner.algo} on {task.name} ({task.env_id}), dataset "
                f"{dataset}{shipped_note(dataset)} with "
                f"{sources[source_key(member.cfg)].num_transitions} transitions; {total} steps "
                f"from step {step}; "
                f"seed {member.cfg.seed}, {len(specs)} run(s) in one program; device "
                f"{jax.devices()[0].platform}, {threads} CPU threads usable",
                flush=True,
            )
        active = list(range(len(members)))  # members still training, in the state's order
        while step < total and active:
            if stop_at is not None and step >= stop_at:
                return [{"run_dir": str(m.run_dir), "stopped_at": step} for m in members]
            end = next_boundary(first, step)
            step_fn = algo.pretrain_step if step < learner.pretrain_steps else algo.train_step
            keys = [jax.random.fold_in(members[i].train_key, step) for i in active]
            started = time.perf_counter()
            if stacked:
                state, metrics = run_steps_stacked_jit(
                    step_fn,
                    state,
                    data,
                    jnp.stack(keys),
                    hyperparameters,
                    learner,
                    end - step,
                    *per_run_data,
                )
            else:
                state, metrics = run_steps_jit(step_fn, state, data, keys[0], learner, end - step)
                metrics = jax.tree.map(lambda m: m[None], metrics)
            metrics = {k: np.asarray(v) for k, v in jax.device_get(metrics).items()}
            elapsed = time.perf_counter() - started
            bar.update(end - step)
            rows = [{k: float(v[j]) for k, v in metrics.items()} for j in range(len(active))]
            for row in rows:
                row["perf/steps_per_sec"] = (end - step) / elapsed
            step = end

            diverged = [j for j, row in enumerate(rows) if first_non_finite(row) is not None]
            for j in diverged:
                _mark_failed(members[active[j]], rows[j], step)
            if diverged:
                keep = [j for j in range(len(active)) if j not in diverged]
                active = [active[j] for j in keep]
                rows = [rows[j] for j in keep]
                if stacked and keep:
                    kept = jnp.array(keep)
                    state = jax.tree.map(lambda leaf: leaf[kept], state)  # noqa: B023
                    hyperparameters = {k: v[kept] for k, v in hyperparameters.items()}
                    per_run_data = tuple(None if a is None else a[kept] for a in per_run_data)
                if not active:
                    break

            if step == learner.pretrain_steps:
                if stacked:  # each run's optimisers start with its own learning rate
                    phase = lambda s, v: algo.start_main_phase(  # noqa: E731
                        s, with_hyperparameters(learner, v)
                    )
                    state = jax.vmap(phase)(state, hyperparameters)
                else:
                    state = algo.start_main_phase(state, learner)
            evaluations = (
                _evaluate(algo, state, [members[i] for i in active], stacked, first, step)
                if is_eval_step(first, step)
                else [None] * len(active)
            )
            for j, i in enumerate(active):
                member, row, evaluation = members[i], rows[j], evaluations[j]
                if evaluation is not None:
                    member.last_eval = eval_metrics(evaluation)
                    member.last_summary = evaluation.summary()
                    row.update(member.last_eval)
                member.logger.log(step, row)
                if is_checkpoint_step(first, step) or stop.signum is not None:
                    member_state = unstack_state(state, j) if stacked else state
                    save_run_checkpoint(member.run_dir, member_state, step, member.cfg, spaces)
            bar.set_postfix(_postfix(rows[0], members[active[0]].last_eval))
            if stop.signum is not None and step < total:
                name = signal.Signals(stop.signum).name
                commands = "; ".join(f"dtql train --resume {members[i].run_dir}" for i in active)
                raise RunInterrupted(
                    f"stopped by {name} at step {step} with a checkpoint there; resume with: "
                    f"{commands}",
                    stop.signum,
                )

    for i in active:
        member = members[i]
        member.result = {**member.result, **member.last_summary, "status": "finished"}
        write_json_atomic(member.run_dir / RESULT_NAME, member.result)
    return [member.result for member in members]


def _evaluate(
    algo: Algorithm,
    state: Any,
    members: list[Member],
    stacked: bool,
    first: RunConfig,
    step: int,
) -> list[EvalResult]:
    """Each run's evaluation: a stacked group of one task in one vector env (one batched act
    per step), otherwise run by run."""
    episodes = first.eval_episodes
    if stacked and len({m.task.name for m in members}) == 1:
        cfgs = [m.cfg for m in members]
        return run_group_evaluation(
            algo, state, cfgs, members[0].task, episodes=episodes, step=step
        )
    return [
        run_evaluation(
            algo,
            unstack_state(state, j) if stacked else state,
            member.cfg,
            member.task,
            episodes=episodes,
            step=step,
        )
        for j, member in enumerate(members)
    ]


def _mark_failed(member: Member, row: dict[str, float], step: int) -> None:
    """Log the evidence, keep the last finite checkpoint, and say so in result.json."""
    member.logger.log(step, row)
    key, value = first_non_finite(row)
    checkpoint = latest_checkpoint(member.run_dir)
    kept = "none yet" if checkpoint is None else str(checkpoint)
    message = (
        f"{member.run_dir}: {key} = {value} in the chunk ending at step {step}; the run is "
        f"stopped and its last finite checkpoint kept ({kept})"
    )
    member.result = {**member.result, "status": "failed", "failure": message}
    write_json_atomic(member.run_dir / RESULT_NAME, member.result)


def _postfix(row: dict[str, float], last_eval: dict[str, float]) -> dict[str, str]:
    shown = {"it/s": f"{row['perf/steps_per_sec']:.0f}"}
    for key in ("critic/q_loss", "diffusion/loss", "policy/loss"):
        if key in row:
            shown[key.split("/")[0][:4] + "_" + key.split("/")[1]] = f"{row[key]:.3g}"
    if last_eval:
        shown["score"] = f"{last_eval['eval/normalized_score_mean']:.1f}"
    return shown
