"""The `dtql` command: a thin dispatcher over train | eval | sweep | report | presets | data |
toy | collect | bench | export.

Config resolution for `dtql train`: ``presets.run_config`` (dataclass defaults, the task's Table 4
preset, the algorithm's defaults), then the command-line flags. This is the only module that
reads argv; nothing imports it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro

from dtql.config import Algo, LearnerConfig, RunConfig, to_dict

USAGE = """usage: dtql {train,eval,sweep,report,presets,data,toy,collect,bench,export} ...

  train     train DTQL (or --algo kl|iql|bc) on an offline dataset and evaluate it
            [--seeds 0-4: one run per seed, in one program where that is faster]
  sweep     a grid of runs: --tasks T1,T2 --algos dtql,iql,bc --seeds 0-4 --out DIR [--ray]
  report    `dtql report DIR`: Table-1-style markdown, IQM and curves from run folders
  eval      re-evaluate the latest checkpoint of a run folder
  presets   list the task presets (the paper's Table 4), one a line [--algo iql]
  data      `dtql data info PATH_OR_ID [--json]`: what a dataset holds;
            `dtql data list`: the `dtql collect` datasets, local or makeable offline;
            `dtql data fingerprint NAME`: data and BC scores beside D4RL's
  toy       the 2D bandit experiments (Figures 1, 2, 3, 6)
  collect   make D4RL-style datasets with an online SAC agent (needs dtql[collect]),
            or from the shipped behaviour policies (--from-policies, no torch)
  bench     how fast training and acting are on this machine, and the speed targets
  export    `dtql export RUN_DIR --out policy.onnx`: the one-step policy as ONNX

`dtql COMMAND --help` describes each command's flags."""


class CommandError(Exception):
    """Bad usage; printed as one line, exit code 2."""


def _flag_value(argv: list[str], flag: str, default: str) -> str:
    """The value of ``--flag VALUE`` or ``--flag=VALUE`` in ``argv``, else ``default``."""
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return default


def resolve_train_config(argv: list[str]) -> RunConfig:
    """The task's and algorithm's starting config (``presets.run_config``), then the flags."""
    from dtql.presets import preset_names, run_config

    task = _flag_value(argv, "--task", RunConfig.task)
    algo = _flag_value(argv, "--algo", LearnerConfig.algo)
    if task not in preset_names():
        print(f"note: {task} has no Table 4 preset; using the default hyperparameters")
    return tyro.cli(RunConfig, default=run_config(task, algo), args=argv, prog="dtql train")


def _pop_flag(argv: list[str], flag: str) -> tuple[list[str], str | None]:
    """``argv`` without ``--flag VALUE`` (or ``--flag=VALUE``), and the value."""
    for i, arg in enumerate(argv):
        if arg == flag:
            if i + 1 >= len(argv):
                raise CommandError(f"{flag} needs a value")
            return argv[:i] + argv[i + 2 :], argv[i + 1]
        if arg.startswith(flag + "="):
            return argv[:i] + argv[i + 1 :], arg.split("=", 1)[1]
    return argv, None


def cmd_train(argv: list[str]) -> int:
    from dtql.run.loop import run_training
    from dtql.run.resume import read_run_config

    argv, seeds = _pop_flag(argv, "--seeds")
    if seeds is not None:
        return _train_seeds(argv, seeds)
    if "--resume" in argv:
        i = argv.index("--resume")
        if len(argv) != 2 or i != 0:
            raise CommandError(
                "--resume RUN_DIR takes no other flags: the run's config.json is used"
            )
        result = run_training(RunConfig(), resume_dir=argv[1])
    else:
        cfg = resolve_train_config(argv)
        print("config:", json.dumps(to_dict(cfg)))
        result = run_training(cfg)
    score = result.get("normalized_score_mean")
    shown = "n/a" if score is None else f"{score:.1f} ± {result['normalized_score_stderr']:.1f}"
    print(
        f"{result['algo']} on {result['task']}: normalized score {shown} "
        f"(act_mode {result['act_mode']}, {result.get('episodes', 0):.0f} episodes); behaviour "
        f"policy (dataset mean return) {result['behaviour_normalized_score']:.1f}; "
        f"run folder {result['run_dir']}"
    )
    print(fingerprint_line(read_run_config(Path(result["run_dir"])).dataset or ""))
    return 0


def fingerprint_line(dataset: str) -> str:
    """BC's score on the run's data, from the dataset's recorded fingerprint, for comparison."""
    from dtql.data.collected import recorded_fingerprint

    fingerprint = recorded_fingerprint(dataset)
    if fingerprint is None:
        return (
            "the same data: no fingerprint recorded (`dtql data fingerprint DATASET --record` "
            "measures BC and the data's score on it)"
        )
    bc = fingerprint["bc"]
    return (
        f"the same data (its fingerprint): BC {fingerprint['bc_normalized_score']:.1f} ± "
        f"{fingerprint['bc_normalized_score_stderr']:.1f} ({bc['steps']:,} steps x "
        f"{len(bc['seeds'])} seeds, mean of the last {bc['last_evals']} evaluations), the "
        f"data itself {fingerprint['data_normalized_score']:.1f}"
    )


def _train_seeds(argv: list[str], seeds_text: str) -> int:
    """`dtql train ... --seeds 0-4`: the same config once per seed, each in OUT/seed_<k>."""
    from dtql.sweep.command import train_seeds

    argv, mode = _pop_flag(argv, "--stack")
    if "--resume" in argv or "--seed" in argv:
        raise CommandError("--seeds takes neither --seed nor --resume (rerun the command)")
    return train_seeds(resolve_train_config(argv), seeds_text, mode or "auto")


def cmd_sweep(argv: list[str]) -> int:
    from dtql.sweep.command import SweepArgs, run_sweep

    if "--ray" in argv:
        i = argv.index("--ray")
        if i + 1 >= len(argv) or argv[i + 1].startswith("--"):  # `--ray` alone: a local instance
            argv = [*argv[:i], "--ray", "local", *argv[i + 1 :]]
    return run_sweep(tyro.cli(SweepArgs, args=argv, prog="dtql sweep"))


def cmd_report(argv: list[str]) -> int:
    from dtql.report.command import ReportArgs, run_report

    return run_report(tyro.cli(ReportArgs, args=argv, prog="dtql report"))


@dataclass(frozen=True)
class EvalArgs:
    """Re-evaluate the latest valid checkpoint of a run and print the mean return and normalized
    score (a damaged newer checkpoint is skipped, saying so)."""

    run_dir: tyro.conf.Positional[str]
    """A run folder written by `dtql train`."""
    step: int | None = None
    """Evaluate the checkpoint of this step (default: the newest that verifies)."""
    episodes: int | None = None
    """Episodes to run (default: the run's eval_episodes)."""
    act_mode: Literal["mean", "candidates", "diffusion"] | None = None
    """How to act (default: the run's act_mode); diffusion: iterative sampling from the behaviour
    diffusion model, IDQL's way, to compare with the one-step policy."""
    diffusion_candidates: int | None = None
    """act_mode diffusion: samples per state, the best by min Q (default: the run's, 64); 1
    samples the behaviour model alone."""
    diffusion_sampling_steps: int | None = None
    """act_mode diffusion: EDM sampler steps (default: the run's, 5)."""
    json: bool = False
    """Print one JSON object instead of a line of text."""


def cmd_eval(argv: list[str]) -> int:
    from dtql.run.acting import evaluate_run

    args = tyro.cli(EvalArgs, args=argv, prog="dtql eval")
    result = evaluate_run(
        args.run_dir,
        step=args.step,
        episodes=args.episodes,
        act_mode=args.act_mode,
        diffusion_candidates=args.diffusion_candidates,
        diffusion_sampling_steps=args.diffusion_sampling_steps,
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['algo']} on {result['task']} at step {result['step']}: return "
            f"{result['return_mean']:.1f} ± {result['return_std']:.1f}, normalized score "
            f"{result['normalized_score_mean']:.1f} ± {result['normalized_score_stderr']:.1f} "
            f"({result['episodes']} episodes, act_mode {result['act_mode']})"
        )
    return 0


