"""`dtql bench`: the arguments, the measurements in order, the targets of issue 13 judged on
what was measured, and the report (a table per section, or one JSON object)."""

from __future__ import annotations

import dataclasses
import json
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dtql.algos import ALGORITHMS
from dtql.bench import acting_scores, acting_speed, scaling, training_speed
from dtql.bench.printing import print_report
from dtql.bench.targets import judge_targets
from dtql.bench.timing import accelerator, machine
from dtql.config import LearnerConfig, replace
from dtql.envs.registry import get_task
from dtql.presets import run_config

SECTIONS = ("training", "stacked", "acting", "episodes", "batch", "processes", "modes")
DEFAULT_SECTIONS = ("training", "stacked", "acting", "episodes")  # the targets' measurements


@dataclass(frozen=True)
class BenchArgs:
    """Measure how fast dtql trains and acts on this machine, in one process, and judge the
    speed targets on the measured numbers. Threads: run under `taskset -c 0` for one core."""

    algos: str = "dtql,kl,iql,bc"
    """Comma-separated algorithms whose update is timed."""
    runs: str | None = None
    """Comma-separated K's for the runs-in-one-program measurement (each against one run);
    default 16 on an accelerator, 4 on CPU."""
    task: str = "halfcheetah-medium-v2"
    """Preset whose batch size and widths are used, and whose dims the synthetic data have."""
    steps: int | None = None
    """Updates per timed call; default 2000 on an accelerator, 200 on CPU."""
    repeats: int = 3
    """Timed calls per measurement (the median is reported), after a warm-up."""
    against: Literal["none", "torch"] = "none"
    """Also time the DTQL step and the released candidate selection in eager PyTorch
    (needs the collect extra's torch), as ratios."""
    sections: str = ",".join(DEFAULT_SECTIONS)
    """Comma-separated subset of training, stacked, acting, episodes (the default), and of
    batch (DTQL's step time against --batches: fixed cost and cost per row), processes (one
    pinned single-core process per core, timed together) and modes (scores and wall time of
    each way of acting on the trained runs of --run-dirs)."""
    batches: str = "128,256,512,1024"
    """Batch sizes the batch section times."""
    run_dirs: str = ""
    """Comma-separated run folders (written by `dtql train`) the modes section evaluates."""
    act_modes: str = "mean,candidates,diffusion,diffusion@1"
    """Ways of acting the modes section compares (diffusion@N: N diffusion candidates)."""
    episodes: int = 10
    """Episodes per evaluation in the modes section."""
    hidden_dim: int | None = None
    """Narrower networks for a quick check; the targets are then not judged."""
    json: bool = False
    """Print one JSON object instead of tables."""


class BenchError(ValueError):
    """Bad arguments; the message is one line."""


def run_bench(args: BenchArgs) -> dict[str, Any]:
    """Every asked measurement, in order, with the machine and the judged targets."""
    sections = _subset("--sections", args.sections, SECTIONS)
    task = get_task(args.task)
    dims = (task.obs_dim, task.act_dim)
    on_accelerator = accelerator()
    steps = args.steps or (2000 if on_accelerator else 200)
    runs = _positive_ints("--runs", args.runs or ("16" if on_accelerator else "4"))
    batches = _positive_ints("--batches", args.batches)
    if steps < 1 or args.repeats < 1:
        raise BenchError(f"--steps and --repeats must be >= 1, got {steps}, {args.repeats}")
    if "processes" in sections and on_accelerator:
        raise BenchError("--sections processes times CPU cores; on an accelerator, see stacked")
    if "modes" in sections and not args.run_dirs:
        raise BenchError("--sections modes needs --run-dirs RUN[,RUN...] (folders of dtql train)")
    report: dict[str, Any] = {
        "machine": machine(),
        "task": task.name,
        "steps_per_call": steps,
        "repeats": args.repeats,
        "hidden_dim": args.hidden_dim,
    }
    algos = _subset("--algos", args.algos, list(ALGORITHMS))
    configs = {name: learner_config(args, name) for name in algos}
    dtql_cfg = configs.get("dtql") or learner_config(args, "dtql")
    # The matmul bound keeps as many chains busy as the update can: one per CPU thread.
    chains = 1 if on_accelerator else report["machine"]["cpu_threads_usable"]
    if "training" in sections or "stacked" in sections:
        first = dtql_cfg
        bound = training_speed.matmul_chains(first.batch_size, first.agent.hidden_dim, chains)
        rate = bound.rate(args.repeats)
        report["matmul"] = {
            **dataclasses.asdict(rate),
            "bound_flops_per_s": rate.bound_flops_per_s,
        }
        speeds = {
            name: training_speed.update_speed(name, cfg, dims, steps, args.repeats, bound)
            for name, cfg in configs.items()
        }
        report["training"] = [_speed_row(s) for s in speeds.values()]
        if "stacked" in sections:
            report["stacked"] = []
            for name, cfg in configs.items():
                for k in runs:
                    stacked = training_speed.stacked_speed(
                        name, cfg, dims, k, steps, args.repeats, speeds[name].steps_per_s
                    )
                    report["stacked"].append(dataclasses.asdict(stacked) | {"ratio": stacked.ratio})
    report.update(_scaling(args, sections, dims, steps, batches, list(configs), chains))
    if "acting" in sections or "episodes" in sections:
        report.update(_acting(args, dims, sections))
    if args.against == "torch":
        report["torch"] = _against_torch(args, dtql_cfg, dims, steps, report)
    report["targets"] = judge_targets(report, on_accelerator, judged=args.hidden_dim is None)
    return report


