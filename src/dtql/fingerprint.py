"""A dataset's fingerprint: what offline RL sees of it, set beside D4RL's file of the same name.

Three numbers say whether a dataset behaves like D4RL's for offline RL: the data's own normalized
score (its mean episode return), BC's normalized score (`--algo bc`, its recipe, at a fixed
budget over several seeds, each run read as the mean of its last evaluations) and the transition
count. The data score alone does not: a medium level whose mean action is near expert has a low
stochastic return, while BC, which fits the mean, scores far above it, and leaves a Q-guided
method nothing to improve.

`dtql data fingerprint NAME` measures the three (the BC runs are ordinary run folders under
--out, one pinned process per core, resumed or skipped when rerun), prints them beside D4RL's
with the tolerances, and with --record writes the fingerprint into the dataset's provenance.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import tyro

from dtql.collect.replay import transitions_digest
from dtql.config import RunConfig
from dtql.data import load_dataset
from dtql.data.collected import (
    FINGERPRINT_KEY,
    collect_record_files,
    collected_dataset_for,
    provenance_part,
)
from dtql.data.transitions import DatasetError, Transitions
from dtql.envs.d4rl_fingerprints import (
    SCORE_TOLERANCE,
    TRANSITIONS_TOLERANCE,
    comparison,
    d4rl_reference,
)
from dtql.envs.registry import get_task, normalized_score
from dtql.files import write_json_atomic
from dtql.presets import run_config
from dtql.reports.paper import PAPER_TABLE_1
from dtql.reports.runs import mean_of_last, read_run
from dtql.reports.tables import mean_stderr
from dtql.sweeps.execute import run_plan
from dtql.sweeps.grid import parse_seeds, plan_runs


@dataclass(frozen=True)
class FingerprintArgs:
    """Measure a dataset's fingerprint (data score, BC score, transitions) beside D4RL's."""

    dataset: Annotated[tyro.conf.Positional[str], tyro.conf.arg(metavar="NAME_OR_PATH")]
    """A dataset as `dtql train --dataset` takes it: path, D4RL name, Minari or dtql collect id."""
    task: str | None = None
    """The evaluation task (e.g. hopper-medium-v2); default: the D4RL name of the dataset."""
    steps: int = 30_000
    """BC's budget in gradient steps, each run."""
    seeds: str = "0-2"
    """BC seeds, e.g. 0-2 or 0,3,5."""
    eval_every: int = 5_000
    eval_episodes: int = 10
    last_evals: int = 3
    """Each BC run's score: the mean of its last this many evaluations (the field's reading)."""
    out: str | None = None
    """Folder of the BC runs (default runs/fingerprint/<task>); rerunning resumes it."""
    record: bool = False
    """Write the fingerprint into the dataset's `dtql collect` provenance record."""
    catalogue: str | None = None
    """Also set it as the dataset's entry of this fingerprints file (JSON, made if absent), as
    src/dtql/assets/policies/fingerprints.json holds those of the shipped policies' datasets."""
    json: bool = False
    """Print one JSON object."""


def dataset_task(name: str, task: str | None) -> str:
    """The task a dataset is evaluated in: --task, or the D4RL name it stands for."""
    if task is not None:
        return task
    collected = collected_dataset_for(name)
    if collected is not None:
        return f"{collected[0]}-{collected[1]}-v2"
    stem = Path(name).name.removesuffix(".hdf5")
    if stem in PAPER_TABLE_1 or d4rl_reference(stem)["transitions"] is not None:
        return stem
    raise DatasetError(f"{name}: no task can be read from the name, expected --task NAME")


def bc_configs(args: FingerprintArgs, task: str, out: Path) -> list[RunConfig]:
    """One BC run per seed on the dataset: BC's recipe, the fingerprint's budget, no pretraining."""
    base = run_config(task, "bc")
    learner = dataclasses.replace(base.learner, steps=args.steps, pretrain_steps=0)
    return [
        dataclasses.replace(
            base,
            dataset=args.dataset,
            seed=seed,
            eval_every=args.eval_every,
            eval_episodes=args.eval_episodes,
            checkpoint_every=args.steps,
            out=str(out / f"seed_{seed}"),
            learner=learner,
        )
        for seed in parse_seeds(args.seeds)
    ]


def last_evaluations_mean(curve: list[tuple[int, float]], count: int, where: str) -> float:
    """The mean of a run's last `count` evaluation scores (it must have that many)."""
    if len(curve) < count:
        raise DatasetError(f"{where}: {len(curve)} evaluations, expected at least {count}")
    return mean_of_last(curve, count)


def data_fingerprint(data: Transitions, task: str) -> dict[str, Any]:
    """The data's own part: normalized score of its mean episode return, and its counts."""
    return {
        "dataset_normalized_score": float(
            normalized_score(task, float(np.mean(data.episode_returns)))
        ),
        "transitions": data.num_transitions,
        "episodes": data.num_episodes,
    }


def bc_fingerprint(run_dirs: list[Path], last_evals: int) -> dict[str, Any]:
    """BC's part, from finished run folders: each seed's mean of its last evaluations, their mean
    and standard error over seeds."""
    per_seed = {}
    for run_dir in run_dirs:
        run = read_run(run_dir)
        if run.status != "finished":
            raise DatasetError(f"{run_dir}: BC run {run.status}, expected finished")
        per_seed[str(run.seed)] = last_evaluations_mean(run.curve, last_evals, str(run_dir))
    mean, stderr = mean_stderr(list(per_seed.values()))
    return {
        "bc_normalized_score": mean,
        "bc_normalized_score_stderr": 0.0 if math.isnan(stderr) else stderr,  # one seed: none
        "bc_per_seed": per_seed,
    }


