"""The dataset layer: D4RL, Minari and .npz readers, checks, reward transforms, dataset_info.

Every test writes its own tiny files in tmp_path; nothing is downloaded.
"""

from __future__ import annotations

import json
import warnings

import h5py
import numpy as np
import pytest

from dtql.data import (
    DatasetError,
    Transitions,
    apply_reward_transform,
    dataset_info,
    load_dataset,
    minari_metadata,
    validate_transitions,
    write_npz,
)

# A hand-made D4RL file of 10 rows, obs_dim 2, act_dim 1; observation i is (i, -i), reward i.
#   episode 0: rows 0-3, cut by a timeout at row 3
#   episode 1: rows 4-5, terminal at row 5
#   episode 2: rows 6-9, the file ends at row 9 with neither flag
N_ROWS = 10
TIMEOUT_ROW, TERMINAL_ROW = 3, 5
EPISODE_RETURNS = [0 + 1 + 2 + 3, 4 + 5, 6 + 7 + 8 + 9]


def d4rl_arrays() -> dict[str, np.ndarray]:
    rows = np.arange(N_ROWS, dtype=np.float32)
    terminals = np.zeros(N_ROWS, dtype=bool)
    terminals[TERMINAL_ROW] = True
    timeouts = np.zeros(N_ROWS, dtype=bool)
    timeouts[TIMEOUT_ROW] = True
    return {
        "observations": np.stack([rows, -rows], axis=1),
        "actions": (rows / N_ROWS)[:, None],
        "rewards": rows.copy(),
        "terminals": terminals,
        "timeouts": timeouts,
    }


def write_hdf5(path, arrays: dict[str, np.ndarray]) -> str:
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
        f.create_dataset("infos/qpos", data=np.zeros((N_ROWS, 3)))  # extra keys are ignored
    return str(path)


@pytest.fixture
def d4rl_file(tmp_path) -> str:
    return write_hdf5(tmp_path / "toy-v2.hdf5", d4rl_arrays())


# --------------------------------------------------------------------------- D4RL semantics


def test_d4rl_without_next_observations_drops_rows_that_have_no_next_state(d4rl_file):
    t = load_dataset(d4rl_file)
    # Dropped: the timeout row 3 and the unflagged last row 9; the terminal row 5 is kept.
    kept = [0, 1, 2, 4, 5, 6, 7, 8]
    assert t.num_transitions == len(kept)
    np.testing.assert_array_equal(t.observations[:, 0], kept)
    np.testing.assert_array_equal(t.rewards, kept)
    assert t.observations.dtype == np.float32 and t.terminals.dtype == np.float32


def test_d4rl_no_transition_crosses_an_episode_boundary(d4rl_file):
    t = load_dataset(d4rl_file)
    s, s_next, done = t.observations[:, 0], t.next_observations[:, 0], t.terminals
    for row, row_next, d in zip(s, s_next, done, strict=True):
        if d == 0:  # bootstrapped transitions must use the next row of the same episode
            assert row_next == row + 1
            assert row != TIMEOUT_ROW and row != N_ROWS - 1
    np.testing.assert_array_equal(t.next_observations[:, 1], -t.next_observations[:, 0])


def test_d4rl_terminal_row_is_kept_with_done_and_the_following_observation(d4rl_file):
    t = load_dataset(d4rl_file)
    (i,) = np.flatnonzero(t.terminals)
    assert t.observations[i, 0] == TERMINAL_ROW
    assert t.next_observations[i, 0] == TERMINAL_ROW + 1  # unused since done = 1


def test_d4rl_terminal_last_row_uses_its_own_observation(tmp_path):
    arrays = d4rl_arrays()
    arrays["terminals"][-1] = True
    t = load_dataset(write_hdf5(tmp_path / "x.hdf5", arrays))
    assert t.terminals[-1] == 1
    np.testing.assert_array_equal(t.next_observations[-1], t.observations[-1])
    assert t.observations[-1, 0] == N_ROWS - 1


