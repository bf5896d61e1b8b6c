"""`dtql bench`: one quick run on narrowed networks (the report's structure and its internal
consistency), the targets' judging rules, and bad arguments. Speed itself is never asserted."""

import json
import os
import statistics

import numpy as np
import pytest

import dtql
from dtql.bench.bench_command import BenchArgs, BenchError, run_bench
from dtql.bench.printing import print_report
from dtql.bench.targets import judge_targets
from dtql.cli import main


@pytest.fixture(scope="module")
def report():
    args = BenchArgs(algos="dtql,bc", runs="2", steps=5, repeats=2, hidden_dim=16)
    return run_bench(args)


def test_report_has_every_section_with_the_machine_description(report):
    assert {"machine", "matmul", "training", "stacked", "acting", "episodes", "targets"} <= set(
        report
    )
    assert report["machine"]["cpu_threads_usable"] >= 1
    assert report["machine"]["versions"]["jax"]
    json.dumps(report)  # the --json output


def test_share_of_the_matmul_bound_pairs_each_timed_call_with_the_bound_measured_beside_it(report):
    bound = report["matmul"]["bound_flops_per_s"]
    rates = [report["matmul"][k] for k in ("forward_flops_per_s", "input_grad_flops_per_s")]
    assert min(rates) > 0 and bound > 0
    steps = report["steps_per_call"]
    for row in report["training"]:
        assert row["flops_per_step"] > 0  # from XLA's cost analysis
        assert len(row["call_s"]) == len(row["bounds_beside_flops_per_s"]) == report["repeats"]
        shares = [
            row["flops_per_step"] * steps / (seconds * beside)
            for seconds, beside in zip(row["call_s"], row["bounds_beside_flops_per_s"], strict=True)
        ]
        assert row["share_of_matmul_bound"] == pytest.approx(statistics.median(shares))
        assert row["steps_per_s"] == pytest.approx(steps / statistics.median(row["call_s"]))
    dtql, bc = (next(r for r in report["training"] if r["algo"] == a) for a in ("dtql", "bc"))
    assert dtql["flops_per_step"] > 5 * bc["flops_per_step"]  # four networks against one


def test_stacked_rows_compare_against_the_same_runs_one_run_rate(report):
    for stacked in report["stacked"]:
        one = next(r for r in report["training"] if r["algo"] == stacked["algo"])
        assert stacked["runs"] == 2
        assert stacked["one_run_steps_per_s"] == one["steps_per_s"]
        assert stacked["ratio"] == pytest.approx(
            stacked["stacked_run_steps_per_s"] / one["steps_per_s"]
        )


def test_acting_and_episode_times_cover_each_way_of_acting(report):
    latency = report["acting"]["latency"]
    assert {"mean", "onnx", "candidates", "diffusion"} <= set(latency)  # the test extra has ONNX
    assert all(t["median_s"] > 0 for t in latency.values())
    episodes = report["episodes"]
    assert episodes["steps"] == 1000 and episodes["simulator"]["median_s"] > 0
    for mode in ("mean", "onnx", "candidates", "diffusion"):
        row = episodes[mode]
        assert row["beyond_simulator_s"] == pytest.approx(
            row["median_s"] - episodes["simulator"]["median_s"]
        )


def test_narrowed_networks_leave_every_target_unjudged(report, capsys):
    assert report["targets"] and all(t["met"] is None for t in report["targets"])
    print_report(report)
    assert "not judged here" in capsys.readouterr().out


def _report(threads: int, **parts) -> dict:
    return {"machine": {"cpu_threads_usable": threads}, **parts}


def test_cpu_targets_are_judged_on_one_core_against_their_limits():
    one_core = _report(
        1,
        training=[{"algo": "dtql", "share_of_matmul_bound": 0.8}],
        acting={"latency": {"mean": {"median_s": 30e-6}, "candidates": {"median_s": 0.010}}},
        # (no ONNX measured: the JAX action alone decides)
        torch={"update_ratio": 3.5, "candidates_ratio": 2.0},
        episodes={"mean": {"beyond_simulator_s": 0.1}},
    )
    met = {t["target"]: t["met"] for t in judge_targets(one_core, False, judged=True)}
    assert met == {
        "CPU: DTQL update's share of the matmul-bound rate": True,
        "CPU, 1 thread: DTQL update vs eager PyTorch (x)": True,
        "CPU, 1 core: one-step action at batch 1, JAX or ONNX (us)": False,
        "CPU, 1 core: candidate selection, 1024 samples (ms)": True,
        "CPU, 1 core: candidate selection vs eager PyTorch (x)": False,
        "CPU, 1 core: 1000-step episode beyond the simulator (s)": True,
    }
    two_cores = judge_targets({**one_core, "machine": {"cpu_threads_usable": 2}}, False, True)
    judged = [t["target"] for t in two_cores if t["met"] is not None]
    assert judged == ["CPU: DTQL update's share of the matmul-bound rate"]


