"""`dtql export`: a run's deterministic one-step policy as an ONNX file, checked against JAX.

The exported function is ``policies.deterministic_actions`` (what evaluation runs with act_mode
"mean") with the latest checkpoint's policy parameters closed over as constants:
``obs`` [batch, obs_dim] float32 -> ``action`` [batch, act_dim] float32, the batch dimension
symbolic. Nothing else of the run goes in (no critics, no optimiser states), so the file needs
only an ONNX runtime to act.

How it is made:

- We trace the policy to a jaxpr ourselves, with a symbolic batch, and give jax2onnx a function
  that replays that jaxpr. jax2onnx swaps some library calls (Flax's Dense, ``jnp.full``) for
  its own while it traces, and its ``jnp.full`` needs a concrete shape, so the implicit policy
  (a batch-sized time input) cannot be traced by it with a symbolic batch. A replayed jaxpr
  holds only core JAX primitives: the very program XLA compiles for evaluation, for every
  policy kind alike. Its cost: ReLU stays Max(x, 0) and bias adds stay beside the Gemm, about
  2 us more per batch-1 call in onnxruntime than a Gemm-Relu graph (for hidden 256).
- Before the file is kept, onnxruntime runs it on seeded random states (and on one state) and
  its actions must match the JAX function's within ``TOLERANCE``; the file is written to a temp
  path and renamed over ``--out`` only after that check, so ``--out`` never holds an unchecked
  or partial file.
- The model's metadata_props say what it is: task, Gymnasium env, algorithm, policy kind,
  checkpoint step, dims, action bound, input/output names and the dtql version.

``OnnxPolicy`` loads such a file with onnxruntime for acting (one CPU thread by default).
jax2onnx, onnx and onnxruntime are imported only here, inside functions (the ``export``
extra), so ``import dtql`` does not need them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import jax
import jax.numpy as jnp
import numpy as np
import tyro

import dtql
from dtql.algos.common import build_networks
from dtql.algos.policies import deterministic_actions
from dtql.api import load_policy
from dtql.checkpoint import CheckpointError, latest_checkpoint
from dtql.config import RunConfig
from dtql.envs.registry import UnknownTaskError, get_task
from dtql.files import atomic_path
from dtql.run.resume import read_run_config
from dtql.run.setup import RunError, check_config, task_spaces

INPUT_NAME = "obs"
OUTPUT_NAME = "action"
BATCH_DIM = "batch"
# The converter's ops all exist in opset 17; a low opset lets older runtimes read the file too.
OPSET = 17
TOLERANCE = 1e-5
"""Largest |onnxruntime action - JAX action| the export accepts (float32 rounding is ~1e-6)."""
CHECK_SEED = 0
INSTALL_HINT = "pip install 'dtql[export]'"


class ExportError(ValueError):
    """An export that cannot be made or kept; the message is one line, naming the path."""


@dataclass(frozen=True)
class ExportArgs:
    """Write a run's deterministic one-step policy as an ONNX file, checked against JAX."""

    run_dir: Annotated[tyro.conf.Positional[str], tyro.conf.arg(metavar="RUN_DIR")]
    """A run folder written by `dtql train`; its latest checkpoint is exported."""
    out: str
    """The .onnx file to write (an existing file is replaced, atomically)."""
    check_states: int = 256
    """Seeded random states on which onnxruntime's actions must match JAX's to 1e-5."""


# --------------------------------------------------------------------------- optional libraries


def _import_converter() -> tuple[Any, Callable[..., Any]]:
    """(onnx, jax2onnx.to_onnx), or an ExportError with the install hint."""
    try:
        import onnx
        from jax2onnx import to_onnx
    except ImportError as err:
        raise ExportError(f"dtql export needs jax2onnx and onnx: {INSTALL_HINT} ({err})") from err
    return onnx, to_onnx


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as err:
        raise ExportError(
            f"running an ONNX policy needs onnxruntime: {INSTALL_HINT} ({err})"
        ) from err
    return onnxruntime


# --------------------------------------------------------------------------- acting from the file


