"""The online SAC run (stable-baselines3) that the behaviour policies come from: `SacRun` trains
in chunks between evaluations and checkpoints, saves the random / medium / final snapshots, and
resumes from its last checkpoint; plus the replay-buffer helpers and the evaluation records.

stable-baselines3 and torch are the optional extra ``dtql[collect]``: `import_sb3` imports them
when a run starts (never at import time), with the install hint when they are missing.

Checkpoints and --resume: SAC is checkpointed every ``checkpoint_every`` steps and at its end
(SB3 zip + pickled replay buffer; local files this command wrote, loaded only with --resume).
A resume continues from the last checkpoint: the episode in progress there is cut (its last
buffered step becomes a timeout) and the env is reset, so a resumed run is not bit-identical to
an uninterrupted one. A larger ``--sac-steps`` on resume trains on, with the replay buffer grown
to the new budget.
"""

from __future__ import annotations

import copy
import json
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from tqdm import tqdm

from dtql.collect.args import EVAL_SEED_OFFSET, CollectArgs, CollectError
from dtql.collect.buffer import buffer_rows, buffer_transitions, grown_buffer
from dtql.collect.rollout import step_bar, stochastic_act_fn
from dtql.data.transitions import Transitions
from dtql.envs.make import make_single_env
from dtql.envs.registry import TaskSpec
from dtql.evaluation import EvalResult, evaluate
from dtql.files import atomic_path, write_json_atomic
from dtql.upgrade import upgrade_sac_state

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


def import_sb3() -> tuple[Any, Any]:
    """(torch, stable_baselines3.SAC), or a CollectError with the install hint."""
    try:
        import torch
        from stable_baselines3 import SAC
    except ImportError as e:
        raise CollectError(f"{INSTALL_HINT} ({e})") from e
    return torch, SAC


class SacStopped(Exception):
    """SIGTERM or SIGINT while SAC trained: the run was checkpointed at the end of its chunk."""