def test_gpu_targets_read_seconds_per_1k_steps_and_16_runs_per_step_time():
    gpu = _report(
        16,
        training=[{"algo": "dtql", "s_per_1k_steps": 0.2}],
        stacked=[{"algo": "dtql", "runs": 16, "ratio": 6.4}],  # 16 / 6.4 = 2.5x per step
    )
    met = [t["met"] for t in judge_targets(gpu, True, judged=True)]
    assert met == [True, False]


@pytest.mark.parametrize(
    "args, message",
    [
        (BenchArgs(sections="training,gpu"), "--sections"),
        (BenchArgs(algos="dtql,sac"), "--algos"),
        (BenchArgs(repeats=0), "must be >= 1"),
        (BenchArgs(runs="2,0"), "--runs '2,0': expected comma-separated integers >= 1"),
        (BenchArgs(sections="batch", batches="64,x"), "--batches"),
        (BenchArgs(sections="modes"), "--run-dirs"),
    ],
)
def test_bad_arguments_are_one_line_errors(args, message):
    with pytest.raises(BenchError, match=message):
        run_bench(args)


def test_cli_exits_2_on_an_unknown_section(capsys):
    assert main(["bench", "--sections", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dtql bench: error: --sections") and "\n" not in err


def test_the_faster_deployable_form_decides_the_action_latency_target():
    latency = {"mean": {"median_s": 30e-6}, "onnx": {"median_s": 12e-6}}
    rows = judge_targets(_report(1, acting={"latency": latency}), False, judged=True)
    (action,) = [t for t in rows if "one-step action" in t["target"]]
    assert action["value"] == pytest.approx(12.0) and action["met"] is True


@pytest.mark.slow
def test_opt_in_sections_time_batches_each_k_and_pinned_processes(capsys):
    args = BenchArgs(
        algos="bc",
        sections="training,stacked,batch,processes",
        runs="1,2",
        batches="32,64,128",
        steps=5,
        repeats=1,
        hidden_dim=16,
    )
    report = run_bench(args)
    assert [(r["algo"], r["runs"]) for r in report["stacked"]] == [("bc", 1), ("bc", 2)]
    rows = report["batch"]["rows"]
    assert [r["batch"] for r in rows] == [32, 64, 128] and all(r["ms_per_step"] > 0 for r in rows)
    # The fit is the least-squares line through the three medians.
    batches = np.array([32.0, 64.0, 128.0])
    ms = np.array([r["ms_per_step"] for r in rows])
    slope, intercept = np.polyfit(batches, ms, 1)
    assert report["batch"]["fixed_ms"] == pytest.approx(intercept, rel=1e-6, abs=1e-9)
    assert report["batch"]["per_row_us"] == pytest.approx(1e3 * slope, rel=1e-6, abs=1e-9)
    (processes,) = report["processes"]
    assert processes["processes"] == len(os.sched_getaffinity(0))
    assert processes["run_steps_per_s"] > 0
    print_report(report)
    out = capsys.readouterr().out
    assert "pinned processes" in out and "us per batch row" in out


@pytest.mark.slow
def test_modes_section_scores_each_way_of_acting_as_dtql_eval_does(tmp_path, hopper_hdf5):
    tiny = dict(pretrain_steps=10, steps=20, log_every=10, eval_every=0, eval_episodes=1)
    run = dtql.train(
        "hopper-medium-v2",
        hopper_hdf5,
        "dtql",
        out=tmp_path / "run",
        num_eval_envs=1,
        checkpoint_every=30,
        agent={"hidden_dim": 16},
        progress=False,
        **tiny,
    )
    args = BenchArgs(
        sections="modes", run_dirs=str(run.run_dir), act_modes="mean,diffusion@1", episodes=1
    )
    rows = {r["mode"]: r for r in run_bench(args)["modes"]}
    assert set(rows) == {"mean", "diffusion@1"}
    expected = dtql.evaluate(run.run_dir, episodes=1, act_mode="mean")["normalized_score_mean"]
    assert rows["mean"]["normalized_score_mean"] == pytest.approx(expected)
    assert rows["mean"]["runs"] == 1 and rows["mean"]["steps"] == [30]
