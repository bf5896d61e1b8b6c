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
from dtql.config import RunConfig, from_dict, to_dict
from dtql.files import write_json_atomic
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
