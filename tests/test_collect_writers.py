"""The dataset writers `dtql collect` uses (`write_d4rl`, `write_minari`, beside the readers in
dtql.data) read back by dtql's loaders, and `dtql.files.atomic_path`, which they write through.
No SAC needed."""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest

from dtql.collect.levels import eval_env_spec
from dtql.data import load_dataset, minari_metadata
from dtql.data.d4rl import write_d4rl
from dtql.data.minari import write_minari
from dtql.data.transitions import transitions_from_rows
from dtql.envs.registry import get_task
from dtql.files import atomic_path

HOPPER = get_task("hopper")


def small_transitions(rows: int = 40):
    """Random Hopper-shaped rows: a terminal at row 9, a timeout at 24, the rest cut at the end."""
    rng = np.random.default_rng(0)
    terminals = np.zeros(rows, bool)
    timeouts = np.zeros(rows, bool)
    terminals[9], timeouts[24] = True, True
    states = rng.normal(size=(rows + 1, HOPPER.obs_dim))  # s' is the next row's s (Minari)
    return transitions_from_rows(
        observations=states[:-1],
        actions=rng.uniform(-1, 1, (rows, HOPPER.act_dim)),
        rewards=rng.normal(size=rows),
        next_observations=states[1:],
        terminals=terminals,
        timeouts=timeouts,
        source="test",
    )


def assert_same(a, b):
    for field in ("observations", "actions", "rewards", "next_observations"):
        np.testing.assert_allclose(getattr(a, field), getattr(b, field), rtol=1e-6)
    np.testing.assert_array_equal(a.terminals, b.terminals)
    np.testing.assert_array_equal(a.timeouts, b.timeouts)
    np.testing.assert_allclose(a.episode_returns, b.episode_returns, rtol=1e-5)


def test_write_d4rl_reads_back_with_its_metadata(tmp_path):
    data = small_transitions()
    path = tmp_path / "d4rl" / "hopper-test-v0.hdf5"
    write_d4rl(path, data, {"dtql_collect": {"level": "test"}})
    assert_same(load_dataset(path), data)
    with h5py.File(path, "r") as f:
        assert json.loads(f["metadata/dtql_collect"][()]) == {"level": "test"}
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_write_minari_reads_back_and_restores_the_datasets_path(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "decoy"))
    data = small_transitions()
    write_minari(
        tmp_path / "minari",
        "dtql/hopper-test-v0",
        data,
        env_spec=eval_env_spec(HOPPER),
        ref_min_score=HOPPER.ref_min_score,
        ref_max_score=HOPPER.ref_max_score,
        algorithm_name="test",
        author="test",
        description="a test dataset",
        requirements=[],
        metadata={"dtql_collect": {"level": "test"}},
    )
    folder = tmp_path / "minari" / "dtql" / "hopper-test-v0"
    assert_same(load_dataset(folder), data)
    meta = minari_metadata(folder)
    assert (meta["eval_env_id"], meta["ref_max_score"]) == ("Hopper-v5", HOPPER.ref_max_score)
    raw = json.loads((folder / "data" / "metadata.json").read_text())
    assert raw["dtql_collect"] == {"level": "test"}
    assert json.loads(raw["eval_env_spec"])["max_episode_steps"] == HOPPER.max_episode_steps
    assert not (tmp_path / "decoy").exists()
    assert os.environ["MINARI_DATASETS_PATH"] == str(tmp_path / "decoy")


def test_atomic_path_renames_on_success_and_cleans_up_on_failure(tmp_path):
    path = tmp_path / "sub" / "model.zip"
    with atomic_path(path) as temp:
        assert temp.parent == path.parent and temp.suffix == ".zip" and temp != path
        temp.write_text("new")
    assert path.read_text() == "new" and not temp.exists()

    with pytest.raises(RuntimeError), atomic_path(path) as temp:
        temp.write_text("half")
        raise RuntimeError("writer failed")
    assert path.read_text() == "new" and not temp.exists()
    assert [p.name for p in path.parent.iterdir()] == ["model.zip"]
