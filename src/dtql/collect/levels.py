"""Making each level's dataset from its behaviour policies (a SAC run's snapshots, or policy files
with --from-policies), writing it (Minari, and D4RL hdf5 with --hdf5), and `run_collect`, the
entry point of `dtql collect` that runs the whole protocol and writes summary.json."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym

from dtql.collect.args import (
    COLLECT_SEED_OFFSETS,
    CollectArgs,
    CollectError,
    check_args,
    check_out,
    d4rl_file,
    dataset_complete,
    dataset_id,
    minari_dataset_dir,
    out_dir,
    parse_levels,
    regenerate_command,
    resolve_env,
)
from dtql.collect.behaviour_policy import PolicyFileError, action_rng
from dtql.collect.provenance import collection_record, matching_fingerprint, provenance
from dtql.collect.rollout import collect
from dtql.collect.sac import SacRun, SacStopped, import_sb3
from dtql.collect.save_policies import LEVEL_POLICIES, save_policies
from dtql.collect.snapshots import score_snapshots
from dtql.collect.sources import PolicyFiles, SacSnapshots
from dtql.data.d4rl import write_d4rl
from dtql.data.minari import write_minari
from dtql.data.transitions import PROVENANCE_KEY, Transitions, concat_transitions
from dtql.envs.registry import TaskSpec
from dtql.files import write_json_atomic

Source = SacSnapshots | PolicyFiles


def run_collect(args: CollectArgs) -> int:
    """Run the whole protocol. Returns 0 if any requested dataset exists at the end (with
    --save-policies: any policy file was written), else 1; 2 for invalid arguments or an --out
    folder that holds an earlier run without --resume; 130 when SIGTERM or Ctrl-C stopped SAC
    (checkpointed at the end of its chunk: --resume goes on)."""
    started = time.monotonic()
    try:
        levels = parse_levels(args.levels)
        check_args(args)
        task, env_name = resolve_env(args.env_id)
        out = out_dir(args, env_name)
        if args.save_policies is not None:
            return save_policies(args, task, env_name, levels, out)
        if args.score_snapshots:
            return score_snapshots(args, task, env_name, out)
        check_out(out, args, env_name, levels)
        status: dict[str, dict[str, Any]] = {}
        todo = []
        for level in levels:
            if args.resume and dataset_complete(out, env_name, level, args.hdf5):
                status[level] = {"status": "kept", "dataset_id": dataset_id(env_name, level)}
                print(f"{level}: kept {dataset_id(env_name, level)} from the earlier run")
            else:
                todo.append(level)
        source: Source
        if args.from_policies:  # no SAC, no torch
            source = PolicyFiles(args, task, env_name)
            if todo:
                out.mkdir(parents=True, exist_ok=True)
        else:
            torch, sac_cls = import_sb3()
            torch.set_num_threads(1)
            trainer = SacRun(args, task, out / "sac", sac_cls, torch)
            if todo:
                out.mkdir(parents=True, exist_ok=True)
                trainer.setup()
            source = SacSnapshots(args, task, trainer)
    except (CollectError, PolicyFileError) as e:
        print(f"dtql collect: error: {e}", file=sys.stderr)
        return 2

    if todo:
        try:
            source.prepare(todo)
            status.update(_make_datasets(args, task, env_name, todo, source, out))
        except SacStopped as e:  # SIGTERM or Ctrl-C: checkpointed, resumable
            print(f"dtql collect: {e}", file=sys.stderr)
            return 130

    summary = {
        "env_id": task.env_id,
        "levels": {**_earlier_levels(out, args), **{level: status[level] for level in levels}},
        **source.summary(),
        "wall_time_s": round(time.monotonic() - started, 1),
        "command": regenerate_command(args),
    }
    write_json_atomic(out / "summary.json", summary)
    _print_summary(summary)
    made = [lvl for lvl, s in status.items() if s["status"] in ("written", "kept")]
    return 0 if made else 1


# --------------------------------------------------------------------------- levels


def _make_datasets(
    args: CollectArgs,
    task: TaskSpec,
    env_name: str,
    levels: list[str],
    source: Source,
    out: Path,
) -> dict[str, dict[str, Any]]:
    """Collect and write every level in `levels`; returns each level's status."""
    status: dict[str, dict[str, Any]] = {}
    collected: dict[str, tuple[Transitions, float]] = {}  # policy level -> (data, wall time)

    def policy_data(name: str) -> tuple[Transitions, float]:
        if name not in collected:
            seed = args.seed + COLLECT_SEED_OFFSETS[name]
            started = time.monotonic()
            data = collect(
                task,
                source.policy(name).act_fn(action_rng(seed)),
                args.transitions,
                args.num_envs,
                seed,
                desc=f"collect {name}",
                progress_bar=args.progress_bar,
            )
            collected[name] = (data, time.monotonic() - started)
        return collected[name]

    for level in levels:
        needs = LEVEL_POLICIES[level] or (level,)  # medium-replay: the source's replay buffer
        reasons = [r for r in (source.unavailable(p) for p in needs) if r is not None]
        if reasons:
            print(f"{level}: skipped: {reasons[0]}")
            status[level] = {"status": "skipped", "reason": reasons[0]}
            continue

        started = time.monotonic()
        try:
            if level == "medium-replay":
                data, behaviour = source.replay()
                wall = time.monotonic() - started
                collection = {"source": "SAC replay buffer", "rows": data.num_transitions}
            else:
                datas = [policy_data(p) for p in needs]
                data = concat_transitions([d for d, _ in datas], source=level)
                wall = sum(w for _, w in datas)
                behaviour = [source.behaviour(p) for p in needs]
                collection = collection_record(args, list(needs))
        except PolicyFileError as e:  # a policy file that does not replay as recorded
            print(f"{level}: skipped: {e}")
            status[level] = {"status": "skipped", "reason": str(e)}
            continue
        record = provenance(
            args,
            task,
            env_name,
            level,
            data,
            behaviour,
            collection,
            wall,
            origin=source.origin(),
            seeds=source.seeds(),
        )
        fingerprint = matching_fingerprint(env_name, level, data)
        if fingerprint is not None:
            record["fingerprint"] = fingerprint
        status[level] = write_dataset(out, env_name, level, task, data, record, args.hdf5)
        print(
            f"{level}: wrote {status[level]['dataset_id']}: {data.num_transitions} transitions, "
            f"{data.num_episodes} episodes, return {record['dataset_return_mean']:.1f} "
            f"(normalized {record['dataset_normalized_score']:.1f})"
        )
    return status


