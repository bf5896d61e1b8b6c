"""`dtql export`: each policy kind as ONNX, run by onnxruntime, matches the JAX policy to 1e-5;
the file says what it holds; bad input is one line naming the path; docs/export.md's snippet
runs on an exported file with onnxruntime and Gymnasium alone."""

import re
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import onnxruntime as ort
import pytest

from dtql.algos import get_algorithm
from dtql.algos.common import build_networks
from dtql.algos.policies import deterministic_actions
from dtql.config import replace
from dtql.envs.registry import get_task
from dtql.export import (
    TOLERANCE,
    ExportArgs,
    ExportError,
    OnnxPolicy,
    export_command,
    export_onnx,
)
from dtql.presets import run_config
from dtql.run.loop import run_training
from dtql.run.resume import read_run_config, restore_state, save_run_checkpoint, write_run_config
from dtql.run.setup import RunError, task_spaces

TASK = "hopper-medium-v2"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "export.md"
SMALL = {"learner.agent.hidden_dim": 64}

# Policy kind -> (algo, config changes). Each algorithm with act_mean, each kind it exports.
KINDS = {
    "gaussian": ("dtql", {}),
    "implicit": ("kl", {}),
    "implicit-preconditioned": (
        "dtql",
        {"learner.agent.policy": "implicit", "learner.agent.implicit_generator": "preconditioned"},
    ),
    "iql_gaussian": ("iql", {}),
    "deterministic": ("bc", {}),  # trained for real, see `trained_bc_run`
}


def write_run(out: Path, algo: str, changes: dict) -> Path:
    """A run folder as `dtql train` writes it (config.json, a checkpoint at step 7), with the
    policy's parameters moved off their initial values (zero biases, IQL's zero log std) by
    seeded noise. Not trained: compiling DTQL's update alone takes a minute on one core."""
    cfg = replace(run_config(TASK, algo), out=str(out), **SMALL, **changes)
    spaces = task_spaces(get_task(TASK))
    state = get_algorithm(algo).init(
        jax.random.key(0), cfg.learner, spaces.obs_dim, spaces.act_dim, spaces.max_action
    )
    rng = np.random.default_rng(0)
    params = jax.tree.map(
        lambda p: p + 0.05 * rng.standard_normal(p.shape).astype(np.float32), state.policy.params
    )
    state = state.replace(policy=state.policy.replace(params=params))
    out.mkdir(parents=True)
    write_run_config(out, cfg)
    save_run_checkpoint(out, state, 7, cfg, spaces)
    return out


@pytest.fixture(scope="module")
def trained_bc_run(hopper_hdf5, tmp_path_factory) -> Path:
    """A real `dtql train` run folder: BC (its update compiles in seconds), 20 steps."""
    out = tmp_path_factory.mktemp("runs") / "bc"
    cfg = replace(
        run_config(TASK, "bc"),
        dataset=str(hopper_hdf5),
        out=str(out),
        log_every=10,
        eval_every=0,
        checkpoint_every=20,
        eval_episodes=1,
        num_eval_envs=1,
        **{"learner.pretrain_steps": 0, "learner.steps": 20, "learner.batch_size": 32, **SMALL},
    )
    run_training(cfg, progress=False)
    return out


@pytest.fixture(scope="module")
def exported(trained_bc_run, tmp_path_factory) -> dict[str, tuple[Path, Path, dict]]:
    """Policy kind -> (run folder, exported .onnx, export summary)."""
    root = tmp_path_factory.mktemp("export")
    files = {}
    for kind, (algo, changes) in KINDS.items():
        run_dir = trained_bc_run if algo == "bc" else write_run(root / kind, algo, changes)
        out = root / f"{kind}.onnx"
        files[kind] = (run_dir, out, export_onnx(run_dir, out, check_states=64))
    return files


def jax_actions(run_dir: Path, states: np.ndarray) -> np.ndarray:
    """The evaluation's deterministic action, rebuilt here from the run folder."""
    cfg = read_run_config(run_dir)
    spaces = task_spaces(get_task(cfg.task))
    state, _ = restore_state(run_dir, cfg, spaces)
    nets = build_networks(cfg.learner.agent, spaces.act_dim)
    return np.asarray(
        deterministic_actions(
            nets, state.policy.params, states, cfg.learner.agent, spaces.max_action
        )
    )


@pytest.mark.parametrize("kind", list(KINDS))
def test_onnxruntime_matches_jax_on_random_states_and_at_batch_one(exported, kind):
    run_dir, out, summary = exported[kind]
    assert summary["policy"] == kind.split("-")[0] and summary["max_abs_diff"] <= TOLERANCE
    states = np.random.default_rng(1).standard_normal((64, 11)).astype(np.float32)
    policy = OnnxPolicy(out)
    expected = jax_actions(run_dir, states)
    got = policy(states)
    assert got.shape == (64, 3) and got.dtype == np.float32
    assert np.max(np.abs(got - expected)) <= TOLERANCE
    assert np.max(np.abs(policy(states[:1]) - jax_actions(run_dir, states[:1]))) <= TOLERANCE
    assert np.abs(got).max() <= 1.0 and np.std(got) > 1e-3  # in bounds, and not constant


