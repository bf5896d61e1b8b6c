"""--save-policies: the behaviour policies of a finished (or running) SAC run written as policy
files, the ones `--from-policies` reads and the package ships (dtql/assets/policies).

``dtql collect ENV --out SAC_OUT --save-policies DIR`` reads SAC_OUT/sac (state.json, the
policy_{medium,final}.zip snapshots and replay_buffer.pkl; nothing there is written) and writes
DIR/<env>-<level>.json (+ .safetensors) for each level in --levels: random (uniform, no SAC
needed), medium (the first snapshot reaching --medium-fraction, or --medium-step's snapshot),
expert (the final policy, if it reaches --expert-fraction) and medium-replay (the buffer up to
the medium snapshot as its actions, see ``replay``). Each file's provenance holds the snapshot's
step and evaluation, the SAC settings and seeds, the library versions, this command, and the
command that reruns the SAC run.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dtql.collect.args import CollectArgs, regenerate_command
from dtql.collect.behaviour_policy import (
    POLICY_LEVELS,
    PolicyFileError,
    file_sha256,
    policy_stem,
    save_behaviour_policy,
    unscale_action,
    write_behaviour_policy,
)
from dtql.collect.buffer import buffer_rows, buffer_transitions, replay_description, replay_rows
from dtql.collect.provenance import library_versions
from dtql.collect.replay import replay_from_buffer, write_replay_actions
from dtql.collect.sac import import_sb3
from dtql.collect.snapshots import medium_snapshot, read_scores
from dtql.collect.sources import (
    SNAPSHOTS,
    eval_every,
    sac_record,
    snapshot_unavailable,
    thresholds,
    uniform_for_task,
)
from dtql.envs.registry import TaskSpec
from dtql.upgrade import upgrade_sac_state

# The policy levels each dataset level is made from.
LEVEL_POLICIES = {
    "random": ("random",),
    "medium": ("medium",),
    "medium-replay": (),  # the replay buffer: no policy file
    "expert": ("expert",),
    "medium-expert": ("medium", "expert"),
}


def level_files(folder: Path, env_name: str, level: str) -> list[Path]:
    """The files in ``folder`` that --from-policies reads to make a level (for medium-replay,
    the SAC run's actions)."""
    names = LEVEL_POLICIES[level] or ("medium-replay",)
    return [Path(f"{policy_stem(folder, env_name, name)}.json") for name in names]


def save_policies(
    args: CollectArgs, task: TaskSpec, env_name: str, levels: list[str], out: Path
) -> int:
    """Write the policy files --levels needs; 0 if any was written, else 1 (each skip printed)."""
    assert args.save_policies is not None
    folder = Path(args.save_policies).expanduser()
    wanted = [p for p in POLICY_LEVELS if any(p in LEVEL_POLICIES[lvl] for lvl in levels)]
    sac_dir = out / "sac"
    state: dict[str, Any] | None = None
    if (sac_dir / "state.json").is_file():
        state = upgrade_sac_state(json.loads((sac_dir / "state.json").read_text()))
    written = 0
    for level in wanted:
        stem = policy_stem(folder, env_name, level)
        if level == "random":
            files = write_behaviour_policy(uniform_for_task(args, task), stem)
        else:
            zip_path = _snapshot_file(args, state, sac_dir, level)
            reason = _snapshot_problem(args, task, state, level, sac_dir, zip_path)
            if reason is not None:
                print(f"{level}: skipped: {reason}")
                continue
            assert state is not None
            provenance = _snapshot_provenance(args, task, state, level, zip_path, out)
            files = save_behaviour_policy(zip_path, stem, provenance)
        written += 1
        print(f"{level}: wrote {', '.join(str(f) for f in files)}")
    if "medium-replay" in levels:
        stem = policy_stem(folder, env_name, "medium-replay")
        try:
            files = _save_replay(args, task, state, sac_dir, out, stem)
        except PolicyFileError as e:
            print(f"medium-replay: skipped: {e}")
        else:
            written += 1
            print(f"medium-replay: wrote {', '.join(str(f) for f in files)}")
    return 0 if written else 1


def _save_replay(
    args: CollectArgs,
    task: TaskSpec,
    state: dict[str, Any] | None,
    sac_dir: Path,
    out: Path,
    stem: Path,
) -> list[Path]:
    """medium-replay as the SAC run's actions up to the medium snapshot (checked by replay)."""
    zip_path = _snapshot_file(args, state, sac_dir, "medium")
    reason = _snapshot_problem(args, task, state, "medium", sac_dir, zip_path)
    buffer_path = sac_dir / "replay_buffer.pkl"
    if reason is None and not buffer_path.is_file():
        reason = f"{buffer_path} is missing, expected the SAC run's replay buffer"
    if reason is not None:
        raise PolicyFileError(reason)
    assert state is not None
    import_sb3()  # the install hint if SB3 is missing
    from stable_baselines3.common.save_util import load_from_pkl

    buffer = load_from_pkl(buffer_path)  # a local file a dtql collect run wrote
    steps = replay_rows(args, _evaluation(args, state, sac_dir, "medium"))
    if buffer_rows(buffer) < steps:
        raise PolicyFileError(
            f"{buffer_path} holds {buffer_rows(buffer)} rows, expected >= {steps} (the rows "
            "medium-replay takes)"
        )
    space = buffer.action_space
    expected = buffer_transitions(buffer, steps, lambda a: unscale_action(space.low, space.high, a))
    provenance = {
        **_snapshot_provenance(args, task, state, "medium", zip_path, out),
        "level": "medium-replay",
        "policy": replay_description(args),
        "replay_buffer": {"file": str(buffer_path), "rows_used": steps},
    }
    replay = replay_from_buffer(
        task, expected, buffer.actions[:steps, 0], int(state["seed"]), provenance
    )
    return write_replay_actions(replay, stem)


def _snapshot_problem(
    args: CollectArgs,
    task: TaskSpec,
    state: dict[str, Any] | None,
    level: str,
    sac_dir: Path,
    zip_path: Path,
) -> str | None:
    """Why a SAC run has no usable snapshot for `level`, or None."""
    if state is None:
        return f"no SAC run in {sac_dir} (no state.json), expected the --out of a dtql collect run"
    if level == "medium" and args.medium_step is not None:
        if _evaluation(args, state, sac_dir, level) is None:
            return (
                f"{sac_dir / 'state.json'}: no evaluation at --medium-step {args.medium_step}, "
                "expected a step the run saved with --snapshot-every"
            )
        if not zip_path.is_file():
            return f"{zip_path} is missing, expected the snapshot of --medium-step"
        return None
    reason = snapshot_unavailable(args, task, state, level)
    if reason is not None:
        return reason
    if not zip_path.is_file():
        return f"{zip_path} is missing, expected the {level} snapshot that state.json names"
    if level == "medium":  # the run's medium must be the one --medium-fraction picks
        threshold = thresholds(args, task)["medium_threshold_return"]
        # Candidates are the evaluations after training started (step 0 is the random init).
        candidates = (e for e in state["evals"] if e["step"] > 0)
        first = next((e for e in candidates if e["return_mean"] >= threshold), None)
        if first is None or first["step"] != state["medium"]["step"]:
            return (
                f"{sac_dir / 'state.json'}: its medium snapshot (step {state['medium']['step']}) "
                f"is not the first evaluation reaching --medium-fraction {args.medium_fraction:.3g}"
                f" (return {threshold:.1f}), expected the --medium-fraction of that SAC run"
            )
    return None


def _snapshot_file(
    args: CollectArgs, state: dict[str, Any] | None, sac_dir: Path, level: str
) -> Path:
    """The SB3 file of a level's snapshot (for medium, --medium-step's when given)."""
    if level == "medium" and state is not None:
        return medium_snapshot(args, state, sac_dir)[1]
    return sac_dir / f"policy_{SNAPSHOTS[level]}.zip"


def _evaluation(
    args: CollectArgs, state: dict[str, Any], sac_dir: Path, level: str
) -> dict[str, Any] | None:
    """The evaluation record of a level's snapshot (for medium, --medium-step's when given)."""
    if level == "medium":
        return medium_snapshot(args, state, sac_dir)[0]
    return state[SNAPSHOTS[level]]


def _snapshot_provenance(
    args: CollectArgs,
    task: TaskSpec,
    state: dict[str, Any],
    level: str,
    zip_path: Path,
    out: Path,
) -> dict[str, Any]:
    """The provenance of a policy file written from a SAC snapshot."""
    evaluation = _evaluation(args, state, out / "sac", level)
    assert evaluation is not None  # _snapshot_problem found it
    chosen = {}
    if level == "medium" and args.medium_step is not None:  # and its scores, when scored
        scores = read_scores(out / "sac").get(args.medium_step)
        chosen = {"medium_step": args.medium_step, "snapshot_scores": scores}
    return {
        "env_id": task.env_id,
        "level": level,
        "policy": f"SAC {SNAPSHOTS[level]} policy",
        "sac_step": evaluation["step"],
        "evaluation": evaluation,
        **chosen,
        **thresholds(args, task),
        "sac": sac_record(args, state, torch_threads=1),  # run_collect's SAC: one thread
        "snapshot": {"file": str(zip_path), "sha256": file_sha256(zip_path)},
        **_sac_commands(args, task, state, level, out),
        "seeds": {"sac": state["seed"], "eval": evaluation.get("seed")},
        "versions": library_versions(),
        "command": regenerate_command(args),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _sac_commands(
    args: CollectArgs, task: TaskSpec, state: dict[str, Any], level: str, out: Path
) -> dict[str, Any]:
    """The SAC run's own command (from OUT/summary.json, written when a run ends) and the
    command that reruns it for this level's data (medium-replay for the medium policy), built
    from state.json's settings."""
    summary = out / "summary.json"
    command = None
    if summary.is_file():
        try:
            command = json.loads(summary.read_text()).get("command")
        except (ValueError, AttributeError):
            command = None
    rerun = CollectArgs(
        env_id=task.env_id,
        levels="medium-replay" if level == "medium" else level,
        seed=int(state["seed"]),
        sac_steps=int(state["buffer_size"]),
        learning_starts=int(state["learning_starts"]),
        eval_every=eval_every(state) or args.eval_every,
        eval_episodes=int(state["evals"][0]["episodes"]),
        medium_fraction=args.medium_fraction,
        expert_fraction=args.expert_fraction,
        medium_step=args.medium_step if level == "medium" else None,
        replay_steps=args.replay_steps if level == "medium" else None,
    )
    return {
        "sac_command": command,  # None while the run has not ended (no summary.json yet)
        "sac_rerun_command": regenerate_command(rerun),
    }
