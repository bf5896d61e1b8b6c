"""Grids of runs: ``dtql sweep`` (tasks x algos x seeds, with overrides) and ``dtql train --seeds``.

``grid`` plans the runs (one folder each, finished ones skipped, stopped ones resumed) and groups
those that can share one vmapped program; ``execute`` runs the groups: in this process (stacked,
on an accelerator), as one pinned process per CPU core, or on a Ray cluster; ``worker`` is what
each process or Ray task runs.
"""

from dtql.sweeps.execute import ExecutionReport, run_plan
from dtql.sweeps.grid import PlannedRun, SweepError, parse_seeds, plan_grid, plan_runs

__all__ = [
    "ExecutionReport",
    "PlannedRun",
    "SweepError",
    "parse_seeds",
    "plan_grid",
    "plan_runs",
    "run_plan",
]
