"""Offline datasets (D4RL hdf5, Minari, .npz) as flat transitions for Q-learning."""

from dtql.data.dataset import (
    REWARD_TRANSFORMS,
    DatasetError,
    Transitions,
    apply_reward_transform,
    dataset_info,
    load_dataset,
    validate_transitions,
)
from dtql.data.minari import minari_metadata
from dtql.data.npz import write_npz

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
