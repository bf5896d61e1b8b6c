"""The speed targets of issue 13, judged on a bench report's measured numbers."""

from __future__ import annotations

from typing import Any


def judge_targets(report: dict[str, Any], on_accelerator: bool, judged: bool) -> list[dict]:
    """Each target of issue 13 with its measured value and whether it is met; None where this
    run cannot judge it (not measured, wrong device or thread count, narrowed networks)."""
    threads = report["machine"]["cpu_threads_usable"]
    training_rows = {row["algo"]: row for row in report.get("training", [])}
    dtql = training_rows.get("dtql")
    stacked = {row["algo"]: row for row in report.get("stacked", [])}.get("dtql")
    latency = report.get("acting", {}).get("latency", {})
    torch = report.get("torch", {})
    episodes = report.get("episodes", {})
    one_core = threads == 1 and not on_accelerator

    def target(name, value, limit, better, valid, unit=""):
        ok = None
        if judged and valid and value is not None:
            ok = value <= limit if better == "<=" else value >= limit
        return {"target": name, "value": value, "limit": f"{better} {limit}{unit}", "met": ok}

    def get(row, key):
        return None if row is None else row.get(key)

    rows = []
    if not on_accelerator:
        rows.append(
            target(
                "CPU: DTQL update's share of the matmul-bound rate",
                get(dtql, "share_of_matmul_bound"),
                0.75,
                ">=",
                True,
            )
        )
        rows.append(
            target(
                "CPU, 1 thread: DTQL update vs eager PyTorch (x)",
                torch.get("update_ratio"),
                3.0,
                ">=",
                one_core,
            )
        )
        rows.append(
            target(
                # Either deployable form counts (issue 13: jitted over the policy's parameters,
                # or the ONNX model): the faster one measured.
                "CPU, 1 core: one-step action at batch 1, JAX or ONNX (us)",
                _fastest_us(latency.get("mean"), latency.get("onnx")),
                25.0,
                "<=",
                one_core,
            )
        )
        rows.append(
            target(
                "CPU, 1 core: candidate selection, 1024 samples (ms)",
                _ms(latency.get("candidates")),
                12.0,
                "<=",
                one_core,
            )
        )
        rows.append(
            target(
                "CPU, 1 core: candidate selection vs eager PyTorch (x)",
                torch.get("candidates_ratio"),
                2.8,
                ">=",
                one_core,
            )
        )
        rows.append(
            target(
                "CPU, 1 core: 1000-step episode beyond the simulator (s)",
                get(episodes.get("mean"), "beyond_simulator_s"),
                0.2,
                "<=",
                one_core,
            )
        )
    else:
        rows.append(
            target(
                "GPU: seconds per 1k DTQL steps, one run",
                get(dtql, "s_per_1k_steps"),
                0.25,
                "<=",
                True,
            )
        )
        per_step = None
        if stacked is not None and stacked["runs"] == 16:
            per_step = stacked["runs"] / stacked["ratio"]  # K runs' step time / one run's
        rows.append(
            target(
                "GPU: 16 runs in one program, time per step vs one run (x)",
                per_step,
                2.0,
                "<=",
                True,
            )
        )
    return rows


def _fastest_us(*timings: dict | None) -> float | None:
    measured = [_us(t) for t in timings if t is not None]
    return min(measured) if measured else None


def _us(timing: dict | None) -> float | None:
    return None if timing is None else timing["median_s"] * 1e6


def _ms(timing: dict | None) -> float | None:
    return None if timing is None else timing["median_s"] * 1e3
