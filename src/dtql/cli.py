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
from typing import Annotated, Literal

import tyro

from dtql.config import Algo, LearnerConfig, RunConfig, replace, to_dict

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


@dataclass(frozen=True)
class TrainChoice:
    """The two flags that choose `dtql train`'s starting config (read first, then again)."""

    task: str = RunConfig.task
    algo: Algo = LearnerConfig.algo


@dataclass(frozen=True)
class TrainArgs:
    """Train (and evaluate) one run; every config field is a flag. The config starts from the
    task's preset and the algorithm's defaults (`dtql presets`), then the flags."""

    config: Annotated[RunConfig, tyro.conf.arg(name="")]
    resume: str | None = None
    """Continue the run in this folder from its newest valid checkpoint (the run's config.json
    is used; the one other flag it takes is --steps, a longer main phase, also for a finished
    run)."""
    seeds: str | None = None
    """Train the config once per seed (0-4 or 0,3,7), each in OUT/seed_<k>."""
    stack: Literal["auto", "stacked", "processes"] = "auto"
    """With --seeds: one vmapped program (stacked), one pinned process per core, or auto."""


def parse_train_args(argv: list[str]) -> TrainArgs:
    """`dtql train`'s flags: --task and --algo first (they choose the defaults), then all."""
    from dtql.presets import preset_names, run_config

    choice, _ = tyro.cli(TrainChoice, args=argv, return_unknown_args=True, add_help=False)
    if choice.task not in preset_names():
        print(f"note: {choice.task} has no Table 4 preset; using the default hyperparameters")
    default = TrainArgs(config=run_config(choice.task, choice.algo))
    args = tyro.cli(TrainArgs, default=default, args=argv, prog="dtql train")
    if args.resume is not None:
        default_steps = replace(args.config, **{"learner.steps": default.config.learner.steps})
        if default_steps != default.config or args.seeds is not None:
            raise CommandError(
                "--resume RUN_DIR takes no other flag but --steps: the run's config.json is used"
            )
    if args.seeds is not None and args.config.seed != default.config.seed:
        raise CommandError("--seeds takes no --seed (each run gets one of the seeds)")
    return args


def cmd_train(argv: list[str]) -> int:
    from dtql.api import resume, train_config
    from dtql.sweeps.sweep_command import train_seeds

    args = parse_train_args(argv)
    if args.seeds is not None:
        return train_seeds(args.config, args.seeds, args.stack)
    if args.resume is not None:
        given = any(arg == "--steps" or arg.startswith("--steps=") for arg in argv)
        run = resume(args.resume, steps=args.config.learner.steps if given else None)
    else:
        print("config:", json.dumps(to_dict(args.config)))
        run = train_config(args.config)
    result = run.result
    score = result.get("normalized_score_mean")
    shown = "n/a" if score is None else f"{score:.1f} ± {result['normalized_score_stderr']:.1f}"
    print(
        f"{result['algo']} on {result['task']}: normalized score {shown} "
        f"(act_mode {result['act_mode']}, {result.get('episodes', 0):.0f} episodes); behaviour "
        f"policy (dataset mean return) {result['dataset_normalized_score']:.1f}; "
        f"run folder {run.run_dir}"
    )
    print(fingerprint_line(run.config.dataset or ""))
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
        f"data itself {fingerprint['dataset_normalized_score']:.1f}"
    )


def cmd_sweep(argv: list[str]) -> int:
    from dtql.sweeps.sweep_command import SweepArgs, run_sweep

    return run_sweep(tyro.cli(SweepArgs, args=argv, prog="dtql sweep"))


def cmd_report(argv: list[str]) -> int:
    from dtql.reports.report_command import ReportArgs, run_report

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
    from dtql.api import evaluate

    args = tyro.cli(EvalArgs, args=argv, prog="dtql eval")
    result = evaluate(
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
    fingerprints: bool = False
    """Print each level's fingerprint (data and BC scores, transitions) beside D4RL's, with
    whether it is within the tolerance."""


def cmd_data_list(argv: list[str]) -> int:
    from dtql.collect.catalogue import collected_catalogue, print_catalogue, print_fingerprints
    from dtql.data.collected import local_datasets_dir

    args = tyro.cli(DataListArgs, args=argv, prog="dtql data list")
    rows = collected_catalogue()
    if args.json:
        print(json.dumps(rows))
    elif args.fingerprints:
        print_fingerprints(rows)
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
    from dtql.bench.bench_command import BenchArgs, bench_command

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
    from dtql.reports import ReportError
    from dtql.run.setup import RunError
    from dtql.run.stopping import RunInterrupted
    from dtql.sweeps import SweepError

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