@contextmanager
def stop_requests() -> Iterator[list[int]]:
    """The stop signals (SIGTERM, SIGINT) received meanwhile, collected instead of acted on, so
    that the training loop ends its chunk (at most an evaluation interval), checkpoints and
    stops: an interrupted run loses no steps. Outside the main thread nothing is installed."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {
        s: signal.signal(s, lambda signum, _frame: received.append(signum)) for s in signals
    }
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class SacRun:
    """One SAC run in ``sac_dir``: trains in chunks between evaluations and checkpoints.

    Between chunks the replay buffer holds exactly ``num_timesteps`` rows and every gradient
    step of those rows is done, so evaluations, snapshots and checkpoints see a clean state.
    ``state`` (saved as state.json) records the evaluations and the snapshots.
    """

    def __init__(
        self, args: CollectArgs, task: TaskSpec, sac_dir: Path, sac_cls: Any, torch: Any
    ) -> None:
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
        self.expert_stop_threshold = args.expert_stop_fraction * task.ref_max_score

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
        state = upgrade_sac_state(json.loads((self.dir / "state.json").read_text()))
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
        final = state["final"]
        if final is not None and final["step"] < self.args.sac_steps and not self._stops(final):
            state["final"] = None  # a larger budget: the old final policy is not final any more
        state["resumed"] = int(state.get("resumed", 0)) + 1
        self.model, self.state = model, state
        print(f"resumed SAC from {self.dir} at step {steps}")

    # ---------------------------------------------------------------------------- training

    def _stops(self, result: dict[str, Any]) -> bool:
        """Whether an evaluation reaches the expert stop (within ~10% of the expert return)."""
        return result["return_mean"] >= self.expert_stop_threshold

    def _expert_reached(self) -> bool:
        """Whether the latest evaluation, past the medium snapshot, reached the expert stop."""
        return self.state["medium"] is not None and self._stops(self.state["evals"][-1])

    def _eval_every(self) -> int:
        """Often until the medium snapshot is found, then only to watch for the expert stop."""
        return self.args.eval_every if self.state["medium"] is None else self.args.expert_eval_every

    def run_sac(self, stop_at_medium: bool) -> None:
        """Train SAC up to sac_steps, the expert stop, or (when stop_at_medium) the medium
        snapshot, evaluating as _eval_every says and checkpointing every checkpoint_every steps."""
        args, model = self.args, self.model
        bar = step_bar(
            args.sac_steps, f"SAC {self.task.env_id}", args.progress_bar, model.num_timesteps
        )

        def on_step(_locals, _globals) -> bool:
            bar.update(1)
            return True

        self._update_bar(bar)
        with stop_requests() as signals_received, closing(bar):
            while model.num_timesteps < args.sac_steps:
                replay_done = args.replay_steps is None or model.num_timesteps >= args.replay_steps
                if stop_at_medium and self.state["medium"] is not None and replay_done:
                    break
                if self._expert_reached():
                    break
                step = model.num_timesteps
                intervals = [self._eval_every(), args.checkpoint_every, args.snapshot_every]
                stops = [(step // k + 1) * k for k in intervals if k is not None]
                if args.medium_step is not None and step < args.medium_step:
                    stops.append(args.medium_step)
                stop = min(*stops, args.sac_steps)
                chunk_started = time.monotonic()
                self._saved = False
                model.learn(stop - step, reset_num_timesteps=False, callback=on_step)
                self.state["train_wall_time_s"] += time.monotonic() - chunk_started
                self.state["num_timesteps"] = step = model.num_timesteps

                snapshot = args.snapshot_every is not None and step % args.snapshot_every == 0
                if (
                    step % self._eval_every() == 0
                    or step in (args.sac_steps, args.medium_step)
                    or snapshot
                ):
                    self._after_eval(self.evaluate(), bar)
                if snapshot:
                    snapshot_path(self.dir, step).parent.mkdir(exist_ok=True)
                    with atomic_path(snapshot_path(self.dir, step)) as tmp:
                        self.model.save(tmp)
                if step % args.checkpoint_every == 0 or step == args.sac_steps:
                    self._checkpoint()
                if signals_received:
                    self._stop(signals_received[0])

        expert_stop = not stop_at_medium and self._expert_reached()
        if (model.num_timesteps >= args.sac_steps or expert_stop) and self.state["final"] is None:
            final = self.state["evals"][-1]
            if final["step"] != model.num_timesteps:
                final = self.evaluate()
                self.state["evals"].append(final)
            model.save(self.dir / "policy_final.zip")
            self.state["final"] = final
            self._checkpoint()
        elif model.num_timesteps != self.state["num_timesteps"] or not self._saved:
            self._checkpoint()

    def _stop(self, signum: int) -> None:
        """A signal arrived during the chunk just trained: checkpoint it, then stop."""
        if not self._saved:
            self._checkpoint()
        raise SacStopped(
            f"{self.dir}: stopped by {signal.Signals(signum).name} at step "
            f"{self.model.num_timesteps:,}, checkpointed; the same command with --resume goes on"
        )

    def _after_eval(self, result: dict[str, Any], bar: tqdm) -> None:
        self.state["evals"].append(result)
        if self.args.progress_bar:
            tqdm.write(
                f"step {result['step']}: evaluated return {result['return_mean']:.1f} "
                f"(normalized {result['normalized_score_mean']:.1f}), "
                f"SAC time {self.state['train_wall_time_s']:.0f} s"
            )
        if self.state["medium"] is None and self._is_medium(result):
            self.model.save(self.dir / "policy_medium.zip")
            self.state["medium"] = result
            tqdm.write(
                f"medium snapshot at step {result['step']}: return {result['return_mean']:.1f} "
                f"(normalized {result['normalized_score_mean']:.1f})"
            )
        self._update_bar(bar)

    def _is_medium(self, result: dict[str, Any]) -> bool:
        """The medium snapshot: the one at --medium-step, or else the first evaluation whose
        return reaches --medium-fraction x the expert return."""
        if self.args.medium_step is not None:
            return result["step"] == self.args.medium_step
        return result["return_mean"] >= self.medium_threshold

    def _update_bar(self, bar: tqdm) -> None:
        last = self.state["evals"][-1]
        medium = self.state["medium"]
        bar.set_postfix(
            eval_return=f"{last['return_mean']:.0f}",
            normalized=f"{last['normalized_score_mean']:.1f}",
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
        """Model and replay buffer (renamed into place once both are written), then state.json
        (which names the step), each replaced whole."""
        with (
            atomic_path(self.dir / "checkpoint.zip") as model_tmp,
            atomic_path(self.dir / "replay_buffer.pkl") as buffer_tmp,
        ):
            self.model.save(model_tmp)
            self.model.save_replay_buffer(buffer_tmp)
        self.state["num_timesteps"] = int(self.model.num_timesteps)
        write_json_atomic(self.dir / "state.json", self.state)
        self._saved = True

    # ---------------------------------------------------------------------------- snapshots

    def load_policy(self, name: str) -> Any:
        """A saved snapshot ('random', 'medium' or 'final') as an SB3 model."""
        return self.sac_cls.load(self.dir / f"policy_{name}.zip", device="cpu")

    def replay_transitions(self, steps: int) -> Transitions:
        """The first `steps` rows of the replay buffer as episodes (the last one cut: timeout)."""
        return buffer_transitions(self.model.replay_buffer, steps, self.model.policy.unscale_action)


def snapshot_path(sac_dir: Path, step: int) -> Path:
    """Where --snapshot-every saves the SAC policy of a step: sac/snapshots/step_<k>.zip."""
    return sac_dir / "snapshots" / f"step_{step:07d}.zip"


# --------------------------------------------------------------------------- evaluation records


def eval_record(result: EvalResult, step: int, seed: int, sac_wall_time_s: float) -> dict[str, Any]:
    """One evaluation of a SAC snapshot, as stored in state.json and in the provenance: the
    project's result vocabulary (`dtql.evaluation.SUMMARY_KEYS`) plus step, time and seed."""
    return {
        "step": step,
        "sac_wall_time_s": round(sac_wall_time_s, 1),  # SAC training time up to this snapshot
        **result.summary(),
        "actions": "stochastic",
        "seed": seed + EVAL_SEED_OFFSET,
    }
