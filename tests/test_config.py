"""Configs: the learner/run split, flat flags and the defaults (old config.json files are
tests/test_upgrade.py's)."""

import dataclasses

import tyro

from dtql.config import LearnerConfig, RunConfig, from_dict, to_dict
from dtql.upgrade import upgrade_run_config


def test_a_config_round_trips_through_its_dict():
    cfg = RunConfig(task="walker2d-medium-v2", seed=4)
    assert from_dict(RunConfig, upgrade_run_config(to_dict(cfg))) == cfg


def test_the_learners_flags_are_flat_and_the_learner_is_hashable():
    cfg = tyro.cli(RunConfig, args=["--steps", "7", "--agent.alpha", "2.5", "--seed", "3"])
    assert (cfg.learner.steps, cfg.learner.agent.alpha, cfg.seed) == (7, 2.5, 3)
    assert hash(cfg.learner) == hash(dataclasses.replace(cfg, seed=9, out="x").learner)


def test_new_defaults_are_the_released_codes_where_the_paper_is_silent():
    agent = LearnerConfig().agent
    assert agent.edm.clamp_denoised and not agent.mish_after_input_layer
    assert agent.implicit_generator == "raw" and not agent.kl_train_bc
    assert agent.value_target == "target_q"  # the paper's Eq. 6, where it speaks
