"""Planning a grid: which runs, where they live, what state each folder is in, and which runs
can be trained together in one stacked program.

A run's folder is ``OUT/<task>/<algo>/seed_<k>``. On a rerun of the same command a finished run
is skipped, a failed one is kept as failed (the report shows it), a stopped one resumes from its
checkpoint, and one stopped before its first checkpoint starts again. With ``extend``, a run whose
config differs from the grid's only by fewer main-phase steps is given the grid's (finished or
stopped, it goes on from its newest checkpoint: ``extend_run``).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dtql.checkpoint import checkpoints_by_step
from dtql.config import LEARNER_FIELDS, RunConfig, replace, to_dict
from dtql.presets import run_config
from dtql.run.group import group_key
from dtql.run.resume import (
    CONFIG_NAME,
    RESULT_NAME,
    check_extension,
    extend_run,
    read_run_config,
)
from dtql.run.setup import resolve_dataset

Status = Literal["new", "resume", "finished", "failed", "extend"]


class SweepError(ValueError):
    """A grid that cannot run as asked; the message names the flag or folder."""


@dataclass(frozen=True)
class PlannedRun:
    cfg: RunConfig
    run_dir: Path
    status: Status
    start_step: int = 0


def parse_seeds(text: str) -> list[int]:
    """'0-4' -> [0, 1, 2, 3, 4]; '0,3,7' -> [0, 3, 7]; ranges and lists mix ('0-2,9')."""
    seeds: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+))?\s*", part)
        if match is None or (match[2] is not None and int(match[2]) < int(match[1])):
            raise SweepError(f"--seeds {text!r}: expected seeds like 0-4 or 0,3,7")
        last = int(match[2]) if match[2] is not None else int(match[1])
        seeds.extend(range(int(match[1]), last + 1))
    if len(set(seeds)) != len(seeds):
        raise SweepError(f"--seeds {text!r}: a seed is listed twice")
    return seeds


def _parse_value(key: str, text: str, current: Any) -> Any:
    """A --set value, typed like the field's current value."""
    if isinstance(current, bool):
        if text.lower() not in ("true", "false"):
            raise SweepError(f"--set {key}={text}: expected true or false")
        return text.lower() == "true"
    try:
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            return float(text)
    except ValueError:
        kind = type(current).__name__
        raise SweepError(f"--set {key}={text}: expected an {kind}") from None
    if current is None:  # an optional field: a number, null, or else the text itself
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return text


def apply_sets(cfg: RunConfig, sets: list[str]) -> RunConfig:
    """Apply 'key=value' overrides spelled as `dtql train`'s flags: steps=20000,
    agent.alpha=2, eval-every=5000 (learner fields need no 'learner.' prefix)."""
    for item in sets:
        key, sep, text = item.partition("=")
        if not sep:
            raise SweepError(f"--set {item!r}: expected key=value, e.g. agent.alpha=2")
        path = key.strip().replace("-", "_")
        if path.split(".")[0] in LEARNER_FIELDS:
            path = "learner." + path
        current: Any = cfg
        for part in path.split("."):
            if not dataclasses.is_dataclass(current) or not hasattr(current, part):
                raise SweepError(f"--set {key}: no such config field (see dtql train --help)")
            current = getattr(current, part)
        if dataclasses.is_dataclass(current):
            raise SweepError(f"--set {key}: a group of fields; set one of its fields")
        if path in ("seed", "out", "learner.algo", "task"):
            raise SweepError(f"--set {key}: set by the grid itself (--tasks, --algos, --seeds)")
        cfg = replace(cfg, **{path: _parse_value(key, text.strip(), current)})
    return cfg


def sets_for(algo: str, sets: list[str]) -> list[str]:
    """The overrides for one algorithm: the plain ones and those prefixed 'ALGO:' (so that
    'dtql:pretrain-steps=5000' gives DTQL its pretraining and leaves BC's budget alone)."""
    chosen = []
    for item in sets:
        prefix, sep, rest = item.partition(":")
        if not sep or "=" in prefix:
            chosen.append(item)
        elif prefix == algo:
            chosen.append(rest)
    return chosen


def variants(sets: list[str]) -> list[tuple[str, list[str]]]:
    """Overrides with a comma list of values ('agent.alpha=1,5,20') span variants: every
    combination, each with a label for its folder ('@alpha=1@lr=0.0003'); '' when none."""
    fixed = [item for item in sets if "," not in item.partition("=")[2]]
    swept = [item.partition("=") for item in sets if "," in item.partition("=")[2]]
    combos: list[tuple[str, list[str]]] = [("", fixed)]
    for key, _, values in swept:
        short = key.strip().split(".")[-1].replace("-", "_")
        combos = [
            (f"{label}@{short}={value.strip()}", [*chosen, f"{key}={value.strip()}"])
            for label, chosen in combos
            for value in values.split(",")
        ]
    return combos


