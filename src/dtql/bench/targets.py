"""The speed targets of issue 13, judged on a bench report's measured numbers."""

from __future__ import annotations

from typing import Any

# The targets of issue 13: (what, the measurement it reads, limit, better, judged on one CPU
# core only). Either deployable form of the one-step action counts (jitted over the policy's
# parameters, or the ONNX model): the faster one measured.
CPU_TARGETS = (
    ("CPU: DTQL update's share of the matmul-bound rate", "share", 0.75, ">=", False),
    ("CPU, 1 thread: DTQL update vs eager PyTorch (x)", "update_ratio", 3.0, ">=", True),
    ("CPU, 1 core: one-step action at batch 1, JAX or ONNX (us)", "action_us", 25.0, "<=", True),
    ("CPU, 1 core: candidate selection, 1024 samples (ms)", "candidates_ms", 12.0, "<=", True),
    ("CPU, 1 core: candidate selection vs eager PyTorch (x)", "candidates_ratio", 2.8, ">=", True),
    ("CPU, 1 core: 1000-step episode beyond the simulator (s)", "episode_s", 0.2, "<=", True),
)
GPU_TARGETS = (
    ("GPU: seconds per 1k DTQL steps, one run", "s_per_1k", 0.25, "<=", False),
    ("GPU: 16 runs in one program, time per step vs one run (x)", "stacked_16", 2.0, "<=", False),
)


def judge_targets(report: dict[str, Any], on_accelerator: bool, judged: bool) -> list[dict]:
    """Each target of issue 13 with its measured value and whether it is met; None where this
    run cannot judge it (not measured, wrong device or thread count, narrowed networks)."""
    one_core = report["machine"]["cpu_threads_usable"] == 1 and not on_accelerator
    measured = _measurements(report)
    rows = []
    for name, key, limit, better, needs_one_core in GPU_TARGETS if on_accelerator else CPU_TARGETS:
        value, ok = measured[key], None
        if judged and (one_core or not needs_one_core) and value is not None:
            ok = value <= limit if better == "<=" else value >= limit
        rows.append({"target": name, "value": value, "limit": f"{better} {limit}", "met": ok})
    return rows


def _measurements(report: dict[str, Any]) -> dict[str, float | None]:
    """The numbers the targets read, from a `dtql bench` report (None where not measured)."""
    dtql = {row["algo"]: row for row in report.get("training", [])}.get("dtql") or {}
    stacked = next(
        (r for r in report.get("stacked", []) if r["algo"] == "dtql" and r["runs"] == 16), None
    )
    latency = report.get("acting", {}).get("latency", {})
    torch = report.get("torch", {})
    per_step = None
    if stacked is not None:
        per_step = stacked["runs"] / stacked["ratio"]  # K runs' step time / one run's
    return {
        "share": dtql.get("share_of_matmul_bound"),
        "update_ratio": torch.get("update_ratio"),
        "action_us": _fastest_us(latency.get("mean"), latency.get("onnx")),
        "candidates_ms": _ms(latency.get("candidates")),
        "candidates_ratio": torch.get("candidates_ratio"),
        "episode_s": (report.get("episodes", {}).get("mean") or {}).get("beyond_simulator_s"),
        "s_per_1k": dtql.get("s_per_1k_steps"),
        "stacked_16": per_step,
    }


def _fastest_us(*timings: dict | None) -> float | None:
    measured = [_us(t) for t in timings if t is not None]
    return min(measured) if measured else None


def _us(timing: dict | None) -> float | None:
    return None if timing is None else timing["median_s"] * 1e6


def _ms(timing: dict | None) -> float | None:
    return None if timing is None else timing["median_s"] * 1e3