def test_the_file_says_what_it_holds(exported):
    run_dir, out, summary = exported["gaussian"]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (model_input,), (model_output,) = session.get_inputs(), session.get_outputs()
    assert (model_input.name, model_input.shape, model_input.type) == (
        "obs",
        ["batch", 11],
        "tensor(float)",
    )
    assert (model_output.name, model_output.shape) == ("action", ["batch", 3])
    meta = session.get_modelmeta().custom_metadata_map
    expected = {
        "task": TASK,
        "env_id": "Hopper-v5",
        "algo": "dtql",
        "policy": "gaussian",
        "step": "7",
        "obs_dim": "11",
        "act_dim": "3",
        "max_action": "1.0",
        "act_mode": "mean",
        "input_name": "obs",
        "output_name": "action",
    }
    assert expected.items() <= meta.items() and meta["dtql_version"]
    assert OnnxPolicy(out).metadata == meta
    assert summary["bytes"] == out.stat().st_size and summary["step"] == 7
    assert exported["deterministic"][2]["step"] == 20  # the trained run's last checkpoint


def test_more_threads_give_the_same_actions(exported):
    _, out, _ = exported["implicit"]
    states = np.random.default_rng(2).standard_normal((512, 11))  # float64, as envs give
    np.testing.assert_allclose(OnnxPolicy(out, threads=2)(states), OnnxPolicy(out)(states))


def test_command_prints_one_line_and_replaces_the_file(exported, tmp_path, capsys):
    run_dir, _, _ = exported["deterministic"]
    out = tmp_path / "policy.onnx"
    out.write_text("old")
    assert export_command(ExportArgs(str(run_dir), str(out), check_states=8)) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"wrote {out}") and "bc on" in lines[0]
    assert OnnxPolicy(out).metadata["algo"] == "bc"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy.onnx"]  # no temp file left


@pytest.mark.parametrize(
    "make_args, expected",
    [
        (lambda tmp, run: (tmp / "missing", tmp / "p.onnx"), r"missing: not found; expected"),
        (lambda tmp, run: (run, tmp / "policy.pt"), r"policy\.pt: expected a file name ending"),
        (lambda tmp, run: (run, tmp), r"is a folder; expected a \.onnx file"),
        (lambda tmp, run: (tmp, tmp / "p.onnx"), r"config\.json: not found; expected a run"),
    ],
)
def test_bad_input_is_one_line_naming_the_path(exported, tmp_path, capsys, make_args, expected):
    run_dir, out = make_args(tmp_path, exported["gaussian"][0])
    if out == tmp_path:
        out = tmp_path / "folder.onnx"
        out.mkdir()
    assert export_command(ExportArgs(str(run_dir), str(out))) == 2
    err = capsys.readouterr().err
    assert err.startswith("dtql export: error: ") and err.count("\n") == 1
    assert re.search(expected, err), err


def test_a_run_without_a_checkpoint_is_refused(exported, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_bytes((exported["gaussian"][0] / "config.json").read_bytes())
    with pytest.raises(ExportError, match=r"checkpoints: no checkpoint; expected"):
        export_onnx(run_dir, tmp_path / "p.onnx")
    with pytest.raises(RunError, match="config.json: not found"):
        export_onnx(tmp_path, tmp_path / "p.onnx")


def test_a_file_that_fails_the_check_is_not_kept(exported, tmp_path, monkeypatch):
    monkeypatch.setattr("dtql.export.TOLERANCE", -1.0)
    out = tmp_path / "policy.onnx"
    with pytest.raises(ExportError, match="differ from JAX's by .* nothing written"):
        export_onnx(exported["gaussian"][0], out, check_states=4)
    assert list(tmp_path.iterdir()) == []


def test_the_docs_snippet_acts_in_gymnasium_with_onnxruntime_alone(exported, tmp_path):
    (code,) = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    readme = (DOCS.parent.parent / "README.md").read_text()
    assert code in re.findall(r"```python\n(.*?)```", readme, re.S)  # the README shows it too
    assert "dtql" not in code.replace("dtql export", "")
    body = [line for line in code.splitlines() if line and not line.startswith("import ")]
    assert len(body) <= 10  # the ten-line use the README promises
    (tmp_path / "policy.onnx").write_bytes(exported["gaussian"][1].read_bytes())
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert np.isfinite(float(done.stdout.split()[-1]))


def test_the_export_libraries_load_only_when_used(tmp_path, monkeypatch):
    libraries = "{'jax2onnx', 'onnx', 'onnxruntime'}"
    probe = f"import sys, dtql.export; print(sorted({libraries} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(ExportError, match=r"pip install 'dtql\[export\]'"):
        OnnxPolicy(tmp_path / "policy.onnx")