@dataclass(frozen=True)
class PresetsArgs:
    """List the task presets (the paper's Table 4), one a line, as `dtql train` would start."""

    algo: Algo = "dtql"
    """Show the presets with this algorithm's defaults (iql: IQL's own recipe)."""


def cmd_presets(argv: list[str]) -> int:
    from dtql.presets import preset_names, run_config

    args = tyro.cli(PresetsArgs, args=argv, prog="dtql presets")
    for name in preset_names():
        cfg = run_config(name, args.algo)
        learner, a = cfg.learner, cfg.learner.agent
        print(
            f"{name} alpha={a.alpha:g} expectile={a.expectile:g} entropy_coef={a.entropy_coef:g} "
            f"lr={a.lr:g} lr_decay={a.lr_decay} lr_decay_steps={a.lr_decay_steps} "
            f"pretrain_steps={learner.pretrain_steps} steps={learner.steps} "
            f"batch_size={learner.batch_size} reward_transform={cfg.reward_transform} "
            f"eval_episodes={cfg.eval_episodes} algo={learner.algo} policy={a.policy} "
            f"critics={a.critics} awr_temperature={a.awr_temperature:g}"
        )
    return 0


@dataclass(frozen=True)
class DataInfoArgs:
    """Summarise a dataset: transitions, episodes, terminals, timeouts, dims and returns (and,
    for a `dtql collect` dataset, how it was made)."""

    dataset: tyro.conf.Positional[str]
    """D4RL .hdf5 path or name, Minari id or folder, .npz file, or a `dtql collect` dataset
    (dtql/<env>-<level>-v0 or its D4RL name) in $DTQL_DATASETS_DIR (~/.dtql/datasets)."""
    task: str | None = None
    """Task whose observation mapping to apply (needed for dict observations, e.g. AntMaze)."""
    json: bool = False
    """Print one JSON object."""


