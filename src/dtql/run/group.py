"""What the runs of one stacked group share, what each has of its own, and their data.

Runs can share one program when their configs differ only in seed, folder, dataset (of one
evaluation env, so of one set of dims) and ``STACKED_HYPERPARAMETERS``. ``group_key`` says which
runs those are; ``stacked_hyperparameters`` and ``group_data`` give the program each run's values
and the datasets, stacked.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dtql.algos.common import STACKED_HYPERPARAMETERS, DeviceTransitions, stack_states
from dtql.config import RunConfig, to_dict
from dtql.data import Transitions
from dtql.envs.registry import get_task
from dtql.run.setup import RunError, Spaces, load_training_data, task_spaces, to_device


def group_key(cfg: RunConfig) -> str:
    """What runs of one group share: the whole config but the seed, the folder, the dataset
    (of one evaluation env: same dims) and the ``STACKED_HYPERPARAMETERS`` (an entropy term on
    or off is shared: it adds computation)."""
    per_run = ("seed", "out", "task", "dataset", "reward_transform")
    shared = {k: v for k, v in to_dict(cfg).items() if k not in per_run}
    shared["env_id"] = get_task(cfg.task).env_id  # datasets of one env share its dims
    agent = dict(shared["learner"]["agent"])
    for name in STACKED_HYPERPARAMETERS:
        del agent[name]
    agent["entropy_term"] = cfg.learner.agent.entropy_coef != 0
    shared["learner"] = {**shared["learner"], "agent": agent}
    return repr(sorted(shared.items()))


def stacked_hyperparameters(cfgs: list[RunConfig]) -> dict[str, jax.Array]:
    """The hyperparameters whose values differ between runs, one array each (run k at k)."""
    values = {}
    for name in STACKED_HYPERPARAMETERS:
        column = [getattr(cfg.learner.agent, name) for cfg in cfgs]
        if len(set(column)) > 1:
            values[name] = jnp.asarray(column, jnp.float32)
    return values


def source_key(cfg: RunConfig) -> tuple[str, str, str]:
    return (cfg.task, cfg.dataset, cfg.reward_transform)


def group_data(
    cfgs: list[RunConfig],
) -> tuple[Spaces, dict[tuple, Transitions], Any, tuple[Any, Any]]:
    """The group's spaces (checked equal), each distinct dataset's transitions, the device data
    and what each run samples from it: one dataset for all (``(None, None)``), or all of them
    padded to one length and stacked ([M, N, ...]), run k drawing from dataset ``source[k]``'s
    first ``size[k]`` rows (``(source, size)``, [K] each)."""
    spaces_of = {}
    for cfg in cfgs:
        if cfg.task not in spaces_of:
            spaces_of[cfg.task] = task_spaces(get_task(cfg.task))
    spaces = spaces_of[cfgs[0].task]
    for task, other in spaces_of.items():
        if other != spaces:
            raise RunError(f"task {task}: spaces {other} differ from {spaces}; not one group")
    sources: dict[tuple, Transitions] = {}
    device: list[DeviceTransitions] = []
    for cfg in cfgs:
        if source_key(cfg) not in sources:
            transitions = load_training_data(cfg, get_task(cfg.task), spaces)
            sources[source_key(cfg)] = transitions
            device.append(to_device(transitions, cfg.reward_transform))
    if len(device) == 1:
        return spaces, sources, device[0], (None, None)
    longest = max(d.rewards.shape[0] for d in device)
    padded = [
        jax.tree.map(lambda x: jnp.pad(x, [(0, longest - x.shape[0])] + [(0, 0)] * (x.ndim - 1)), d)
        for d in device
    ]
    index = {key: i for i, key in enumerate(sources)}
    source = jnp.asarray([index[source_key(cfg)] for cfg in cfgs])
    size = jnp.asarray([sources[source_key(cfg)].num_transitions for cfg in cfgs])
    return spaces, sources, stack_states(padded), (source, size)
