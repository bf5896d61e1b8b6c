"""A training run on the host: data onto the device, jitted chunks of steps, evaluation in the
simulator, logs and checkpoints, and resuming a stopped run.

The run is cut into chunks at fixed steps (every ``log_every``, the end of pretraining, every
evaluation and checkpoint), and chunk ``k`` draws its randomness from ``fold_in(key, start step)``.
Both depend only on the config, so a resumed run replays exactly the chunks an uninterrupted run
would have, and on CPU logs the same numbers.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import os
import time
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from dtql.algos import Algorithm, get_algorithm
from dtql.algos.common import Batch, run_steps_jit
from dtql.assets import shipped_dataset, shipped_note
from dtql.checkpoint import checkpoint_path, latest_checkpoint, load_checkpoint, save_checkpoint
from dtql.config import TrainConfig, from_dict, to_dict
from dtql.data import (
    Transitions,
    apply_reward_transform,
    dataset_info,
    load_dataset,
    validate_transitions,
)
from dtql.envs.make import adapt_observation, make_single_env
from dtql.envs.registry import TaskSpec, get_task, normalized_score
from dtql.evaluation import EvalResult, eval_metrics, evaluate
from dtql.files import write_json_atomic
from dtql.logger import RunLogger

CONFIG_NAME = "config.json"
RESULT_NAME = "result.json"
KEEP_CHECKPOINTS = 2


class RunError(ValueError):
    """A run that cannot start or continue; the message says which file and why."""


@dataclass(frozen=True)
class Spaces:
    """What the networks need to know about the task's spaces."""

    obs_dim: int
    act_dim: int
    max_action: float


def task_spaces(task: TaskSpec) -> Spaces:
    """Observation and action sizes and the action bound, read from the real evaluation env."""
    env = make_single_env(task)
    try:
        low, high = env.action_space.low, env.action_space.high
    finally:
        env.close()
    if not (np.allclose(low, -high) and np.allclose(high, high.flat[0])):
        raise RunError(
            f"task {task.name}: action space [{low}, {high}] is not a symmetric box with one "
            "bound; the tanh policy needs [-m, m]"
        )
    return Spaces(task.obs_dim, task.act_dim, float(high.flat[0]))


def default_run_dir(cfg: TrainConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.task}-{cfg.algo}-s{cfg.seed}-{stamp}"


def resolve_dataset(cfg: TrainConfig) -> str:
    """The dataset a run reads: the flag, else the task's own name (a D4RL or shipped dataset)."""
    if cfg.dataset is not None:
        return cfg.dataset
    shipped = shipped_dataset(cfg.task)
    return str(shipped) if shipped is not None else cfg.task


def load_training_data(cfg: TrainConfig, task: TaskSpec, spaces: Spaces) -> Transitions:
    """Load and check the dataset against the evaluation env (dims, action bounds)."""
    transitions = load_dataset(resolve_dataset(cfg), obs_adapter=partial(adapt_observation, task))
    validate_transitions(
        transitions,
        obs_dim=spaces.obs_dim,
        act_dim=spaces.act_dim,
        action_low=-spaces.max_action,
        action_high=spaces.max_action,
    )
    return transitions


def to_device(transitions: Transitions, reward_transform: str) -> Batch:
    rewards = apply_reward_transform(transitions.rewards, reward_transform)
    return Batch(
        observations=jnp.asarray(transitions.observations, jnp.float32),
        actions=jnp.asarray(transitions.actions, jnp.float32),
        rewards=jnp.asarray(rewards, jnp.float32),
        next_observations=jnp.asarray(transitions.next_observations, jnp.float32),
        terminals=jnp.asarray(transitions.terminals, jnp.float32),
    )


def check_config(cfg: TrainConfig) -> None:
    """Reject configs that cannot run, with the field and the expected value."""
    positive = {
        "batch_size": cfg.batch_size,
        "log_every": cfg.log_every,
        "eval_episodes": cfg.eval_episodes,
        "num_eval_envs": cfg.num_eval_envs,
        "checkpoint_every": cfg.checkpoint_every,
    }
    for name, value in positive.items():
        if value < 1:
            raise RunError(f"config: {name}={value}, expected an integer >= 1")
    for name in ("steps", "pretrain_steps", "eval_every"):
        if getattr(cfg, name) < 0:
            raise RunError(f"config: {name}={getattr(cfg, name)}, expected an integer >= 0")
    if cfg.steps + cfg.pretrain_steps < 1:
        raise RunError("config: steps + pretrain_steps is 0, expected at least one step")
    if cfg.agent.entropy_coef > 0 and cfg.agent.policy != "gaussian":
        raise RunError("config: agent.entropy_coef > 0 needs agent.policy=gaussian (a density)")
    if cfg.act_mode == "candidates" and cfg.algo == "bc":
        raise RunError("config: act_mode=candidates needs a critic; algo bc has none (use mean)")


