"""Where a run's one-step policy puts its actions while it trains: inside the action box or not.

    python benchmarks/policy_action_range.py RUN_DIR [RUN_DIR ...] [--states 5000] [--seed 0]
        [--weights policy|behaviour]

For every checkpoint a run keeps, it samples the policy's actions as training does (before the
clip that acting applies) on evenly spaced states of the run's own dataset and prints their
magnitude against the action bound. The KL baseline's generator is unsquashed as released, so
the critics are maximised at whatever action it proposes, while DTQL's Gaussian is squashed by
tanh into the box. With ``--weights behaviour`` the generator is given the behaviour diffusion
model's weights instead: for KL, whose behaviour model is frozen after pretraining, that is the
generator as its main phase starts (Algorithm 2: theta <- phi). Only the states and the noise key
are chosen here; nothing is trained.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from dtql.algos import policies
from dtql.algos.common import build_networks
from dtql.checkpoint import checkpoints_by_step
from dtql.data import load_dataset
from dtql.envs.registry import get_task
from dtql.run.resume import read_run_config, restore_state
from dtql.run.setup import task_spaces


def action_range_lines(run_dir: Path, n_states: int, seed: int, weights: str) -> list[str]:
    cfg = read_run_config(run_dir)
    spaces = task_spaces(get_task(cfg.task))
    observations = load_dataset(cfg.dataset).observations
    states = jnp.asarray(observations[:: max(1, len(observations) // n_states)][:n_states])
    nets = build_networks(cfg.learner.agent, spaces.act_dim)
    lines = []
    for step in sorted(checkpoints_by_step(run_dir)):
        state, _ = restore_state(run_dir, cfg, spaces, step)
        params = state.policy.params if weights == "policy" else state.diffusion.params
        actions, _ = policies.sample_actions(
            nets, params, states, jax.random.key(seed), cfg.learner.agent,
            spaces.max_action,
        )  # fmt: skip
        size = np.abs(np.asarray(actions)) / spaces.max_action
        lines.append(
            f"{run_dir} step {step}: |a| / bound: median {np.median(size):.2f}, "
            f"p99 {np.quantile(size, 0.99):.1f}, max {size.max():.1f}; "
            f"share of action dims outside the box {np.mean(size > 1.0):.3f} "
            f"({len(states)} dataset states, {cfg.learner.agent.policy} policy, {weights} "
            "weights)"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--states", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", choices=("policy", "behaviour"), default="policy")
    args = parser.parse_args()
    for run_dir in args.runs:
        lines = action_range_lines(run_dir, args.states, args.seed, args.weights)
        print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
