"""Timing helpers and the description of the machine every bench report starts with."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import jax

from dtql.algos.common import COMPILER_OPTIONS


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the median of ``repeats`` timed calls after ``warmup`` untimed ones."""

    median_s: float
    min_s: float
    max_s: float
    repeats: int
    warmup: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def time_calls(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> Timing:
    """Time ``fn()`` (which must block until its result is ready) ``repeats`` times."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return Timing(statistics.median(times), min(times), max(times), repeats, warmup)


def blocking(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` made to wait for its JAX result (dispatch is asynchronous)."""
    return lambda: jax.block_until_ready(fn())


def accelerator() -> bool:
    """Whether JAX's default device is a GPU or TPU."""
    return jax.devices()[0].platform != "cpu"


def machine() -> dict[str, Any]:
    """Device, threads, flags and versions: what a reader needs to compare two reports."""
    device = jax.devices()[0]
    packages = ("jax", "jaxlib", "flax", "optax", "numpy", "gymnasium", "mujoco")
    optional = ("onnxruntime", "jax2onnx", "torch")
    versions = {name: importlib.metadata.version(name) for name in packages}
    for name in optional:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "device": f"{device.platform} ({device.device_kind})",
        "platform": device.platform,
        "cpu": platform.processor() or platform.machine(),
        "cpu_threads_usable": len(os.sched_getaffinity(0)),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "compiler_options": dict(COMPILER_OPTIONS),
        "python": platform.python_version(),
        "versions": versions,
    }
