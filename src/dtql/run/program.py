"""A group of runs as one program, in the parts the loop (`dtql.run.loop`) calls between
chunks: open the runs (data, states new or restored, folders, loggers), train a chunk of steps,
drop a run that diverged, start the main phase, evaluate, log and checkpoint, and finish."""

from __future__ import annotations

import json
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

from dtql.algos import Algorithm, get_algorithm
from dtql.algos.common import (
    run_steps_jit,
    run_steps_stacked_jit,
    stack_states,
    unstack_state,
    with_hyperparameters,
)
from dtql.assets import shipped_note
from dtql.checkpoint import latest_checkpoint
from dtql.config import LearnerConfig, RunConfig
from dtql.data import dataset_info
from dtql.envs.registry import TaskSpec, get_task, normalized_score
from dtql.evaluation import EvalResult, eval_metrics
from dtql.files import write_json_atomic
from dtql.logger import RunLogger
from dtql.run.acting import run_evaluation, run_group_evaluation
from dtql.run.group import group_data, source_key, stacked_hyperparameters
from dtql.run.resume import (
    RESULT_NAME,
    restore_state,
    save_run_checkpoint,
    write_run_config,
)
from dtql.run.schedule import is_checkpoint_step, is_eval_step
from dtql.run.setup import RunError, Spaces
from dtql.run.stopping import RunInterrupted, first_non_finite
from dtql.upgrade import upgrade_result


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


@dataclass
class Program:
    """A group's runs as one program: the (stacked) training state at ``step``, what the update
    reads, and which members still train (``active``, in the state's order)."""

    algo: Algorithm
    first: RunConfig  # every run shares its learner: all that the jitted update sees
    spaces: Spaces
    state: Any
    step: int
    stacked: bool
    data: Any
    per_run_data: tuple
    hyperparameters: dict[str, jax.Array]
    members: list[Member]
    active: list[int]

    @property
    def learner(self) -> LearnerConfig:
        return self.first.learner


def open_program(
    stack: ExitStack,
    opened: list[tuple[Path, RunConfig]],
    cfgs: list[RunConfig],
    stacked: bool,
    resumed: bool,
) -> Program:
    """The runs' data on the device, their states (new, or restored from checkpoints of one
    step), their folders, loggers and result records; prints each run's header."""
    first = cfgs[0]
    algo = get_algorithm(first.learner.algo)
    spaces, sources, data, per_run_data = group_data(cfgs)
    states, step = _initial_states(algo, opened, cfgs, spaces, resumed)
    stacked = stacked and len(opened) > 1
    threads = len(os.sched_getaffinity(0))  # what taskset allows, not the machine's count
    members = []
    for (run_dir, _), cfg in zip(opened, cfgs, strict=True):
        transitions = sources[source_key(cfg)]
        member = _open_member(stack, run_dir, cfg, transitions, step, resumed, len(opened), threads)
        members.append(member)
        print(
            f"run {run_dir}: {cfg.learner.algo} on {member.task.name} ({member.task.env_id}), "
            f"dataset {cfg.dataset}{shipped_note(cfg.dataset)} with "
            f"{transitions.num_transitions} transitions; {first.learner.total_steps} steps "
            f"from step {step}; seed {cfg.seed}, {len(opened)} run(s) in one program; device "
            f"{jax.devices()[0].platform}, {threads} CPU threads usable",
            flush=True,  # printed once a signal would stop the run well
        )
    return Program(
        algo=algo,
        first=first,
        spaces=spaces,
        state=stack_states(states) if stacked else states[0],
        step=step,
        stacked=stacked,
        data=data,
        per_run_data=per_run_data,
        hyperparameters=stacked_hyperparameters(cfgs),
        members=members,
        active=list(range(len(members))),
    )


