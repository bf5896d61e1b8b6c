"""The run folder on disk: config.json, checkpoints, and restoring a stopped run from them."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import jax

from dtql.algos import get_algorithm
from dtql.checkpoint import (
    CheckpointError,
    checkpoint_path,
    checkpoints_by_step,
    load_checkpoint,
    save_checkpoint,
)
from dtql.config import RunConfig, from_dict, replace, to_dict
from dtql.files import write_json_atomic
from dtql.lock import FolderLock
from dtql.run.setup import RunError, Spaces
from dtql.upgrade import upgrade_run_config

CONFIG_NAME = "config.json"
RESULT_NAME = "result.json"
KEEP_CHECKPOINTS = 2


def write_run_config(run_dir: Path, cfg: RunConfig) -> None:
    write_json_atomic(run_dir / CONFIG_NAME, to_dict(cfg))


def read_run_config(run_dir: Path) -> RunConfig:
    """A run's config.json; a flat one from before the learner/run split is read too."""
    path = run_dir / CONFIG_NAME
    if not path.is_file():
        raise RunError(f"{path}: not found; expected a run folder written by `dtql train`")
    try:
        return from_dict(RunConfig, upgrade_run_config(json.loads(path.read_text())))
    except (ValueError, TypeError) as err:
        raise RunError(f"{path}: not a dtql run config ({err})") from err


def extend_run(run_dir: Path, steps: int) -> None:
    """Make a run's main phase ``steps`` long before it resumes (`dtql train --resume RUN
    --steps N`): its config.json says the new length, and a finished run's result.json is kept
    as result_step_<its end>.json. The steps already taken stay as they were, so the run goes on
    as one started with ``steps`` would; on CPU with the same numbers, when its old end falls on
    a step where both end a chunk (a multiple of log_every, eval_every and checkpoint_every)."""
    cfg = read_run_config(run_dir)
    check_extension(run_dir, cfg, steps)
    with FolderLock(run_dir, "run"):  # not while another process trains it
        result = run_dir / RESULT_NAME
        if steps > cfg.learner.steps and result.exists():
            result.replace(run_dir / f"result_step_{cfg.learner.total_steps}.json")
        write_run_config(run_dir, replace(cfg, **{"learner.steps": steps}))


def check_extension(run_dir: Path, cfg: RunConfig, steps: int) -> None:
    """Raise RunError unless the run in ``run_dir`` (config ``cfg``) can go on to ``steps``
    main-phase steps: no fewer than it has, and a learning rate that does not depend on them."""
    path, now = run_dir / CONFIG_NAME, cfg.learner.steps
    if steps < now:
        raise RunError(
            f"{path}: learner.steps is {now}; --steps {steps} would shorten the run (expected "
            f"{now} or more)"
        )
    agent = cfg.learner.agent
    if steps > now and agent.lr_decay and agent.lr_decay_steps is None:
        # The cosine then spans the run's own steps and has reached 0 at its end.
        raise RunError(
            f"{path}: learner.agent.lr_decay_steps is null, so the learning rate's cosine spans "
            f"the run's {now} steps; a longer run would change the rate of the steps already "
            "taken (expected a run whose lr_decay_steps is set, as every preset's is)"
        )


def save_run_checkpoint(
    run_dir: Path, state: Any, step: int, cfg: RunConfig, spaces: Spaces
) -> None:
    meta = {"step": step, "config": to_dict(cfg), "spaces": dataclasses.asdict(spaces)}
    save_checkpoint(checkpoint_path(run_dir, step), state, meta)
    # Keep the newest few: a checkpoint holds every network and optimiser state.
    older = sorted((run_dir / "checkpoints").glob("step_*.safetensors"))[:-KEEP_CHECKPOINTS]
    for path in older:
        path.unlink()


def restore_state(
    run_dir: Path, cfg: RunConfig, spaces: Spaces, step: int | None = None
) -> tuple[Any, int]:
    """The newest checkpoint of a run that loads and verifies (or the one at ``step``), in a
    fresh state of the same config. A damaged newer one is skipped, saying which and why."""
    found = checkpoints_by_step(run_dir)
    if step is not None:
        if step not in found:
            steps = ", ".join(str(s) for s in found) or "none"
            raise RunError(f"{run_dir / 'checkpoints'}: no checkpoint at step {step} ({steps})")
        found = {step: found[step]}
    if not found:
        raise RunError(f"{run_dir / 'checkpoints'}: no checkpoint to resume or evaluate from")
    algo = get_algorithm(cfg.learner.algo)
    template = algo.init(
        jax.random.key(cfg.seed), cfg.learner, spaces.obs_dim, spaces.act_dim, spaces.max_action
    )
    skipped = []
    for path in found.values():
        try:
            state, meta = load_checkpoint(path, template)
        except CheckpointError as error:
            print(f"note: skipped checkpoint {error}", file=sys.stderr)
            skipped.append(path.name)
            continue
        return state, int(meta["step"])
    raise RunError(f"{run_dir / 'checkpoints'}: no valid checkpoint ({', '.join(skipped)} damaged)")
