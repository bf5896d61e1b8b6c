"""What one process (or Ray task) of a sweep runs: one group of runs, from a JSON spec.

``python -m dtql.sweeps SPEC.json`` trains the group and exits 0 when every run finished,
1 when a run diverged (its result.json says failed), 2 when the group could not start, and
128 + signal when stopped by SIGINT/SIGTERM (checkpoints saved; the sweep resumes it).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from dtql.config import RunConfig, from_dict, to_dict


def group_spec(runs: list[Any], stacked: bool) -> dict:
    """The JSON-able spec of a group of ``PlannedRun``s."""
    return {
        "stacked": stacked,
        "runs": [
            {
                "config": to_dict(run.cfg),
                "resume_dir": str(run.run_dir) if run.status == "resume" else None,
            }
            for run in runs
        ],
    }


def train_group_spec(spec: dict) -> list[dict]:
    """Train the group a spec describes; each run's result (also in its result.json)."""
    from dtql.run.loop import RunSpec, run_group

    runs = [
        RunSpec(None, r["resume_dir"])
        if r["resume_dir"] is not None
        else RunSpec(from_dict(RunConfig, r["config"]))
        for r in spec["runs"]
    ]
    return run_group(runs, progress=False, stacked=spec["stacked"])


def main(argv: list[str]) -> int:
    from dtql.run.setup import RunError
    from dtql.run.stopping import RunInterrupted

    if len(argv) != 1:
        print("usage: python -m dtql.sweeps SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[0]).read_text())
    if spec.get("cpu_core") is not None:
        # Before JAX starts its CPU backend, which sizes its thread pool by the usable cores.
        os.sched_setaffinity(0, {spec["cpu_core"]})
    try:
        results = train_group_spec(spec)
    except RunInterrupted as stopped:
        print(f"worker: {stopped}", file=sys.stderr)
        return 128 + stopped.signum
    except (RunError, ValueError) as err:
        print(f"worker: error: {err}", file=sys.stderr)
        return 2
    return 0 if all(r.get("status") == "finished" for r in results) else 1
