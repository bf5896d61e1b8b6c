"""`dtql collect`'s arguments and their checks: CollectArgs, the constants of the protocol (levels,
supported envs, seed offsets), the names and paths of what it writes, and the --out folder checks.

The names (dtql/<env>-<level>-v0) and the --out layout are defined beside their reader, in
`dtql.data.collected`, so that `dtql train --task` and `dtql data info` find what this command
writes.
"""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from dtql.data.collected import (
    COLLECTED_ENV_IDS,
    COLLECTED_LEVELS,
    COLLECTED_NAMESPACE,
    COLLECTED_VERSION,
    collect_out_paths,
    collected_dataset_id,
    local_datasets_dir,
)
from dtql.envs.registry import TaskSpec, UnknownTaskError, get_task

LEVELS = COLLECTED_LEVELS
NAMESPACE = COLLECTED_NAMESPACE
DATASET_VERSION = COLLECTED_VERSION

# Gymnasium id -> the environment name used in dataset ids and in the task registry.
SUPPORTED_ENVS = {env_id: name for name, env_id in COLLECTED_ENV_IDS.items()}

EVAL_SEED_OFFSET = 10_000
COLLECT_SEED_OFFSETS = {"random": 20_000, "medium": 30_000, "expert": 40_000}


class CollectError(Exception):
    """Invalid arguments, or an --out folder that cannot be used; the message is one line."""


@dataclass(frozen=True)
class CollectArgs:
    """Generate D4RL-style datasets (random, medium, medium-replay, expert, medium-expert)."""

    env_id: Annotated[tyro.conf.Positional[str], tyro.conf.arg(metavar="ENV_ID")]
    """Gymnasium MuJoCo env: Hopper-v5, HalfCheetah-v5, Walker2d-v5 or Ant-v5."""
    out: str | None = None
    """Folder for everything this command writes: SAC checkpoints, datasets, summary.json
    (default $DTQL_DATASETS_DIR/<env>, i.e. ~/.dtql/datasets/<env>, where `dtql train --task`
    and `dtql data info` find the datasets by name). With --save-policies: the SAC run to read."""
    levels: str = "random,medium,medium-replay,expert,medium-expert"
    """Comma-separated datasets to make."""
    transitions: int = 1_000_000
    """Transitions per dataset (D4RL's size); medium-replay is the buffer, medium-expert 2x."""
    seed: int = 0
    """Seed of SAC; evaluation and collection seeds are derived from it (see the module doc)."""
    sac_steps: int = 1_000_000
    """SAC training budget in env steps (also the replay buffer's size)."""
    learning_starts: int = 10_000
    """Uniformly random warm-up steps before SAC's first update (rl-baselines3-zoo's value)."""
    eval_every: int = 1_000
    """Evaluate the SAC policy every this many env steps (candidates for the medium snapshot):
    often, so that medium is the first policy to reach 1/3 of expert, not a later jump past it."""
    eval_episodes: int = 10
    """Episodes per evaluation, run on parallel envs with the stochastic policy."""
    medium_fraction: float = 1 / 3
    """Medium = first snapshot whose evaluated return >= this x the D4RL expert return."""
    expert_fraction: float = 0.7
    """The final policy counts as expert when its evaluated return >= this x the expert return."""
    expert_stop_fraction: float = 0.9
    """SAC stops before --sac-steps at the first evaluation whose return >= this x the expert
    return (D4RL trained its experts to within about 10% of the reference); that policy is the
    final one. A value no policy reaches (e.g. 10) trains the whole budget."""
    expert_eval_every: int = 5_000
    """After the medium snapshot, evaluate every this many env steps: the evaluations then only
    watch for the expert stop, and expert episodes run 1000 steps each."""
    checkpoint_every: int = 50_000
    """Save SAC (model + replay buffer) every this many env steps, for --resume."""
    snapshot_every: int | None = None
    """Also save the SAC policy every this many env steps (OUT/sac/snapshots/step_<k>.zip, each
    evaluated there too), the candidates `--score-snapshots` scores and `--medium-step` picks."""
    medium_step: int | None = None
    """The medium snapshot is the policy at this step (a --snapshot-every step, chosen by its
    stochastic and mean-action scores) instead of the first to reach --medium-fraction; the SAC
    run trains to it, and medium-replay is the replay buffer up to it."""
    replay_steps: int | None = None
    """medium-replay is the replay buffer's first this many rows instead of the rows up to the
    medium snapshot: D4RL's medium-replay buffers are about 202k (halfcheetah), 402k (hopper)
    and 302k (walker2d) rows, more than a SAC run takes to reach a D4RL-like medium policy."""
    score_snapshots: bool = False
    """Score every snapshot of the SAC run in OUT/sac/snapshots with stochastic and mean actions
    (--eval-episodes each), write OUT/sac/snapshot_scores.json and print them beside D4RL's
    medium data and BC scores; then exit (no training, no datasets)."""
    num_envs: int = 16
    """Parallel envs for collection (one batched policy call per step)."""
    hdf5: bool = False
    """Also write each dataset as a D4RL-layout .hdf5 file under OUT/d4rl."""
    resume: bool = False
    """Continue the SAC run saved in OUT/sac and keep datasets already written in OUT."""
    progress_bar: bool = True
    """Show tqdm progress bars for SAC training and collection."""
    from_policies: bool = False
    """Make the datasets from behaviour-policy files instead of a SAC run (no SAC, no torch;
    deterministic for --seed): the files shipped with dtql, or those in --policies. medium-replay
    is replayed from the SAC run's actions (<env>-medium-replay); without that file it is
    skipped with the seeded SAC rerun that makes it."""
    policies: str | None = None
    """With --from-policies: the folder of the <env>-<level>.json/.safetensors files (default:
    those shipped in dtql/assets/policies)."""
    save_policies: str | None = None
    """Write the behaviour policies of the SAC run in OUT/sac that --levels needs (random,
    medium, expert, and medium-replay as the run's actions) to this folder as
    <env>-<level>.json/.safetensors, then exit: no training, no datasets."""


