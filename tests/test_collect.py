"""`dtql collect`: a short real run (SAC from stable-baselines3, tiny datasets) read back with
dtql's loaders, plus fast checks of the pieces that need no SAC.

The end-to-end run needs the collect extra (torch, stable-baselines3) and is skipped without it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from dtql.collect import CollectArgs, run_collect
from dtql.collect.args import LEVELS, dataset_id, parse_levels, regenerate_command
from dtql.collect.rollout import collect
from dtql.collect.sac import eval_record
from dtql.collect.snapshots import nearest_to_d4rl
from dtql.data import dataset_info, load_dataset, minari_metadata
from dtql.envs.registry import get_task
from dtql.evaluation import SUMMARY_KEYS, EvalResult
from dtql.upgrade import OLD_EVAL_KEYS, upgrade_collect_record

HOPPER = get_task("hopper")
TRANSITIONS = 500
MEDIUM_STEP = 1000  # the first evaluation; the tiny medium_fraction makes it the medium snapshot


def tiny_args(out: Path, **changes) -> CollectArgs:
    """A few thousand SAC steps (most of them random warm-up) and 500-transition datasets."""
    settings = dict(
        env_id="Hopper-v5",
        out=str(out),
        transitions=TRANSITIONS,
        sac_steps=2000,
        learning_starts=1500,
        eval_every=MEDIUM_STEP,
        eval_episodes=2,
        medium_fraction=0.001,  # any trained snapshot counts as medium
        checkpoint_every=1000,
        num_envs=4,
        hdf5=True,
        progress_bar=False,
    )
    return CollectArgs(**{**settings, **changes})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One short `dtql collect` of every level; MINARI_DATASETS_PATH points at a decoy folder
    to check that nothing is written outside --out."""
    pytest.importorskip("stable_baselines3")
    root = tmp_path_factory.mktemp("collect")
    out, decoy = root / "out", root / "decoy-minari-root"
    decoy.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(decoy))
        code = run_collect(tiny_args(out))
        env_after = os.environ["MINARI_DATASETS_PATH"]
    return {"code": code, "out": out, "decoy": decoy, "env_after": env_after}


def minari_folder(out: Path, level: str) -> Path:
    return out / "minari" / dataset_id("hopper", level)


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_run_writes_reachable_levels_and_skips_the_expert_with_a_reason(run):
    assert run["code"] == 0
    summary = json.loads((run["out"] / "summary.json").read_text())
    levels = summary["levels"]
    assert [levels[lvl]["status"] for lvl in ("random", "medium", "medium-replay")] == [
        "written"
    ] * 3
    for level in ("expert", "medium-expert"):
        assert levels[level]["status"] == "skipped"
        assert "expert threshold" in levels[level]["reason"]
    assert summary["medium_snapshot_step"] == MEDIUM_STEP
    assert summary["sac_steps_trained"] == 2000
    assert summary["command"].startswith("dtql collect Hopper-v5 --out ")
    # Nothing went to the Minari root of the environment, which is restored.
    assert list(run["decoy"].iterdir()) == []
    assert run["env_after"] == str(run["decoy"])
    for name in ("checkpoint.zip", "replay_buffer.pkl", "state.json", "policy_medium.zip"):
        assert (run["out"] / "sac" / name).is_file()


@pytest.mark.slow
@pytest.mark.parametrize("level", ["random", "medium", "medium-replay"])
def test_minari_dataset_loads_with_the_recorded_counts(run, level):
    folder = minari_folder(run["out"], level)
    t = load_dataset(folder)
    info = json.loads((folder / "collect_info.json").read_text())
    expected = MEDIUM_STEP if level == "medium-replay" else TRANSITIONS  # the buffer, or N
    assert t.num_transitions == info["transitions"] == expected
    assert t.num_episodes == info["episodes"]
    assert int(t.terminals.sum()) == info["terminals"]
    assert int(t.timeouts.sum()) == info["timeouts"]
    assert (t.obs_dim, t.act_dim) == (HOPPER.obs_dim, HOPPER.act_dim)
    assert np.all(np.abs(t.actions) <= 1.0)
    # Within an episode s' is the next row's s; every episode ends in exactly one flag.
    ends = (t.terminals + t.timeouts) > 0
    np.testing.assert_array_equal(
        t.next_observations[:-1][~ends[:-1]], t.observations[1:][~ends[:-1]]
    )
    assert not np.any((t.terminals > 0) & (t.timeouts > 0)) and ends[-1]
    np.testing.assert_allclose(np.mean(t.episode_returns), info["dataset_return_mean"], rtol=1e-5)


