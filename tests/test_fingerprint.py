"""`dtql data fingerprint`: the data's score, BC's score and the counts, checked by hand on a
tiny real dataset, the comparison with D4RL's, and the record written into the provenance."""

from __future__ import annotations

import csv
import json
import math

import h5py
import numpy as np
import pytest
from conftest import write_hopper_d4rl

from dtql.cli import main
from dtql.collect import CollectArgs, run_collect
from dtql.data import DatasetError, load_dataset
from dtql.envs.d4rl_fingerprints import comparison, d4rl_reference
from dtql.fingerprint import (
    FingerprintArgs,
    dataset_task,
    measure_fingerprint,
    record_fingerprint,
)

HOPPER_RANDOM, HOPPER_EXPERT = -20.272305, 3234.3


def hand_episode_returns(path) -> list[float]:
    """Returns of the file's episodes, summed by hand between the flagged ends."""
    with h5py.File(path, "r") as f:
        rewards, ends = f["rewards"][:], f["terminals"][:] | f["timeouts"][:]
    returns, total = [], 0.0
    for reward, end in zip(rewards, ends, strict=True):
        total += float(reward)
        if end:
            returns.append(total)
            total = 0.0
    if not ends[-1]:
        returns.append(total)  # the data stops inside an episode
    return returns


def hand_last_scores(run_dir, count: int) -> float:
    with open(run_dir / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("eval/normalized_score_mean")]
    return float(np.mean([float(r["eval/normalized_score_mean"]) for r in rows[-count:]]))


@pytest.mark.slow
def test_fingerprint_numbers_equal_a_hand_computation(tmp_path):
    data = write_hopper_d4rl(tmp_path / "tiny.hdf5", 1500, seed=3)
    args = FingerprintArgs(
        dataset=str(data),
        task="hopper-medium-v2",
        steps=60,
        seeds="0-1",
        eval_every=20,
        eval_episodes=2,
        last_evals=2,
        out=str(tmp_path / "bc"),
    )
    fp = measure_fingerprint(args)

    returns = hand_episode_returns(data)
    expected_data = 100 * (np.mean(returns) - HOPPER_RANDOM) / (HOPPER_EXPERT - HOPPER_RANDOM)
    assert fp["dataset_normalized_score"] == pytest.approx(expected_data, rel=1e-6)
    assert (fp["transitions"], fp["episodes"]) == (1500, len(returns))

    per_seed = [hand_last_scores(tmp_path / "bc" / f"seed_{s}", 2) for s in (0, 1)]
    assert fp["bc_per_seed"] == pytest.approx({"0": per_seed[0], "1": per_seed[1]})
    assert fp["bc_normalized_score"] == pytest.approx(np.mean(per_seed))
    assert fp["bc_normalized_score_stderr"] == pytest.approx(
        np.std(per_seed, ddof=1) / math.sqrt(2)
    )
    config = json.loads((tmp_path / "bc" / "seed_1" / "config.json").read_text())
    assert (config["learner"]["algo"], config["learner"]["steps"]) == ("bc", 60)
    assert config["learner"]["pretrain_steps"] == 0
    # D4RL's hopper-medium beside it: 44.3 data, BC 52.9 (Table 1), 1M transitions.
    assert fp["d4rl"] == {
        "dataset_normalized_score": 44.3,
        "bc_normalized_score": 52.9,
        "transitions": 1_000_000,
    }
    assert fp["within_tolerance"]["transitions"] is False

    # A rerun skips the finished runs and measures the same.
    again = measure_fingerprint(args)
    assert again["bc_per_seed"] == fp["bc_per_seed"]


def test_comparison_uses_ten_points_and_a_quarter_of_the_transitions():
    d4rl = d4rl_reference("hopper-medium-replay-v2")
    near = {"dataset_normalized_score": 24.9, "bc_normalized_score": 8.2, "transitions": 502_000}
    assert comparison(near, d4rl) == {
        "dataset_normalized_score": True,
        "bc_normalized_score": True,
        "transitions": True,
    }
    far = {"dataset_normalized_score": 25.1, "bc_normalized_score": 28.2, "transitions": 300_000}
    assert set(comparison(far, d4rl).values()) == {False}
    unknown = comparison(near, d4rl_reference("hopper-random-v2"))
    assert unknown == {
        "dataset_normalized_score": None,
        "bc_normalized_score": None,
        "transitions": None,
    }


