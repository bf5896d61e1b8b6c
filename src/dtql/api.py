"""dtql from Python: train a run, load its policy, load a dataset, run a grid, write a report.

The command line is a thin shell over these functions (`dtql.cli`); they write and read the same
run folders, so a run trained from a notebook resumes, evaluates and exports from the shell and
the other way round. docs/api.md shows them in use.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from dtql.algos import get_algorithm
from dtql.config import LEARNER_FIELDS, RunConfig, replace
from dtql.data import Transitions, load_dataset, write_npz  # noqa: F401 (dtql.load_dataset)
from dtql.envs.registry import get_task
from dtql.presets import run_config
from dtql.run.acting import evaluate_act_fn, evaluation_key, make_act_fn
from dtql.run.loop import run_training
from dtql.run.resume import extend_run, read_run_config, restore_state
from dtql.run.setup import check_config, default_run_dir, task_spaces
from dtql.sweeps.execute import ExecutionReport

# The names `dtql` exports (its __init__ imports them from here on first use): dtql._API.


@dataclass(frozen=True)
class TrainedRun:
    """A finished run: its folder (config.json, metrics, checkpoints) and result.json's dict."""

    run_dir: Path
    result: dict[str, Any]

    @property
    def config(self) -> RunConfig:
        """The run's config.json (with the dataset it read)."""
        return read_run_config(self.run_dir)

    def policy(self, act_mode: str = "mean") -> Policy:
        """The run's trained policy (see `load_policy`)."""
        return load_policy(self.run_dir, act_mode)


def config_for(
    task: str, algo: str, dataset: str | None, out: str | None, fields: dict[str, Any]
) -> RunConfig:
    """`dtql train`'s config: the task's preset and the algorithm's defaults, then ``fields``
    as keywords (learner fields flat, ``steps=20000``; nested ones as a dict, ``agent={"alpha":
    5}``), the dataset and the folder."""
    changes: dict[str, Any] = {}
    for key, value in fields.items():
        path = f"learner.{key}" if key in LEARNER_FIELDS else key
        if isinstance(value, dict):
            changes.update({f"{path}.{sub}": item for sub, item in value.items()})
        else:
            changes[path] = value
    try:
        cfg = replace(run_config(task, algo), **changes)
    except TypeError as error:  # an unknown field name
        raise ValueError(f"dtql.train: {error} (see `dtql train --help` for the fields)") from None
    return dataclasses.replace(cfg, dataset=dataset, out=out)


def train(
    task: str = RunConfig.task,
    dataset: str | Path | Transitions | None = None,
    algo: str = "dtql",
    *,
    out: str | Path | None = None,
    progress: bool = True,
    **fields: Any,
) -> TrainedRun:
    """Train and evaluate one run, as `dtql train` does, and return it.

    ``dataset`` is a path or name (`dtql train --dataset`), None for the task's own, or a
    `Transitions` record held in memory, which is written into the run folder as dataset.npz
    first so that config.json alone reproduces the run. Every config field is a keyword.
    """
    folder = str(out) if out is not None else None
    if isinstance(dataset, Transitions):
        cfg = config_for(task, algo, None, folder, fields)
        run_dir = Path(cfg.out) if cfg.out else default_run_dir(cfg)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_npz(run_dir / "dataset.npz", dataset)
        dataset, folder = str(run_dir / "dataset.npz"), str(run_dir)
    cfg = config_for(task, algo, None if dataset is None else str(dataset), folder, fields)
    return train_config(cfg, progress=progress)


def train_config(cfg: RunConfig, progress: bool = True) -> TrainedRun:
    """Train one run of a complete config (what `dtql train` does with its flags)."""
    result = run_training(cfg, progress=progress)
    return TrainedRun(Path(result["run_dir"]), result)


def resume(run_dir: str | Path, progress: bool = True, steps: int | None = None) -> TrainedRun:
    """Continue a stopped run from its newest valid checkpoint (`dtql train --resume`); with
    ``steps``, a longer main phase than the run was started with (`--steps`, `extend_run`)."""
    if steps is not None:
        extend_run(Path(run_dir), steps)
    result = run_training(RunConfig(), resume_dir=str(run_dir), progress=progress)
    return TrainedRun(Path(result["run_dir"]), result)