@pytest.mark.slow
def test_metadata_records_how_the_dataset_was_made(run):
    folder = minari_folder(run["out"], "medium")
    meta = minari_metadata(folder)
    assert meta["dataset_id"] == "dtql/hopper-medium-v0"
    assert meta["eval_env_id"] == "Hopper-v5"
    assert (meta["ref_min_score"], meta["ref_max_score"]) == (
        HOPPER.ref_min_score,
        HOPPER.ref_max_score,
    )
    raw = json.loads((folder / "data" / "metadata.json").read_text())
    assert json.loads(raw["eval_env_spec"])["max_episode_steps"] == 1000
    record = raw["dtql_collect"]
    assert record == json.loads((folder / "collect_info.json").read_text())
    for package in ("gymnasium", "mujoco", "stable-baselines3", "torch", "dtql", "minari"):
        assert record["versions"][package]
    assert record["seeds"]["sac"] == 0 and record["collection"]["seeds"] == [30_000]
    assert record["sac"]["steps_trained"] == 2000 and record["sac"]["torch_threads"] == 1
    behaviour = record["behaviour_policy"][0]
    assert behaviour["sac_step"] == MEDIUM_STEP
    assert behaviour["evaluation"]["actions"] == "stochastic"
    assert set(SUMMARY_KEYS) <= set(behaviour["evaluation"])  # the project's result names
    assert np.isfinite(behaviour["evaluation"]["return_mean"])
    assert np.isfinite(record["dataset_normalized_score"])
    assert record["transitions"] == TRANSITIONS and record["episodes"] > 0
    assert record["generation_wall_time_s"] > 0 and record["subsampled"] is False


@pytest.mark.slow
@pytest.mark.parametrize("level", ["medium", "medium-replay"])
def test_d4rl_file_holds_the_same_data(run, level):
    path = run["out"] / "d4rl" / f"hopper-{level}-v0.hdf5"
    d4rl, minari = load_dataset(path), load_dataset(minari_folder(run["out"], level))
    for field in ("observations", "actions", "rewards", "next_observations"):
        np.testing.assert_array_equal(getattr(d4rl, field), getattr(minari, field))
    np.testing.assert_array_equal(d4rl.terminals, minari.terminals)
    np.testing.assert_array_equal(d4rl.timeouts, minari.timeouts)
    assert d4rl.num_episodes == minari.num_episodes
    assert json.loads(path.with_suffix(".json").read_text())["level"] == level


@pytest.mark.slow
def test_dataset_loads_by_id_under_out_minari(run, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(run["out"] / "minari"))
    assert load_dataset("dtql/hopper-random-v0").num_transitions == TRANSITIONS


@pytest.mark.slow
def test_rerun_needs_resume_and_resume_keeps_finished_datasets(run, capsys):
    assert run_collect(tiny_args(run["out"])) == 2
    assert "--resume" in capsys.readouterr().err
    assert run_collect(tiny_args(run["out"], resume=True, levels="random,medium")) == 0
    levels = json.loads((run["out"] / "summary.json").read_text())["levels"]
    assert {levels[level]["status"] for level in ("random", "medium")} == {"kept"}
    # Levels this resume did not ask for keep the earlier run's record.
    assert set(levels) == {"random", "medium", "medium-replay", "expert", "medium-expert"}
    assert levels["medium-replay"]["status"] == "written"


