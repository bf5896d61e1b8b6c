"""`dtql collect`'s arguments and their checks: CollectArgs, the constants of the protocol (levels,
supported envs, seed offsets), the names and paths of what it writes, and the --out folder checks.
"""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from dtql.envs.registry import TaskSpec, UnknownTaskError, get_task

LEVELS = ("random", "medium", "medium-replay", "expert", "medium-expert")
NAMESPACE = "dtql"
DATASET_VERSION = 0

# Gymnasium id -> the environment name used in dataset ids and in the task registry.
SUPPORTED_ENVS = {
    "Hopper-v5": "hopper",
    "HalfCheetah-v5": "halfcheetah",
    "Walker2d-v5": "walker2d",
    "Ant-v5": "ant",
}

EVAL_SEED_OFFSET = 10_000
COLLECT_SEED_OFFSETS = {"random": 20_000, "medium": 30_000, "expert": 40_000}


class CollectError(Exception):
    """Invalid arguments, or an --out folder that cannot be used; the message is one line."""


@dataclass(frozen=True)
class CollectArgs:
    """Generate D4RL-style datasets (random, medium, medium-replay, expert, medium-expert)."""

    env_id: Annotated[tyro.conf.Positional[str], tyro.conf.arg(metavar="ENV_ID")]
    """Gymnasium MuJoCo env: Hopper-v5, HalfCheetah-v5, Walker2d-v5 or Ant-v5."""
    out: str
    """Folder for everything this command writes: SAC checkpoints, datasets, summary.json."""
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
    eval_every: int = 5_000
    """Evaluate the SAC policy every this many env steps (candidates for the medium snapshot)."""
    eval_episodes: int = 10
    """Episodes per evaluation, run on parallel envs with the stochastic policy."""
    medium_fraction: float = 1 / 3
    """Medium = first snapshot whose evaluated return >= this x the D4RL expert return."""
    expert_fraction: float = 0.7
    """The final policy counts as expert when its evaluated return >= this x the expert return."""
    checkpoint_every: int = 50_000
    """Save SAC (model + replay buffer) every this many env steps, for --resume."""
    num_envs: int = 16
    """Parallel envs for collection (one batched policy call per step)."""
    hdf5: bool = False
    """Also write each dataset as a D4RL-layout .hdf5 file under OUT/d4rl."""
    resume: bool = False
    """Continue the SAC run saved in OUT/sac and keep datasets already written in OUT."""
    progress_bar: bool = True
    """Show tqdm progress bars for SAC training and collection."""


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
    return f"{NAMESPACE}/{env_name}-{level}-v{DATASET_VERSION}"


def minari_dataset_dir(out: Path, env_name: str, level: str) -> Path:
    """out/minari/dtql/<env>-<level>-v0: the folder holding data/ and collect_info.json."""
    return out / "minari" / dataset_id(env_name, level)


def d4rl_file(out: Path, env_name: str, level: str) -> Path:
    """out/d4rl/<env>-<level>-v0.hdf5: the D4RL-layout copy written with --hdf5."""
    return out / "d4rl" / f"{env_name}-{level}-v{DATASET_VERSION}.hdf5"


def dataset_complete(out: Path, env_name: str, level: str, hdf5: bool) -> bool:
    """A dataset an earlier run finished: collect_info.json (and the .hdf5's .json) come last."""
    done = (minari_dataset_dir(out, env_name, level) / "collect_info.json").is_file()
    return done and (not hdf5 or d4rl_file(out, env_name, level).with_suffix(".json").is_file())


def regenerate_command(args: CollectArgs) -> str:
    """The `dtql collect` command line that reproduces `args` (defaults left out, no --resume)."""
    parts = ["dtql", "collect", args.env_id, "--out", args.out]
    for f in dataclasses.fields(CollectArgs):
        if f.name in ("env_id", "out", "resume", "progress_bar"):
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


def check_args(args: CollectArgs) -> None:
    """Counts must be >= 1 (learning_starts >= 0), the fractions in [0, 2]."""
    positive = ("transitions", "sac_steps", "eval_every", "eval_episodes", "checkpoint_every")
    for name in (*positive, "num_envs"):
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


def check_out(out: Path, args: CollectArgs, env_name: str, levels: list[str]) -> None:
    """Refuse to mix a new run into an --out folder that holds an earlier one."""
    if args.resume:
        return
    earlier = [out / "sac" / "state.json"]
    earlier += [minari_dataset_dir(out, env_name, level) for level in levels]
    earlier += [d4rl_file(out, env_name, level) for level in levels]
    found = [str(p) for p in earlier if p.exists()]
    if found:
        raise CollectError(
            f"--out {out} holds an earlier run ({found[0]}), expected a new folder "
            "(or pass --resume to continue it)"
        )
