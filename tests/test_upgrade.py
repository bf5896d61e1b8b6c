"""dtql.upgrade: files written by an earlier dtql read as what they meant (configs, SAC states,
collect records and fingerprints, results), and today's files pass through unchanged."""

import json

from dtql.config import LearnerConfig, RunConfig, from_dict, to_dict
from dtql.upgrade import (
    ADDED_FIELDS,
    DATASET_SCORE,
    upgrade_collect_record,
    upgrade_dataset_score,
    upgrade_result,
    upgrade_run_config,
    upgrade_sac_state,
)


def test_an_old_flat_config_reads_as_the_run_it_was():
    # Written before the learner/run split and before the released code's choices became the
    # defaults: fields it lacks take the values that run used, not today's defaults.
    old = to_dict(RunConfig())
    for dotted in ADDED_FIELDS:
        *parents, name = dotted.split(".")
        node = old
        for parent in parents:
            node = node[parent]
        node.pop(name)
    learner = old.pop("learner")
    flat = {**old, **learner}
    cfg = from_dict(RunConfig, upgrade_run_config(flat))
    assert cfg.learner.agent.mish_after_input_layer is True
    assert cfg.learner.agent.implicit_generator == "preconditioned"
    assert cfg.matmul_precision == "default"
    assert cfg.learner.steps == LearnerConfig().steps


def test_old_evaluation_keys_are_renamed_when_a_state_is_loaded():
    old = {"step": 0, "return_mean": 1.0, "normalized_score": 2.0, "length_mean": 3.0}
    state = {
        "evals": [dict(old), dict(old, step=5)],
        "random": dict(old),
        "medium": None,
        "final": dict(old, step=5),
    }
    state = upgrade_sac_state(state)
    for record in [*state["evals"], state["random"], state["final"]]:
        assert record["normalized_score_mean"] == 2.0 and record["episode_length_mean"] == 3.0
        assert "normalized_score" not in record and "length_mean" not in record
    assert state["medium"] is None and state["evals"][1]["step"] == 5
    # A state in the current vocabulary is left as it is.
    assert upgrade_sac_state(json.loads(json.dumps(state))) == state


def test_an_old_collect_record_gets_todays_names_and_a_new_one_is_unchanged():
    old = {
        "level": "medium",
        "dataset_normalized_score": 41.0,
        "behaviour_policy": [{"policy": "medium", "evaluation": {"normalized_score": 40.0}}],
        "fingerprint": {"data_normalized_score": 41.0, "bc_normalized_score": 58.3},
    }
    new = upgrade_collect_record(old)
    assert new["behaviour_policy"][0]["evaluation"] == {"normalized_score_mean": 40.0}
    assert new["fingerprint"] == {DATASET_SCORE: 41.0, "bc_normalized_score": 58.3}
    assert old["fingerprint"]["data_normalized_score"] == 41.0  # the input is left alone
    assert upgrade_collect_record(new) == new
    assert upgrade_collect_record(None) is None


def test_a_result_with_the_old_dataset_score_name_reads_by_todays():
    assert upgrade_dataset_score({"behaviour_normalized_score": 39.8}) == {DATASET_SCORE: 39.8}
    assert upgrade_dataset_score({DATASET_SCORE: 1.0}) == {DATASET_SCORE: 1.0}
    old = {"behaviour_return_mean": 1270.0, "behaviour_normalized_score": 39.8, "status": "x"}
    new = {"dataset_return_mean": 1270.0, DATASET_SCORE: 39.8, "status": "x"}
    assert upgrade_result(old) == new and upgrade_result(new) == new