def parse_levels(levels: str) -> list[str]:
    """'random,medium' -> ['random', 'medium'] in the order given, duplicates dropped."""
    names = [name.strip() for name in levels.split(",") if name.strip()]
    unknown = [name for name in names if name not in LEVELS]
    if unknown or not names:
        raise CollectError(
            f"--levels {levels!r}: unknown level(s) {', '.join(unknown) or '(none given)'}, "
            f"expected a comma-separated subset of {','.join(LEVELS)}"
        )
    return list(dict.fromkeys(names))


def resolve_env(env_id: str) -> tuple[TaskSpec, str]:
    """The evaluation task of a supported env id and its short name (e.g. 'hopper')."""
    if env_id not in SUPPORTED_ENVS:
        raise CollectError(
            f"env {env_id!r} is not supported, expected one of {', '.join(SUPPORTED_ENVS)}"
        )
    env_name = SUPPORTED_ENVS[env_id]
    try:
        task = get_task(env_name)
    except UnknownTaskError as e:
        raise CollectError(
            f"env {env_id!r} has no task entry {env_name!r} in dtql.envs.registry (its D4RL "
            f"reference returns are needed for the medium threshold and the metadata): {e}"
        ) from e
    if task.env_id != env_id:
        raise CollectError(f"task {env_name!r} evaluates in {task.env_id}, not {env_id}")
    return task, env_name


# --------------------------------------------------------------------------- names and paths


def dataset_id(env_name: str, level: str) -> str:
    """Minari id of a generated dataset, e.g. 'dtql/hopper-medium-v0'."""
    return collected_dataset_id(env_name, level)


def out_dir(args: CollectArgs, env_name: str) -> Path:
    """--out, or the local datasets folder of the env ($DTQL_DATASETS_DIR/<env>)."""
    return Path(args.out).expanduser() if args.out else local_datasets_dir() / env_name


def minari_dataset_dir(out: Path, env_name: str, level: str) -> Path:
    """out/minari/dtql/<env>-<level>-v0: the folder holding data/ and collect_info.json."""
    return collect_out_paths(out, env_name, level)[0]


def d4rl_file(out: Path, env_name: str, level: str) -> Path:
    """out/d4rl/<env>-<level>-v0.hdf5: the D4RL-layout copy written with --hdf5."""
    return collect_out_paths(out, env_name, level)[1]