def test_d4rl_timeout_transition_is_not_terminal(tmp_path):
    arrays = d4rl_arrays()
    arrays["next_observations"] = arrays["observations"] + 0.5
    t = load_dataset(write_hdf5(tmp_path / "x.hdf5", arrays))
    row = t.observations[:, 0] == TIMEOUT_ROW
    assert t.terminals[row] == 0 and t.timeouts[row] == 1


def test_d4rl_with_next_observations_keeps_every_row_and_uses_them(tmp_path):
    arrays = d4rl_arrays()
    arrays["next_observations"] = arrays["observations"] + 0.5
    t = load_dataset(write_hdf5(tmp_path / "x.hdf5", arrays))
    assert t.num_transitions == N_ROWS
    np.testing.assert_array_equal(t.next_observations, arrays["observations"] + 0.5)
    # Episode ends: the timeout row, the terminal row, and the file's last row.
    np.testing.assert_array_equal(np.flatnonzero(t.terminals), [TERMINAL_ROW])
    np.testing.assert_array_equal(np.flatnonzero(t.timeouts), [TIMEOUT_ROW, N_ROWS - 1])


def test_d4rl_flags_mark_the_last_kept_transition_of_every_episode(d4rl_file):
    t = load_dataset(d4rl_file)
    ends = t.observations[(t.terminals + t.timeouts) == 1, 0]
    np.testing.assert_array_equal(ends, [TIMEOUT_ROW - 1, TERMINAL_ROW, N_ROWS - 2])
    assert np.all(t.terminals * t.timeouts == 0)


def test_d4rl_episode_returns_count_every_raw_row(d4rl_file):
    t = load_dataset(d4rl_file)
    np.testing.assert_array_equal(t.episode_returns, EPISODE_RETURNS)
    assert t.episode_returns.dtype == np.float64


def test_d4rl_v0_without_timeouts_ends_episodes_only_at_terminals(tmp_path):
    arrays = d4rl_arrays()
    del arrays["timeouts"]
    t = load_dataset(write_hdf5(tmp_path / "x-v0.hdf5", arrays))
    # Row 3 is now mid-episode (kept, s' = row 4); only the last row 9 is dropped.
    assert t.num_transitions == N_ROWS - 1
    row = np.flatnonzero(t.observations[:, 0] == TIMEOUT_ROW)[0]
    assert t.next_observations[row, 0] == TIMEOUT_ROW + 1
    np.testing.assert_array_equal(t.episode_returns, [0 + 1 + 2 + 3 + 4 + 5, 6 + 7 + 8 + 9])


def test_d4rl_name_is_looked_up_in_d4rl_dataset_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("D4RL_DATASET_DIR", str(tmp_path))
    write_hdf5(tmp_path / "toy-medium-v2.hdf5", d4rl_arrays())
    t = load_dataset("toy-medium-v2")
    assert t.num_transitions == 8 and t.source == "toy-medium-v2"


def test_d4rl_name_finds_the_file_name_d4rl_itself_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("D4RL_DATASET_DIR", str(tmp_path))
    write_hdf5(tmp_path / "toy_medium_replay-v2.hdf5", d4rl_arrays())
    assert load_dataset("toy-medium-replay-v2").num_transitions == 8


def test_d4rl_dict_observations_need_an_adapter(tmp_path):
    arrays = d4rl_arrays()
    obs = arrays.pop("observations")
    path = write_hdf5(tmp_path / "x.hdf5", arrays)
    with h5py.File(path, "a") as f:
        f.create_dataset("observations/pos", data=obs)
        f.create_dataset("observations/goal", data=obs[:, :1])
    with pytest.raises(DatasetError, match=r"x\.hdf5: field 'observations' is a dict.*'goal'"):
        load_dataset(path)
    t = load_dataset(path, obs_adapter=lambda d: np.concatenate([d["pos"], d["goal"]], axis=1))
    assert t.obs_dim == 3


# --------------------------------------------------------------------------- Minari


