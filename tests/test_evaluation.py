"""Evaluation loop: episode counting, seeding, episode ends, act_fn batching, action clipping."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from dtql.envs.make import make_single_env
from dtql.envs.registry import TaskSpec, get_task
from dtql.evaluation import SUMMARY_KEYS, EvalResult, eval_metrics, evaluate, evaluate_many

HOPPER = get_task("hopper-medium-v2")


def zero_actions(obs: np.ndarray) -> np.ndarray:
    return np.zeros((obs.shape[0], HOPPER.act_dim))


def hand_rolled_episodes(task: TaskSpec, seed: int, count: int) -> list[tuple[float, int]]:
    """(return, length) of the first episodes of one env seeded like vector env 0."""
    env = make_single_env(task)
    episodes = []
    obs, _ = env.reset(seed=seed)
    for _ in range(count):
        total, length, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(np.zeros(task.act_dim))
            total += reward
            length += 1
            done = terminated or truncated
        episodes.append((total, length))
        obs, _ = env.reset()  # what the vector env's autoreset does
    env.close()
    return episodes


def test_counts_exactly_the_requested_episodes():
    result = evaluate(HOPPER, zero_actions, episodes=5, seed=0, num_envs=3)
    assert isinstance(result, EvalResult)
    assert result.returns.shape == result.lengths.shape == result.normalized_scores.shape == (5,)
    assert result.act_mode == "mean"


def test_same_seed_same_returns_and_different_seed_different():
    first = evaluate(HOPPER, zero_actions, episodes=2, seed=3, num_envs=2)
    again = evaluate(HOPPER, zero_actions, episodes=2, seed=3, num_envs=2)
    other = evaluate(HOPPER, zero_actions, episodes=2, seed=4, num_envs=2)
    np.testing.assert_array_equal(first.returns, again.returns)
    assert not np.array_equal(first.returns, other.returns)


def test_episodes_match_a_hand_rolled_single_env_loop():
    # 4 episodes on 2 envs: env 0 runs its first two episodes, reported first. Matching lengths
    # and returns shows episodes end only at done, and no reset step is counted as a transition.
    result = evaluate(HOPPER, zero_actions, episodes=4, seed=7, num_envs=2)
    expected = hand_rolled_episodes(HOPPER, seed=7, count=2)
    np.testing.assert_array_equal(result.lengths[:2], [length for _, length in expected])
    np.testing.assert_allclose(result.returns[:2], [ret for ret, _ in expected])


def test_act_fn_gets_float32_batches_of_flat_observations():
    shapes = []

    def act_fn(obs):
        shapes.append((obs.shape, obs.dtype))
        return zero_actions(obs)

    evaluate(HOPPER, act_fn, episodes=3, seed=0, num_envs=10)
    assert set(shapes) == {((3, 11), np.dtype(np.float32))}  # min(num_envs, episodes) copies


def test_summary_statistics():
    result = EvalResult(
        returns=np.array([1.0, 3.0]),
        lengths=np.array([10, 20]),
        normalized_scores=np.array([10.0, 30.0]),
        discounted_returns=np.array([0.5, 1.5]),
        act_mode="candidates",
    )
    summary = result.summary()
    assert tuple(summary) == SUMMARY_KEYS
    assert summary["return_mean"] == 2.0 and summary["normalized_score_mean"] == 20.0
    assert summary["discounted_return_mean"] == 1.0
    assert summary["normalized_score_std"] == 10.0
    assert eval_metrics(result)["eval/normalized_score_mean"] == 20.0
    assert summary["normalized_score_stderr"] == pytest.approx(
        np.std([10.0, 30.0], ddof=1) / np.sqrt(2)
    )
    assert summary["act_mode"] == "candidates" and summary["episodes"] == 2
    assert all(type(v) in (float, int, str) for v in summary.values())


# --- a tiny deterministic env for the bookkeeping -----------------------------------------


class _CountdownEnv(gym.Env):
    """Episodes of 1 to 4 steps (drawn at reset); reward = the action as received."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float64)
    action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._left = int(self.np_random.integers(1, 5))
        return np.zeros(2), {}

    def step(self, action):
        self._left -= 1
        return np.zeros(2), float(action[0]), self._left == 0, False, {}


gym.register("DtqlCountdown-v0", entry_point=_CountdownEnv)
COUNTDOWN = TaskSpec("countdown", "DtqlCountdown-v0", (), 0.0, 1.0, 2, 1, 100)


def test_quotas_and_action_clipping():
    # act_fn asks for 5.0; the env receives the clipped 1.0, so return == length.
    result = evaluate(
        COUNTDOWN, lambda obs: np.full((obs.shape[0], 1), 5.0), episodes=7, seed=0, num_envs=3
    )
    assert result.returns.size == 7
    np.testing.assert_array_equal(result.returns, result.lengths)
    assert np.all((result.lengths >= 1) & (result.lengths <= 4))


def test_discounted_return_restarts_at_each_episode():
    # Reward 1 every step: an episode of length L is worth (1 - g^L) / (1 - g) from its start.
    result = evaluate(
        COUNTDOWN,
        lambda obs: np.ones((obs.shape[0], 1)),
        episodes=6,
        seed=1,
        num_envs=2,
        discount=0.5,
    )
    expected = (1.0 - 0.5**result.lengths) / (1.0 - 0.5)
    np.testing.assert_allclose(result.discounted_returns, expected)
    assert result.summary()["discounted_return_mean"] == pytest.approx(expected.mean())


def test_time_limit_ends_an_episode():
    capped = TaskSpec("countdown", "DtqlCountdown-v0", (), 0.0, 1.0, 2, 1, 2)
    result = evaluate(capped, lambda obs: np.ones((obs.shape[0], 1)), episodes=6, seed=1)
    assert np.all(result.lengths <= 2)


def test_bad_act_fn_shape_is_reported():
    with pytest.raises(ValueError, match="act_fn returned shape"):
        evaluate(HOPPER, lambda obs: np.zeros((obs.shape[0], 2)), episodes=1, seed=0)


def test_many_policies_in_one_vector_env_score_as_each_does_alone():
    # Two policies that differ (zero torque, and a push of 0.3 on every joint), each with its
    # own seed: evaluated together, each gets exactly the episodes it gets alone.
    def push(obs):
        return np.full((obs.shape[0], 3), 0.3)

    def both(obs):  # rows 0-1 are policy 0's envs, rows 2-3 policy 1's
        return np.concatenate([zero_actions(obs[:2]), push(obs[2:])])

    together = evaluate_many(HOPPER, both, episodes=3, seeds=[5, 9], num_envs=2)
    alone = [
        evaluate(HOPPER, zero_actions, episodes=3, seed=5, num_envs=2),
        evaluate(HOPPER, push, episodes=3, seed=9, num_envs=2),
    ]
    for got, want in zip(together, alone, strict=True):
        np.testing.assert_array_equal(got.returns, want.returns)
        np.testing.assert_array_equal(got.lengths, want.lengths)
    assert not np.array_equal(together[0].returns, together[1].returns)
