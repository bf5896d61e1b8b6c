"""Behaviour policies as files (dtql.collect.behaviour_policy) and `dtql collect
--from-policies`: the numpy actor against stable-baselines3's SAC actor, the files, the datasets
made from the shipped policies (counts, determinism), and how `dtql train --task` / `dtql data
info` find them.

The comparisons with SB3 need the collect extra (torch, stable-baselines3) and are skipped
without it; everything else runs with numpy alone.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from dtql.cli import main
from dtql.collect import CollectArgs, run_collect
from dtql.collect.args import LEVELS
from dtql.collect.behaviour_policy import (
    SHIPPED_POLICIES,
    PolicyFileError,
    action_rng,
    load_behaviour_policy,
    policy_from_sb3,
    unscale_action,
    write_behaviour_policy,
)
from dtql.collect.catalogue import collected_catalogue
from dtql.collect.replay import (
    load_replay_actions,
    regenerate,
    replay_from_buffer,
    write_replay_actions,
)
from dtql.data import DatasetError, load_dataset
from dtql.data.provenance_summary import evaluated_normalized_score
from dtql.data.transitions import transitions_from_rows
from dtql.envs.make import make_single_env
from dtql.envs.registry import get_task

HOPPER = get_task("hopper")
FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")
# Bounds that are neither symmetric nor equal per dimension, to check the rescale to the bounds.
LOW = np.array([-1.0, 0.0, 2.0], np.float32)
HIGH = np.array([1.0, 3.0, 2.5], np.float32)


class SpacesOnly(gym.Env):
    """An env with Hopper's observation size and odd action bounds; SAC only reads its spaces."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (HOPPER.obs_dim,), np.float32)
    action_space = gym.spaces.Box(LOW, HIGH, dtype=np.float32)


@pytest.fixture(scope="module")
def sb3_model():
    """A SAC model whose actor weights are perturbed so that means (up to ~3) and log stds
    (-1.8 to 1.5) vary as a trained actor's do, unlike a fresh one's (near 0)."""
    pytest.importorskip("stable_baselines3")
    import torch
    from stable_baselines3 import SAC

    torch.manual_seed(0)
    model = SAC("MlpPolicy", SpacesOnly(), seed=0, device="cpu")
    with torch.no_grad():
        for param in model.actor.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return model


def observations(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 2.0, (n, HOPPER.obs_dim)).astype(np.float32)


# --------------------------------------------------------------------------- the numpy actor


def test_numpy_actor_mean_equals_sb3_deterministic_predict(sb3_model):
    import torch

    policy = policy_from_sb3(sb3_model, HOPPER, "medium", {})
    obs = observations(2000)
    expected, _ = sb3_model.policy.predict(obs, deterministic=True)
    # On the tanh scale [-1, 1]: float32 sums in another order differ by ~1e-6.
    half_range = (HIGH - LOW) / 2
    np.testing.assert_allclose(
        policy.mean_action(obs) / half_range, expected / half_range, atol=1e-5
    )
    assert np.all(expected >= LOW) and np.all(expected <= HIGH)
    with torch.no_grad():
        mean, log_std, _ = sb3_model.actor.get_action_dist_params(torch.as_tensor(obs))
    ours = policy.gaussian(obs)
    np.testing.assert_allclose(ours[0], mean.numpy(), atol=1e-5)
    np.testing.assert_allclose(ours[1], log_std.numpy(), atol=1e-5)


def test_numpy_actor_samples_have_sb3_stochastic_distribution(sb3_model):
    policy = policy_from_sb3(sb3_model, HOPPER, "medium", {})
    mean, log_std = policy.gaussian(observations(4, seed=1))
    assert log_std.min() < -0.5 and log_std.max() > 0.0  # narrow and wide Gaussians alike
    samples = 20_000
    obs = np.repeat(observations(4, seed=1), samples, axis=0)
    import torch

    torch.manual_seed(1)
    ours = policy.act(obs, action_rng(1)).reshape(4, samples, -1)
    theirs = sb3_model.policy.predict(obs, deterministic=False)[0].reshape(4, samples, -1)
    scale = HIGH - LOW
    # Standard errors of the means and stds are < 0.004 x the range; 0.02 x is a loose bound.
    np.testing.assert_allclose(ours.mean(1) / scale, theirs.mean(1) / scale, atol=0.02)
    np.testing.assert_allclose(ours.std(1) / scale, theirs.std(1) / scale, atol=0.02)
    assert np.all(ours >= LOW) and np.all(ours <= HIGH)