# --------------------------------------------------------------------------- writing


def write_dataset(
    out: Path,
    env_name: str,
    level: str,
    task: TaskSpec,
    data: Transitions,
    record: dict[str, Any],
    hdf5: bool,
) -> dict[str, Any]:
    """Write one level (Minari, + D4RL hdf5 with `hdf5`), its record last; returns its status."""
    folder = minari_dataset_dir(out, env_name, level)
    if folder.exists():  # an incomplete write of an earlier run (complete ones are kept)
        shutil.rmtree(folder)
    write_minari(
        out / "minari",
        dataset_id(env_name, level),
        data,
        env_spec=eval_env_spec(task),
        ref_min_score=task.ref_min_score,
        ref_max_score=task.ref_max_score,
        algorithm_name=(
            "uniform random actions" if level == "random" else f"stable-baselines3 SAC ({level})"
        ),
        author="dtql collect",
        description=(
            f"D4RL-style '{level}' dataset for {task.env_id}, made by `dtql collect` from the "
            f"behaviour policies of a stable-baselines3 SAC run ({record['made_from']}); "
            f"{data.num_transitions} transitions, {data.num_episodes} "
            f"episodes; mean return {record['dataset_return_mean']:.1f} (D4RL normalized "
            f"{record['dataset_normalized_score']:.1f}). Provenance under '{PROVENANCE_KEY}'."
        ),
        requirements=[
            f"gymnasium[mujoco]=={importlib.metadata.version('gymnasium')}",
            f"mujoco=={importlib.metadata.version('mujoco')}",
        ],
        metadata={PROVENANCE_KEY: record},
    )
    write_json_atomic(folder / "collect_info.json", record)
    status = {
        "status": "written",
        "dataset_id": dataset_id(env_name, level),
        "minari_path": str(folder),
        "transitions": data.num_transitions,
        "episodes": data.num_episodes,
        "dataset_normalized_score": record["dataset_normalized_score"],
    }
    if hdf5:
        path = d4rl_file(out, env_name, level)
        write_d4rl(path, data, {PROVENANCE_KEY: record})
        write_json_atomic(path.with_suffix(".json"), record)
        status["d4rl_path"] = str(path)
    return status


def eval_env_spec(task: TaskSpec) -> gym.envs.registration.EnvSpec:
    """The evaluation env's spec: registered id, the task's kwargs and D4RL's time limit."""
    spec = gym.spec(task.env_id)
    return dataclasses.replace(
        spec,
        max_episode_steps=task.max_episode_steps,
        kwargs={**spec.kwargs, **dict(task.env_kwargs)},
    )


# --------------------------------------------------------------------------- summary


def _earlier_levels(out: Path, args: CollectArgs) -> dict[str, Any]:
    """The earlier summary's record of levels of the same env (they stay listed when this run
    does not ask for them again: on --resume, or when another command wrote other levels into
    the same folder, e.g. --from-policies and then a SAC run for medium-replay); {} otherwise."""
    path = out / "summary.json"
    if not path.is_file():
        return {}
    try:
        earlier = json.loads(path.read_text())
        return dict(earlier["levels"]) if earlier["env_id"] == args.env_id else {}
    except (ValueError, KeyError, TypeError):
        return {}  # unreadable: this run's summary replaces it


def _print_summary(summary: dict[str, Any]) -> None:
    print(f"dtql collect {summary['env_id']}: {summary['wall_time_s']:.0f} s")
    for level, s in summary["levels"].items():
        if s["status"] == "skipped":
            print(f"  {level:14s} skipped: {s['reason']}")
        elif s["status"] == "kept":
            print(f"  {level:14s} kept    {s['dataset_id']}")
        else:
            print(
                f"  {level:14s} written {s['dataset_id']}: {s['transitions']} transitions, "
                f"{s['episodes']} episodes, normalized {s['dataset_normalized_score']:.1f}"
            )