def test_task_is_read_from_the_dataset_name():
    assert dataset_task("dtql/walker2d-medium-replay-v0", None) == "walker2d-medium-replay-v2"
    assert dataset_task("~/.d4rl/datasets/hopper-medium-v2.hdf5", None) == "hopper-medium-v2"
    assert dataset_task("mine.hdf5", "hopper-medium-v2") == "hopper-medium-v2"
    with pytest.raises(DatasetError, match="expected --task NAME"):
        dataset_task("mine.hdf5", None)


def test_too_few_evaluations_are_refused_before_any_run(tmp_path, capsys):
    code = main(
        ["data", "fingerprint", "x.hdf5", "--task", "hopper-medium-v2", "--steps", "100",
         "--eval-every", "50", "--out", str(tmp_path / "bc")]
    )  # fmt: skip
    assert code != 0
    assert "expected at least --last-evals 3" in capsys.readouterr().err
    assert not (tmp_path / "bc").exists()


def test_record_writes_the_fingerprint_into_the_collect_provenance(tmp_path):
    out = tmp_path / "made"
    args = CollectArgs(
        env_id="Hopper-v5",
        out=str(out),
        levels="random",
        transitions=300,
        num_envs=2,
        from_policies=True,
        progress_bar=False,
    )
    assert run_collect(args) == 0
    folder = out / "minari" / "dtql" / "hopper-random-v0"
    fingerprint = {"dataset_normalized_score": 1.0, "bc_normalized_score": 2.0}
    written = record_fingerprint(str(folder), fingerprint)
    assert written == [folder / "collect_info.json", folder / "data" / "metadata.json"]
    assert json.loads(written[0].read_text())["fingerprint"] == fingerprint
    assert load_dataset(str(folder)).provenance["fingerprint"] == fingerprint


def test_record_refuses_a_dataset_without_a_collect_record(tmp_path):
    data = write_hopper_d4rl(tmp_path / "mine.hdf5", 50)
    with pytest.raises(DatasetError, match="no `dtql collect` record"):
        record_fingerprint(str(data), {})


def test_d4rl_bc_numbers_are_the_papers_table_1():
    from dtql.envs.d4rl_fingerprints import D4RL_FINGERPRINTS
    from dtql.reports.paper import PAPER_TABLE_1

    for task, (_, bc, _) in D4RL_FINGERPRINTS.items():
        assert bc == (PAPER_TABLE_1[task][0] if task in PAPER_TABLE_1 else None), task


def test_train_prints_bc_and_the_data_from_the_datasets_fingerprint(tmp_path):
    from dtql.cli import fingerprint_line

    folder = tmp_path / "hopper-medium-v0"
    folder.mkdir()
    fingerprint = {
        "dataset_normalized_score": 44.0,
        "bc_normalized_score": 51.25,
        "bc_normalized_score_stderr": 1.5,
        "bc": {"steps": 30000, "seeds": [0, 1, 2], "last_evals": 3},
    }
    (folder / "collect_info.json").write_text(json.dumps({"fingerprint": fingerprint}))
    assert fingerprint_line(str(folder)) == (
        "the same data (its fingerprint): BC 51.2 ± 1.5 (30,000 steps x 3 seeds, mean of the "
        "last 3 evaluations), the data itself 44.0"
    )
    assert "no fingerprint recorded" in fingerprint_line(str(tmp_path / "elsewhere.hdf5"))


def test_the_fingerprints_table_judges_each_number_in_words(tmp_path, monkeypatch, capsys):
    from dtql.cli import main

    monkeypatch.setenv("DTQL_DATASETS_DIR", str(tmp_path))  # the shipped fingerprints alone
    assert main(["data", "list", "--fingerprints"]) == 0
    rows = {line.split(" | ")[0][2:]: line for line in capsys.readouterr().out.splitlines()}
    medium = rows["hopper-medium-v2"]
    assert "| 41.0 / 44.3 | 58.3 ± 7.1 / 52.9 |" in medium  # measured / D4RL's, from the catalogue
    assert "| data yes, bc yes, transitions yes |" in medium
