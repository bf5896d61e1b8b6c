"""Where a run's behaviour policies come from: the snapshots of this command's SAC run
(`SacSnapshots`) or behaviour-policy files (`PolicyFiles`, --from-policies).

Both give the same numpy `BehaviourPolicy` for a level (random: uniform; medium, expert: the
SAC actor), so a policy collects the same transitions for a seed whichever source it came from.
A source also says why a level cannot be made, and writes its part of the provenance record.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from dtql.collect.args import EVAL_SEED_OFFSET, CollectArgs, regenerate_command
from dtql.collect.behaviour_policy import (
    SHIPPED_POLICIES,
    BehaviourPolicy,
    PolicyFileError,
    action_rng,
    load_behaviour_policy,
    policy_from_sb3,
    policy_stem,
    uniform_policy,
)
from dtql.collect.buffer import replay_description, replay_rows
from dtql.collect.provenance import behaviour_policy, library_versions
from dtql.collect.replay import ReplayActions, load_replay_actions, regenerate
from dtql.collect.sac import SAC_KWARGS, SacRun, eval_record
from dtql.data.transitions import Transitions
from dtql.envs.make import make_single_env
from dtql.envs.registry import TaskSpec
from dtql.evaluation import EvalResult, evaluate

# The SAC snapshot of each trained policy level (saved as OUT/sac/policy_<snapshot>.zip).
SNAPSHOTS = {"medium": "medium", "expert": "final"}
UNIFORM_DESCRIPTION = "uniform random actions in the action bounds"


# --------------------------------------------------------------------------- shared pieces


def action_bounds(task: TaskSpec) -> tuple[np.ndarray, np.ndarray]:
    """The evaluation env's action bounds (low, high)."""
    env = make_single_env(task)
    try:
        return env.action_space.low, env.action_space.high
    finally:
        env.close()


