"""The Python API: a tiny run trained through `dtql.train`, its policy from `dtql.load_policy`
acting as `dtql eval` acts, in-memory data, and the docs/api.md example run as written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jax
import numpy as np
import pytest

import dtql
from dtql.algos import get_algorithm
from dtql.cli import main
from dtql.envs.registry import get_task
from dtql.run.acting import evaluation_key, make_act_fn
from dtql.run.resume import read_run_config, restore_state
from dtql.run.setup import task_spaces

pytestmark = pytest.mark.slow
DOCS = Path(__file__).parents[1] / "docs" / "api.md"
TINY = dict(
    pretrain_steps=20,
    steps=40,
    log_every=20,
    eval_every=0,
    eval_episodes=1,
    num_eval_envs=1,
    checkpoint_every=60,
    agent={"hidden_dim": 16, "num_candidates": 8},
    progress=False,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, hopper_hdf5) -> dtql.TrainedRun:
    out = tmp_path_factory.mktemp("api") / "run"
    return dtql.train("hopper-medium-v2", hopper_hdf5, "dtql", out=out, **TINY)


def test_train_returns_the_run_folder_its_result_and_config(trained):
    assert (trained.run_dir / "result.json").is_file()
    assert trained.result["status"] == "finished" and trained.result["algo"] == "dtql"
    config = json.loads((trained.run_dir / "config.json").read_text())
    assert config["learner"]["steps"] == 40 and config["learner"]["agent"]["hidden_dim"] == 16
    assert trained.config.learner.pretrain_steps == 20


@pytest.mark.parametrize("act_mode", ["mean", "candidates"])
def test_load_policy_acts_as_dtql_evals_policy(trained, act_mode):
    obs = np.random.default_rng(0).normal(size=(5, 11)).astype(np.float32)
    policy = dtql.load_policy(trained.run_dir, act_mode)
    # What `dtql eval` builds for the same checkpoint: the state, the act function, the key.
    cfg = read_run_config(trained.run_dir)
    cfg = type(cfg)(**{**cfg.__dict__, "act_mode": act_mode})
    state, step = restore_state(trained.run_dir, cfg, task_spaces(get_task(cfg.task)))
    act = make_act_fn(get_algorithm("dtql"), state, cfg, evaluation_key(cfg, step))
    np.testing.assert_array_equal(policy(obs), act(obs))
    np.testing.assert_array_equal(policy(obs[0]), act(obs[:1])[0])  # one observation
    assert policy(obs).shape == (5, 3) and policy.step == step == 60


def test_evaluate_gives_what_dtql_eval_prints(trained, capsys):
    result = dtql.evaluate(trained.run_dir, episodes=1)
    capsys.readouterr()
    assert main(["eval", str(trained.run_dir), "--episodes", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == result


def test_in_memory_data_is_written_into_the_run_folder(tmp_path, hopper_hdf5):
    data = dtql.load_dataset(hopper_hdf5)
    run = dtql.train("hopper-medium-v2", data, "bc", out=tmp_path / "bc", **TINY)
    assert run.config.dataset == str(tmp_path / "bc" / "dataset.npz")
    again = dtql.load_dataset(run.config.dataset)
    np.testing.assert_array_equal(again.actions, data.actions)


def test_an_unknown_field_is_one_clear_error(tmp_path, hopper_hdf5):
    with pytest.raises(ValueError, match="see `dtql train --help`"):
        dtql.train("hopper-medium-v2", hopper_hdf5, out=tmp_path / "x", stepz=3)


def test_the_docs_example_runs_as_written(tmp_path, capsys):
    (code,) = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)
    exec(compile(code, str(DOCS), "exec"), {})  # runs in the test's own folder (tmp_path)
    out = capsys.readouterr().out
    assert "one action [" in out and "a batch (2, 3)" in out and "made by: dtql collect" in out
    assert Path("runs/api-example/result.json").is_file()
    jax.clear_caches()