def _subset(flag: str, text: str, allowed: tuple[str, ...] | list[str]) -> list[str]:
    """A comma-separated subset of ``allowed`` (a one-line BenchError naming ``flag`` if not)."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names or any(name not in allowed for name in names):
        raise BenchError(
            f"{flag} {text!r}: expected a comma-separated subset of {','.join(allowed)}"
        )
    return names


def _positive_ints(flag: str, text: str) -> list[int]:
    """'2,4,8' -> [2, 4, 8] (a one-line BenchError naming ``flag`` unless each is >= 1)."""
    try:
        values = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise BenchError(f"{flag} {text!r}: expected comma-separated integers >= 1")
    return values


def learner_config(args: BenchArgs, algo: str) -> LearnerConfig:
    """The learner config `dtql train --task T --algo A` builds, narrowed by --hidden-dim."""
    cfg = run_config(args.task, algo).learner
    if args.hidden_dim is not None:
        cfg = replace(cfg, **{"agent.hidden_dim": args.hidden_dim})
    return cfg


def _speed_row(speed: training_speed.UpdateSpeed) -> dict[str, Any]:
    return {
        "algo": speed.algo,
        "steps_per_s": speed.steps_per_s,
        "ms_per_step": 1000.0 / speed.steps_per_s,
        "s_per_1k_steps": 1000.0 / speed.steps_per_s,
        "flops_per_step": speed.flops_per_step,
        "achieved_flops_per_s": speed.achieved_flops,
        "share_of_matmul_bound": speed.share_of_matmul_bound,
        "bound_beside_flops_per_s": statistics.median(speed.bounds_flops_per_s),
        "call_s": list(speed.call_s),
        "bounds_beside_flops_per_s": list(speed.bounds_flops_per_s),
        "compile_s": speed.compile_s,
        "timing": speed.timing.as_dict(),
    }


def _scaling(
    args: BenchArgs,
    sections: list[str],
    dims: tuple[int, int],
    steps: int,
    batches: list[int],
    algos: list[str],
    chains: int,
) -> dict[str, Any]:
    """The opt-in sections: batch (DTQL), processes (each of --algos) and modes."""
    out: dict[str, Any] = {}
    if "batch" in sections:
        cfg = learner_config(args, "dtql")
        bound = training_speed.matmul_chains(cfg.batch_size, cfg.agent.hidden_dim, chains)
        out["batch"] = scaling.batch_scaling(cfg, dims, batches, args.repeats, bound)
    if "processes" in sections:
        out["processes"] = [
            scaling.processes_speed(args.task, name, steps, args.repeats, args.hidden_dim)
            for name in algos
        ]
    if "modes" in sections:
        run_dirs = [s.strip() for s in args.run_dirs.split(",") if s.strip()]
        modes = [s.strip() for s in args.act_modes.split(",") if s.strip()]
        out["modes"] = acting_scores.acting_scores(run_dirs, modes, args.episodes)
    return out


def _acting(args: BenchArgs, dims: tuple[int, int], sections: list[str]) -> dict[str, Any]:
    cfg = run_config(args.task, "dtql")
    if args.hidden_dim is not None:
        cfg = replace(cfg, **{"learner.agent.hidden_dim": args.hidden_dim})
    out: dict[str, Any] = {}
    if "acting" in sections:
        setup = acting_speed.acting_setup(cfg, *dims)
        fns = {mode: setup.act_fn(mode) for mode in ("mean", "candidates", "diffusion")}
        onnx_fn, onnx_note = _onnx_act_fn(setup)
        if onnx_fn is not None:
            fns["onnx"] = onnx_fn
        latencies = {
            mode: acting_speed.action_latency(
                fn, dims[0], acting_speed.LATENCY_REPEATS[mode]
            ).as_dict()
            for mode, fn in fns.items()
        }
        agent = cfg.learner.agent
        out["acting"] = {
            "latency": latencies,
            "onnx": onnx_note,
            "num_candidates": agent.num_candidates,
            "diffusion_candidates": agent.diffusion_candidates,
            "diffusion_sampling_steps": agent.diffusion_sampling_steps,
            "diffusion_over_mean": latencies["diffusion"]["median_s"]
            / latencies["mean"]["median_s"],
        }
    if "episodes" in sections:
        # Hopper-v5's sizes for the episode (the policy must fit the env).
        hopper = get_task("hopper")
        ep_cfg = dataclasses.replace(cfg, task="hopper")
        setup = acting_speed.acting_setup(ep_cfg, hopper.obs_dim, hopper.act_dim)
        fns = {mode: setup.act_fn(mode) for mode in ("mean", "candidates", "diffusion")}
        onnx_fn, _ = _onnx_act_fn(setup)
        if onnx_fn is not None:
            fns["onnx"] = onnx_fn
        simulator = acting_speed.episode_seconds(None, repeats=args.repeats)
        episodes = {"simulator": simulator.as_dict()}
        for mode, fn in fns.items():
            fn(acting_speed.episode_env().reset(seed=0)[0][None].astype("float32"))  # compile first
            fast = mode in ("mean", "onnx")
            timing = acting_speed.episode_seconds(fn, repeats=args.repeats if fast else 1)
            episodes[mode] = timing.as_dict() | {
                "beyond_simulator_s": timing.median_s - simulator.median_s
            }
        out["episodes"] = {
            "env": acting_speed.EPISODE_ENV,
            "steps": acting_speed.EPISODE_STEPS,
            **episodes,
        }
    return out


def _onnx_act_fn(setup: acting_speed.ActingSetup):
    """The exported ONNX policy in onnxruntime, or (None, why not) without the export extra."""
    try:
        from dtql.export import OnnxPolicy, export_state_onnx
    except ImportError as e:  # pragma: no cover - depends on the installed extras
        return None, f"not measured: {e}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "policy.onnx"
            export_state_onnx(setup.state, setup.cfg, path)
            policy = OnnxPolicy(path, threads=1)
    except ImportError as e:  # the converter or runtime is missing
        return None, f"not measured: {e}"
    return policy, "onnxruntime, 1 intra-op thread"


def _against_torch(
    args: BenchArgs, cfg, dims: tuple[int, int], steps: int, report: dict[str, Any]
) -> dict[str, Any]:
    try:
        from dtql.bench import torch_reference
    except ImportError as e:
        raise BenchError(f"--against torch needs torch: pip install 'dtql[collect]' ({e})") from e
    torch_reference.set_torch_threads(report["machine"]["cpu_threads_usable"])
    data = training_speed.synthetic_data(training_speed.DATA_ROWS, *dims)
    torch_cfg = replace(cfg, **{"agent.policy": "gaussian", "agent.entropy_coef": 0.0})
    timing, finite = torch_reference.torch_update_speed(torch_cfg, data, steps, args.repeats)
    out: dict[str, Any] = {"torch_steps_per_s": steps / timing.median_s, "losses_finite": finite}
    jax_rows = [row for row in report.get("training", []) if row["algo"] == "dtql"]
    if jax_rows:
        out["update_ratio"] = jax_rows[0]["steps_per_s"] / out["torch_steps_per_s"]
    latency = torch_reference.torch_candidate_latency(torch_cfg, *dims, repeats=50)
    out["candidates_s"] = latency.median_s
    ours = report.get("acting", {}).get("latency", {}).get("candidates")
    if ours:
        out["candidates_ratio"] = latency.median_s / ours["median_s"]
    return out


def bench_command(args: BenchArgs) -> int:
    """Measure and print; bad arguments raise BenchError (a ValueError: `dtql` prints it as one
    line and exits 2)."""
    report = run_bench(args)
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)
    return 0