def update_config(cfg: TrainConfig) -> TrainConfig:
    """The config as the jitted update sees it (a static argument).

    Fields the update never reads (paths, logging and evaluation settings) are reset to their
    defaults, so runs that differ only in them share compiled code within a process.
    """
    defaults = TrainConfig()
    return dataclasses.replace(
        cfg,
        **{
            name: getattr(defaults, name)
            for name in (
                "task",
                "dataset",
                "out",
                "eval_every",
                "eval_episodes",
                "act_mode",
                "num_eval_envs",
                "log_every",
                "checkpoint_every",
                "reward_transform",
                "seed",
            )
        },
    )


# --- the chunk schedule -----------------------------------------------------------------------


def is_eval_step(cfg: TrainConfig, step: int) -> bool:
    """Evaluate every ``eval_every`` steps after pretraining, and always at the end."""
    total = cfg.pretrain_steps + cfg.steps
    if step == total:
        return True
    return cfg.eval_every > 0 and step % cfg.eval_every == 0 and step > cfg.pretrain_steps


def is_checkpoint_step(cfg: TrainConfig, step: int) -> bool:
    total = cfg.pretrain_steps + cfg.steps
    return step == total or step % cfg.checkpoint_every == 0


def next_boundary(cfg: TrainConfig, step: int) -> int:
    """The end of the chunk that starts at ``step``."""

    def next_multiple(every: int) -> int:
        return (step // every + 1) * every

    candidates = [
        cfg.pretrain_steps + cfg.steps,
        next_multiple(cfg.log_every),
        next_multiple(cfg.checkpoint_every),
    ]
    if cfg.eval_every > 0:
        candidates.append(next_multiple(cfg.eval_every))
    if step < cfg.pretrain_steps:
        candidates.append(cfg.pretrain_steps)
    return min(candidates)


# --- acting and evaluation --------------------------------------------------------------------


@functools.cache
def _jitted(fn):
    """One jitted wrapper per acting function: the state is an argument, the config static."""
    return jax.jit(fn, static_argnames="cfg")


def make_act_fn(algo: Algorithm, state: Any, cfg: TrainConfig, key: jax.Array):
    """A numpy act_fn for ``evaluate``: the policy's mean action, or candidate selection."""
    jit_cfg = update_config(cfg)
    if cfg.act_mode == "mean":
        act_mean = _jitted(algo.act_mean)
        return lambda obs: np.asarray(act_mean(state, jnp.asarray(obs), cfg=jit_cfg))
    if algo.act_candidates is None:
        raise RunError(f"act_mode=candidates needs a critic; algo {algo.name} has none")
    act_candidates = _jitted(algo.act_candidates)
    calls = itertools.count()
    return lambda obs: np.asarray(
        act_candidates(state, jnp.asarray(obs), jax.random.fold_in(key, next(calls)), cfg=jit_cfg)
    )


def run_evaluation(
    algo: Algorithm, state: Any, cfg: TrainConfig, task: TaskSpec, *, episodes: int, step: int
) -> EvalResult:
    key = jax.random.fold_in(jax.random.key(cfg.seed + 1), step)
    act_fn = make_act_fn(algo, state, cfg, key)
    return evaluate(
        task,
        act_fn,
        episodes=episodes,
        seed=cfg.seed + 10_000,
        num_envs=cfg.num_eval_envs,
        act_mode=cfg.act_mode,
        discount=cfg.agent.discount,
    )


# --- the run ----------------------------------------------------------------------------------


def save_run_checkpoint(run_dir: Path, state: Any, step: int, cfg: TrainConfig, spaces: Spaces):
    meta = {"step": step, "config": to_dict(cfg), "spaces": dataclasses.asdict(spaces)}
    save_checkpoint(checkpoint_path(run_dir, step), state, meta)
    # Keep the newest few: a checkpoint holds every network and optimiser state.
    older = sorted((run_dir / "checkpoints").glob("step_*.safetensors"))[:-KEEP_CHECKPOINTS]
    for path in older:
        path.unlink()


def read_run_config(run_dir: Path) -> TrainConfig:
    path = run_dir / CONFIG_NAME
    if not path.is_file():
        raise RunError(f"{path}: not found; expected a run folder written by `dtql train`")
    try:
        return from_dict(TrainConfig, json.loads(path.read_text()))
    except (ValueError, TypeError) as err:
        raise RunError(f"{path}: not a dtql run config ({err})") from err


def restore_state(run_dir: Path, cfg: TrainConfig, spaces: Spaces) -> tuple[Any, int]:
    """The latest checkpoint of a run, loaded into a fresh state of the same config."""
    path = latest_checkpoint(run_dir)
    if path is None:
        raise RunError(f"{run_dir / 'checkpoints'}: no checkpoint to resume or evaluate from")
    algo = get_algorithm(cfg.algo)
    template = algo.init(
        jax.random.key(cfg.seed), cfg, spaces.obs_dim, spaces.act_dim, spaces.max_action
    )
    state, meta = load_checkpoint(path, template)
    return state, int(meta["step"])


def train(
    cfg: TrainConfig,
    *,
    resume_dir: str | None = None,
    progress: bool = True,
    stop_at: int | None = None,
) -> dict:
    """Train (or continue) one run; returns the final result written to ``result.json``.

    ``stop_at`` stops the loop early at that step, as an interrupted run would (for tests).
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
    task = get_task(cfg.task)
    spaces = task_spaces(task)
    algo = get_algorithm(cfg.algo)
    transitions = load_training_data(cfg, task, spaces)
    data = to_device(transitions, cfg.reward_transform)
    behaviour = dataset_info(transitions)

    init_key, train_key = jax.random.split(jax.random.key(cfg.seed))
    if resume_dir is not None:
        state, step = restore_state(run_dir, cfg, spaces)
    else:
        state, step = algo.init(init_key, cfg, spaces.obs_dim, spaces.act_dim, spaces.max_action), 0
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(run_dir / CONFIG_NAME, to_dict(cfg))
    total = cfg.pretrain_steps + cfg.steps
    threads = len(os.sched_getaffinity(0))  # what taskset allows, not the machine's count
    print(
        f"run {run_dir}: {cfg.algo} on {task.name} ({task.env_id}), dataset "
        f"{cfg.dataset}{shipped_note(cfg.dataset)} with {transitions.num_transitions} transitions; "
        f"{total} steps from step {step}; device {jax.devices()[0].platform}, "
        f"{threads} CPU threads usable"
    )

    last_eval: dict[str, float] = {}
    last_summary: dict[str, float | int | str] = {"act_mode": cfg.act_mode}
    jit_cfg = update_config(cfg)
    with (
        RunLogger(run_dir, resume_from_step=step if resume_dir else None) as logger,
        tqdm(
            total=total, initial=step, disable=not progress, unit="step", dynamic_ncols=True
        ) as bar,
    ):
        while step < total:
            if stop_at is not None and step >= stop_at:
                return {"run_dir": str(run_dir), "stopped_at": step}
            end = next_boundary(cfg, step)
            step_fn = algo.pretrain_step if step < cfg.pretrain_steps else algo.train_step
            started = time.perf_counter()
            state, metrics = run_steps_jit(
                step_fn, state, data, jax.random.fold_in(train_key, step), jit_cfg, end - step
            )
            row = {k: float(v) for k, v in jax.device_get(metrics).items()}
            elapsed = time.perf_counter() - started
            bar.update(end - step)
            row["perf/steps_per_sec"] = (end - step) / elapsed
            step = end
            if step == cfg.pretrain_steps:
                state = algo.start_main_phase(state, jit_cfg)
            if is_eval_step(cfg, step):
                evaluation = run_evaluation(
                    algo, state, cfg, task, episodes=cfg.eval_episodes, step=step
                )
                last_eval, last_summary = eval_metrics(evaluation), evaluation.summary()
                row.update(last_eval)
            logger.log(step, row)
            if is_checkpoint_step(cfg, step):
                save_run_checkpoint(run_dir, state, step, cfg, spaces)
            bar.set_postfix(_postfix(row, last_eval))

    result = {
        "run_dir": str(run_dir),
        "task": task.name,
        "algo": cfg.algo,
        "steps": total,
        **last_summary,
        "behaviour_return_mean": behaviour["return_mean"],
        "behaviour_normalized_score": float(normalized_score(task, behaviour["return_mean"])),
        "device": jax.devices()[0].platform,  # where the steps ran, for any speed quoted
        "cpu_threads_usable": threads,
    }
    write_json_atomic(run_dir / RESULT_NAME, result)
    return result


def _postfix(row: dict[str, float], last_eval: dict[str, float]) -> dict[str, str]:
    shown = {"it/s": f"{row['perf/steps_per_sec']:.0f}"}
    for key in ("critic/q_loss", "diffusion/loss", "policy/loss"):
        if key in row:
            shown[key.split("/")[0][:4] + "_" + key.split("/")[1]] = f"{row[key]:.3g}"
    if last_eval:
        shown["score"] = f"{last_eval['eval/normalized_score_mean']:.1f}"
    return shown


def evaluate_run(run_dir: str, *, episodes: int | None = None, act_mode: str | None = None) -> dict:
    """Re-evaluate the latest checkpoint of a run (``dtql eval``)."""
    path = Path(run_dir)
    cfg = read_run_config(path)
    if act_mode is not None:
        cfg = dataclasses.replace(cfg, act_mode=act_mode)
    check_config(cfg)
    task = get_task(cfg.task)
    spaces = task_spaces(task)
    state, step = restore_state(path, cfg, spaces)
    result = run_evaluation(
        get_algorithm(cfg.algo),
        state,
        cfg,
        task,
        episodes=episodes or cfg.eval_episodes,
        step=step,
    )
    return {
        "run_dir": str(path),
        "task": task.name,
        "algo": cfg.algo,
        "step": step,
        **result.summary(),
    }