def measure_fingerprint(args: FingerprintArgs) -> dict[str, Any]:
    """Load the dataset, run (or resume) the BC seeds, and return the fingerprint record."""
    task = dataset_task(args.dataset, args.task)
    get_task(task)  # an unknown task is refused before any run starts
    if args.last_evals < 1 or args.steps < args.last_evals * args.eval_every:
        raise DatasetError(
            f"--steps {args.steps} gives {args.steps // max(args.eval_every, 1)} evaluations, "
            f"expected at least --last-evals {args.last_evals}"
        )
    data = load_dataset(args.dataset)
    out = Path(args.out or f"runs/fingerprint/{task}")
    cfgs = bc_configs(args, task, out)
    report = run_plan(plan_runs(cfgs), log_dir=out / "logs", mode="auto")
    if not report.all_finished:
        raise DatasetError(f"{out}: BC runs did not all finish: {'; '.join(report.lines())}")
    measured = {
        **data_fingerprint(data, task),
        "data_sha256": transitions_digest(data),
        **bc_fingerprint([Path(c.out) for c in cfgs], args.last_evals),
    }
    d4rl = d4rl_reference(task)
    return {
        "task": task,
        "dataset": args.dataset,
        **measured,
        "d4rl": d4rl,
        "within_tolerance": comparison(measured, d4rl),
        "tolerance": {
            "score_points": SCORE_TOLERANCE,
            "transitions_fraction": TRANSITIONS_TOLERANCE,
        },
        "bc": {
            "algo": "bc",
            "steps": args.steps,
            "seeds": parse_seeds(args.seeds),
            "eval_every": args.eval_every,
            "eval_episodes": args.eval_episodes,
            "last_evals": args.last_evals,
            "runs": str(out),
            "cpu_threads": len(os.sched_getaffinity(0)),
        },
        "command": fingerprint_command(args),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def fingerprint_command(args: FingerprintArgs) -> str:
    """The command line that measures this fingerprint again (defaults left out)."""
    parts = ["dtql", "data", "fingerprint", args.dataset]
    for f in dataclasses.fields(FingerprintArgs):
        value = getattr(args, f.name)
        if f.name in ("dataset", "record", "catalogue", "json") or value == f.default:
            continue
        parts += [f"--{f.name.replace('_', '-')}", str(value)]
    return " ".join(parts)


def record_fingerprint(dataset: str, fingerprint: dict[str, Any]) -> list[Path]:
    """Write the fingerprint into a `dtql collect` dataset's provenance (collect_info.json and
    Minari's metadata.json, or the .json beside a D4RL file); returns the files rewritten."""
    files = collect_record_files(dataset)
    if not files:
        raise DatasetError(
            f"{dataset}: no `dtql collect` record beside it, expected a dataset `dtql collect` "
            "made (--record writes into its provenance)"
        )
    for file in files:
        content = json.loads(file.read_text())
        provenance_part(file, content)[FINGERPRINT_KEY] = fingerprint
        write_json_atomic(file, content)
    return files


def add_to_catalogue(path: Path, fingerprint: dict[str, Any]) -> None:
    """Set the task's entry of a fingerprints file (keys sorted, so diffs stay small)."""
    catalogue = {"format_version": 1, "fingerprints": {}}
    if path.is_file():
        catalogue = json.loads(path.read_text())
    entries = {**catalogue["fingerprints"], fingerprint["task"]: fingerprint}
    catalogue["fingerprints"] = dict(sorted(entries.items()))
    write_json_atomic(path, catalogue)


def format_fingerprint(fp: dict[str, Any]) -> str:
    """The fingerprint beside D4RL's as a small markdown table."""
    d4rl, ok = fp["d4rl"], fp["within_tolerance"]

    def cell(value: float | int | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    def verdict(key: str) -> str:
        return {True: "yes", False: "NO", None: "-"}[ok[key]]

    bc = f"{fp['bc_normalized_score']:.1f} ± {fp['bc_normalized_score_stderr']:.1f}"
    data = "dataset_normalized_score"
    lines = [
        f"fingerprint of {fp['dataset']} (task {fp['task']}; BC {fp['bc']['steps']:,} steps x "
        f"{len(fp['bc']['seeds'])} seeds, mean of each run's last {fp['bc']['last_evals']} "
        f"evaluations of {fp['bc']['eval_episodes']} episodes)",
        "",
        "| | ours | D4RL | within tolerance |",
        "| --- | --- | --- | --- |",
        f"| data's normalized score | {fp[data]:.1f} | {cell(d4rl[data], '.1f')} | "
        f"{verdict(data)} |",
        f"| BC's normalized score | {bc} | {cell(d4rl['bc_normalized_score'], '.1f')} | "
        f"{verdict('bc_normalized_score')} |",
        f"| transitions | {fp['transitions']:,} | {cell(d4rl['transitions'], ',')} | "
        f"{verdict('transitions')} |",
        "",
        f"tolerance: scores within {SCORE_TOLERANCE:.0f} points, transitions within "
        f"{TRANSITIONS_TOLERANCE:.0%}; BC runs in {fp['bc']['runs']}",
    ]
    return "\n".join(lines)


def run_fingerprint(args: FingerprintArgs) -> int:
    """`dtql data fingerprint`: measure, print, and with --record write the record."""
    fingerprint = measure_fingerprint(args)
    if args.record:
        for file in record_fingerprint(args.dataset, fingerprint):
            print(f"recorded in {file}")
    if args.catalogue is not None:
        add_to_catalogue(Path(args.catalogue), fingerprint)
        print(f"recorded in {args.catalogue} as {fingerprint['task']}")
    print(json.dumps(fingerprint) if args.json else format_fingerprint(fingerprint))
    return 0
