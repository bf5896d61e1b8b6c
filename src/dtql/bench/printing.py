"""A bench report as the tables `dtql bench` prints (Markdown, so they paste into docs)."""

from __future__ import annotations

from typing import Any

from dtql.bench.training_speed import MATMULS_PER_CALL


def print_report(report: dict[str, Any]) -> None:
    """A bench report for people: the machine, then each section measured, then the targets."""
    _print_machine(report)
    _print_training(report)
    _print_acting(report)
    _print_scaling(report)
    _print_torch_and_targets(report)


def _print_machine(report: dict[str, Any]) -> None:
    m = report["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    print(
        f"dtql bench on {m['device']}, CPU {m['cpu']}, {m['cpu_threads_usable']} CPU threads "
        f"usable, XLA_FLAGS={m['xla_flags']!r}, training and acting compiled with "
        f"{m['compiler_options']}; {versions}"
    )
    print(
        f"task preset {report['task']}; {report['steps_per_call']} updates per timed call; "
        f"medians of {report['repeats']} timed calls after a warm-up (compile time apart)"
        + (f"; hidden_dim narrowed to {report['hidden_dim']}" if report["hidden_dim"] else "")
    )
    if "matmul" in report:
        mm = report["matmul"]
        print(
            f"\nmatmul rate up front at [{mm['batch']}, {mm['hidden']}] x [{mm['hidden']}, "
            f"{mm['hidden']}] (chains of {MATMULS_PER_CALL}): forward "
            f"{mm['forward_flops_per_s'] / 1e9:.1f}, input-gradient "
            f"{mm['input_grad_flops_per_s'] / 1e9:.1f}, weight-gradient "
            f"{mm['weight_grad_flops_per_s'] / 1e9:.1f} GFLOP/s; bound "
            f"{mm['bound_flops_per_s'] / 1e9:.1f} GFLOP/s"
        )


def _print_training(report: dict[str, Any]) -> None:
    if "training" in report:
        print(
            "\n| algo | steps/s | ms/step | GFLOP/step (XLA) | GFLOP/s | bound beside, GFLOP/s "
            "| share of matmul bound | compile s |\n" + "| --- " * 8 + "|"
        )
        for r in report["training"]:
            print(
                f"| {r['algo']} | {r['steps_per_s']:.1f} | {r['ms_per_step']:.2f} | "
                f"{r['flops_per_step'] / 1e9:.3f} | {r['achieved_flops_per_s'] / 1e9:.1f} | "
                f"{r['bound_beside_flops_per_s'] / 1e9:.1f} | "
                f"{100 * r['share_of_matmul_bound']:.0f}% | {r['compile_s']:.1f} |"
            )
        print(
            "(the bound is measured again after each timed call; a share is the median over "
            "calls of the call's GFLOP/s over the bound measured beside it)"
        )
    if "stacked" in report:
        print(
            "\n| algo | runs in one program | one run steps/s | run-steps/s | vs one run |"
            "\n| --- | --- | --- | --- | --- |"
        )
        for r in report["stacked"]:
            print(
                f"| {r['algo']} | {r['runs']} | {r['one_run_steps_per_s']:.1f} | "
                f"{r['stacked_run_steps_per_s']:.1f} | {r['ratio']:.2f}x |"
            )


def _print_acting(report: dict[str, Any]) -> None:
    if "acting" in report:
        a = report["acting"]
        mean = a["latency"]["mean"]["median_s"]
        print("\n| acting at batch 1 | median | vs one-step mean |\n| --- | --- | --- |")
        names = {
            "mean": "one-step policy, mean action (jitted JAX)",
            "onnx": "one-step policy, mean action (ONNX in onnxruntime)",
            "candidates": f"candidate selection: {a['num_candidates']} one-step samples by min Q",
            "diffusion": f"diffusion sampling: {a['diffusion_candidates']} x "
            f"{a['diffusion_sampling_steps']}-step EDM, best by min Q",
        }
        for mode, t in a["latency"].items():
            print(f"| {names[mode]} | {_human(t['median_s'])} | {t['median_s'] / mean:.1f}x |")
        if "onnx" not in a["latency"]:
            print(f"(ONNX {a['onnx']})")
    if "episodes" in report:
        e = report["episodes"]
        print(
            f"\n| {e['steps']}-step {e['env']} episode | wall | beyond the simulator |"
            "\n| --- | --- | --- |"
        )
        print(f"| simulator alone (zero actions) | {e['simulator']['median_s']:.3f} s | - |")
        for mode in ("mean", "onnx", "candidates", "diffusion"):
            if mode in e:
                print(
                    f"| {mode} | {e[mode]['median_s']:.3f} s | "
                    f"{e[mode]['beyond_simulator_s']:.3f} s |"
                )


def _print_scaling(report: dict[str, Any]) -> None:
    if "batch" in report:
        b = report["batch"]
        print(
            "\n| DTQL batch | ms/step | GFLOP/step | GFLOP/s | share of matmul bound |"
            "\n| --- | --- | --- | --- | --- |"
        )
        for r in b["rows"]:
            print(
                f"| {r['batch']} | {r['ms_per_step']:.2f} | {r['flops_per_step'] / 1e9:.3f} | "
                f"{r['achieved_flops_per_s'] / 1e9:.1f} | {100 * r['share_of_matmul_bound']:.0f}% |"
            )
        print(f"fit: {b['fixed_ms']:.2f} ms fixed + {b['per_row_us']:.1f} us per batch row")
    if "processes" in report:
        one = {r["algo"]: r["steps_per_s"] for r in report.get("training", [])}
        print("\n| algo | pinned processes | run-steps/s | vs one run |\n| --- | --- | --- | --- |")
        for r in report["processes"]:
            ratio = f"{r['run_steps_per_s'] / one[r['algo']]:.2f}x" if r["algo"] in one else "-"
            print(f"| {r['algo']} | {r['processes']} | {r['run_steps_per_s']:.1f} | {ratio} |")
    if "modes" in report:
        print(
            "\n| algo | act mode | runs | steps | normalized score (± s.e. over runs) | "
            "median eval wall |\n| --- | --- | --- | --- | --- | --- |"
        )
        for r in report["modes"]:
            print(
                f"| {r['algo']} | {r['mode']} | {r['runs']} | "
                f"{'/'.join(map(str, r['steps']))} | {r['normalized_score_mean']:.1f} ± "
                f"{r['normalized_score_stderr']:.1f} ({r['episodes']} episodes) | "
                f"{r['wall_s_median']:.1f} s |"
            )


def _print_torch_and_targets(report: dict[str, Any]) -> None:
    if "torch" in report:
        t = report["torch"]
        print(
            f"\neager PyTorch, same process and threads: DTQL step "
            f"{t['torch_steps_per_s']:.1f} steps/s (losses finite: {t['losses_finite']})"
            + (f", dtql {t['update_ratio']:.2f}x" if "update_ratio" in t else "")
            + f"; released candidate selection {_human(t['candidates_s'])}"
            + (f", dtql {t['candidates_ratio']:.2f}x" if "candidates_ratio" in t else "")
        )
    print("\n| target | measured | limit | met |\n| --- | --- | --- | --- |")
    for t in report["targets"]:
        value = "-" if t["value"] is None else f"{t['value']:.3g}"
        met = {True: "yes", False: "NO", None: "not judged here"}[t["met"]]
        print(f"| {t['target']} | {value} | {t['limit']} | {met} |")


def _human(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} us" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"
