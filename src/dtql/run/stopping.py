"""How a long run stops well: at a non-finite metric, and at SIGINT or SIGTERM.

A diverged run stops at the chunk that produced the non-finite value: that chunk's metrics are
logged (the evidence) but its state is never checkpointed, so the run folder keeps its last finite
checkpoint. A signal lets the current chunk finish, then the run saves a checkpoint there and
exits with the command that resumes it; the resumed run replays exactly the chunks the
uninterrupted run would have (``dtql.run.schedule``).
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from dtql.run.setup import RunError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunDiverged(RunError):
    """A metric became NaN or infinite; the message names the step and the metric."""


class RunInterrupted(Exception):
    """The run was stopped by a signal after saving a checkpoint; the message says how to resume."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


def first_non_finite(row: Mapping[str, float]) -> tuple[str, float] | None:
    """The first (key, value) of a metric row that is NaN or infinite, or None."""
    for key, value in row.items():
        if not math.isfinite(value):
            return key, value
    return None


@dataclass
class StopRequest:
    """Set by the signal handler: the signal to stop for, or None."""

    signum: int | None = None


@contextmanager
def stop_requests() -> Iterator[StopRequest]:
    """Within the block, SIGINT and SIGTERM only record themselves in the yielded request, so
    the loop can stop at the end of its chunk; the previous handlers come back afterwards.
    Outside the main thread (where Python allows no handlers) nothing is installed."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def record(signum, frame):
        request.signum = signum

    previous = {sig: signal.signal(sig, record) for sig in STOP_SIGNALS}
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