def plan_grid(
    tasks: list[str],
    algos: list[str],
    seeds: list[int],
    sets: list[str],
    out: Path,
    clean: bool = True,
    extend: bool = False,
) -> list[PlannedRun]:
    """Every (task, algo, variant, seed) of the grid, each in its folder under ``out``:
    ``out/<task>/<algo>[@key=value...]/seed_<k>``. ``clean=False`` only looks (see
    ``plan_runs``)."""
    cfgs = []
    for task in tasks:
        for algo in algos:
            for label, chosen in variants(sets_for(algo, sets)):
                base = apply_sets(run_config(task, algo), chosen)
                for seed in seeds:
                    run_dir = out / task / f"{algo}{label}" / f"seed_{seed}"
                    cfgs.append(dataclasses.replace(base, seed=seed, out=str(run_dir)))
    return plan_runs(cfgs, clean, extend)


def plan_runs(cfgs: list[RunConfig], clean: bool = True, extend: bool = False) -> list[PlannedRun]:
    """Each config's folder (``cfg.out``) and what to do with it. A folder stopped before its
    first checkpoint holds nothing to keep: it is deleted to start afresh, and with ``extend``
    a shorter run's config is given the grid's steps (so it resumes), unless ``clean`` is False
    (a dry run, which changes nothing and calls such a run "extend")."""
    planned = [dataclasses.replace(c, dataset=resolve_dataset(c)) for c in cfgs]
    looked = [_planned(cfg, False, extend) for cfg in planned]  # refuse before changing any
    return [_planned(cfg, True, extend) for cfg in planned] if clean else looked


def _planned(cfg: RunConfig, clean: bool, extend: bool) -> PlannedRun:
    run_dir = Path(cfg.out)
    if not (run_dir / CONFIG_NAME).exists():
        return PlannedRun(cfg, run_dir, "new")
    # Where a run was made (its config's out) does not matter: a grid copied elsewhere is kept.
    stored = dataclasses.replace(read_run_config(run_dir), out=cfg.out)
    if to_dict(stored) != to_dict(cfg):
        shorter = _only_shorter(stored, cfg)
        if not (extend and shorter):
            differs = _first_difference(to_dict(stored), to_dict(cfg))
            hint = " (--extend gives it this grid's longer main phase)" if shorter else ""
            raise SweepError(
                f"{run_dir / CONFIG_NAME}: holds a run whose {differs} differs from this "
                f"grid's{hint}; use another --out, or delete the folder to run it again"
            )
        check_extension(run_dir, stored, cfg.learner.steps)
        step = _newest_checkpoint_step(run_dir)
        if result_status(run_dir) != "failed" and step is not None:
            if not clean:
                return PlannedRun(cfg, run_dir, "extend", step)
            extend_run(run_dir, cfg.learner.steps)  # now a stopped run of this grid's config
    status = result_status(run_dir)
    if status in ("finished", "failed"):
        return PlannedRun(cfg, run_dir, status)
    step = _newest_checkpoint_step(run_dir)
    if step is None:  # stopped before its first checkpoint: nothing to keep
        if clean:
            shutil.rmtree(run_dir)
        return PlannedRun(cfg, run_dir, "new")
    return PlannedRun(cfg, run_dir, "resume", step)


def _newest_checkpoint_step(run_dir: Path) -> int | None:
    return next(iter(checkpoints_by_step(run_dir)), None)


def _only_shorter(stored: RunConfig, planned: RunConfig) -> bool:
    """Whether a run's stored config is the planned one with fewer main-phase steps."""
    steps = planned.learner.steps
    longer = replace(stored, **{"learner.steps": steps})
    return stored.learner.steps < steps and to_dict(longer) == to_dict(planned)


def result_status(run_dir: Path) -> str | None:
    """The status in a run folder's result.json ("finished" where an old file has none); None
    while it has none (written atomically, so it is whole or absent)."""
    path = run_dir / RESULT_NAME
    if not path.is_file():
        return None
    return json.loads(path.read_text()).get("status", "finished")


def _first_difference(stored: dict, planned: dict, prefix: str = "") -> str:
    for key in [*stored, *(k for k in planned if k not in stored)]:
        a, b = stored.get(key), planned.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            if a != b:
                return _first_difference(a, b, f"{prefix}{key}.")
        elif a != b:
            return f"{prefix}{key} ({a!r} there, {b!r} here)"
    return "config"


def group_runs(runs: list[PlannedRun], max_group: int) -> list[list[PlannedRun]]:
    """Runs to train, grouped so that each group shares one program: the same config but the
    seed, and the same starting step (all new, or all resuming from that step)."""
    groups: dict[tuple[str, str, int], list[PlannedRun]] = {}
    for run in runs:
        if run.status in ("new", "resume"):
            key = (group_key(run.cfg), run.status, run.start_step)
            groups.setdefault(key, []).append(run)
    size = max(1, max_group)
    return [g[i : i + size] for g in groups.values() for i in range(0, len(g), size)]