def test_same_generator_seed_gives_the_same_actions(sb3_model):
    policy = policy_from_sb3(sb3_model, HOPPER, "medium", {})
    obs = observations(16)
    first = policy.act(obs, action_rng(3))
    np.testing.assert_array_equal(first, policy.act(obs, action_rng(3)))
    assert not np.array_equal(first, policy.act(obs, action_rng(4)))
    assert first.dtype == np.float32 and first.shape == (16, 3)


# Run with OPENBLAS_NUM_THREADS 1, then 2 (on every CPU: a process pinned to one core would not
# start BLAS threads); prints the digest of a batch's actions.
ACT_DIGEST = """
import hashlib, os, sys
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, range(os.cpu_count() or 1))
import numpy as np
from dtql.collect.behaviour_policy import action_rng, build_policy
from safetensors.numpy import load_file
record = {"format_version": 1, "kind": "sac-actor", "env_id": "Hopper-v5", "level": "medium",
          "obs_dim": 11, "act_dim": 3, "action_low": [-1.0] * 3, "action_high": [1.0] * 3,
          "network": {"hidden_sizes": [256, 256], "activation": "relu",
                      "log_std_clamp": [-20.0, 2.0]}}
policy = build_policy(record, load_file(sys.argv[1]), where="test")
obs = np.random.default_rng(0).normal(0, 2, (64, 11)).astype(np.float32)
rows = [policy.act(obs[:n], action_rng(0))[:1] for n in (1, 16, 64)]  # row 0 in any batch
assert all(np.array_equal(rows[0], r) for r in rows)
print(hashlib.sha256(policy.act(obs, action_rng(0)).tobytes()).hexdigest())
"""


