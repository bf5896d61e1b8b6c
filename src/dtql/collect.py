"""`dtql collect`: D4RL-style datasets for the Gymnasium MuJoCo envs, made as D4RL made its own.

Protocol (D4RL's Gym locomotion datasets)
-----------------------------------------
1. Train an online SAC agent (stable-baselines3, never our own SAC) for at most ``sac_steps``
   env steps, one env, with rl-baselines3-zoo's MuJoCo settings (SB3 defaults, 10k random warm-up
   steps). Every ``eval_every`` steps the *stochastic* policy (the one that collects the data, as
   in D4RL) is evaluated for ``eval_episodes`` episodes in the evaluation env.
2. Behaviour policies:

   * ``random``: the randomly initialised SAC policy (step 0);
   * ``medium``: the first snapshot whose evaluated return reaches
     ``medium_fraction`` x the D4RL expert reference return (1/3 by default);
   * ``expert``: the final policy after ``sac_steps`` steps, provided its evaluated return reaches
     ``expert_fraction`` x the expert reference return; otherwise it is skipped with a message.

3. Datasets (levels): ``random``, ``medium`` and ``expert`` are ``transitions`` steps of their
   policy's stochastic actions; ``medium-replay`` is SAC's replay buffer up to the medium snapshot
   (random warm-up included, as in D4RL; its size is whatever the buffer held); ``medium-expert``
   is medium followed by expert (2 x ``transitions``). A level that cannot be made is skipped
   with its reason; the run still succeeds (exit 0) when any requested level was written.

When no requested level needs the expert, SAC stops at the medium snapshot.

Collection runs ``num_envs`` copies of the evaluation env with one batched policy call per step.
Each env collects its share of ``transitions`` as one sequential stream (so short episodes are not
favoured) and its last episode is cut at the share, flagged as a timeout. Terminals (the env
terminated) and timeouts (the time limit, or a cut) are recorded separately.

Names and files (everything is written under ``--out``; nothing goes to ~/.minari)
-------------------------------------------------------------------------------------------
A dataset is named ``dtql/<env>-<level>-v0``, e.g. ``dtql/hopper-medium-v0``: D4RL's
``<env>-<level>`` in the ``dtql`` Minari namespace, with its own version (v0) because the data
come from Gymnasium v5 envs and are not D4RL's v2 datasets. ``<env>`` is hopper, halfcheetah,
walker2d or ant.

    out/summary.json                  what became of each level (written / kept / skipped);
                                      a resume keeps the records of levels it was not asked for
    out/sac/                          the SAC run: checkpoint.zip, replay_buffer.pkl, state.json
                                      (evaluations, snapshots), policy_{random,medium,final}.zip
    out/minari/dtql/<env>-<level>-v0/
        data/                         the Minari dataset: metadata.json, main_data.hdf5
        collect_info.json             how it was made (= metadata.json's "dtql_collect")
    out/d4rl/<env>-<level>-v0.hdf5    with --hdf5: D4RL layout (observations, actions, rewards,
                                      terminals, timeouts, next_observations, and
                                      metadata/dtql_collect as a JSON string), + .json beside it

``dtql.data.load_dataset`` reads ``out/minari/dtql/<env>-<level>-v0`` or the .hdf5 file; with
MINARI_DATASETS_PATH=out/minari the id ``dtql/<env>-<level>-v0`` works too.

Minari's metadata.json holds ``eval_env_spec`` (the evaluation env, with D4RL's 1000-step time
limit), ``ref_min_score`` / ``ref_max_score`` (D4RL's random and expert returns, from
`dtql.envs.registry`), ``algorithm_name``, ``description``, ``requirements`` (pins of the
simulator) and the provenance record under ``"dtql_collect"`` (see `provenance`).

Checkpoints and --resume
------------------------
SAC is checkpointed every ``checkpoint_every`` steps and at its end (SB3 zip + pickled replay
buffer; these are local files this command wrote, loaded only with --resume). ``--resume``
continues from the last checkpoint: the episode in progress at the checkpoint is cut there (its
last buffered step becomes a timeout) and the env is reset, so a resumed run is not bit-identical
to an uninterrupted one. Datasets already written by an earlier run are kept. A larger
``--sac-steps`` on resume trains on, with the replay buffer grown to the new budget.

Seeds: SAC and its env use ``seed``; evaluation envs ``seed + 10_000 (+ i for env i)``;
collection of random / medium / expert uses ``seed + 20_000 / 30_000 / 40_000`` for the envs
(+ i) and the action noise (torch).

stable-baselines3 and torch are the optional extra ``dtql[collect]``; torch runs on one thread.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import gymnasium as gym
import h5py
import numpy as np
import tyro
from tqdm import tqdm

from dtql.data.transitions import (
    Transitions,
    concat_transitions,
    episode_slices,
    transitions_from_rows,
)
from dtql.envs.make import make_env, make_single_env
from dtql.envs.registry import TaskSpec, UnknownTaskError, get_task, normalized_score
from dtql.evaluation import EvalResult, evaluate
from dtql.files import write_json_atomic

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

# rl-baselines3-zoo's SAC settings for the MuJoCo envs: SB3 defaults (lr 3e-4, batch 256,
# 256x256 MLPs, gamma 0.99, tau 0.005, automatic entropy tuning, one update per step) except the
# random warm-up, which CollectArgs.learning_starts sets.
SAC_KWARGS: dict[str, Any] = {
    "learning_rate": 3e-4,
    "batch_size": 256,
    "gamma": 0.99,
    "tau": 0.005,
    "train_freq": 1,
    "gradient_steps": 1,
    "ent_coef": "auto",
    "policy_kwargs": {"net_arch": [256, 256]},
}

INSTALL_HINT = "dtql collect needs the collect extra: pip install 'dtql[collect]'"


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


# ============================================================================================
# Entry point
# ============================================================================================


def run_collect(args: CollectArgs) -> int:
    """Run the whole protocol. Returns 0 if any requested dataset exists at the end, else 1;
    2 for invalid arguments or an --out folder that holds an earlier run without --resume."""
    started = time.monotonic()
    try:
        levels = parse_levels(args.levels)
        _check_args(args)
        task, env_name = resolve_env(args.env_id)
        out = Path(args.out).expanduser()
        _check_out(out, args, env_name, levels)
        torch, sac_cls = _import_sb3()
        torch.set_num_threads(1)
        status: dict[str, dict[str, Any]] = {}
        todo = []
        for level in levels:
            if args.resume and _dataset_complete(out, env_name, level, args.hdf5):
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
            trainer.train(stop_at_medium=stop_at_medium)
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


# ============================================================================================
# Arguments
# ============================================================================================


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


def dataset_id(env_name: str, level: str) -> str:
    """Minari id of a generated dataset, e.g. 'dtql/hopper-medium-v0'."""
    return f"{NAMESPACE}/{env_name}-{level}-v{DATASET_VERSION}"


def minari_dataset_dir(out: Path, env_name: str, level: str) -> Path:
    """out/minari/dtql/<env>-<level>-v0: the folder holding data/ and collect_info.json."""
    return out / "minari" / dataset_id(env_name, level)


def d4rl_file(out: Path, env_name: str, level: str) -> Path:
    return out / "d4rl" / f"{env_name}-{level}-v{DATASET_VERSION}.hdf5"


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


def _check_args(args: CollectArgs) -> None:
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


def _check_out(out: Path, args: CollectArgs, env_name: str, levels: list[str]) -> None:
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


def _import_sb3() -> tuple[Any, Any]:
    try:
        import torch
        from stable_baselines3 import SAC
    except ImportError as e:
        raise CollectError(f"{INSTALL_HINT} ({e})") from e
    return torch, SAC


# ============================================================================================
# SAC training, snapshots and checkpoints
# ============================================================================================


class SacRun:
    """One SAC run in ``sac_dir``: trains in chunks between evaluations and checkpoints.

    Between chunks the replay buffer holds exactly ``num_timesteps`` rows and every gradient
    step of those rows is done, so evaluations, snapshots and checkpoints see a clean state.
    ``state`` (saved as state.json) records the evaluations and the snapshots.
    """

    def __init__(self, args: CollectArgs, task: TaskSpec, sac_dir: Path, sac_cls, torch):
        self.args = args
        self.task = task
        self.dir = sac_dir
        self.sac_cls = sac_cls
        self.torch = torch
        self.model = None
        self.state: dict[str, Any] = {}
        self._saved = False  # whether the checkpoint on disk holds the current state
        self.medium_threshold = args.medium_fraction * task.ref_max_score
        self.expert_threshold = args.expert_fraction * task.ref_max_score

    # ---------------------------------------------------------------------------- setup

    def setup(self) -> None:
        """Load the checkpoint (--resume) or start a new run and snapshot the random policy."""
        checkpoint = self.dir / "checkpoint.zip"
        if self.args.resume and checkpoint.exists():
            self._load()
        else:
            self._new()

    def _identity(self) -> dict[str, Any]:
        """What must match for a checkpoint to be resumed."""
        return {
            "env_id": self.task.env_id,
            "seed": self.args.seed,
            "learning_starts": self.args.learning_starts,
            "sac_kwargs": SAC_KWARGS,
        }

    def _new(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        env = make_single_env(self.task)  # the evaluation env
        self.model = self.sac_cls(
            "MlpPolicy",
            env,
            buffer_size=self.args.sac_steps,
            learning_starts=self.args.learning_starts,
            seed=self.args.seed,
            device="cpu",
            verbose=0,
            **copy.deepcopy(SAC_KWARGS),  # SB3 adds keys to policy_kwargs
        )
        self.model.save(self.dir / "policy_random.zip")
        random_eval = self.evaluate()
        self.state = {
            **self._identity(),
            "buffer_size": self.args.sac_steps,
            "num_timesteps": 0,
            "train_wall_time_s": 0.0,
            "resumed": 0,
            "evals": [random_eval],
            "random": random_eval,
            "medium": None,
            "final": None,
        }
        self._checkpoint()

    def _load(self) -> None:
        state = json.loads((self.dir / "state.json").read_text())
        mismatched = {
            key: (state.get(key), value)
            for key, value in self._identity().items()
            if state.get(key) != value
        }
        if mismatched:
            detail = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in mismatched.items())
            raise CollectError(f"cannot resume {self.dir}: {detail}")
        if self.args.sac_steps < state["num_timesteps"]:
            raise CollectError(
                f"cannot resume {self.dir} with --sac-steps {self.args.sac_steps}: it has "
                f"trained {state['num_timesteps']} steps, expected --sac-steps >= that"
            )
        env = make_single_env(self.task)  # the evaluation env
        model = self.sac_cls.load(self.dir / "checkpoint.zip", env=env, device="cpu")
        model.load_replay_buffer(self.dir / "replay_buffer.pkl")
        buffer = model.replay_buffer
        steps = int(state["num_timesteps"])
        if model.num_timesteps != steps or buffer_rows(buffer) != steps:
            raise CollectError(
                f"cannot resume {self.dir}: checkpoint at step {model.num_timesteps}, replay "
                f"buffer at {buffer_rows(buffer)}, state.json at {steps}, expected the same step "
                "(a checkpoint write was interrupted?)"
            )
        if self.args.sac_steps > buffer.buffer_size:
            # A larger budget: the buffer grows so that it still never wraps (medium-replay
            # reads it from its first row).
            buffer = model.replay_buffer = grown_buffer(buffer, self.args.sac_steps)
            model.buffer_size = state["buffer_size"] = self.args.sac_steps
        # The episode in progress at the checkpoint ends here: a timeout, then a fresh reset.
        if steps > 0 and not buffer.dones[steps - 1, 0]:
            buffer.dones[steps - 1, 0] = 1.0
            buffer.timeouts[steps - 1, 0] = 1.0
        model._last_obs = None  # makes learn() reset the env
        model.set_random_seed(self.args.seed + steps)
        if state["final"] is not None and state["final"]["step"] < self.args.sac_steps:
            state["final"] = None  # a larger budget: the old final policy is not final any more
        state["resumed"] = int(state.get("resumed", 0)) + 1
        self.model, self.state = model, state
        print(f"resumed SAC from {self.dir} at step {steps}")

    # ---------------------------------------------------------------------------- training

    def train(self, stop_at_medium: bool) -> None:
        """Train up to sac_steps (or to the medium snapshot when stop_at_medium)."""
        args, model = self.args, self.model
        bar = tqdm(
            total=args.sac_steps,
            initial=model.num_timesteps,
            desc=f"SAC {self.task.env_id}",
            unit="step",
            disable=not args.progress_bar,
            mininterval=_bar_interval(),
        )

        def on_step(_locals, _globals) -> bool:
            bar.update(1)
            return True

        self._update_bar(bar)
        try:
            while model.num_timesteps < args.sac_steps:
                if stop_at_medium and self.state["medium"] is not None:
                    break
                step = model.num_timesteps
                next_eval = (step // args.eval_every + 1) * args.eval_every
                next_checkpoint = (step // args.checkpoint_every + 1) * args.checkpoint_every
                stop = min(next_eval, next_checkpoint, args.sac_steps)
                chunk_started = time.monotonic()
                self._saved = False
                model.learn(stop - step, reset_num_timesteps=False, callback=on_step)
                self.state["train_wall_time_s"] += time.monotonic() - chunk_started
                self.state["num_timesteps"] = step = model.num_timesteps

                if step % args.eval_every == 0 or step == args.sac_steps:
                    self._after_eval(self.evaluate(), bar)
                if step % args.checkpoint_every == 0 or step == args.sac_steps:
                    self._checkpoint()
        finally:
            bar.close()

        if model.num_timesteps >= args.sac_steps and self.state["final"] is None:
            final = self.state["evals"][-1]
            if final["step"] != model.num_timesteps:
                final = self.evaluate()
                self.state["evals"].append(final)
            model.save(self.dir / "policy_final.zip")
            self.state["final"] = final
            self._checkpoint()
        elif model.num_timesteps != self.state["num_timesteps"] or not self._saved:
            self._checkpoint()

    def _after_eval(self, result: dict[str, Any], bar: tqdm) -> None:
        self.state["evals"].append(result)
        if self.args.progress_bar:
            tqdm.write(
                f"step {result['step']}: evaluated return {result['return_mean']:.1f} "
                f"(normalized {result['normalized_score']:.1f}), "
                f"SAC time {self.state['train_wall_time_s']:.0f} s"
            )
        if self.state["medium"] is None and result["return_mean"] >= self.medium_threshold:
            self.model.save(self.dir / "policy_medium.zip")
            self.state["medium"] = result
            tqdm.write(
                f"medium snapshot at step {result['step']}: return {result['return_mean']:.1f} "
                f">= {self.medium_threshold:.1f} (normalized {result['normalized_score']:.1f})"
            )
        self._update_bar(bar)

    def _update_bar(self, bar: tqdm) -> None:
        last = self.state["evals"][-1]
        medium = self.state["medium"]
        bar.set_postfix(
            eval_return=f"{last['return_mean']:.0f}",
            normalized=f"{last['normalized_score']:.1f}",
            medium=f"step {medium['step']}" if medium else f"< {self.medium_threshold:.0f}",
        )

    def evaluate(self) -> dict[str, Any]:
        """Evaluate the stochastic policy of the model being trained."""
        result = evaluate(
            self.task,
            stochastic_act_fn(self.model),
            episodes=self.args.eval_episodes,
            seed=self.args.seed + EVAL_SEED_OFFSET,
            num_envs=self.args.eval_episodes,
            act_mode="stochastic",
        )
        return eval_record(
            result,
            step=int(self.model.num_timesteps),
            seed=self.args.seed,
            sac_wall_time_s=float(self.state.get("train_wall_time_s", 0.0)),
        )

    def _checkpoint(self) -> None:
        """Model, replay buffer, then state.json (which names the step), each replaced whole."""
        self.dir.mkdir(parents=True, exist_ok=True)
        model_tmp = self.dir / "checkpoint.tmp.zip"
        buffer_tmp = self.dir / "replay_buffer.tmp.pkl"
        self.model.save(model_tmp)
        self.model.save_replay_buffer(buffer_tmp)
        os.replace(model_tmp, self.dir / "checkpoint.zip")
        os.replace(buffer_tmp, self.dir / "replay_buffer.pkl")
        self.state["num_timesteps"] = int(self.model.num_timesteps)
        write_json_atomic(self.dir / "state.json", self.state)
        self._saved = True

    # ---------------------------------------------------------------------------- snapshots

    def load_policy(self, name: str):
        """A saved snapshot ('random', 'medium' or 'final') as an SB3 model."""
        return self.sac_cls.load(self.dir / f"policy_{name}.zip", device="cpu")

    def replay_transitions(self, steps: int) -> Transitions:
        """The first `steps` rows of the replay buffer as episodes (the last one cut: timeout)."""
        buffer = self.model.replay_buffer
        if buffer_rows(buffer) < steps:
            raise RuntimeError(
                f"replay buffer holds {buffer_rows(buffer)} rows, expected >= {steps}"
            )
        dones = buffer.dones[:steps, 0] > 0
        timeouts = dones & (buffer.timeouts[:steps, 0] > 0)
        terminals = dones & ~timeouts
        timeouts[-1] = not terminals[-1]
        actions = self.model.policy.unscale_action(buffer.actions[:steps, 0])
        return transitions_from_rows(
            observations=buffer.observations[:steps, 0],
            actions=actions,
            rewards=buffer.rewards[:steps, 0],
            next_observations=buffer.next_observations[:steps, 0],
            terminals=terminals,
            timeouts=timeouts,
            source="sac replay buffer",
        )


def grown_buffer(buffer, size: int):
    """A copy of an SB3 replay buffer with room for `size` rows, holding the same rows."""
    grown = type(buffer)(
        size,
        buffer.observation_space,
        buffer.action_space,
        device=buffer.device,
        n_envs=buffer.n_envs,
        optimize_memory_usage=buffer.optimize_memory_usage,
        handle_timeout_termination=buffer.handle_timeout_termination,
    )
    rows = buffer_rows(buffer)
    for name in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
        getattr(grown, name)[:rows] = getattr(buffer, name)[:rows]
    grown.pos = rows
    return grown


def buffer_rows(buffer) -> int:
    """Rows an SB3 replay buffer holds from its start; -1 once it has wrapped (rows overwritten).

    The buffer is sized sac_steps (grown on a resume with more), so it never wraps.
    """
    if not buffer.full:
        return int(buffer.pos)
    return int(buffer.buffer_size) if buffer.pos == 0 else -1


def stochastic_act_fn(model) -> Callable[[np.ndarray], np.ndarray]:
    """Batched stochastic actions of an SB3 policy: [n, obs_dim] -> [n, act_dim] in the bounds."""

    def act(obs: np.ndarray) -> np.ndarray:
        actions, _ = model.policy.predict(obs, deterministic=False)
        return actions

    return act


def eval_record(result: EvalResult, step: int, seed: int, sac_wall_time_s: float) -> dict[str, Any]:
    """One evaluation of a SAC snapshot, as stored in state.json and in the provenance."""
    summary = result.summary()
    return {
        "step": step,
        "sac_wall_time_s": round(sac_wall_time_s, 1),  # SAC training time up to this snapshot
        "return_mean": summary["return_mean"],
        "return_std": summary["return_std"],
        "normalized_score": summary["normalized_score_mean"],
        "episodes": result.episodes,
        "length_mean": summary["episode_length_mean"],
        "actions": "stochastic",
        "seed": seed + EVAL_SEED_OFFSET,
    }


# ============================================================================================
# Collection
# ============================================================================================


def collect(
    task: TaskSpec,
    act_fn: Callable[[np.ndarray], np.ndarray],
    transitions: int,
    num_envs: int,
    seed: int,
    desc: str = "collect",
    progress_bar: bool = True,
) -> Transitions:
    """`transitions` steps of `act_fn` on `num_envs` envs (env i seeded seed + i).

    Env i collects a fixed share of the steps as one sequential stream; its last episode is cut
    at the share and flagged as a timeout. The streams are concatenated env by env.
    """
    n = min(num_envs, transitions)
    shares = np.full(n, transitions // n)
    shares[: transitions % n] += 1
    envs = make_env(task, n)  # SAME_STEP autoreset: every step is a real transition
    space = envs.single_action_space
    obs_dim, act_dim = task.obs_dim, task.act_dim
    rows = [
        {
            "observations": np.zeros((share, obs_dim), np.float32),
            "next_observations": np.zeros((share, obs_dim), np.float32),
            "actions": np.zeros((share, act_dim), np.float32),
            "rewards": np.zeros(share, np.float32),
            "terminals": np.zeros(share, bool),
            "timeouts": np.zeros(share, bool),
        }
        for share in shares
    ]
    counts = np.zeros(n, dtype=np.int64)
    bar = tqdm(
        total=transitions,
        desc=desc,
        unit="step",
        disable=not progress_bar,
        mininterval=_bar_interval(),
    )
    try:
        obs, _ = envs.reset(seed=seed)
        while (counts < shares).any():
            actions = np.asarray(act_fn(obs.astype(np.float32)), dtype=np.float32)
            actions = np.clip(actions, space.low, space.high)
            next_obs, rewards, terminated, truncated, info = envs.step(actions)
            final_obs = next_obs.copy()
            if "_final_obs" in info:
                for i in np.flatnonzero(info["_final_obs"]):
                    final_obs[i] = info["final_obs"][i]
            active = np.flatnonzero(counts < shares)
            for i in active:
                row, env_rows = counts[i], rows[i]
                env_rows["observations"][row] = obs[i]
                env_rows["next_observations"][row] = final_obs[i]
                env_rows["actions"][row] = actions[i]
                env_rows["rewards"][row] = rewards[i]
                env_rows["terminals"][row] = terminated[i]
                env_rows["timeouts"][row] = truncated[i] and not terminated[i]
            counts[active] += 1
            bar.update(len(active))
            obs = next_obs
    finally:
        bar.close()
        envs.close()

    for env_rows in rows:  # the stream's last episode is cut at the share
        env_rows["timeouts"][-1] = not env_rows["terminals"][-1]
    arrays = {key: np.concatenate([r[key] for r in rows]) for key in rows[0]}
    return transitions_from_rows(**arrays, source=f"{task.env_id} collection")


# ============================================================================================
# Datasets
# ============================================================================================


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
    expert_reason = _expert_unavailable(args, trainer)
    medium_reason = (
        None
        if state["medium"] is not None
        else (
            f"no SAC snapshot reached the medium threshold {trainer.medium_threshold:.1f} "
            f"(= {args.medium_fraction:.3g} x expert return {task.ref_max_score}) within "
            f"{state['num_timesteps']} steps (best evaluated return "
            f"{max(e['return_mean'] for e in state['evals']):.1f}); raise --sac-steps"
        )
    )
    snapshots = {
        "random": ("random", None, state["random"]),
        "medium": ("medium", medium_reason, state["medium"]),
        "expert": ("final", expert_reason, state["final"]),
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
            behaviour = [_behaviour(state["medium"], "replay buffer up to the medium snapshot")]
            collection = {"source": "SAC replay buffer", "rows": data.num_transitions}
        else:
            datas = [policy_data(p) for p in parts]
            data = concat_transitions([d for d, _ in datas], source=level)
            wall = sum(w for _, w in datas)
            behaviour = [
                _behaviour(snapshots[p][2], f"SAC {snapshots[p][0]} policy") for p in parts
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
            f"{final['return_mean']:.1f} (normalized {final['normalized_score']:.1f}), below the "
            f"expert threshold {trainer.expert_threshold:.1f} (= {args.expert_fraction:.3g} x "
            f"expert return {trainer.task.ref_max_score}); raise --sac-steps"
        )
    return None


def _behaviour(evaluation: dict[str, Any], kind: str) -> dict[str, Any]:
    return {"policy": kind, "sac_step": evaluation["step"], "evaluation": evaluation}


def provenance(
    args: CollectArgs,
    task: TaskSpec,
    env_name: str,
    level: str,
    data: Transitions,
    trainer: SacRun,
    behaviour: list[dict[str, Any]],
    collection: dict[str, Any],
    collection_wall_s: float,
) -> dict[str, Any]:
    """How a dataset was made: stored in metadata.json ("dtql_collect") and collect_info.json."""
    state = trainer.state
    return_mean = float(np.mean(data.episode_returns))
    return {
        "format_version": 1,
        "dataset_id": dataset_id(env_name, level),
        "level": level,
        "env_id": task.env_id,
        "max_episode_steps": task.max_episode_steps,
        "ref_min_score": task.ref_min_score,
        "ref_max_score": task.ref_max_score,
        "transitions": data.num_transitions,
        "episodes": data.num_episodes,
        "terminals": int(np.sum(data.terminals)),
        "timeouts": int(np.sum(data.timeouts)),
        "dataset_return_mean": return_mean,
        "dataset_normalized_score": float(normalized_score(task, return_mean)),
        "subsampled": False,
        "behaviour_policy": behaviour,
        "medium_fraction": args.medium_fraction,
        "medium_threshold_return": trainer.medium_threshold,
        "expert_fraction": args.expert_fraction,
        "expert_threshold_return": trainer.expert_threshold,
        "sac": {
            "library": "stable-baselines3",
            "seed": args.seed,
            "steps_trained": int(state["num_timesteps"]),
            "budget": args.sac_steps,
            "learning_starts": args.learning_starts,
            "hyperparameters": SAC_KWARGS,
            "eval_every": args.eval_every,
            "eval_episodes": args.eval_episodes,
            "train_wall_time_s": round(float(state["train_wall_time_s"]), 1),
            "resumed": int(state.get("resumed", 0)),
            "torch_threads": trainer.torch.get_num_threads(),
        },
        "collection": {**collection, "wall_time_s": round(collection_wall_s, 1)},
        # SAC training up to the (last) behaviour snapshot, plus this dataset's collection.
        "generation_wall_time_s": round(
            max(b["evaluation"].get("sac_wall_time_s", 0.0) for b in behaviour) + collection_wall_s,
            1,
        ),
        "seeds": {
            "sac": args.seed,
            "eval": args.seed + EVAL_SEED_OFFSET,
            **{f"collect_{k}": args.seed + v for k, v in COLLECT_SEED_OFFSETS.items()},
        },
        "versions": library_versions(),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
        "command": regenerate_command(args),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def library_versions() -> dict[str, str | None]:
    names = ("dtql", "gymnasium", "mujoco", "stable-baselines3", "torch", "minari", "numpy")
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


# ============================================================================================
# Writers
# ============================================================================================


def write_dataset(
    out: Path,
    env_name: str,
    level: str,
    task: TaskSpec,
    data: Transitions,
    record: dict[str, Any],
    hdf5: bool,
) -> dict[str, Any]:
    folder = minari_dataset_dir(out, env_name, level)
    if folder.exists():  # an incomplete write of an earlier run (complete ones are kept)
        shutil.rmtree(folder)
    write_minari(out / "minari", dataset_id(env_name, level), task, data, record)
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
        write_d4rl(path, data, record)
        write_json_atomic(path.with_suffix(".json"), record)
        status["d4rl_path"] = str(path)
    return status


@contextmanager
def _minari_root(root: Path) -> Iterator[None]:
    """Point minari at `root` for the duration (it writes under $MINARI_DATASETS_PATH)."""
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root.resolve())
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous


def eval_env_spec(task: TaskSpec) -> gym.envs.registration.EnvSpec:
    """The evaluation env's spec: registered id, the task's kwargs and D4RL's time limit."""
    spec = gym.spec(task.env_id)
    return dataclasses.replace(
        spec,
        max_episode_steps=task.max_episode_steps,
        kwargs={**spec.kwargs, **dict(task.env_kwargs)},
    )