def uniform_for_task(args: CollectArgs, task: TaskSpec) -> BehaviourPolicy:
    """The random level's policy, with its evaluation (run here: it needs no training)."""
    low, high = action_bounds(task)
    policy = uniform_policy(task, low, high, {})
    result = evaluate_policy(task, policy, args.eval_episodes, args.seed + EVAL_SEED_OFFSET)
    provenance = {
        "env_id": task.env_id,
        "level": "random",
        "policy": UNIFORM_DESCRIPTION,
        "sac_step": 0,  # needs no training (SAC's own warm-up acts the same way)
        "evaluation": eval_record(result, step=0, seed=args.seed, sac_wall_time_s=0.0),
        "versions": library_versions(),
        "command": regenerate_command(args),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return uniform_policy(task, low, high, provenance)


def thresholds(args: CollectArgs, task: TaskSpec) -> dict[str, float]:
    """The medium and expert thresholds of the protocol (the record's keys)."""
    return {
        "medium_fraction": args.medium_fraction,
        "medium_threshold_return": args.medium_fraction * task.ref_max_score,
        "expert_fraction": args.expert_fraction,
        "expert_threshold_return": args.expert_fraction * task.ref_max_score,
        "expert_stop_fraction": args.expert_stop_fraction,
        "expert_stop_return": args.expert_stop_fraction * task.ref_max_score,
    }


def medium_unavailable(args: CollectArgs, task: TaskSpec, state: dict[str, Any]) -> str | None:
    """Why a SAC run (its state.json) has no medium snapshot, or None when it has one."""
    if state["medium"] is not None:
        return None
    best = max((e["return_mean"] for e in state["evals"]), default=float("nan"))
    return (
        f"no SAC snapshot reached the medium threshold "
        f"{thresholds(args, task)['medium_threshold_return']:.1f} (= {args.medium_fraction:.3g} "
        f"x expert return {task.ref_max_score}) within {state['num_timesteps']} steps (best "
        f"evaluated return {best:.1f}); raise --sac-steps"
    )


def expert_unavailable(args: CollectArgs, task: TaskSpec, state: dict[str, Any]) -> str | None:
    """Why a SAC run's final policy is not an expert (yet), or None when it is."""
    if state["final"] is None:
        return (
            f"SAC trained {state['num_timesteps']} of --sac-steps {args.sac_steps} steps; the "
            "expert is the policy after the full budget or the first to reach the expert stop "
            f"{thresholds(args, task)['expert_stop_return']:.1f}"
        )
    final, threshold = state["final"], thresholds(args, task)["expert_threshold_return"]
    if final["return_mean"] < threshold:
        return (
            f"the final SAC policy (step {final['step']}) has evaluated return "
            f"{final['return_mean']:.1f} (normalized {final['normalized_score_mean']:.1f}), "
            f"below the expert threshold {threshold:.1f} (= {args.expert_fraction:.3g} x expert "
            f"return {task.ref_max_score}); raise --sac-steps"
        )
    return None


def snapshot_unavailable(
    args: CollectArgs, task: TaskSpec, state: dict[str, Any], level: str
) -> str | None:
    """Why a SAC run has no behaviour policy for a policy level (random always has one)."""
    if level == "medium":
        return medium_unavailable(args, task, state)
    if level == "expert":
        return expert_unavailable(args, task, state)
    return None


def sac_record(args: CollectArgs, state: dict[str, Any], torch_threads: int) -> dict:
    """The SAC run as a provenance record (the dataset's "sac", a policy file's "sac")."""
    return {
        "library": "stable-baselines3",
        "seed": state.get("seed", args.seed),
        "steps_trained": int(state["num_timesteps"]),
        "budget": int(state.get("buffer_size", args.sac_steps)),
        "learning_starts": state.get("learning_starts", args.learning_starts),
        "hyperparameters": SAC_KWARGS,
        "eval_every": eval_every(state) or args.eval_every,
        # The interval when the run ended: after the medium snapshot, --expert-eval-every.
        "last_eval_every": eval_every(state, last=True) or args.eval_every,
        "eval_episodes": state["evals"][0]["episodes"] if state["evals"] else args.eval_episodes,
        "train_wall_time_s": round(float(state["train_wall_time_s"]), 1),
        "resumed": int(state.get("resumed", 0)),
        "torch_threads": torch_threads,
    }


def eval_every(state: dict[str, Any], last: bool = False) -> int | None:
    """The evaluation interval of a SAC run, read from its evaluation steps: between the first
    two (with ``last``: the last two); None if it has fewer than two."""
    steps = [e["step"] for e in state["evals"]]
    if len(steps) < 2:
        return None
    return steps[-1] - steps[-2] if last else steps[1] - steps[0]


# --------------------------------------------------------------------------- the sources


class SacSnapshots:
    """Behaviour policies from the snapshots of this command's SAC run (OUT/sac)."""

    def __init__(self, args: CollectArgs, task: TaskSpec, trainer: SacRun) -> None:
        self.args, self.task, self.trainer = args, task, trainer
        self._policies: dict[str, BehaviourPolicy] = {}

    def prepare(self, levels: list[str]) -> None:
        """Train SAC as far as the levels need (none for random alone)."""
        if any(level != "random" for level in levels):
            self.trainer.run_sac(stop_at_medium=not ({"expert", "medium-expert"} & set(levels)))

    def unavailable(self, name: str) -> str | None:
        """Why `name` (a policy level, or medium-replay) cannot be made; None when it can."""
        part = "medium" if name == "medium-replay" else name
        return snapshot_unavailable(self.args, self.task, self.trainer.state, part)

    def policy(self, name: str) -> BehaviourPolicy:
        if name not in self._policies:
            if name == "random":
                self._policies[name] = uniform_for_task(self.args, self.task)
            else:
                model = self.trainer.load_policy(SNAPSHOTS[name])
                self._policies[name] = policy_from_sb3(model, self.task, name, {})
        return self._policies[name]

    def behaviour(self, name: str) -> dict[str, Any]:
        """The dataset record's entry for a behaviour policy."""
        if name == "random":
            return behaviour_policy(
                self.policy("random").provenance["evaluation"], UNIFORM_DESCRIPTION
            )
        evaluation = self.trainer.state[SNAPSHOTS[name]]
        return behaviour_policy(evaluation, f"SAC {SNAPSHOTS[name]} policy")

    def replay(self) -> tuple[Transitions, list[dict[str, Any]]]:
        """medium-replay: the replay buffer up to the medium snapshot."""
        medium = self.trainer.state["medium"]
        data = self.trainer.replay_transitions(replay_rows(self.args, medium))
        return data, [behaviour_policy(medium, replay_description(self.args))]

    def origin(self) -> dict[str, Any]:
        """The source's part of a dataset's provenance record."""
        threads = self.trainer.torch.get_num_threads()
        return {
            "made_from": "SAC run",
            **thresholds(self.args, self.task),
            "sac": sac_record(self.args, self.trainer.state, threads),
        }

    def seeds(self) -> dict[str, int]:
        return {"sac": self.args.seed, "eval": self.args.seed + EVAL_SEED_OFFSET}

    def summary(self) -> dict[str, Any]:
        state = self.trainer.state
        return {
            "sac_steps_trained": state.get("num_timesteps"),
            "medium_snapshot_step": (state.get("medium") or {}).get("step"),
        }


class PolicyFiles:
    """Behaviour policies from files <env>-<level>.json/.safetensors (--from-policies)."""

    def __init__(self, args: CollectArgs, task: TaskSpec, env_name: str) -> None:
        self.args, self.task, self.env_name = args, task, env_name
        self.folder = Path(args.policies).expanduser() if args.policies else SHIPPED_POLICIES
        # A level's policy (or replay file), or why it is unusable.
        self._loaded: dict[str, BehaviourPolicy | ReplayActions | str] = {}

    def prepare(self, levels: list[str]) -> None:
        """Nothing to train: the policies are made already."""

    def _load(self, name: str) -> BehaviourPolicy | str:
        if name not in self._loaded:
            stem = policy_stem(self.folder, self.env_name, name)
            if not Path(f"{stem}.json").is_file():
                sac_out = "" if name == "random" else " --out SAC_OUT"  # random needs no SAC
                self._loaded[name] = (
                    f"no behaviour-policy file {stem}.json (write it with `dtql collect "
                    f"{self.task.env_id}{sac_out} --levels {name} --save-policies {self.folder}`)"
                )
                return self._loaded[name]
            try:
                policy = load_behaviour_policy(stem)
            except PolicyFileError as e:
                self._loaded[name] = str(e)
                return self._loaded[name]
            found = {k: policy.record[k] for k in ("env_id", "level", "obs_dim", "act_dim")}
            wanted = {
                "env_id": self.task.env_id,
                "level": name,
                "obs_dim": self.task.obs_dim,
                "act_dim": self.task.act_dim,
            }
            wrong = [k for k in wanted if found[k] != wanted[k]]
            self._loaded[name] = (
                f"{stem}.json: field {wrong[0]!r} is {found[wrong[0]]!r}, expected "
                f"{wanted[wrong[0]]!r}"
                if wrong
                else policy
            )
        return self._loaded[name]

    def _load_replay(self) -> ReplayActions | str:
        if "medium-replay" not in self._loaded:
            stem = policy_stem(self.folder, self.env_name, "medium-replay")
            if Path(f"{stem}.json").is_file():
                try:
                    self._loaded["medium-replay"] = load_replay_actions(stem, self.task)
                except PolicyFileError as e:
                    self._loaded["medium-replay"] = str(e)
            else:
                medium = self._load("medium")
                rerun = f"dtql collect {self.task.env_id} --levels medium-replay"
                if not isinstance(medium, str):  # the SAC run of the medium policy, rerun
                    rerun = medium.provenance.get("sac_rerun_command", rerun)
                self._loaded["medium-replay"] = (
                    f"needs SAC's replay buffer: no {stem}.json (its actions, written by "
                    f"--save-policies); regenerate it with a seeded SAC rerun `{rerun}`"
                )
        return self._loaded["medium-replay"]  # type: ignore[return-value]

    def unavailable(self, name: str) -> str | None:
        loaded = self._load_replay() if name == "medium-replay" else self._load(name)
        return loaded if isinstance(loaded, str) else None

    def policy(self, name: str) -> BehaviourPolicy:
        loaded = self._load(name)
        if isinstance(loaded, str):
            raise PolicyFileError(loaded)
        return loaded

    def behaviour(self, name: str) -> dict[str, Any]:
        policy = self.policy(name)
        provenance = policy.provenance
        kind, file = provenance.get("policy", policy.kind), Path(policy.files["json"]).name
        return {
            "policy": f"{kind} (from {file})",
            "sac_step": provenance.get("sac_step"),
            "evaluation": provenance.get("evaluation"),
            "files": policy.files,
            "provenance": provenance,
        }

    def replay(self) -> tuple[Transitions, list[dict[str, Any]]]:
        """medium-replay: the SAC run's actions replayed (checked against their digest)."""
        replay = self._load_replay()
        if isinstance(replay, str):
            raise PolicyFileError(replay)
        provenance = replay.record["provenance"]
        behaviour = {
            "policy": f"{provenance['policy']} (replayed from {Path(replay.files['json']).name})",
            "sac_step": provenance.get("sac_step"),
            "evaluation": provenance.get("evaluation"),
            "files": replay.files,
            "provenance": provenance,
        }
        return regenerate(self.task, replay), [behaviour]

    def origin(self) -> dict[str, Any]:
        shipped = self.folder == SHIPPED_POLICIES
        return {
            "made_from": "behaviour-policy files",
            "policies": {"folder": str(self.folder), "shipped_with_dtql": shipped},
        }

    def seeds(self) -> dict[str, int]:
        return {}

    def summary(self) -> dict[str, Any]:
        return {"policies": str(self.folder)}


def evaluate_policy(
    task: TaskSpec, policy: BehaviourPolicy, episodes: int, seed: int
) -> EvalResult:
    """`episodes` episodes of the policy's stochastic actions (envs seed + i, noise action_rng)."""
    return evaluate(
        task,
        policy.act_fn(action_rng(seed)),
        episodes=episodes,
        seed=seed,
        num_envs=episodes,
        act_mode="stochastic",
    )