def dataset_complete(out: Path, env_name: str, level: str, hdf5: bool) -> bool:
    """A dataset an earlier run finished: collect_info.json (and the .hdf5's .json) come last."""
    done = (minari_dataset_dir(out, env_name, level) / "collect_info.json").is_file()
    return done and (not hdf5 or d4rl_file(out, env_name, level).with_suffix(".json").is_file())


def regenerate_command(args: CollectArgs) -> str:
    """The `dtql collect` command line that reproduces `args` (defaults left out, no --resume)."""
    parts = ["dtql", "collect", args.env_id]
    for f in dataclasses.fields(CollectArgs):
        if f.name in ("env_id", "resume", "progress_bar"):
            continue
        value = getattr(args, f.name)
        if value == f.default:
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else "--no-" + f.name.replace("_", "-"))
        else:
            parts += [flag, str(value)]
    return shlex.join(parts)


# --------------------------------------------------------------------------- checks


# Flags of the SAC run, which --from-policies does not make (its policies are made already).
SAC_FLAGS = (
    "sac_steps",
    "learning_starts",
    "eval_every",
    "eval_episodes",
    "medium_fraction",
    "expert_fraction",
    "expert_stop_fraction",
    "expert_eval_every",
    "checkpoint_every",
    "snapshot_every",
)


def check_args(args: CollectArgs) -> None:
    """Counts must be >= 1 (learning_starts >= 0), the fractions in [0, 2], and the modes
    (SAC run, --from-policies, --save-policies) not mixed."""
    modes = [args.from_policies, args.save_policies is not None, args.score_snapshots]
    if sum(modes) > 1:
        raise CollectError(
            "--from-policies, --save-policies and --score-snapshots exclude each other, "
            "expected one at most"
        )
    for name in ("medium_step", "replay_steps"):
        if args.from_policies and getattr(args, name) is not None:
            raise CollectError(
                f"--{name.replace('_', '-')} reads a SAC run, which --from-policies does not; "
                "expected it left out"
            )
    if args.policies is not None and not args.from_policies:
        raise CollectError("--policies is read only with --from-policies, expected both or neither")
    if args.from_policies:
        defaults = {f.name: f.default for f in dataclasses.fields(CollectArgs)}
        for name in SAC_FLAGS:
            if getattr(args, name) != defaults[name]:
                raise CollectError(
                    f"--{name.replace('_', '-')} sets the SAC run, which --from-policies does "
                    "not make; expected it left out"
                )
    positive = (
        "transitions",
        "sac_steps",
        "eval_every",
        "expert_eval_every",
        "eval_episodes",
        "checkpoint_every",
    )
    optional = [
        name for name in ("snapshot_every", "medium_step") if getattr(args, name) is not None
    ]
    for name in (*positive, "num_envs", *optional):
        if getattr(args, name) < 1:
            raise CollectError(
                f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}"
            )
    if args.learning_starts < 0:
        raise CollectError(f"--learning-starts must be >= 0, got {args.learning_starts}")
    for name in ("medium_fraction", "expert_fraction"):
        if not 0 <= getattr(args, name) <= 2:
            raise CollectError(
                f"--{name.replace('_', '-')} must be in [0, 2], got {getattr(args, name)}"
            )
    if args.expert_stop_fraction < 0:
        raise CollectError(f"--expert-stop-fraction must be >= 0, got {args.expert_stop_fraction}")


def check_out(out: Path, args: CollectArgs, env_name: str, levels: list[str]) -> None:
    """Refuse to mix a new run into an --out folder that holds an earlier one (--from-policies
    makes no SAC run, so only its own datasets count)."""
    if args.resume:
        return
    earlier = [] if args.from_policies else [out / "sac" / "state.json"]
    earlier += [minari_dataset_dir(out, env_name, level) for level in levels]
    earlier += [d4rl_file(out, env_name, level) for level in levels]
    found = [str(p) for p in earlier if p.exists()]
    if found:
        raise CollectError(
            f"--out {out} holds an earlier run ({found[0]}), expected a new folder "
            "(or pass --resume to continue it)"
        )
