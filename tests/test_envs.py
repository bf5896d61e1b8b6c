"""Task registry: names, reference scores, and the env -> D4RL observation mappings."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dtql.envs.make import adapt_observation, make_single_env
from dtql.envs.registry import TaskSpec, UnknownTaskError, get_task, normalized_score, task_names
from dtql.presets import preset_names

# (obs_dim, act_dim, random return, expert return) from REFERENCE.md, by name prefix.
D4RL_FACTS = {
    "halfcheetah": (17, 6, -280.178953, 12135.0),
    "hopper": (11, 3, -20.272305, 3234.3),
    "walker2d": (17, 6, 1.629008, 4592.3),
    "antmaze": (29, 8, 0.0, 1.0),
    "pen": (45, 24, 96.262799, 3076.8331017826877),
    "kitchen": (60, 9, 0.0, 4.0),
}


def test_normalized_score_is_0_at_random_and_100_at_expert():
    task = get_task("hopper-medium-v2")
    assert normalized_score(task, task.ref_min_score) == pytest.approx(0.0)
    assert normalized_score(task, task.ref_max_score) == pytest.approx(100.0)
    halfway = (task.ref_min_score + task.ref_max_score) / 2
    scores = normalized_score("hopper-medium-v2", [task.ref_min_score, halfway, task.ref_max_score])
    np.testing.assert_allclose(scores, [0.0, 50.0, 100.0])
    assert normalized_score("antmaze-umaze-v2", 1.0) == pytest.approx(100.0)
    assert normalized_score("kitchen-mixed-v0", 2.0) == pytest.approx(50.0)


@pytest.mark.parametrize("name", preset_names())
def test_every_table4_task_resolves_with_d4rl_facts(name):
    task = get_task(name)
    assert task.name == name
    obs_dim, act_dim, ref_min, ref_max = D4RL_FACTS[name.split("-")[0]]
    assert (task.obs_dim, task.act_dim) == (obs_dim, act_dim)
    assert (task.ref_min_score, task.ref_max_score) == (ref_min, ref_max)
    hash(task)  # frozen and hashable (usable as a static argument / cache key)


def test_table4_has_26_names():
    assert len(preset_names()) == 26


@pytest.mark.parametrize(
    ("name", "env_id", "steps"),
    [
        ("hopper-random-v2", "Hopper-v5", 1000),
        ("halfcheetah-expert-v2", "HalfCheetah-v5", 1000),
        ("walker2d-full-replay-v2", "Walker2d-v5", 1000),
        ("hopper", "Hopper-v5", 1000),
        ("Hopper-v5", "Hopper-v5", 1000),
        ("AdroitHandPen-v1", "AdroitHandPen-v1", 100),
        ("antmaze-umaze-diverse-v0", "AntMaze_UMaze-v5", 700),
        ("antmaze-medium-play-v2", "AntMaze_Medium-v5", 1000),
        ("antmaze-large-diverse-v2", "AntMaze_Large-v5", 1000),
        ("pen-cloned-v1", "AdroitHandPen-v1", 100),
        ("kitchen-complete-v0", "FrankaKitchen-v1", 280),
    ],
)
def test_other_names_resolve(name, env_id, steps):
    task = get_task(name)
    assert (task.env_id, task.max_episode_steps) == (env_id, steps)
    assert name in task_names()


def test_kitchen_datasets_use_d4rl_task_lists():
    def tasks_of(name):
        return dict(get_task(name).env_kwargs)["tasks_to_complete"]

    light_slider = ("microwave", "kettle", "light switch", "slide cabinet")
    assert tasks_of("kitchen-complete-v0") == light_slider
    assert tasks_of("kitchen-partial-v0") == light_slider
    assert tasks_of("kitchen-mixed-v0") == ("microwave", "kettle", "bottom burner", "light switch")


def test_unknown_task_error_lists_names():
    with pytest.raises(KeyError) as info:
        get_task("hoper-medium-v2")
    assert isinstance(info.value, UnknownTaskError)
    message = str(info.value)
    assert "hopper-medium-v2" in message  # close-match suggestion
    assert "antmaze-umaze" in message and "Hopper-v5" in message


# --- observation mappings -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "walls"),
    [
        ("antmaze-umaze-v2", "U_MAZE"),
        ("antmaze-medium-play-v2", "MEDIUM_MAZE"),
        ("antmaze-large-play-v2", "LARGE_MAZE"),
    ],
)
def test_antmaze_maps_are_gymnasium_walls_with_one_start_and_goal(name, walls):
    from gymnasium_robotics.envs.maze import maps

    maze = dict(get_task(name).env_kwargs)["maze_map"]
    as_walls = [[1 if cell == 1 else 0 for cell in row] for row in maze]
    assert as_walls == getattr(maps, walls)
    cells = [cell for row in maze for cell in row]
    assert cells.count("r") == 1 and cells.count("g") == 1


def test_antmaze_observation_is_qpos_then_qvel():
    task = get_task("antmaze-umaze-v2")
    env = make_single_env(task)
    try:
        obs, _ = env.reset(seed=0)
        data = env.unwrapped.data
        for _ in range(3):
            assert obs.shape == (29,)
            np.testing.assert_array_equal(obs, np.concatenate([data.qpos, data.qvel]))
            obs, *_ = env.step(env.action_space.sample())
    finally:
        env.close()


def test_antmaze_adapter_is_batch_aware():
    task = get_task("antmaze-large-diverse-v2")
    batch = {
        "achieved_goal": np.arange(10.0).reshape(5, 2),
        "observation": np.ones((5, 27)),
        "desired_goal": np.zeros((5, 2)),
    }
    flat = adapt_observation(task, batch)
    assert flat.shape == (5, 29)
    np.testing.assert_array_equal(flat[:, :2], batch["achieved_goal"])


def test_antmaze_episode_ends_with_reward_1_at_the_goal():
    env = make_single_env(get_task("antmaze-umaze-v2"))
    try:
        env.reset(seed=0)
        maze_env = env.unwrapped
        qpos, qvel = maze_env.data.qpos.copy(), maze_env.data.qvel.copy()
        qpos[:2] = maze_env.goal  # teleport the torso onto the goal
        maze_env.ant_env.set_state(qpos, qvel * 0)
        _, reward, terminated, truncated, _ = env.step(np.zeros(8))
        assert (reward, terminated, truncated) == (1.0, True, False)
    finally:
        env.close()


def test_pen_is_identity_45d_with_d4rl_episode_end():
    task = get_task("pen-human-v1")
    assert task.obs_adapter == "identity"
    env = make_single_env(task)
    try:
        obs, _ = env.reset(seed=0)
        pen = env.unwrapped
        assert obs.shape == (45,)
        np.testing.assert_array_equal(obs, pen._get_obs())
        np.testing.assert_array_equal(obs[24:27], pen.data.xpos[pen.obj_body_id])  # pen position
        # Drop the pen: D4RL ends the episode once it is below 0.075 m. (The pen's first slide
        # joint, qpos[24], moves it along world -z in this model.)
        qpos, qvel = pen.data.qpos.copy(), pen.data.qvel.copy()
        qpos[24] = 0.5
        pen.set_state(qpos, qvel)
        assert pen.data.xpos[pen.obj_body_id][2] < 0.075
        _, _, terminated, _, _ = env.step(np.zeros(24))
        assert terminated
    finally:
        env.close()


# FrankaKitchen-v1 returns the same desired_goal dict at every step; harmless here.
@pytest.mark.filterwarnings("ignore:.*share an object")
def test_kitchen_observation_is_d4rl_60d_layout():
    task = get_task("kitchen-mixed-v0")
    # No observation noise, so the layout can be checked exactly against the simulator state.
    quiet = dataclasses.replace(
        task,
        env_kwargs=task.env_kwargs + (("robot_noise_ratio", 0.0), ("object_noise_ratio", 0.0)),
    )
    env = make_single_env(quiet)
    try:
        obs, _ = env.reset(seed=0)
        obs, *_ = env.step(env.action_space.sample())
        assert obs.shape == (60,)
        data = env.unwrapped.data
        np.testing.assert_allclose(obs[:30], data.qpos[:30])  # robot 9 + objects 21
        goal = np.zeros(30)
        goal[22] = -0.75  # microwave
        goal[23:30] = [-0.23, 0.75, 1.62, 0.99, 0.0, 0.0, -0.06]  # kettle
        goal[11:13] = [-0.88, -0.01]  # bottom burner
        goal[17:19] = [-0.69, -0.05]  # light switch
        np.testing.assert_allclose(obs[30:], goal)
    finally:
        env.close()


def test_kitchen_adapter_is_batch_aware():
    task = get_task("kitchen-complete-v0")
    steps = 4
    batch = {
        "observation": np.tile(np.arange(59.0), (steps, 1)),
        "desired_goal": {
            "microwave": np.full((steps, 1), -0.75),
            "slide cabinet": np.full((steps, 1), 0.37),
        },
        "achieved_goal": {},
    }
    flat = adapt_observation(task, batch)
    assert flat.shape == (steps, 60)
    np.testing.assert_array_equal(flat[:, :9], batch["observation"][:, :9])
    np.testing.assert_array_equal(flat[:, 9:30], batch["observation"][:, 18:39])
    assert np.all(flat[:, 30 + 22] == -0.75) and np.all(flat[:, 30 + 19] == 0.37)
    assert np.count_nonzero(flat[0, 30:]) == 2


@pytest.mark.parametrize(
    "name", ["hopper-medium-v2", "halfcheetah-medium-v2", "walker2d-medium-v2"]
)
def test_locomotion_is_identity(name):
    task: TaskSpec = get_task(name)
    env = make_single_env(task)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (task.obs_dim,)
        assert env.action_space.shape == (task.act_dim,)
    finally:
        env.close()
