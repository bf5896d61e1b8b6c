"""``run_training``: one training run (or the rest of a stopped one) from config to result.json.

Data onto the device, jitted chunks of steps (``dtql.run.schedule``), evaluation in the
simulator, logs (metrics.csv/jsonl, TensorBoard) and checkpoints; a non-finite metric or a
SIGINT/SIGTERM stops the run well (``dtql.run.stopping``).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path

import jax
from tqdm import tqdm

from dtql.algos import get_algorithm
from dtql.algos.common import run_steps_jit
from dtql.assets import shipped_note
from dtql.checkpoint import latest_checkpoint
from dtql.config import RunConfig
from dtql.data import dataset_info
from dtql.envs.registry import get_task, normalized_score
from dtql.evaluation import eval_metrics
from dtql.files import write_json_atomic
from dtql.logger import RunLogger
from dtql.run.acting import run_evaluation
from dtql.run.resume import (
    CONFIG_NAME,
    RESULT_NAME,
    read_run_config,
    restore_state,
    save_run_checkpoint,
    write_run_config,
)
from dtql.run.schedule import is_checkpoint_step, is_eval_step, next_boundary
from dtql.run.setup import (
    RunError,
    check_config,
    default_run_dir,
    load_training_data,
    resolve_dataset,
    task_spaces,
    to_device,
)
from dtql.run.stopping import RunDiverged, RunInterrupted, first_non_finite, stop_requests


def run_training(
    cfg: RunConfig,
    *,
    resume_dir: str | None = None,
    progress: bool = True,
    stop_at: int | None = None,
) -> dict:
    """Train (or continue) one run; returns the final result written to ``result.json``.

    With ``resume_dir`` the run folder's own config is used and ``cfg`` is ignored. ``stop_at``
    stops the loop early at that step, as an interrupted run would (for tests).
    """
    if resume_dir is not None:
        run_dir = Path(resume_dir)
        cfg = read_run_config(run_dir)
    else:
        run_dir = Path(cfg.out) if cfg.out else default_run_dir(cfg)
        if (run_dir / CONFIG_NAME).exists():
            raise RunError(f"{run_dir}: already holds a run; use --resume {run_dir} or a new --out")
    check_config(cfg)
    # Record which dataset a run reads, so that config.json alone reproduces it.
    cfg = dataclasses.replace(cfg, dataset=resolve_dataset(cfg))
    learner = cfg.learner  # all that the jitted update sees
    task = get_task(cfg.task)
    spaces = task_spaces(task)
    algo = get_algorithm(learner.algo)
    transitions = load_training_data(cfg, task, spaces)
    data = to_device(transitions, cfg.reward_transform)
    behaviour = dataset_info(transitions)

    init_key, train_key = jax.random.split(jax.random.key(cfg.seed))
    if resume_dir is not None:
        state, step = restore_state(run_dir, cfg, spaces)
    else:
        dims = (spaces.obs_dim, spaces.act_dim, spaces.max_action)
        state, step = algo.init(init_key, learner, *dims), 0
        run_dir.mkdir(parents=True, exist_ok=True)
        write_run_config(run_dir, cfg)
    total = learner.total_steps
    threads = len(os.sched_getaffinity(0))  # what taskset allows, not the machine's count

    last_eval: dict[str, float] = {}
    last_summary: dict[str, float | int | str] = {"act_mode": cfg.act_mode}
    result = {
        "run_dir": str(run_dir),
        "task": task.name,
        "algo": learner.algo,
        "steps": total,
        "behaviour_return_mean": behaviour["return_mean"],
        "behaviour_normalized_score": float(normalized_score(task, behaviour["return_mean"])),
        "device": jax.devices()[0].platform,  # where the steps ran, for any speed quoted
        "matmul_precision": cfg.matmul_precision,  # float32 or TF32 matmuls on a GPU
        "cpu_threads_usable": threads,
    }
    with (
        jax.default_matmul_precision(cfg.matmul_precision),
        RunLogger(run_dir, resume_from_step=step if resume_dir else None) as logger,
        tqdm(
            total=total, initial=step, disable=not progress, unit="step", dynamic_ncols=True
        ) as bar,
        stop_requests() as stop,
    ):
        # Printed once a signal would stop the run well, so a caller may send one from here on.
        print(
            f"run {run_dir}: {learner.algo} on {task.name} ({task.env_id}), dataset "
            f"{cfg.dataset}{shipped_note(cfg.dataset)} with {transitions.num_transitions} "
            f"transitions; {total} steps from step {step}; device {jax.devices()[0].platform}, "
            f"{threads} CPU threads usable",
            flush=True,
        )
        while step < total:
            if stop_at is not None and step >= stop_at:
                return {"run_dir": str(run_dir), "stopped_at": step}
            end = next_boundary(cfg, step)
            step_fn = algo.pretrain_step if step < learner.pretrain_steps else algo.train_step
            started = time.perf_counter()
            state, metrics = run_steps_jit(
                step_fn, state, data, jax.random.fold_in(train_key, step), learner, end - step
            )
            row = {k: float(v) for k, v in jax.device_get(metrics).items()}
            elapsed = time.perf_counter() - started
            bar.update(end - step)
            row["perf/steps_per_sec"] = (end - step) / elapsed
            step = end
            non_finite = first_non_finite(row)
            if non_finite is not None:  # log the evidence, keep the last finite checkpoint
                logger.log(step, row)
                key, value = non_finite
                message = (
                    f"{run_dir}: {key} = {value} in the chunk ending at step {step}; the run is "
                    f"stopped and its last finite checkpoint kept ({_last_checkpoint(run_dir)})"
                )
                write_json_atomic(
                    run_dir / RESULT_NAME, {**result, "status": "failed", "failure": message}
                )
                raise RunDiverged(message)
            if step == learner.pretrain_steps:
                state = algo.start_main_phase(state, learner)
            if is_eval_step(cfg, step):
                evaluation = run_evaluation(
                    algo, state, cfg, task, episodes=cfg.eval_episodes, step=step
                )
                last_eval, last_summary = eval_metrics(evaluation), evaluation.summary()
                row.update(last_eval)
            logger.log(step, row)
            if is_checkpoint_step(cfg, step) or stop.signum is not None:
                save_run_checkpoint(run_dir, state, step, cfg, spaces)
            bar.set_postfix(_postfix(row, last_eval))
            if stop.signum is not None and step < total:
                name = signal.Signals(stop.signum).name
                raise RunInterrupted(
                    f"{run_dir}: stopped by {name} at step {step} with a checkpoint there; "
                    f"resume with: dtql train --resume {run_dir}",
                    stop.signum,
                )

    result = {**result, **last_summary, "status": "finished"}
    write_json_atomic(run_dir / RESULT_NAME, result)
    return result


def _last_checkpoint(run_dir: Path) -> str:
    path = latest_checkpoint(run_dir)
    return "none yet" if path is None else str(path)


def _postfix(row: dict[str, float], last_eval: dict[str, float]) -> dict[str, str]:
    shown = {"it/s": f"{row['perf/steps_per_sec']:.0f}"}
    for key in ("critic/q_loss", "diffusion/loss", "policy/loss"):
        if key in row:
            shown[key.split("/")[0][:4] + "_" + key.split("/")[1]] = f"{row[key]:.3g}"
    if last_eval:
        shown["score"] = f"{last_eval['eval/normalized_score_mean']:.1f}"
    return shown
