"""Making each level's dataset from the SAC run, writing it (Minari, and D4RL hdf5 with --hdf5),
and `run_collect`, the entry point of `dtql collect` that runs the whole protocol and writes
summary.json."""

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
    parse_levels,
    regenerate_command,
    resolve_env,
)
from dtql.collect.provenance import behaviour_policy, provenance
from dtql.collect.rollout import collect, stochastic_act_fn
from dtql.collect.sac import SacRun, import_sb3
from dtql.data.d4rl import write_d4rl
from dtql.data.minari import write_minari
from dtql.data.transitions import Transitions, concat_transitions
from dtql.envs.registry import TaskSpec
from dtql.files import write_json_atomic


def run_collect(args: CollectArgs) -> int:
    """Run the whole protocol. Returns 0 if any requested dataset exists at the end, else 1;
    2 for invalid arguments or an --out folder that holds an earlier run without --resume."""
    started = time.monotonic()
    try:
        levels = parse_levels(args.levels)
        check_args(args)
        task, env_name = resolve_env(args.env_id)
        out = Path(args.out).expanduser()
        check_out(out, args, env_name, levels)
        torch, sac_cls = import_sb3()
        torch.set_num_threads(1)
        status: dict[str, dict[str, Any]] = {}
        todo = []
        for level in levels:
            if args.resume and dataset_complete(out, env_name, level, args.hdf5):
                status[level] = {"status": "kept", "dataset_id": dataset_id(env_name, level)}
                print(f"{level}: kept {dataset_id(env_name, level)} from the earlier run")
            else:
                todo.append(level)
        trainer = SacRun(args, task, out / "sac", sac_cls, torch)
        if todo:
            out.mkdir(parents=True, exist_ok=True)
            trainer.setup()
    except CollectError as e:
        print(f"dtql collect: error: {e}", file=sys.stderr)
        return 2

    if todo:
        needs_training = any(level != "random" for level in todo)
        stop_at_medium = not ({"expert", "medium-expert"} & set(todo))
        if needs_training:
            trainer.run_sac(stop_at_medium=stop_at_medium)
        status.update(_make_datasets(args, task, env_name, todo, trainer, out))

    summary = {
        "env_id": task.env_id,
        "levels": {**_earlier_levels(out, args), **{level: status[level] for level in levels}},
        "sac_steps_trained": trainer.state.get("num_timesteps"),
        "medium_snapshot_step": (trainer.state.get("medium") or {}).get("step"),
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
    trainer: SacRun,
    out: Path,
) -> dict[str, dict[str, Any]]:
    """Collect and write every level in `levels`; returns each level's status."""
    state = trainer.state
    status: dict[str, dict[str, Any]] = {}
    collected: dict[str, tuple[Transitions, float]] = {}  # policy level -> (data, wall time)
    snapshots = {  # behaviour policy -> (snapshot name, why it is unavailable, its evaluation)
        "random": ("random", None, state["random"]),
        "medium": ("medium", _medium_unavailable(args, trainer), state["medium"]),
        "expert": ("final", _expert_unavailable(args, trainer), state["final"]),
    }

    def policy_data(level: str) -> tuple[Transitions, float]:
        if level not in collected:
            snapshot, _, _ = snapshots[level]
            seed = args.seed + COLLECT_SEED_OFFSETS[level]
            trainer.torch.manual_seed(seed)
            started = time.monotonic()
            data = collect(
                task,
                stochastic_act_fn(trainer.load_policy(snapshot)),
                args.transitions,
                args.num_envs,
                seed,
                desc=f"collect {level}",
                progress_bar=args.progress_bar,
            )
            collected[level] = (data, time.monotonic() - started)
        return collected[level]

    for level in levels:
        parts = {"medium-replay": ["medium"], "medium-expert": ["medium", "expert"]}.get(
            level, [level]
        )  # the behaviour policies the level needs
        reasons = [snapshots[p][1] for p in parts if snapshots[p][1] is not None]
        if reasons:
            print(f"{level}: skipped: {reasons[0]}")
            status[level] = {"status": "skipped", "reason": reasons[0]}
            continue

        started = time.monotonic()
        if level == "medium-replay":
            data = trainer.replay_transitions(int(state["medium"]["step"]))
            wall = time.monotonic() - started
            behaviour = [
                behaviour_policy(state["medium"], "replay buffer up to the medium snapshot")
            ]
            collection = {"source": "SAC replay buffer", "rows": data.num_transitions}
        else:
            datas = [policy_data(p) for p in parts]
            data = concat_transitions([d for d, _ in datas], source=level)
            wall = sum(w for _, w in datas)
            behaviour = [
                behaviour_policy(snapshots[p][2], f"SAC {snapshots[p][0]} policy") for p in parts
            ]
            collection = {
                "source": "stochastic actions of the behaviour policy",
                "num_envs": min(args.num_envs, args.transitions),
                "seeds": [args.seed + COLLECT_SEED_OFFSETS[p] for p in parts],
                "transitions_per_policy": args.transitions,
            }
        record = provenance(args, task, env_name, level, data, trainer, behaviour, collection, wall)
        status[level] = write_dataset(out, env_name, level, task, data, record, args.hdf5)
        print(
            f"{level}: wrote {status[level]['dataset_id']}: {data.num_transitions} transitions, "
            f"{data.num_episodes} episodes, return {record['dataset_return_mean']:.1f} "
            f"(normalized {record['dataset_normalized_score']:.1f})"
        )
    return status