class OnnxPolicy:
    """An exported policy run by onnxruntime on the CPU: ``policy(obs)`` with ``obs``
    [batch, obs_dim] returns the actions [batch, act_dim] (float32).

    ``threads`` is onnxruntime's intra-op thread count; one suits the small batches of acting
    and leaves the other cores to the simulator. The call is kept lean for batch-1 control
    loops: names are bound once, and a float32 input is passed through without a copy.
    """

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        ort = _import_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: no per-session notices on stderr
        self.path = Path(path)
        self.session = ort.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"]
        )
        (model_input,) = self.session.get_inputs()
        (model_output,) = self.session.get_outputs()
        self.input_name: str = model_input.name
        self.output_name: str = model_output.name
        self.obs_dim: int = model_input.shape[-1]
        self.act_dim: int = model_output.shape[-1]
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        self._run = self.session.run
        self._outputs = [self.output_name]

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        # np.asarray is free for float32 input; Gymnasium's float64 observations are cast.
        feed = {self.input_name: np.asarray(obs, dtype=np.float32)}
        return self._run(self._outputs, feed)[0]


# --------------------------------------------------------------------------- export


def restore_run(run_dir: str | Path) -> tuple[Any, RunConfig, int]:
    """The newest valid checkpoint's state of a run folder, its config and its step."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ExportError(f"{path}: not found; expected a run folder written by `dtql train`")
    check_config(read_run_config(path))  # a folder that is no run says so first
    if latest_checkpoint(path) is None:
        raise ExportError(
            f"{path / 'checkpoints'}: no checkpoint; expected a run that has saved at least one"
        )
    policy = load_policy(path)  # what `dtql eval` acts with: the newest valid checkpoint
    return policy.state, policy.cfg, policy.step


def policy_function(
    state: Any, cfg: RunConfig, step: int
) -> tuple[Callable[[jax.Array], jax.Array], dict]:
    """A state's deterministic policy as a function of observations [B, obs_dim] (its
    parameters closed over), and what the metadata says about it."""
    task = get_task(cfg.task)
    spaces = task_spaces(task)
    agent = cfg.learner.agent
    nets, params = build_networks(agent, spaces.act_dim), state.policy.params

    def act(obs: jax.Array) -> jax.Array:
        return deterministic_actions(nets, params, obs, agent, spaces.max_action)

    info = {
        "task": task.name,
        "env_id": task.env_id,
        "obs_adapter": task.obs_adapter,
        "algo": cfg.learner.algo,
        "policy": agent.policy,
        "step": step,
        "obs_dim": spaces.obs_dim,
        "act_dim": spaces.act_dim,
        "max_action": spaces.max_action,
    }
    return act, info


@contextmanager
def _quiet_converter_logs() -> Iterator[None]:
    """onnx_ir warns about intermediate values whose type it leaves unannotated; harmless."""
    logger = logging.getLogger("onnx_ir")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _convert(act: Callable[[jax.Array], jax.Array], obs_dim: int) -> Any:
    """``act`` as an ONNX ModelProto with a symbolic batch (see the module doc for why the
    jaxpr is traced here and replayed inside jax2onnx)."""
    onnx, to_onnx = _import_converter()
    (batch,) = jax.export.symbolic_shape(BATCH_DIM)
    spec = jax.ShapeDtypeStruct((batch, obs_dim), jnp.float32)
    closed = jax.make_jaxpr(act)(spec)

    def replay(obs: jax.Array) -> jax.Array:
        (action,) = jax.core.eval_jaxpr(closed.jaxpr, closed.consts, obs)
        return action

    with _quiet_converter_logs():
        model = to_onnx(
            replay,
            inputs=[spec],
            model_name="dtql_policy",
            opset=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
        )
    _drop_unused_initializers(model.graph)
    onnx.checker.check_model(model, full_check=True)
    return model


def _drop_unused_initializers(graph: Any) -> None:
    """Remove constants no node reads (the converter leaves a few; onnxruntime warns on each)."""

    def read_names(g: Any) -> set[str]:
        names = {name for node in g.node for name in node.input}
        for node in g.node:  # names read inside subgraphs (If, Loop) count too
            for attr in node.attribute:
                subgraphs = [*([attr.g] if attr.HasField("g") else []), *attr.graphs]
                for sub in subgraphs:
                    names |= read_names(sub)
        return names | {value.name for value in g.output}

    used = read_names(graph)
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def _set_metadata(model: Any, info: dict) -> None:
    values = {
        **info,
        "act_mode": "mean",
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "dtql_version": dtql.__version__,
    }
    del model.metadata_props[:]
    for key, value in values.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)


def _max_abs_diff(
    policy: OnnxPolicy, act: Callable[[jax.Array], jax.Array], states: np.ndarray, out: Path
) -> float:
    """Largest |onnxruntime - JAX| over ``states`` as one batch and over its first row alone."""
    jitted = jax.jit(act)
    worst = 0.0
    # 'highest': full float32 matmuls on a GPU too (its default TF32 would differ by ~1e-3).
    with jax.default_matmul_precision("highest"):
        for batch in (states, states[:1]):
            expected = np.asarray(jitted(jnp.asarray(batch)))
            got = policy(batch)
            if got.shape != expected.shape:
                raise ExportError(f"{out}: actions of shape {got.shape}, expected {expected.shape}")
            worst = max(worst, float(np.max(np.abs(got - expected))))
    return worst


def export_onnx(run_dir: str | Path, out: str | Path, *, check_states: int = 256) -> dict:
    """Write the run's deterministic policy to ``out`` (.onnx) and check it; returns a summary.

    Raises ExportError (RunError, CheckpointError, UnknownTaskError for an unusable run) with
    one line.
    """
    _check_out(out, check_states)
    state, cfg, step = restore_run(run_dir)
    return {"run_dir": str(run_dir), **export_state_onnx(state, cfg, out, step, check_states)}


def export_state_onnx(
    state: Any, cfg: RunConfig, out: str | Path, step: int = 0, check_states: int = 256
) -> dict:
    """Write a state's deterministic policy to ``out`` (.onnx) once onnxruntime's actions match
    JAX's on ``check_states`` random states; returns a summary (`dtql bench` exports a fresh
    state this way)."""
    out = _check_out(out, check_states)
    act, info = policy_function(state, cfg, step)
    model = _convert(act, info["obs_dim"])
    _set_metadata(model, info)
    data = model.SerializeToString()
    rng = np.random.default_rng(CHECK_SEED)
    states = rng.standard_normal((check_states, info["obs_dim"])).astype(np.float32)
    with atomic_path(out) as temp:
        temp.write_bytes(data)
        diff = _max_abs_diff(OnnxPolicy(temp), act, states, out)
        if not diff <= TOLERANCE:  # also catches NaN
            raise ExportError(
                f"{out}: onnxruntime's actions differ from JAX's by {diff:.3g} on random states, "
                f"expected <= {TOLERANCE:g}; nothing written"
            )
    return {
        "path": str(out),
        "bytes": out.stat().st_size,
        **info,
        "check_states": check_states,
        "max_abs_diff": diff,
        "tolerance": TOLERANCE,
    }


def _check_out(out: str | Path, check_states: int) -> Path:
    out = Path(out)
    if out.suffix != ".onnx":
        raise ExportError(f"--out {out}: expected a file name ending in .onnx")
    if out.is_dir():
        raise ExportError(f"--out {out}: is a folder; expected a .onnx file name")
    if check_states < 1:
        raise ExportError(f"--check-states {check_states}: expected an integer >= 1")
    return out


def export_command(args: ExportArgs) -> int:
    """`dtql export`: one line on success (0), one error line on stderr (2)."""
    try:
        result = export_onnx(args.run_dir, args.out, check_states=args.check_states)
    except (ExportError, RunError, CheckpointError, UnknownTaskError, OSError) as err:
        print(f"dtql export: error: {err}", file=sys.stderr)
        return 2
    print(
        f"wrote {result['path']} ({result['bytes'] / 1024:.0f} KiB): {result['policy']} policy "
        f"of {result['algo']} on {result['task']} at step {result['step']}, {INPUT_NAME} "
        f"[{BATCH_DIM}, {result['obs_dim']}] -> {OUTPUT_NAME} [{BATCH_DIM}, {result['act_dim']}]; "
        f"onnxruntime matches JAX to {result['max_abs_diff']:.1e} on {result['check_states']} "
        "random states"
    )
    return 0
