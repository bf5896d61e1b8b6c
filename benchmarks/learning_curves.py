"""Learning curves of several `dtql train` runs, side by side, with a few runs at a time.

    python benchmarks/learning_curves.py --out DIR [--jobs 2] [--common "FLAGS"] NAME=FLAGS ...

Each NAME=FLAGS is one run: `dtql train --out DIR/NAME FLAGS COMMON` (for example
``dtql-a20="--algo dtql --agent.alpha 20"``). Up to ``--jobs`` runs go at once (on a GPU they
share it; on a CPU give each its own cores with taskset, or use --jobs 1). At the end the table of
normalized scores at every evaluation is printed from each run's metrics.jsonl, with its wall
time and the device and thread count it reported, and written to DIR/curves.md.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dtql.logger import read_metrics_csv


def run_one(name: str, flags: str, common: str, out: Path) -> tuple[str, float, int]:
    run_dir = out / name
    argv = [sys.executable, "-m", "dtql.cli", "train", "--out", str(run_dir)]
    argv += shlex.split(flags) + shlex.split(common)
    started = time.monotonic()
    with open(out / f"{name}.log", "w") as log:
        rc = subprocess.call(argv, stdout=log, stderr=subprocess.STDOUT)
    return name, time.monotonic() - started, rc


def evaluations(run_dir: Path) -> dict[int, float]:
    """Normalized score by step, from the run's metrics.csv."""
    rows = read_metrics_csv(run_dir / "metrics.csv")
    key = "eval/normalized_score_mean"
    return {row["step"]: row[key] for row in rows if row.get(key) is not None}


def header_line(log: Path) -> str:
    """The run's own first line (task, dataset, device, threads)."""
    for line in log.read_text().splitlines():
        if line.startswith("run "):
            return line
    return "(no header: the run failed, see its log)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--common", default="", help="flags added to every run")
    parser.add_argument("runs", nargs="+", help="NAME=FLAGS")
    args = parser.parse_args()
    specs = [spec.partition("=")[::2] for spec in args.runs]
    if any(not name for name, _ in specs) or len({n for n, _ in specs}) != len(specs):
        parser.error("each run is NAME=FLAGS with a distinct, non-empty NAME")
    args.out.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        done = list(pool.map(lambda s: run_one(*s, args.common, args.out), specs))

    curves = {name: evaluations(args.out / name) if rc == 0 else {} for name, _, rc in done}
    steps = sorted({step for curve in curves.values() for step in curve})
    lines = [
        f"{len(specs)} runs, {args.jobs} at a time; common flags: {args.common!r}",
        *(f"- {name}: {header_line(args.out / f'{name}.log')}" for name, _, _ in done),
        "",
        "| run | flags | " + " | ".join(f"{s / 1000:g}k" for s in steps) + " | wall s | rc |",
        "|---|---|" + "---|" * len(steps) + "---|---|",
    ]
    for (name, flags), (_, wall, rc) in zip(specs, done, strict=True):
        cells = [f"{curves[name][s]:.1f}" if s in curves[name] else "-" for s in steps]
        lines.append(f"| {name} | `{flags}` | " + " | ".join(cells) + f" | {wall:.0f} | {rc} |")
    table = "\n".join(lines)
    print(table)
    (args.out / "curves.md").write_text(table + "\n")
    return max(rc for _, _, rc in done)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
