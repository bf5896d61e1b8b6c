"""Data shipped inside the package (made by the project's own commands; see each README)."""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).parent

# Task preset -> the shipped dataset used when `dtql train` gets no --dataset.
SHIPPED_DATASETS: dict[str, str] = {
    # A Minari dataset folder: 100k transitions of the fingerprinted medium policy (issue 23).
    # datasets/hopper-medium-v0, the default before it, stays so that runs made on it still load
    # the data they were trained on.
    "hopper-medium-v2": "datasets/hopper-medium-v1",
    "hopper-random-v2": "datasets/hopper-random-v0.hdf5",
}


def shipped_dataset(task: str) -> Path | None:
    """The shipped dataset of a task, or None when the package ships none for it."""
    name = SHIPPED_DATASETS.get(task)
    if name is None or not (ASSETS / name).exists():
        return None
    return ASSETS / name


def shipped_note(dataset: str) -> str:
    """A reminder, for run headers, that a shipped dataset is not D4RL's."""
    path = Path(dataset)
    if not path.is_relative_to(ASSETS):
        return ""
    return " (shipped with dtql: made by `dtql collect` in Gymnasium v5, not D4RL's data)"