def write_minari(
    root: Path, name: str, task: TaskSpec, data: Transitions, record: dict[str, Any]
) -> None:
    """Write `data` as Minari dataset `name` under `root` (root/<name>/data)."""
    import warnings

    import minari
    from minari.data_collector import EpisodeBuffer

    buffers = []
    for k, rows in enumerate(episode_slices(data)):
        last = rows.stop - 1
        buffers.append(
            EpisodeBuffer(
                id=k,
                observations=np.concatenate(
                    [data.observations[rows], data.next_observations[last : last + 1]]
                ),
                actions=data.actions[rows],
                rewards=data.rewards[rows],
                terminations=data.terminals[rows] > 0,
                truncations=data.timeouts[rows] > 0,
            )
        )
    spec = eval_env_spec(task)
    action_space = gym.make(spec).action_space
    observation_space = gym.spaces.Box(-np.inf, np.inf, (task.obs_dim,), np.float32)
    description = (
        f"D4RL-style '{record['level']}' dataset for {task.env_id}, made by `dtql collect` with "
        f"stable-baselines3 SAC; {data.num_transitions} transitions, {data.num_episodes} "
        f"episodes; mean return {record['dataset_return_mean']:.1f} (D4RL normalized "
        f"{record['dataset_normalized_score']:.1f}). Provenance under 'dtql_collect'."
    )
    root.mkdir(parents=True, exist_ok=True)
    with _minari_root(root), warnings.catch_warnings():
        # minari warns about fields it recommends (author email, code permalink) that we lack.
        warnings.simplefilter("ignore", UserWarning)
        dataset = minari.create_dataset_from_buffers(
            dataset_id=name,
            buffer=buffers,
            env=spec,
            eval_env=spec,
            algorithm_name=f"stable-baselines3 SAC ({record['level']})",
            author="dtql collect",
            description=description,
            ref_min_score=task.ref_min_score,
            ref_max_score=task.ref_max_score,
            observation_space=observation_space,
            action_space=action_space,
            requirements=[
                f"gymnasium[mujoco]=={importlib.metadata.version('gymnasium')}",
                f"mujoco=={importlib.metadata.version('mujoco')}",
            ],
            data_format="hdf5",
        )
        dataset.storage.update_metadata({"dtql_collect": record})


def write_d4rl(path: Path, data: Transitions, record: dict[str, Any]) -> None:
    """D4RL's hdf5 layout (v2 locomotion keys), written to a temp file and renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    with h5py.File(temp, "w") as f:
        f.create_dataset("observations", data=data.observations)
        f.create_dataset("actions", data=data.actions)
        f.create_dataset("rewards", data=data.rewards)
        f.create_dataset("next_observations", data=data.next_observations)
        f.create_dataset("terminals", data=data.terminals > 0)
        f.create_dataset("timeouts", data=data.timeouts > 0)
        f.create_dataset("metadata/dtql_collect", data=json.dumps(record))
    os.replace(temp, path)


def _dataset_complete(out: Path, env_name: str, level: str, hdf5: bool) -> bool:
    """A dataset an earlier run finished: collect_info.json (and the .hdf5's .json) come last."""
    done = (minari_dataset_dir(out, env_name, level) / "collect_info.json").is_file()
    return done and (not hdf5 or d4rl_file(out, env_name, level).with_suffix(".json").is_file())


def _bar_interval() -> float:
    """Seconds between progress-bar redraws: live on a terminal, sparse in a log file."""
    return 0.1 if sys.stderr.isatty() else 30.0


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