def make_minari_dataset(dataset_id: str, episodes, **kwargs) -> None:
    """Create a local Minari dataset from (observations, actions, terminations, truncations)."""
    import minari
    from minari.data_collector import EpisodeBuffer

    buffers = [
        EpisodeBuffer(
            observations=obs,
            actions=actions,
            rewards=list(np.arange(len(actions), dtype=np.float64)),
            terminations=list(terminations),
            truncations=list(truncations),
        )
        for obs, actions, terminations, truncations in episodes
    ]
    with warnings.catch_warnings():  # missing author, permalink, ... are fine here
        warnings.simplefilter("ignore")
        minari.create_dataset_from_buffers(dataset_id, buffers, **kwargs)


def box_episode(steps: int, terminated: bool, offset: float):
    obs = (offset + np.arange(steps + 1, dtype=np.float32))[:, None] * np.ones(3, np.float32)
    actions = np.full((steps, 1), 0.5, dtype=np.float32)
    last = np.arange(steps) == steps - 1
    return obs, actions, last & terminated, last & (not terminated)


@pytest.fixture
def minari_dataset(tmp_path, monkeypatch) -> str:
    """Two Pendulum-shaped episodes: 4 steps ending terminated, 3 steps ending truncated."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    make_minari_dataset(
        "test/tiny-v0",
        [box_episode(4, True, 0.0), box_episode(3, False, 100.0)],
        env="Pendulum-v1",
        eval_env="Pendulum-v1",
        ref_min_score=-1.0,
        ref_max_score=2.0,
    )
    return "test/tiny-v0"


def test_minari_loaded_by_id_keeps_every_step(minari_dataset):
    t = load_dataset(minari_dataset)
    assert (t.num_transitions, t.num_episodes, t.obs_dim, t.act_dim) == (7, 2, 3, 1)
    np.testing.assert_array_equal(t.terminals, [0, 0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(t.timeouts, [0, 0, 0, 0, 0, 0, 1])
    # s' is the next observation of the same episode, the final one included.
    np.testing.assert_array_equal(t.next_observations[:, 0], t.observations[:, 0] + 1)
    np.testing.assert_array_equal(t.observations[:, 0], [0, 1, 2, 3, 100, 101, 102])
    np.testing.assert_array_equal(t.episode_returns, [0 + 1 + 2 + 3, 0 + 1 + 2])


def test_minari_loaded_by_folder_path_equals_loaded_by_id(minari_dataset, tmp_path):
    by_id = load_dataset(minari_dataset)
    folder = tmp_path / "minari" / "test" / "tiny-v0"
    for spec in (folder, folder / "data", folder / "data" / "main_data.hdf5"):
        t = load_dataset(str(spec))
        assert t.num_transitions == 7 and t.num_episodes == 2
        np.testing.assert_array_equal(t.next_observations, by_id.next_observations)


def test_minari_metadata_gives_reference_scores_and_env_id(minari_dataset, tmp_path):
    meta = minari_metadata(minari_dataset)
    assert meta == {
        "dataset_id": "test/tiny-v0",
        "ref_min_score": -1.0,
        "ref_max_score": 2.0,
        "env_id": "Pendulum-v1",
        "eval_env_id": "Pendulum-v1",
    }
    assert minari_metadata(tmp_path / "minari" / "test" / "tiny-v0") == meta
    json.dumps(meta)


def test_minari_metadata_without_scores_gives_none(tmp_path, monkeypatch):
    import gymnasium as gym

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    space = gym.spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
    make_minari_dataset(
        "plain-v0",
        [box_episode(2, True, 0.0)],
        observation_space=space,
        action_space=action_space,
    )
    meta = minari_metadata("plain-v0")
    assert meta["ref_min_score"] is None and meta["env_id"] is None


def test_minari_unknown_id_fails_without_downloading(tmp_path, monkeypatch):
    import minari.storage.hosting

    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(minari.storage.hosting, "download_dataset", no_network)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    monkeypatch.setenv("D4RL_DATASET_DIR", str(tmp_path))
    with pytest.raises(DatasetError, match=r"mujoco/hopper/medium-v0: dataset not found.*Minari"):
        load_dataset("mujoco/hopper/medium-v0")
    with pytest.raises(DatasetError, match=r"mujoco/hopper/medium-v0: Minari dataset not found"):
        minari_metadata("mujoco/hopper/medium-v0")


@pytest.fixture
def dict_obs_dataset(tmp_path, monkeypatch) -> str:
    """AntMaze-like dict observations: observation [T+1, 4], desired_goal [T+1, 2]."""
    import gymnasium as gym

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    box = lambda n: gym.spaces.Box(-10.0, 10.0, shape=(n,), dtype=np.float32)  # noqa: E731
    space = gym.spaces.Dict({"observation": box(4), "desired_goal": box(2)})
    steps = 5
    obs = {
        "observation": np.zeros((steps + 1, 4), np.float32),
        "desired_goal": np.ones((steps + 1, 2), np.float32),
    }
    flags = np.arange(steps) == steps - 1
    episode = (obs, np.zeros((steps, 1), np.float32), flags, np.zeros(steps, dtype=bool))
    make_minari_dataset("maze-v0", [episode], observation_space=space, action_space=box(1))
    return "maze-v0"


def test_minari_dict_observations_without_adapter_name_the_keys(dict_obs_dataset):
    with pytest.raises(
        DatasetError,
        match=r"maze-v0: field 'episode_0/observations' is a dict with keys "
        r"\['desired_goal', 'observation'\]",
    ):
        load_dataset(dict_obs_dataset)


def test_minari_dict_observations_with_adapter_have_the_adapter_shape(dict_obs_dataset):
    def adapter(obs: dict) -> np.ndarray:
        return np.concatenate([obs["observation"], obs["desired_goal"]], axis=1)

    t = load_dataset(dict_obs_dataset, obs_adapter=adapter)
    assert t.observations.shape == (5, 6) and t.next_observations.shape == (5, 6)


def test_minari_bad_adapter_output_is_an_error(dict_obs_dataset):
    with pytest.raises(DatasetError, match=r"field 'episode_0/observations' has shape \(6,\)"):
        load_dataset(dict_obs_dataset, obs_adapter=lambda obs: obs["observation"][:, 0])


# --------------------------------------------------------------------------- npz


def test_npz_round_trip_gives_back_the_same_transitions(d4rl_file, tmp_path):
    original = load_dataset(d4rl_file)
    path = tmp_path / "mine.npz"
    write_npz(path, original)
    again = load_dataset(str(path))
    for field in (
        "observations",
        "actions",
        "rewards",
        "next_observations",
        "terminals",
        "timeouts",
        "episode_returns",
    ):
        np.testing.assert_array_equal(getattr(again, field), getattr(original, field))
        assert getattr(again, field).dtype == getattr(original, field).dtype
    assert again.source == str(path)


def test_npz_without_optional_keys_uses_flagged_episode_ends(tmp_path):
    path = tmp_path / "min.npz"
    obs = np.arange(12, dtype=np.float64).reshape(6, 2)
    np.savez(
        path,
        observations=obs,
        actions=np.zeros((6, 1)),
        rewards=np.array([1.0, 1, 1, 2, 2, 2]),
        next_observations=obs + 1,
        terminals=np.array([0, 0, 1, 0, 0, 0]),
    )
    t = load_dataset(str(path))
    assert t.num_transitions == 6 and t.observations.dtype == np.float32
    np.testing.assert_array_equal(t.episode_returns, [3.0, 6.0])
    np.testing.assert_array_equal(t.timeouts, [0, 0, 0, 0, 0, 1])  # the last row closes


# --------------------------------------------------------------------------- transforms, info


def test_reward_transform_none_and_minus_one():
    rewards = np.array([0.0, 1.0, 0.0], dtype=np.float32)
    np.testing.assert_array_equal(apply_reward_transform(rewards, "none"), rewards)
    np.testing.assert_array_equal(apply_reward_transform(rewards, "minus_one"), [-1, 0, -1])
    np.testing.assert_array_equal(rewards, [0, 1, 0])  # the input is left alone


def test_iqls_locomotion_scaling_divides_by_the_range_of_episode_returns():
    rewards = np.array([1.0, 2.0, 3.0], np.float32)
    scaled = apply_reward_transform(rewards, "scale_by_return_range", np.array([10.0, 50.0]))
    np.testing.assert_allclose(scaled, rewards * 1000 / 40)
    with pytest.raises(ValueError, match="return range"):
        apply_reward_transform(rewards, "scale_by_return_range", np.array([5.0]))


def test_reward_transform_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"'clip'.*'none', 'minus_one'"):
        apply_reward_transform(np.zeros(3), "clip")


def test_dataset_info_numbers_on_a_hand_made_file(d4rl_file):
    info = dataset_info(load_dataset(d4rl_file))
    assert info["source"] == d4rl_file
    assert "made_by" not in info  # a file with no `dtql collect` record
    assert (info["transitions"], info["episodes"]) == (8, 3)
    # The file flags one timeout; its last episode is cut by the end of the file, apart.
    assert (info["terminals"], info["timeouts"], info["truncated_by_end"]) == (1, 1, 1)
    assert (info["obs_dim"], info["act_dim"]) == (2, 1)
    assert info["return_mean"] == pytest.approx(np.mean(EPISODE_RETURNS))
    assert (info["return_min"], info["return_max"]) == (6.0, 30.0)
    assert json.loads(json.dumps(info)) == info


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("{not json", r"field 'metadata/dtql_collect' is not JSON text"),
        ("[1, 2]", r"field 'metadata/dtql_collect' is a list, expected a JSON object"),
    ],
)
def test_a_bad_collect_record_names_file_and_field(tmp_path, stored, expected):
    path = write_hdf5(tmp_path / "x.hdf5", d4rl_arrays())
    with h5py.File(path, "a") as f:
        f.create_dataset("metadata/dtql_collect", data=stored)
    with pytest.raises(DatasetError, match=rf"x\.hdf5: {expected}"):
        load_dataset(path)


def test_missing_key_names_file_and_key(tmp_path):
    arrays = d4rl_arrays()
    del arrays["rewards"]
    path = write_hdf5(tmp_path / "x.hdf5", arrays)
    with pytest.raises(DatasetError, match=r"x\.hdf5: missing required key 'rewards'"):
        load_dataset(path)


def test_npz_missing_key_names_file_and_key(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, observations=np.zeros((3, 2)))
    with pytest.raises(DatasetError, match=r"x\.npz: missing required key 'actions'"):
        load_dataset(str(path))


def test_mismatched_lengths_name_field_and_expected_rows(tmp_path):
    arrays = d4rl_arrays()
    arrays["rewards"] = arrays["rewards"][:-1]
    path = write_hdf5(tmp_path / "x.hdf5", arrays)
    expected = r"x\.hdf5: field 'rewards' has 9 rows, expected 10 \(same as 'observations'\)"
    with pytest.raises(DatasetError, match=expected):
        load_dataset(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_name_field_and_first_row(tmp_path, bad):
    arrays = d4rl_arrays()
    arrays["observations"][7, 1] = bad
    arrays["observations"][8, 0] = bad
    path = write_hdf5(tmp_path / "x.hdf5", arrays)
    with pytest.raises(DatasetError, match=rf"x\.hdf5: field 'observations' has -?{bad} at row 7"):
        load_dataset(path)


def test_flags_other_than_zero_or_one_are_an_error(tmp_path):
    arrays = d4rl_arrays()
    arrays["terminals"] = arrays["terminals"].astype(np.float32)
    arrays["terminals"][2] = 0.5
    path = write_hdf5(tmp_path / "x.hdf5", arrays)
    with pytest.raises(DatasetError, match=r"field 'terminals' has value 0.5 at row 2"):
        load_dataset(path)


def test_wrong_obs_dim_names_the_env_dim(d4rl_file):
    t = load_dataset(d4rl_file)
    with pytest.raises(
        DatasetError, match=r"toy-v2\.hdf5: field 'observations' has dim 2, expected 11"
    ):
        validate_transitions(t, obs_dim=11)


def test_wrong_act_dim_names_the_env_dim(d4rl_file):
    t = load_dataset(d4rl_file)
    with pytest.raises(DatasetError, match=r"toy-v2\.hdf5: field 'actions' has dim 1, expected 3"):
        validate_transitions(t, obs_dim=2, act_dim=3)


def test_actions_out_of_bounds_name_the_worst_value_and_row(d4rl_file):
    t = load_dataset(d4rl_file)
    validate_transitions(t, obs_dim=2, act_dim=1, action_low=-1.0, action_high=1.0)
    validate_transitions(t, action_low=0.0, action_high=0.8 - 5e-6)  # inside atol
    with pytest.raises(
        DatasetError, match=r"toy-v2\.hdf5: field 'actions' has value 0.8 at row 7, column 0"
    ):
        validate_transitions(t, action_low=np.array([0.0]), action_high=np.array([0.5]))


def test_empty_dataset_is_an_error(tmp_path):
    path = write_hdf5(tmp_path / "x.hdf5", {k: v[:0] for k, v in d4rl_arrays().items()})
    with pytest.raises(DatasetError, match=r"x\.hdf5: dataset is empty: field 'observations'"):
        load_dataset(path)


def test_transitions_with_no_rows_fail_validation():
    empty = Transitions(
        observations=np.zeros((0, 2), np.float32),
        actions=np.zeros((0, 1), np.float32),
        rewards=np.zeros(0, np.float32),
        next_observations=np.zeros((0, 2), np.float32),
        terminals=np.zeros(0, np.float32),
        timeouts=np.zeros(0, np.float32),
        episode_returns=np.zeros(0),
        source="mem",
    )
    with pytest.raises(DatasetError, match=r"mem: dataset is empty"):
        validate_transitions(empty)


def test_unknown_spec_lists_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("D4RL_DATASET_DIR", str(tmp_path / "d4rl"))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    with pytest.raises(DatasetError, match=r"nope-v2: dataset not found") as err:
        load_dataset("nope-v2")
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path / "d4rl" / "nope-v2.hdf5") in message
    assert str(tmp_path / "minari" / "nope-v2" / "data") in message


def test_missing_file_path_is_not_found(tmp_path):
    with pytest.raises(DatasetError, match=r"missing\.hdf5: dataset not found"):
        load_dataset(str(tmp_path / "missing.hdf5"))


def test_unsupported_file_type_is_an_error(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("1,2,3\n")
    with pytest.raises(DatasetError, match=r"data\.csv: unsupported file type '\.csv'"):
        load_dataset(str(path))


def test_folder_that_is_not_a_minari_dataset_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match=r"folder is not a Minari dataset"):
        load_dataset(str(tmp_path))


@pytest.mark.parametrize("flagged_rows, timeouts, cut", [((2, 5), 2, 1), ((2, 5, 7), 3, 0)])
def test_info_counts_the_files_timeout_flags_and_the_cut_episode_apart(
    tmp_path, flagged_rows, timeouts, cut
):
    # As h5py or D4RL count them: an episode that stops with the file is not a flagged timeout.
    n = 8
    flags = np.zeros(n, dtype=bool)
    flags[list(flagged_rows)] = True
    path = tmp_path / "flags.hdf5"
    with h5py.File(path, "w") as f:
        f["observations"] = np.zeros((n, 2), np.float32)
        f["actions"] = np.zeros((n, 1), np.float32)
        f["rewards"] = np.ones(n, np.float32)
        f["terminals"] = np.zeros(n, dtype=bool)
        f["timeouts"] = flags
        f["next_observations"] = np.zeros((n, 2), np.float32)
    info = dataset_info(load_dataset(path))
    assert (info["timeouts"], info["truncated_by_end"]) == (timeouts, cut)
    assert info["episodes"] == timeouts + cut