def test_actions_do_not_depend_on_blas_threads_or_batch_size(sb3_model, tmp_path):
    from safetensors.numpy import save_file

    save_file(policy_from_sb3(sb3_model, HOPPER, "medium", {}).tensors(), tmp_path / "t.st")
    digests = set()
    for threads in ("1", "2"):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
        done = subprocess.run(
            [sys.executable, "-c", ACT_DIGEST, str(tmp_path / "t.st")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        digests.add(done.stdout.strip())
    assert len(digests) == 1


# --------------------------------------------------------------------------- files


def test_policy_file_round_trip_and_checks(sb3_model, tmp_path):
    policy = policy_from_sb3(sb3_model, HOPPER, "medium", {"note": "test"})
    files = write_behaviour_policy(policy, tmp_path / "hopper-medium")
    assert [f.name for f in files] == ["hopper-medium.safetensors", "hopper-medium.json"]
    loaded = load_behaviour_policy(tmp_path / "hopper-medium")
    obs = observations(64)
    np.testing.assert_array_equal(loaded.act(obs, action_rng(0)), policy.act(obs, action_rng(0)))
    assert loaded.provenance == {"note": "test"} and loaded.files["tensors_sha256"]

    record = json.loads((tmp_path / "hopper-medium.json").read_text())
    (tmp_path / "bad.json").write_text(json.dumps({**record, "act_dim": 0}))
    with pytest.raises(PolicyFileError, match=r"bad\.json: field 'act_dim' is 0, expected"):
        load_behaviour_policy(tmp_path / "bad")
    with pytest.raises(PolicyFileError, match=r"nothing\.json: no such behaviour-policy file"):
        load_behaviour_policy(tmp_path / "nothing")

    weights = tmp_path / "hopper-medium.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(PolicyFileError, match=r"hopper-medium\.safetensors: sha256 .* expected"):
        load_behaviour_policy(tmp_path / "hopper-medium")


def shipped_policies() -> list[Path]:
    """The policy files (<env>-<level>.json), not the other records beside them (the levels'
    fingerprints, the SAC runs' snapshot scores)."""
    levels = ("-random", "-medium", "-expert", "-medium-replay")
    return sorted(p for p in SHIPPED_POLICIES.glob("*.json") if p.stem.endswith(levels))


def test_the_package_ships_a_policy_for_every_env_and_each_loads():
    names = {p.stem for p in shipped_policies()}
    assert {"hopper-random", "halfcheetah-random", "walker2d-random"} <= names
    for path in shipped_policies():
        if path.stem.endswith("-medium-replay"):  # the SAC run's first actions
            task = get_task(json.loads(path.read_text())["env_id"])
            replay = load_replay_actions(path.with_suffix(""), task)
            provenance = replay.record["provenance"]
            rows = replay.record["rows"]
            assert rows == provenance["replay_buffer"]["rows_used"]
            # The buffer up to the medium snapshot, or cut at D4RL's size by --replay-steps
            # (Walker2d's: 302,000 rows, its medium at 410,000).
            assert (
                rows >= provenance["sac_step"] or f"--replay-steps {rows}" in provenance["command"]
            )
            assert replay.actions.shape == (replay.record["rows"], task.act_dim)
            continue
        policy = load_behaviour_policy(path.with_suffix(""))
        task = get_task(policy.record["env_id"])
        assert (policy.record["obs_dim"], policy.record["act_dim"]) == (task.obs_dim, task.act_dim)
        provenance = policy.provenance
        for key in ("evaluation", "versions", "command", "sac_step"):
            assert key in provenance, f"{path.name}: provenance lacks {key}"
        assert np.isfinite(provenance["evaluation"]["return_mean"])
        assert provenance["command"].startswith("dtql collect ")


# --------------------------------------------------------------------------- medium-replay


def sac_like_rows(seed: int, rows: int, cut: int):
    """Rows as SAC's env makes them (reset(seed), later resets continue the stream), with a
    --resume at row `cut`: the episode cut there (a timeout) and the env reset with seed + cut."""
    env = make_single_env(HOPPER)
    scaled = np.random.default_rng(0).uniform(-1, 1, (rows, HOPPER.act_dim)).astype(np.float32)
    # SB3 keeps [-1, 1] actions in its buffer and steps the env with their unscaled values.
    actions = unscale_action(env.action_space.low, env.action_space.high, scaled)
    out = {k: [] for k in ("observations", "next_observations", "rewards", "terminals")}
    timeouts = []
    obs, _ = env.reset(seed=seed)
    for i in range(rows):
        next_obs, reward, terminated, truncated, _ = env.step(actions[i])
        for key, value in zip(out, (obs, next_obs, reward, terminated), strict=True):
            out[key].append(value)
        timeouts.append(not terminated and (truncated or i + 1 == cut))
        if i + 1 == cut:
            obs, _ = env.reset(seed=seed + cut)
        elif terminated or truncated:
            obs, _ = env.reset()
        else:
            obs = next_obs
    env.close()
    timeouts[-1] = not out["terminals"][-1]
    arrays = {k: np.asarray(v) for k, v in out.items()}
    rows_ = transitions_from_rows(
        **arrays, actions=actions, timeouts=np.asarray(timeouts), source="sac-like"
    )
    return rows_, scaled


def test_medium_replay_file_rebuilds_the_buffer_rows_with_a_resume_reseed(tmp_path):
    expected, scaled = sac_like_rows(seed=7, rows=400, cut=150)
    replay = replay_from_buffer(HOPPER, expected, scaled, 7, {"note": "test"})
    assert replay.record["reseeds"] == [[150, 157]]
    assert replay.record["rows"] == 400 and replay.record["episodes"] == expected.num_episodes
    files = write_replay_actions(replay, tmp_path / "hopper-medium-replay")
    assert files[0].stat().st_size < 400 * HOPPER.act_dim * 4 + 200  # the actions, no more
    data = regenerate(HOPPER, load_replay_actions(tmp_path / "hopper-medium-replay", HOPPER))
    for field in FIELDS:
        np.testing.assert_array_equal(getattr(data, field), getattr(expected, field))

    with pytest.raises(PolicyFileError, match=r"replaying Hopper-v5 from seed 8: .*expected"):
        replay_from_buffer(HOPPER, expected, scaled, 8, {})  # not the run's seed
    record = json.loads(files[1].read_text())
    files[1].write_text(json.dumps({**record, "digest_sha256": "0" * 64}))
    with pytest.raises(PolicyFileError, match=r"replaying gives data with sha256 .* expected 0+"):
        regenerate(HOPPER, load_replay_actions(tmp_path / "hopper-medium-replay", HOPPER))


# --------------------------------------------------------------------------- --from-policies


def tiny(out: Path, **changes) -> CollectArgs:
    settings = dict(
        env_id="Hopper-v5",
        out=str(out),
        levels="medium" if (SHIPPED_POLICIES / "hopper-medium.json").is_file() else "random",
        transitions=300,
        num_envs=4,
        from_policies=True,
        progress_bar=False,
    )
    return CollectArgs(**{**settings, **changes})


def made(out: Path, level: str):
    folder = out / "minari" / "dtql" / f"hopper-{level}-v0"
    return load_dataset(folder), json.loads((folder / "collect_info.json").read_text())


def test_tiny_dataset_from_a_shipped_policy_has_its_counts_and_is_deterministic(tmp_path):
    args = tiny(tmp_path / "a")
    level = args.levels
    assert run_collect(args) == 0
    assert run_collect(tiny(tmp_path / "b")) == 0
    assert run_collect(tiny(tmp_path / "c", seed=1)) == 0
    (a, info), (b, _), (c, _) = (made(tmp_path / x, level) for x in "abc")

    assert a.num_transitions == info["transitions"] == 300
    ends = (a.terminals + a.timeouts) > 0
    assert a.num_episodes == info["episodes"] == int(ends.sum())
    assert info["terminals"] + info["timeouts"] == info["episodes"]
    assert not np.any((a.terminals > 0) & (a.timeouts > 0)) and ends[-1]
    assert a.timeouts.sum() >= 4  # every one of the 4 env streams is cut at its share
    np.testing.assert_array_equal(
        a.next_observations[:-1][~ends[:-1]], a.observations[1:][~ends[:-1]]
    )
    for field in FIELDS:  # same seed: the same arrays; another seed: other ones
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.actions, c.actions)
    assert not np.array_equal(a.observations, c.observations)

    assert info["made_from"] == "behaviour-policy files"
    assert info["policies"]["shipped_with_dtql"] is True
    behaviour = info["behaviour_policy"][0]
    assert behaviour["files"]["json"].endswith(f"hopper-{level}.json")
    assert len(behaviour["files"]["json_sha256"]) == 64
    assert behaviour["provenance"]["level"] == level
    assert info["collection"]["seeds"] == [30_000 if level == "medium" else 20_000]
    assert "--from-policies" in info["command"]
    assert "sac" not in info


def test_medium_expert_from_the_shipped_policies_is_medium_then_expert(tmp_path):
    if not (SHIPPED_POLICIES / "hopper-expert.json").is_file():
        pytest.skip("no hopper expert policy is shipped")
    assert run_collect(tiny(tmp_path / "me", levels="medium-expert,medium,expert")) == 0
    (both, info), (medium, _), (expert, _) = (
        made(tmp_path / "me", level) for level in ("medium-expert", "medium", "expert")
    )
    assert both.num_transitions == info["transitions"] == 600  # 2 x --transitions
    assert [p["provenance"]["level"] for p in info["behaviour_policy"]] == ["medium", "expert"]
    # The halves are the two levels' own data (each level's seed, whatever it is part of).
    np.testing.assert_array_equal(both.observations[:300], medium.observations)
    np.testing.assert_array_equal(both.observations[300:], expert.observations)
    # The second half's policy is the better one, by the full-episode evaluations recorded
    # with each policy (these 75-step streams end before a medium Hopper would fall).
    medium_score, expert_score = map(evaluated_normalized_score, info["behaviour_policy"])
    assert expert_score > medium_score + 30


def test_from_policies_skips_medium_replay_and_what_is_not_shipped(tmp_path, capsys):
    policies = tmp_path / "policies"
    policies.mkdir()
    for name in ("hopper-random.json",):
        (policies / name).write_text((SHIPPED_POLICIES / name).read_text())
    args = tiny(tmp_path / "out", levels="random,medium,medium-replay", policies=str(policies))
    assert run_collect(args) == 0
    levels = json.loads((tmp_path / "out" / "summary.json").read_text())["levels"]
    assert levels["random"]["status"] == "written"
    assert "needs SAC's replay buffer" in levels["medium-replay"]["reason"]
    assert "dtql collect Hopper-v5" in levels["medium-replay"]["reason"]
    assert levels["medium"]["reason"].startswith(f"no behaviour-policy file {policies}")
    assert "--save-policies" in levels["medium"]["reason"]
    # Nothing written: exit 1.
    assert run_collect(tiny(tmp_path / "none", levels="medium", policies=str(policies))) == 1


def test_from_policies_refuses_sac_flags_and_mixed_modes(tmp_path, capsys):
    assert run_collect(tiny(tmp_path, sac_steps=5000)) == 2
    assert "--sac-steps sets the SAC run" in capsys.readouterr().err
    assert run_collect(tiny(tmp_path, save_policies=str(tmp_path))) == 2
    assert run_collect(tiny(tmp_path, from_policies=False, policies=str(tmp_path))) == 2
    assert not (tmp_path / "summary.json").exists()


def test_from_policies_imports_no_torch(tmp_path):
    code = (
        "import sys\n"
        "from dtql.collect import CollectArgs, run_collect\n"
        f"args = CollectArgs('Hopper-v5', out={str(tmp_path)!r}, levels='random', "
        "transitions=50, num_envs=2, from_policies=True, progress_bar=False)\n"
        "assert run_collect(args) == 0\n"
        "assert 'torch' not in sys.modules and 'stable_baselines3' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


# --------------------------------------------------------------------------- finding datasets


def local_random(env_id: str) -> CollectArgs:
    """A tiny random dataset with no --out: it goes to $DTQL_DATASETS_DIR/<env>."""
    return CollectArgs(
        env_id,
        levels="random",
        transitions=200,
        num_envs=2,
        from_policies=True,
        progress_bar=False,
    )


def test_local_datasets_are_found_by_task_name_and_id(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DTQL_DATASETS_DIR", str(tmp_path / "local"))
    monkeypatch.setenv("D4RL_DATASET_DIR", str(tmp_path / "d4rl"))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    with pytest.raises(DatasetError) as err:
        load_dataset("walker2d-random-v2")
    message = str(err.value)
    assert "\n" not in message
    local = tmp_path / "local" / "walker2d" / "minari" / "dtql" / "walker2d-random-v0"
    assert str(local / "data") in message
    assert "dtql collect Walker2d-v5 --from-policies --levels random" in message
    # medium-replay too is replayed from shipped files (the SAC run's actions).
    match = "dtql collect Walker2d-v5 --from-policies --levels medium-replay"
    with pytest.raises(DatasetError, match=match):
        load_dataset("walker2d-medium-replay-v2")

    # No --out: the local datasets folder of the env, where names find it.
    assert run_collect(local_random("Walker2d-v5")) == 0
    assert (local / "collect_info.json").is_file()
    by_task = load_dataset("walker2d-random-v2")  # what `dtql train --task` reads
    by_id = load_dataset("dtql/walker2d-random-v0")  # what `dtql data info` accepts too
    assert by_task.num_transitions == by_id.num_transitions == 200
    assert by_task.source == f"walker2d-random-v2 ({local})"  # says it is dtql's own data
    record = json.loads((local / "collect_info.json").read_text())
    assert by_task.provenance == record
    capsys.readouterr()
    assert main(["data", "info", "walker2d-random-v2"]) == 0  # shows how it was made
    shown = capsys.readouterr().out
    assert record["command"].startswith("dtql collect Walker2d-v5 --levels random")
    assert f"made by: {record['command']}\n" in shown
    assert (
        "behaviour: uniform random actions in the action bounds (from walker2d-random.json)"
        in shown
    )
    np.testing.assert_array_equal(by_task.observations, by_id.observations)


def test_data_list_shows_local_datasets_and_what_the_shipped_files_make(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("DTQL_DATASETS_DIR", str(tmp_path / "local"))
    assert run_collect(local_random("Hopper-v5")) == 0
    rows = {row["dataset"]: row for row in collected_catalogue()}
    assert len(rows) == 4 * 5  # hopper, halfcheetah, walker2d, ant x the five levels
    random = rows["hopper-random-v2"]
    assert random["local_path"].startswith(str(tmp_path / "local" / "hopper"))
    assert (random["transitions"], random["id"]) == (200, "dtql/hopper-random-v0")
    assert [p["sac_step"] for p in random["behaviour_policies"]] == [0]
    assert random["collected_in_s"] >= 0.0
    assert rows["hopper-medium-v2"]["local_path"] is None
    assert rows["hopper-medium-v2"]["behaviour_policies"] == []
    assert main(["data", "list"]) == 0
    table = capsys.readouterr().out
    assert "| hopper-random-v2 | yes | 200 |" in table and "| uniform |" in table
    for name, row in rows.items():
        environment, _, level = name.removesuffix("-v2").partition("-")
        files = {"medium-replay": ["medium-replay"], "medium-expert": ["medium", "expert"]}
        needed = files.get(level, [level])
        shipped = all((SHIPPED_POLICIES / f"{environment}-{n}.json").is_file() for n in needed)
        assert row["from_shipped_policies"] == shipped, name
        assert ("--from-policies" in row["make"]) == shipped, name
        assert row["needs_sac"] == (not shipped and level != "random"), name
    # What the package ships today: every level of Hopper, HalfCheetah and Walker2d, none of
    # Ant's from files.
    for environment in ("hopper", "halfcheetah", "walker2d"):
        for level in LEVELS:
            assert rows[f"{environment}-{level}-v2"]["from_shipped_policies"], (environment, level)
    assert not rows["ant-medium-v2"]["from_shipped_policies"]
    # A damaged record is a one-line error naming its file, never a dataset shown as absent.
    record = Path(random["local_path"]) / "collect_info.json"
    record.write_text("{cut short")
    assert main(["data", "list"]) == 2
    error = capsys.readouterr().err
    assert f"{record}: not JSON" in error and error.count("\n") == 1


def test_a_shipped_fingerprint_travels_only_with_the_arrays_it_was_measured_on(
    tmp_path, monkeypatch, capsys
):
    """`dtql collect` copies a level's shipped fingerprint into the provenance when the dataset
    it made has the measured arrays' digest; `dtql data list` shows it beside D4RL's."""
    from dtql.collect import provenance as provenance_module
    from dtql.collect.replay import transitions_digest

    monkeypatch.setenv("DTQL_DATASETS_DIR", str(tmp_path / "local"))
    assert run_collect(local_random("Hopper-v5")) == 0
    made = load_dataset("hopper-random-v2")
    fingerprint = {
        "task": "hopper-random-v2",
        "dataset_normalized_score": 1.5,
        "bc_normalized_score": 2.5,
        "bc_normalized_score_stderr": 0.5,
        "transitions": 200,
        "data_sha256": transitions_digest(made),
        "bc": {"steps": 30000, "seeds": [0, 1, 2], "last_evals": 3, "eval_episodes": 10},
    }
    catalogue = tmp_path / "fingerprints.json"
    catalogue.write_text(json.dumps({"format_version": 1, "fingerprints": {}}))
    monkeypatch.setattr(provenance_module, "SHIPPED_FINGERPRINTS", catalogue)
    from dtql.fingerprint import add_to_catalogue

    add_to_catalogue(catalogue, fingerprint)
    rows = {row["dataset"]: row for row in collected_catalogue()}
    assert rows["hopper-random-v2"]["fingerprint"]["measured_on"].startswith("the dataset the")

    again = dataclasses.replace(local_random("Hopper-v5"), out=str(tmp_path / "again"))
    assert run_collect(again) == 0
    folder = tmp_path / "again" / "minari" / "dtql" / "hopper-random-v0"
    assert load_dataset(folder).provenance["fingerprint"] == fingerprint
    other_seed = dataclasses.replace(again, out=str(tmp_path / "other"), seed=1)
    assert run_collect(other_seed) == 0
    folder = tmp_path / "other" / "minari" / "dtql" / "hopper-random-v0"
    assert "fingerprint" not in load_dataset(folder).provenance

    capsys.readouterr()
    assert main(["data", "list"]) == 0
    assert "| 1.5 / 2.5 |" in capsys.readouterr().out  # no D4RL numbers for random
    assert main(["data", "list", "--fingerprints"]) == 0
    table = capsys.readouterr().out
    assert (
        "| hopper-random-v2 | 1.5 / - | 2.5 ± 0.5 / - | 30,000 x 3, last 3 of 10 episodes |"
        in table
    )
