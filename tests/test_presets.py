"""Table 4 as data: every row resolves, with family settings and per-task deltas."""

import pytest

from dtql.envs.registry import UnknownTaskError
from dtql.presets import TABLE_4, UnknownPresetError, preset, preset_names, run_config


def test_all_26_rows_of_table_4_are_presets():
    assert len(preset_names()) == 26 == len(set(preset_names()))


@pytest.mark.parametrize("row", TABLE_4, ids=lambda r: r.task)
def test_preset_applies_its_row(row):
    cfg = preset(row.task).learner
    assert cfg.agent.alpha == row.alpha and cfg.agent.expectile == row.expectile
    assert cfg.agent.lr == row.lr and cfg.agent.lr_decay == row.lr_decay
    assert cfg.steps == row.training_epochs * 1000 and cfg.pretrain_steps == 50_000
    assert cfg.agent.entropy_coef == (1.0 if row.entropy_term else 0.0)
    # The cosine spans the preset's whole schedule (the released T_max), whatever --steps says.
    assert cfg.agent.lr_decay_steps == row.training_epochs * 1000
    assert cfg.agent.critic_lr == 3e-4 and cfg.agent.discount == 0.99


def test_family_settings():
    ant, hop, pen = (
        preset("antmaze-large-diverse-v0"),
        preset("hopper-medium-v2"),
        preset("pen-human-v1"),
    )
    assert (ant.learner.batch_size, ant.reward_transform, ant.eval_episodes) == (
        2048,
        "minus_one",
        100,
    )
    assert (hop.learner.batch_size, hop.reward_transform, hop.eval_episodes) == (256, "none", 10)
    assert pen.eval_episodes == 100 and pen.learner.agent.alpha == 1500


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(UnknownPresetError, match="hopper-medium-v2"):
        preset("hopper-medium-v9")


def test_run_config_adds_the_algorithms_defaults_as_data():
    assert run_config("hopper-medium-v2", "kl").learner.agent.policy == "implicit"
    dtql = run_config("hopper-medium-v2")
    assert dtql.learner.algo == "dtql" and dtql == preset("hopper-medium-v2")
    assert run_config("Hopper-v5", "dtql").learner.steps == 1_000_000  # no Table 4 row: defaults
    with pytest.raises(UnknownTaskError, match="unknown task"):
        run_config("hopper-medium-v9")


def test_bc_is_the_standard_deterministic_bc_and_bc_gaussian_keeps_dtqls_settings():
    bc = run_config("hopper-medium-v2", "bc").learner
    assert (bc.agent.policy, bc.agent.lr, bc.agent.lr_decay) == ("deterministic", 3e-4, False)
    assert (bc.pretrain_steps, bc.steps, bc.batch_size) == (0, 1_000_000, 256)
    gaussian = run_config("hopper-medium-v2", "bc-gaussian").learner
    dtql = preset("hopper-medium-v2").learner
    assert gaussian.agent == dtql.agent and gaussian.algo == "bc-gaussian"