def cmd_data(argv: list[str]) -> int:
    from functools import partial

    from dtql.data import dataset_info, load_dataset
    from dtql.envs.make import adapt_observation
    from dtql.envs.registry import get_task

    if argv and argv[0] == "list":
        return cmd_data_list(argv[1:])
    if argv and argv[0] == "fingerprint":
        from dtql.fingerprint import FingerprintArgs, run_fingerprint

        return run_fingerprint(
            tyro.cli(FingerprintArgs, args=argv[1:], prog="dtql data fingerprint")
        )
    if not argv or argv[0] != "info":
        raise CommandError(
            "usage: dtql data info PATH_OR_ID [--task NAME] [--json] | dtql data list [--json] "
            "| dtql data fingerprint NAME [--record]"
        )
    args = tyro.cli(DataInfoArgs, args=argv[1:], prog="dtql data info")
    adapter = partial(adapt_observation, get_task(args.task)) if args.task else None
    info = dataset_info(load_dataset(args.dataset, obs_adapter=adapter))
    if args.json:
        print(json.dumps(info))
    else:
        made_by = info.pop("made_by", None)
        for key, value in info.items():
            print(f"{key:>16}: {value}")
        if made_by is not None:  # a `dtql collect` dataset: how it was made
            print(f"{'made by':>16}: {made_by.pop('command')}")
            for line in made_by.pop("behaviour_policies"):
                print(f"{'behaviour':>16}: {line}")
            for key, value in made_by.items():
                if isinstance(value, dict):  # seeds, versions
                    value = ", ".join(f"{name} {item}" for name, item in value.items())
                print(f"{key:>16}: {value}")
    return 0


@dataclass(frozen=True)
class DataListArgs:
    """Every dataset `dtql collect` names: whether it is local, and how to make it offline."""

    json: bool = False
    """Print one JSON list."""


def cmd_data_list(argv: list[str]) -> int:
    from dtql.collect.catalogue import collected_catalogue, print_catalogue
    from dtql.data.collected import local_datasets_dir

    args = tyro.cli(DataListArgs, args=argv, prog="dtql data list")
    rows = collected_catalogue()
    if args.json:
        print(json.dumps(rows))
    else:
        print_catalogue(rows, str(local_datasets_dir()))
    return 0


def cmd_toy(argv: list[str]) -> int:
    from dtql.toylab import ToyArgs, run_toy

    return run_toy(tyro.cli(ToyArgs, args=argv, prog="dtql toy"))


def cmd_collect(argv: list[str]) -> int:
    from dtql.collect import CollectArgs, run_collect

    return run_collect(tyro.cli(CollectArgs, args=argv, prog="dtql collect"))


def cmd_bench(argv: list[str]) -> int:
    from dtql.bench.command import BenchArgs, bench_command

    return bench_command(tyro.cli(BenchArgs, args=argv, prog="dtql bench"))


def cmd_export(argv: list[str]) -> int:
    from dtql.export import ExportArgs, export_command

    return export_command(tyro.cli(ExportArgs, args=argv, prog="dtql export"))


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "train": cmd_train,
    "eval": cmd_eval,
    "sweep": cmd_sweep,
    "report": cmd_report,
    "presets": cmd_presets,
    "data": cmd_data,
    "toy": cmd_toy,
    "collect": cmd_collect,
    "bench": cmd_bench,
    "export": cmd_export,
}


def main(argv: list[str] | None = None) -> int:
    from dtql.checkpoint import CheckpointError
    from dtql.data import DatasetError
    from dtql.envs.registry import UnknownTaskError
    from dtql.presets import UnknownPresetError
    from dtql.report import ReportError
    from dtql.run.setup import RunError
    from dtql.run.stopping import RunInterrupted
    from dtql.sweep import SweepError

    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command = COMMANDS.get(argv[0])
    if command is None:
        print(
            f"dtql: error: unknown command {argv[0]!r}; expected one of {', '.join(COMMANDS)} "
            "(dtql --help)",
            file=sys.stderr,
        )
        return 2
    try:
        code = command(argv[1:])
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not at exit
        return code
    except BrokenPipeError:
        # The reader went away (`dtql presets | head`): stop quietly, as the Python docs advise,
        # with stdout pointed at devnull so the interpreter's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except RunInterrupted as stopped:
        # Checkpointed and resumable; exit as a shell reports a process ended by that signal.
        print(f"dtql {argv[0]}: {stopped}", file=sys.stderr)
        return 128 + stopped.signum
    except (
        CommandError,
        SweepError,
        ReportError,
        DatasetError,
        RunError,
        CheckpointError,
        UnknownTaskError,
        UnknownPresetError,
        FileExistsError,
        ValueError,
    ) as err:
        print(f"dtql {argv[0]}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