def _medium_unavailable(args: CollectArgs, trainer: SacRun) -> str | None:
    state = trainer.state
    if state["medium"] is not None:
        return None
    return (
        f"no SAC snapshot reached the medium threshold {trainer.medium_threshold:.1f} "
        f"(= {args.medium_fraction:.3g} x expert return {trainer.task.ref_max_score}) within "
        f"{state['num_timesteps']} steps (best evaluated return "
        f"{max(e['return_mean'] for e in state['evals']):.1f}); raise --sac-steps"
    )


def _expert_unavailable(args: CollectArgs, trainer: SacRun) -> str | None:
    state = trainer.state
    if state["final"] is None:
        return (
            f"SAC trained {state['num_timesteps']} of --sac-steps {args.sac_steps} steps; the "
            "expert is the policy after the full budget"
        )
    final = state["final"]
    if final["return_mean"] < trainer.expert_threshold:
        return (
            f"the final SAC policy (step {final['step']}) has evaluated return "
            f"{final['return_mean']:.1f} (normalized {final['normalized_score_mean']:.1f}), "
            f"below the expert threshold {trainer.expert_threshold:.1f} (= "
            f"{args.expert_fraction:.3g} x expert return {trainer.task.ref_max_score}); "
            "raise --sac-steps"
        )
    return None


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
        algorithm_name=f"stable-baselines3 SAC ({level})",
        author="dtql collect",
        description=(
            f"D4RL-style '{level}' dataset for {task.env_id}, made by `dtql collect` with "
            f"stable-baselines3 SAC; {data.num_transitions} transitions, {data.num_episodes} "
            f"episodes; mean return {record['dataset_return_mean']:.1f} (D4RL normalized "
            f"{record['dataset_normalized_score']:.1f}). Provenance under 'dtql_collect'."
        ),
        requirements=[
            f"gymnasium[mujoco]=={importlib.metadata.version('gymnasium')}",
            f"mujoco=={importlib.metadata.version('mujoco')}",
        ],
        metadata={"dtql_collect": record},
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
        write_d4rl(path, data, {"dtql_collect": record})
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
    """On --resume, the earlier summary's record of levels (they stay listed when this run does
    not ask for them again); {} otherwise."""
    path = out / "summary.json"
    if not args.resume or not path.is_file():
        return {}
    try:
        return dict(json.loads(path.read_text())["levels"])
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