def _initial_states(
    algo: Algorithm,
    opened: list[tuple[Path, RunConfig]],
    cfgs: list[RunConfig],
    spaces: Spaces,
    resumed: bool,
) -> tuple[list[Any], int]:
    """Each run's state, new or restored, and the step they all start from."""
    learner = cfgs[0].learner
    dims = (spaces.obs_dim, spaces.act_dim, spaces.max_action)
    states, steps = [], []
    for (run_dir, _), cfg in zip(opened, cfgs, strict=True):
        if resumed:
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
    return states, steps[0]


def _open_member(
    stack: ExitStack,
    run_dir: Path,
    cfg: RunConfig,
    transitions: Any,
    step: int,
    resumed: bool,
    runs_in_program: int,
    threads: int,
) -> Member:
    """A run's folder (config.json for a new run), logger and result record."""
    task = get_task(cfg.task)
    behaviour = dataset_info(transitions)
    if not resumed:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_run_config(run_dir, cfg)
    logger = stack.enter_context(RunLogger(run_dir, resume_from_step=step if resumed else None))
    result = {
        "run_dir": str(run_dir),
        "task": task.name,
        "algo": cfg.learner.algo,
        "seed": cfg.seed,
        "steps": cfg.learner.total_steps,
        "dataset_return_mean": behaviour["return_mean"],
        "dataset_normalized_score": float(normalized_score(task, behaviour["return_mean"])),
        "device": jax.devices()[0].platform,  # where the steps ran, for any speed quoted
        "matmul_precision": cfg.matmul_precision,  # float32 or TF32 matmuls on a GPU
        "cpu_threads_usable": threads,
        "runs_in_program": runs_in_program,  # >1: trained stacked with other runs
    }
    train_key = jax.random.split(jax.random.key(cfg.seed))[1]
    summary = {"act_mode": cfg.act_mode}
    return Member(run_dir, cfg, task, train_key, logger, result, last_summary=summary)


def train_chunk(program: Program, end: int) -> list[dict[str, float]]:
    """The jitted steps from ``program.step`` to ``end`` (pretraining or main phase), and each
    active run's metrics of the chunk as a row."""
    learner, step, algo = program.learner, program.step, program.algo
    step_fn = algo.pretrain_step if step < learner.pretrain_steps else algo.train_step
    keys = [jax.random.fold_in(program.members[i].train_key, step) for i in program.active]
    started = time.perf_counter()
    if program.stacked:
        program.state, metrics = run_steps_stacked_jit(
            step_fn,
            program.state,
            program.data,
            jnp.stack(keys),
            program.hyperparameters,
            learner,
            end - step,
            *program.per_run_data,
        )
    else:
        program.state, metrics = run_steps_jit(
            step_fn, program.state, program.data, keys[0], learner, end - step
        )
        metrics = jax.tree.map(lambda m: m[None], metrics)
    metrics = {k: np.asarray(v) for k, v in jax.device_get(metrics).items()}
    elapsed = time.perf_counter() - started
    rows = [{k: float(v[j]) for k, v in metrics.items()} for j in range(len(program.active))]
    for row in rows:
        row["perf/steps_per_sec"] = (end - step) / elapsed
    program.step = end
    return rows


def drop_diverged(program: Program, rows: list[dict[str, float]]) -> list[dict[str, float]]:
    """Mark each run whose metrics became non-finite as failed and drop it from the program;
    the rows of the runs that go on."""
    diverged = [j for j, row in enumerate(rows) if first_non_finite(row) is not None]
    for j in diverged:
        _mark_failed(program.members[program.active[j]], rows[j], program.step)
    if not diverged:
        return rows
    keep = [j for j in range(len(program.active)) if j not in diverged]
    program.active = [program.active[j] for j in keep]
    if program.stacked and keep:
        kept = jnp.array(keep)
        program.state = jax.tree.map(lambda leaf: leaf[kept], program.state)
        program.hyperparameters = {k: v[kept] for k, v in program.hyperparameters.items()}
        program.per_run_data = tuple(None if a is None else a[kept] for a in program.per_run_data)
    return [rows[j] for j in keep]


