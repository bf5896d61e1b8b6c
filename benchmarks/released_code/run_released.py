"""Run the authors' released DTQL code on a dtql dataset file, for a side-by-side (issue 24).

The released code (github.com/TianyuCodings/Diffusion_Trusted_Q_Learning, PyTorch) reads its
data through D4RL (`d4rl.qlearning_dataset(gym.make(name))`) and evaluates in old-API gym with
mujoco-py, none of which installs here. This script stands in for those two modules and runs the
released `main.py` unchanged:

- `d4rl.qlearning_dataset(env)` returns the dataset file given by --dataset, read by dtql's own
  loader (the transitions a dtql run on the same file trains on);
- `gym.make(name)` returns the evaluation env dtql uses for that task (Gymnasium MuJoCo with
  D4RL's observation layout and time limit) behind gym 0.24's API (`seed`, `reset` -> obs,
  `step` -> 4 values, `get_normalized_score` as D4RL's: a fraction, not a percentage).

Nothing else is changed: its presets (Table 4), 50 pretraining epochs, its candidate-selection
acting (1024 samples) and its logging. The only addition is the budget: the run stops after
--steps main-phase updates (the released loop runs the preset's 1M; its cosine schedule keeps
T_max = 1M either way, as dtql's presets do).

    python benchmarks/released_code/run_released.py --code RELEASED_CHECKOUT \
      --task hopper-medium-v2 --dataset DATASETS/hopper/d4rl/hopper-medium-v0.hdf5 \
      --seed 0 --steps 100000 --eval-every 10000 --out runs/released
Evaluations go to OUT/<task>/<run name>/progress.csv (the released logger's file); the script
prints each as a normalized score (x 100) and writes OUT/<task>/seed_<k>.json with them;
`side_by_side.py` (beside this file) sets a run's progress.csv beside dtql's runs of the same
task, step for step.
The released code is fetched separately and never copied into this repository.
"""

from __future__ import annotations

import argparse
import csv
import json
import runpy
import sys
import time
import types
from pathlib import Path

import numpy as np

from dtql.data.load import load_dataset
from dtql.envs.make import adapt_observation, make_single_env
from dtql.envs.registry import get_task


class BudgetReached(Exception):
    """Raised from the released agent's train() once the run has had --steps updates."""


class OldGymEnv:
    """dtql's evaluation env for a task behind gym 0.24's API, as the released code calls it."""

    def __init__(self, task_name: str):
        self.task = get_task(task_name)
        self.env = make_single_env(self.task)
        self.observation_space = self.env.observation_space
        self.action_space = self.env.action_space
        self._seed: int | None = None

    def seed(self, seed: int) -> None:
        self._seed = int(seed)  # used by the next reset, as gym 0.24's env.seed was

    def reset(self) -> np.ndarray:
        obs, _ = self.env.reset(seed=self._seed)
        self._seed = None
        return obs

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, float(reward), bool(terminated or truncated), info

    def get_normalized_score(self, score: float) -> float:
        low, high = self.task.ref_min_score, self.task.ref_max_score
        return (score - low) / (high - low)


def stand_in_modules(dataset: str) -> dict[str, types.ModuleType]:
    """The `gym` and `d4rl` modules the released main.py imports."""
    gym = types.ModuleType("gym")
    gym.make = OldGymEnv
    d4rl = types.ModuleType("d4rl")

    def qlearning_dataset(env: OldGymEnv) -> dict[str, np.ndarray]:
        data = load_dataset(dataset, obs_adapter=lambda obs: adapt_observation(env.task, obs))
        return {
            "observations": data.observations,
            "actions": data.actions,
            "next_observations": data.next_observations,
            "rewards": data.rewards,
            "terminals": data.terminals,
        }

    d4rl.qlearning_dataset = qlearning_dataset
    return {"gym": gym, "d4rl": d4rl}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", required=True, help="a checkout of the released code")
    parser.add_argument("--task", required=True)
    parser.add_argument("--dataset", required=True, help="D4RL .hdf5 or any dtql dataset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=100_000, help="main-phase updates")
    parser.add_argument("--pretrain-epochs", type=int, default=50)
    parser.add_argument("--eval-every", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    code, out = Path(args.code).resolve(), Path(args.out).resolve()
    if not (code / "main.py").is_file() or not (code / "agents" / "dtql.py").is_file():
        print(f"{code}: not a checkout of the released code (main.py, agents/dtql.py)")
        return 2
    if args.eval_every % 1000:
        print(f"--eval-every {args.eval_every}: expected a multiple of 1000 (an epoch)")
        return 2

    import torch

    torch.set_num_threads(args.threads)
    sys.modules.update(stand_in_modules(args.dataset))
    sys.path.insert(0, str(code))
    import agents.dtql

    train, calls = agents.dtql.DTQL.train, [0]

    def train_within_budget(self, *a, **k):
        calls[0] += 1
        if calls[0] > args.steps + 1:  # the loop evaluates after its update number `steps`
            raise BudgetReached
        return train(self, *a, **k)

    agents.dtql.DTQL.train = train_within_budget
    sys.argv = [
        "main.py", "--env_name", args.task, "--seed", str(args.seed),
        "--eval_freq", str(args.eval_every // 1000), "--dir", str(out),
        "--pretrain_epochs", str(args.pretrain_epochs),
    ]  # fmt: skip
    started = time.time()
    try:
        runpy.run_path(str(code / "main.py"), run_name="__main__")
    except BudgetReached:
        pass
    wall = time.time() - started
    progress = sorted((out / args.task).glob(f"*seed={args.seed}|*/progress.csv"))
    if not progress:
        print(f"{out / args.task}: no progress.csv of seed {args.seed}")
        return 1
    with open(progress[-1], newline="") as file:
        rows = list(csv.DictReader(file))
    # 'Trained Epochs' is read before the update that completes the epoch: epoch k logs at k+1.
    steps = [(int(float(r["Trained Epochs"])) + 1) * 1000 for r in rows]
    scores = [100 * float(r["Average Episodic N-Reward"]) for r in rows]
    result = {
        "task": args.task,
        "dataset": str(Path(args.dataset).resolve()),
        "seed": args.seed,
        "pretrain_steps": args.pretrain_epochs * 1000,
        "main_steps": args.steps,
        "evaluations": dict(zip(map(str, steps), scores, strict=True)),
        "wall_s": round(wall, 1),
        "torch_threads": args.threads,
        "code": str(code),
    }
    (out / args.task / f"seed_{args.seed}.json").write_text(json.dumps(result, indent=1))
    for step, score in zip(steps, scores, strict=True):
        print(f"main-phase step {step}: normalized score {score:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