class Policy:
    """A run's trained policy as a function of numpy observations: one observation [obs_dim]
    gives one action [act_dim], a batch [B, obs_dim] gives [B, act_dim].

    ``act_mode`` is the way of acting `dtql eval` takes (mean: the one-step policy's
    deterministic action; candidates; diffusion); the keyed ways draw from a key fixed by the
    run's seed and step, so the same calls give the same actions as `dtql eval`'s.
    """

    def __init__(
        self,
        run_dir: str | Path,
        act_mode: str = "mean",
        step: int | None = None,
        **acting: Any,
    ) -> None:
        self.run_dir = Path(run_dir)
        cfg = dataclasses.replace(read_run_config(self.run_dir), act_mode=act_mode)
        cfg = replace(cfg, **acting)  # e.g. learner.agent.diffusion_candidates
        check_config(cfg)
        self.cfg, self.task = cfg, get_task(cfg.task)
        self.state, self.step = restore_state(self.run_dir, cfg, task_spaces(self.task), step)
        self.algo = get_algorithm(cfg.learner.algo)
        self._act = make_act_fn(self.algo, self.state, cfg, evaluation_key(cfg, self.step))

    @property
    def act_mode(self) -> str:
        return self.cfg.act_mode

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        batch = np.asarray(obs, dtype=np.float32)
        single = batch.ndim == 1
        actions = self._act(batch[None] if single else batch)
        return actions[0] if single else actions


def load_policy(run_dir: str | Path, act_mode: str = "mean", step: int | None = None) -> Policy:
    """A run folder's policy at its newest valid checkpoint (or ``step``'s)."""
    return Policy(run_dir, act_mode, step)


def evaluate(
    run_dir: str | Path,
    *,
    step: int | None = None,
    episodes: int | None = None,
    act_mode: str | None = None,
    diffusion_candidates: int | None = None,
    diffusion_sampling_steps: int | None = None,
) -> dict[str, Any]:
    """`dtql eval`: the run's policy (`load_policy`) in the simulator, in the result
    vocabulary; the acting settings given replace the run's."""
    cfg = read_run_config(Path(run_dir))
    acting = {
        "learner.agent.diffusion_candidates": diffusion_candidates,
        "learner.agent.diffusion_sampling_steps": diffusion_sampling_steps,
    }
    overrides = {key: value for key, value in acting.items() if value is not None}
    policy = Policy(run_dir, act_mode or cfg.act_mode, step, **overrides)
    cfg, task = policy.cfg, policy.task
    episodes = episodes or cfg.eval_episodes
    with jax.default_matmul_precision(cfg.matmul_precision):
        result = evaluate_act_fn(policy, cfg, task, episodes)
    summary = result.summary()
    if cfg.act_mode == "diffusion":
        agent = cfg.learner.agent
        summary["diffusion_candidates"] = agent.diffusion_candidates
        summary["diffusion_sampling_steps"] = agent.diffusion_sampling_steps
    return {
        "run_dir": str(run_dir),
        "task": task.name,
        "algo": cfg.learner.algo,
        "step": policy.step,
        **summary,
    }


def sweep(
    tasks: list[str],
    algos: list[str],
    seeds: str = "0",
    *,
    out: str | Path,
    sets: list[str] | tuple[str, ...] = (),
    mode: str = "auto",
    workers: int | None = None,
    max_group: int = 0,
    ray: bool = False,
    ray_address: str | None = None,
    extend: bool = False,
) -> ExecutionReport:
    """A grid as `dtql sweep` runs it (``sets``: its --set items; ``extend``: its --extend);
    what became of each run."""
    from dtql.sweeps.sweep_command import SweepArgs, sweep_grid

    args = SweepArgs(
        tasks=",".join(tasks),
        out=str(out),
        algos=",".join(algos),
        seeds=seeds,
        set=(tuple(sets),) if sets else (),
        mode=mode,  # type: ignore[arg-type]
        workers=workers,
        max_group=max_group,
        ray=ray,
        ray_address=ray_address,
        extend=extend,
    )
    return sweep_grid(args)


def report(
    root: str | Path,
    out: str | Path | None = None,
    figures: str | Path | None = None,
    preamble: str = "",
) -> str:
    """`dtql report`: the results page of the runs under ``root``, written and returned."""
    from dtql.reports import write_report

    out_path = Path(out) if out is not None else Path(root) / "report.md"
    figure_dir = Path(figures) if figures is not None else out_path.parent / "figures"
    return write_report(Path(root), out_path, figure_dir, preamble)