@pytest.mark.slow
def test_resume_with_a_larger_budget_trains_on_in_a_grown_buffer(run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(run["out"] / "sac", out / "sac")
    args = tiny_args(out, resume=True, levels="medium-replay,expert", sac_steps=2500)
    assert run_collect(args) == 0
    state = json.loads((out / "sac" / "state.json").read_text())
    assert state["num_timesteps"] == 2500 and state["buffer_size"] == 2500
    info = json.loads((minari_folder(out, "medium-replay") / "collect_info.json").read_text())
    assert info["transitions"] == MEDIUM_STEP  # the buffer up to the medium snapshot


@pytest.mark.slow
def test_sac_stops_at_the_first_evaluation_within_the_expert_stop(tmp_path):
    pytest.importorskip("stable_baselines3")
    out = tmp_path / "out"
    # Any evaluated return reaches these thresholds: the first evaluation (the medium
    # snapshot) is the expert, long before the budget.
    tiny = dict(levels="expert", transitions=200, expert_fraction=0.001, expert_stop_fraction=0.001)
    assert run_collect(tiny_args(out, sac_steps=3000, **tiny)) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sac_steps_trained"] == MEDIUM_STEP
    assert summary["levels"]["expert"]["status"] == "written"
    state = json.loads((out / "sac" / "state.json").read_text())
    assert state["final"]["step"] == MEDIUM_STEP
    # A resume with a larger budget keeps the expert: it stopped for its return, not its budget.
    assert run_collect(tiny_args(out, sac_steps=4000, resume=True, **tiny)) == 0
    state = json.loads((out / "sac" / "state.json").read_text())
    assert state["num_timesteps"] == MEDIUM_STEP and state["final"]["step"] == MEDIUM_STEP


@pytest.mark.slow
def test_saved_policies_regenerate_the_sac_runs_datasets_exactly(run, tmp_path, capsys):
    policies = tmp_path / "policies"
    save = tiny_args(run["out"], levels=",".join(LEVELS), save_policies=str(policies))
    assert run_collect(save) == 0
    assert "expert: skipped: the final SAC policy" in capsys.readouterr().out
    assert sorted(p.name for p in policies.iterdir()) == [
        "hopper-medium-replay.json",
        "hopper-medium-replay.safetensors",
        "hopper-medium.json",
        "hopper-medium.safetensors",
        "hopper-random.json",
    ]
    replay = json.loads((policies / "hopper-medium-replay.json").read_text())
    assert replay["rows"] == MEDIUM_STEP and replay["seed"] == 0 and replay["reseeds"] == []
    provenance = json.loads((policies / "hopper-medium.json").read_text())["provenance"]
    assert provenance["sac_step"] == MEDIUM_STEP and provenance["level"] == "medium"
    assert (
        provenance["evaluation"]
        == json.loads((run["out"] / "sac" / "state.json").read_text())["medium"]
    )
    assert provenance["snapshot"]["file"].endswith("policy_medium.zip")
    assert "--save-policies" in provenance["command"]
    assert provenance["sac_rerun_command"].startswith(
        "dtql collect Hopper-v5 --levels medium-replay"
    )
    assert provenance["sac_command"].startswith("dtql collect Hopper-v5 --out ")
    assert provenance["versions"]["stable-baselines3"] and provenance["versions"]["torch"]

    # The same policies, seed and sizes from the files: the SAC run's datasets, bit for bit.
    again = CollectArgs(
        env_id="Hopper-v5",
        out=str(tmp_path / "again"),
        levels="random,medium,medium-replay",
        transitions=TRANSITIONS,
        num_envs=4,
        from_policies=True,
        policies=str(policies),
        progress_bar=False,
    )
    assert run_collect(again) == 0
    for level in ("random", "medium", "medium-replay"):
        ours = load_dataset(minari_folder(tmp_path / "again", level))
        theirs = load_dataset(minari_folder(run["out"], level))
        for field in ("observations", "actions", "rewards", "next_observations"):
            np.testing.assert_array_equal(getattr(ours, field), getattr(theirs, field))
        np.testing.assert_array_equal(ours.terminals, theirs.terminals)
        np.testing.assert_array_equal(ours.timeouts, theirs.timeouts)


@pytest.mark.slow
def test_medium_step_picks_a_scored_snapshot_and_its_replay(tmp_path, capsys):
    """--snapshot-every saves and evaluates the policy every k steps; --score-snapshots scores
    each with stochastic and mean actions; --medium-step makes one the medium, with the replay
    buffer up to it as medium-replay."""
    pytest.importorskip("stable_baselines3")
    out = tmp_path / "out"
    sac = tiny_args(
        out, levels="medium-replay", sac_steps=3000, snapshot_every=1000, medium_step=3000
    )
    assert run_collect(sac) == 0
    state = json.loads((out / "sac" / "state.json").read_text())
    assert [e["step"] for e in state["evals"]] == [0, 1000, 2000, 3000]
    assert state["medium"]["step"] == 3000  # not the first to reach --medium-fraction
    snapshots = sorted(p.name for p in (out / "sac" / "snapshots").iterdir())
    assert snapshots == ["step_0001000.zip", "step_0002000.zip", "step_0003000.zip"]

    assert run_collect(tiny_args(out, score_snapshots=True)) == 0
    assert "nearest: step " in capsys.readouterr().out
    scores = json.loads((out / "sac" / "snapshot_scores.json").read_text())["snapshots"]
    assert [r["step"] for r in scores] == [1000, 2000, 3000]
    assert all(r["mean_action"]["act_mode"] == "mean" for r in scores)
    assert all(r["stochastic"]["act_mode"] == "stochastic" for r in scores)

    policies = tmp_path / "policies"
    save = tiny_args(
        out, levels="medium,medium-replay", medium_step=2000, save_policies=str(policies)
    )
    assert run_collect(save) == 0
    medium = json.loads((policies / "hopper-medium.json").read_text())["provenance"]
    assert medium["sac_step"] == 2000 and medium["snapshot_scores"] == scores[1]
    assert medium["evaluation"] == state["evals"][2]
    assert medium["snapshot"]["file"].endswith("step_0002000.zip")
    assert "--medium-step 2000" in medium["sac_rerun_command"]
    replay = json.loads((policies / "hopper-medium-replay.json").read_text())
    assert replay["rows"] == 2000
    # --replay-steps: medium-replay is the buffer's first rows, wherever the medium is.
    cut = tiny_args(
        out,
        levels="medium-replay",
        medium_step=2000,
        replay_steps=2500,
        save_policies=str(policies),
    )
    assert run_collect(cut) == 0
    replay = json.loads((policies / "hopper-medium-replay.json").read_text())
    assert replay["rows"] == 2500
    assert replay["provenance"]["policy"].endswith("first 2500 rows (--replay-steps)")

    missing = tiny_args(out, levels="medium", medium_step=2500, save_policies=str(tmp_path / "x"))
    assert run_collect(missing) == 1
    assert "no evaluation at --medium-step 2500" in capsys.readouterr().out


def test_nearest_snapshot_is_closest_on_the_worse_of_both_scores():
    def record(step: int, stochastic: float, mean: float) -> dict:
        return {
            "step": step,
            "stochastic": {"normalized_score_mean": stochastic},
            "mean_action": {"normalized_score_mean": mean},
        }

    scores = {
        s: record(s, a, b) for s, a, b in [(1, 44, 90), (2, 30, 55), (3, 40, 60), (9, 44, 53)]
    }
    # step 1 has the data score but a near-expert mean; step 9 is outside the window.
    assert nearest_to_d4rl(scores, (44.3, 52.9), (1, 5))["step"] == 3
    assert nearest_to_d4rl(scores, (44.3, 52.9), (5, 8)) is None


# The evaluation records as an earlier dtql collect wrote them (before they used SUMMARY_KEYS).
OLD_RECORD_KEYS = (
    "step",
    "sac_wall_time_s",
    "return_mean",
    "return_std",
    "normalized_score",
    "episodes",
    "length_mean",
    "actions",
    "seed",
)


def as_old_record(record: dict) -> dict:
    renamed = {new: old for old, new in OLD_EVAL_KEYS.items()}
    old = {renamed.get(key, key): value for key, value in record.items()}
    return {key: old[key] for key in OLD_RECORD_KEYS}


@pytest.mark.slow
def test_a_run_saved_with_the_old_evaluation_keys_resumes(run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(run["out"] / "sac", out / "sac")
    state_path = out / "sac" / "state.json"
    state = json.loads(state_path.read_text())
    state["evals"] = [as_old_record(r) for r in state["evals"]]
    for name in ("random", "medium", "final"):
        state[name] = as_old_record(state[name])
    state_path.write_text(json.dumps(state))

    # medium reads the medium record; the expert's skip reason reads the final one's score.
    assert run_collect(tiny_args(out, resume=True, levels="medium,expert")) == 0
    levels = json.loads((out / "summary.json").read_text())["levels"]
    assert levels["medium"]["status"] == "written"
    assert "normalized" in levels["expert"]["reason"]
    state = json.loads(state_path.read_text())
    for record in [*state["evals"], state["random"], state["medium"], state["final"]]:
        assert "normalized_score_mean" in record and "episode_length_mean" in record
        assert "normalized_score" not in record and "length_mean" not in record
    info = json.loads((minari_folder(out, "medium") / "collect_info.json").read_text())
    assert "normalized_score_mean" in info["behaviour_policy"][0]["evaluation"]


# --------------------------------------------------------------------------- no SAC needed


def test_eval_record_uses_the_project_result_vocabulary():
    result = EvalResult(
        returns=np.array([10.0, 30.0]),
        lengths=np.array([5, 15]),
        normalized_scores=np.array([1.0, 3.0]),
        discounted_returns=np.array([9.0, 25.0]),
        act_mode="stochastic",
    )
    record = eval_record(result, step=1000, seed=3, sac_wall_time_s=12.34)
    assert list(record) == ["step", "sac_wall_time_s", *SUMMARY_KEYS, "actions", "seed"]
    assert record["step"] == 1000 and record["sac_wall_time_s"] == 12.3
    assert record["normalized_score_mean"] == 2.0 and record["episode_length_mean"] == 10.0
    assert record["actions"] == "stochastic" and record["seed"] == 10_003


def test_collect_gives_exactly_n_transitions_with_every_stream_cut_as_a_timeout():
    rng = np.random.default_rng(0)

    def act(obs):
        return rng.uniform(-1, 1, (len(obs), HOPPER.act_dim))

    t = collect(HOPPER, act, transitions=301, num_envs=4, seed=5, progress_bar=False)
    assert t.num_transitions == 301
    ends = (t.terminals + t.timeouts) > 0
    assert t.num_episodes == int(ends.sum())
    # Random Hopper falls within ~20-60 steps: terminals, plus one cut (timeout) per env stream.
    assert t.terminals.sum() > 0 and t.timeouts.sum() == 4
    assert not np.any((t.terminals > 0) & (t.timeouts > 0))
    np.testing.assert_array_equal(
        t.next_observations[:-1][~ends[:-1]], t.observations[1:][~ends[:-1]]
    )
    np.testing.assert_allclose(t.episode_returns.sum(), t.rewards.sum(), rtol=1e-5)


def test_levels_are_parsed_in_order_and_unknown_ones_rejected():
    assert parse_levels("medium, random,medium") == ["medium", "random"]
    assert parse_levels(",".join(LEVELS)) == list(LEVELS)
    with pytest.raises(Exception, match="unknown level"):
        parse_levels("medium,expret")


def test_bad_arguments_exit_with_code_2(tmp_path, capsys):
    assert run_collect(tiny_args(tmp_path, env_id="Humanoid-v5")) == 2
    assert "not supported" in capsys.readouterr().err
    assert run_collect(tiny_args(tmp_path, levels="medium,expret")) == 2
    assert run_collect(tiny_args(tmp_path, transitions=0)) == 2
    assert not (tmp_path / "summary.json").exists()


def test_regenerate_command_lists_the_non_default_flags():
    args = CollectArgs(env_id="Hopper-v5", out="o", levels="medium", sac_steps=300_000, hdf5=True)
    assert regenerate_command(args) == (
        "dtql collect Hopper-v5 --out o --levels medium --sac-steps 300000 --hdf5"
    )


# --------------------------------------------------------------------------- shipped data


def shipped_records() -> list[Path]:
    assets = Path(str(resources.files("dtql"))) / "assets"
    return sorted(assets.glob("**/collect_info.json"))


@pytest.mark.parametrize("info_path", shipped_records() or [None])
def test_shipped_dataset_loads_and_matches_its_recorded_counts(info_path):
    if info_path is None:
        pytest.skip("the package ships no dataset made by dtql collect")
    info = json.loads(info_path.read_text())
    t = load_dataset(info_path.parent)
    assert t.num_transitions == info["transitions"]
    assert t.num_episodes == info["episodes"]
    assert minari_metadata(info_path.parent)["eval_env_id"] == info["env_id"]


def test_shipped_hdf5_datasets_load_and_match_their_records():
    assets = Path(str(resources.files("dtql"))) / "assets"
    records = sorted(assets.glob("datasets/*.json"))
    assert records, "the package ships its default dataset"
    for record in records:
        info = json.loads(record.read_text())
        t = load_dataset(record.with_suffix(".hdf5"))
        assert (t.num_transitions, t.num_episodes) == (info["transitions"], info["episodes"])
        assert int(t.terminals.sum()) == info["terminals"]
        assert int(t.timeouts.sum()) == info["timeouts"]
        # The file carries its own record (read in today's names), and `dtql data info`
        # summarises it.
        assert t.provenance == upgrade_collect_record(info)
        made_by = dataset_info(t)["made_by"]
        assert made_by["command"] == info["command"] and made_by["level"] == info["level"]
        assert made_by["behaviour_policies"][0].startswith(info["behaviour_policy"][0]["policy"])


@pytest.mark.slow
def test_sigterm_checkpoints_sac_at_the_end_of_its_chunk_and_resume_goes_on(tmp_path):
    pytest.importorskip("stable_baselines3")
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "dtql.cli", "collect", "Hopper-v5", "--out", str(out)]
    argv += ["--levels", "expert", "--sac-steps", "50000", "--learning-starts", "200"]
    argv += ["--eval-every", "300", "--eval-episodes", "1", "--snapshot-every", "300"]
    argv += ["--checkpoint-every", "100000", "--no-progress-bar"]
    proc = subprocess.Popen(argv, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    snapshots = out / "sac" / "snapshots"
    deadline = time.monotonic() + 300
    while not (snapshots.is_dir() and any(snapshots.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    (line,) = [x for x in err.splitlines() if x.startswith("dtql collect:")]
    assert "stopped by SIGTERM" in line and "--resume" in line
    state = json.loads((out / "sac" / "state.json").read_text())
    stopped_at = state["num_timesteps"]
    assert stopped_at >= 300 and stopped_at % 300 == 0  # the end of a chunk, not lost
    resumed = tiny_args(
        out,
        resume=True,
        levels="medium",
        sac_steps=stopped_at + 300,
        eval_every=300,
        snapshot_every=300,
        checkpoint_every=100000,
        medium_fraction=0.001,
        learning_starts=200,
    )
    assert run_collect(resumed) == 0
    assert json.loads((out / "sac" / "state.json").read_text())["num_timesteps"] == stopped_at + 300
