"""Offline datasets (D4RL hdf5, Minari, .npz) as flat transitions for Q-learning.

- ``transitions``: the `Transitions` record, its checks and the episode-end flag rule;
- ``d4rl``, ``minari``, ``npz``: one module per file format, its reader and its writer;
- ``load``: `load_dataset`, which finds a dataset by path or name and picks the reader;
- ``toy``: the 2D bandit datasets of the paper's toy experiments.

Imports run one way: the format modules import ``transitions``; ``load`` imports them all.
"""

from dtql.data.load import load_dataset
from dtql.data.minari import minari_metadata
from dtql.data.npz import write_npz
from dtql.data.transitions import (
    REWARD_TRANSFORMS,
    DatasetError,
    Transitions,
    apply_reward_transform,
    dataset_info,
    validate_transitions,
)

__all__ = [
    "REWARD_TRANSFORMS",
    "DatasetError",
    "Transitions",
    "apply_reward_transform",
    "dataset_info",
    "load_dataset",
    "minari_metadata",
    "validate_transitions",
    "write_npz",
]
