"""The accelerator path: the jitted updates give the CPU's numbers on a GPU, repeat exactly there,
and a short run with evaluation in the real simulator works end to end.

Marked ``gpu``: deselected by default and skipped where JAX sees no accelerator. Run them with
``python -m pytest -m gpu tests/test_accelerator.py`` on a machine with one.
"""

import json

import jax
import numpy as np
import pytest
from test_run import small_config

from dtql.algos import get_algorithm
from dtql.algos.common import Batch, run_steps_jit
from dtql.config import replace
from dtql.presets import preset
from dtql.run.loop import run_training


def _accelerator():
    try:
        return jax.devices("gpu")[0]
    except RuntimeError:
        return None


ACCELERATOR = _accelerator()
CPU = jax.devices("cpu")[0]

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(ACCELERATOR is None, reason="JAX sees no GPU"),
]

OBS_DIM, ACT_DIM, STEPS = 11, 3, 20


def synthetic_data(rows: int = 5000) -> Batch:
    rng = np.random.default_rng(0)
    return Batch(
        observations=rng.standard_normal((rows, OBS_DIM), dtype=np.float32),
        actions=np.tanh(rng.standard_normal((rows, ACT_DIM), dtype=np.float32)) * 0.9,
        rewards=rng.standard_normal(rows, dtype=np.float32),
        next_observations=rng.standard_normal((rows, OBS_DIM), dtype=np.float32),
        terminals=(rng.random(rows) < 0.01).astype(np.float32),
    )


def config(algo: str):
    policy = "implicit" if algo == "kl" else "gaussian"
    return replace(
        preset("hopper-medium-v2").learner,
        algo=algo,
        batch_size=64,
        **{"agent.hidden_dim": 64, "agent.policy": policy},
    )


def steps_on(device, algo: str) -> dict[str, float]:
    """Init on `device`, pretrain STEPS steps, then STEPS main steps; the metrics' means."""
    cfg, impl = config(algo), get_algorithm(algo)
    with jax.default_device(device):
        data = jax.device_put(synthetic_data(), device)
        state = impl.init(jax.random.key(0), cfg, OBS_DIM, ACT_DIM, 1.0)
        state, _ = run_steps_jit(impl.pretrain_step, state, data, jax.random.key(1), cfg, STEPS)
        state, metrics = run_steps_jit(impl.train_step, state, data, jax.random.key(2), cfg, STEPS)
        assert next(iter(jax.tree.leaves(state))).devices() == {device}
        return {k: float(v) for k, v in jax.device_get(metrics).items()}


@pytest.mark.parametrize("algo", ["dtql", "kl", "iql", "bc"])
def test_accelerator_steps_give_the_cpu_numbers(algo):
    # Full float32 matmuls on both sides, so any difference is the backend's rounding alone.
    with jax.default_matmul_precision("highest"):
        gpu = steps_on(ACCELERATOR, algo)
        cpu = steps_on(CPU, algo)
    assert gpu.keys() == cpu.keys()
    for name in cpu:
        assert np.isfinite(gpu[name]), name
        assert gpu[name] == pytest.approx(cpu[name], rel=1e-3, abs=1e-4), name


def test_accelerator_steps_repeat_exactly():
    assert steps_on(ACCELERATOR, "dtql") == steps_on(ACCELERATOR, "dtql")


def test_training_run_on_the_accelerator(hopper_hdf5, tmp_path):
    # test_run's small run, at the preset's full network size.
    cfg = replace(small_config(hopper_hdf5, tmp_path / "run"), **{"learner.agent.hidden_dim": 256})
    result = run_training(cfg, progress=False)
    assert np.isfinite(result["normalized_score_mean"])
    assert json.loads((tmp_path / "run" / "result.json").read_text()) == result