def start_main_phase(program: Program) -> None:
    """Pretraining is over: the policy's phase begins (each run's optimisers start with its
    own learning rate)."""
    algo, learner = program.algo, program.learner
    if program.stacked:
        phase = lambda s, v: algo.start_main_phase(s, with_hyperparameters(learner, v))  # noqa: E731
        program.state = jax.vmap(phase)(program.state, program.hyperparameters)
    else:
        program.state = algo.start_main_phase(program.state, learner)


def evaluate_log_checkpoint(
    program: Program, rows: list[dict[str, float]], checkpoint_now: bool
) -> None:
    """At an evaluation step, each active run in the simulator; every run's row logged; a
    checkpoint at a checkpoint step, or now (a stop was asked for)."""
    first, step = program.first, program.step
    members = [program.members[i] for i in program.active]
    evaluations = (
        _evaluate(program.algo, program.state, members, program.stacked, first, step)
        if is_eval_step(first, step)
        else [None] * len(members)
    )
    for j, (member, row, evaluation) in enumerate(zip(members, rows, evaluations, strict=True)):
        if evaluation is not None:
            member.last_eval = eval_metrics(evaluation)
            member.last_summary = evaluation.summary()
            row.update(member.last_eval)
        member.logger.log(step, row)
        if is_checkpoint_step(first, step) or checkpoint_now:
            state = unstack_state(program.state, j) if program.stacked else program.state
            save_run_checkpoint(member.run_dir, state, step, member.cfg, program.spaces)


def interrupted(program: Program, signum: int) -> None:
    """Raise RunInterrupted: the runs were checkpointed at this step; how to resume them."""
    name = signal.Signals(signum).name
    runs = [program.members[i].run_dir for i in program.active]
    commands = "; ".join(f"dtql train --resume {run_dir}" for run_dir in runs)
    raise RunInterrupted(
        f"stopped by {name} at step {program.step} with a checkpoint there; resume with: "
        f"{commands}",
        signum,
    )


def finish(program: Program) -> list[dict]:
    """Each run that trained to the end is finished: its result.json, with its last evaluation."""
    for i in program.active:
        member = program.members[i]
        member.result = {**member.result, **member.last_summary, "status": "finished"}
        write_json_atomic(member.run_dir / RESULT_NAME, member.result)
    return [member.result for member in program.members]


def finish_resumed_at_end(program: Program) -> list[dict]:
    """Runs resumed at their last step, with nothing left to train: a finished run's
    result.json stays as it is (its score included); a run stopped between its last checkpoint
    and its result.json is evaluated at that step, as the loop would have, and finished."""
    stored = [_finished_result(member.run_dir) for member in program.members]
    if all(result is not None for result in stored):
        return stored
    members = [program.members[i] for i in program.active]
    evaluations = _evaluate(
        program.algo, program.state, members, program.stacked, program.first, program.step
    )
    for member, evaluation in zip(members, evaluations, strict=True):
        member.last_summary = evaluation.summary()
    return finish(program)


def _finished_result(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / RESULT_NAME
    if not path.is_file():
        return None
    result = upgrade_result(json.loads(path.read_text()))
    # An old result.json has no status: it was written only by a run that finished.
    return result if result.get("status", "finished") == "finished" else None


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


def postfix(row: dict[str, float], last_eval: dict[str, float]) -> dict[str, str]:
    shown = {"it/s": f"{row['perf/steps_per_sec']:.0f}"}
    for key in ("critic/q_loss", "diffusion/loss", "policy/loss"):
        if key in row:
            shown[key.split("/")[0][:4] + "_" + key.split("/")[1]] = f"{row[key]:.3g}"
    if last_eval:
        shown["score"] = f"{last_eval['eval/normalized_score_mean']:.1f}"
    return shown
