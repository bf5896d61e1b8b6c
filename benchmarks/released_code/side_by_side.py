"""dtql's runs beside the released code's on the same task, step for step (issue 24).

    python benchmarks/released_code/side_by_side.py \
      --ours GRID/halfcheetah-medium-v2/dtql/seed_0 GRID/halfcheetah-medium-v2/dtql/seed_1 \
      --released RELEASED_OUT/halfcheetah-medium-v2/*seed=0*/progress.csv [--figure FIG.png]

--ours takes dtql run folders; --released takes the progress.csv the released code's logger
writes into each of its run folders (OUT/<task>/<run name>/, finished or still going; the
variant.json beside it gives the seed and pretraining epochs). Both sides are put on main-phase
steps (dtql's logged step minus its pretraining steps), so a row compares the two after the same
number of updates. Prints a markdown table of the normalized scores, then each side's mean of
each run's last three evaluations (the field's reading, as `dtql report` gives it) up to the last
step every run of both sides has reached, so that neither side is read later in training than
the other, and the trust-region loss (Eq. 4) each logged at those steps.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dtql.logger import CSV_NAME, read_metrics_csv
from dtql.reports.runs import LAST_EVALS, mean_of_last, read_run
from dtql.reports.tables import format_cell

Curve = dict[int, float]  # main-phase step -> value


@dataclass(frozen=True)
class Run:
    label: str
    pretrain_steps: int
    score: Curve  # normalized score (x 100)
    tr_loss: Curve  # the trust-region loss (Eq. 4) the policy saw at that step


def released_run(path: Path) -> Run:
    """One released run from the progress.csv its logger writes (finished or still going)."""
    if path.name != "progress.csv":
        raise ValueError(f"{path}: expected the released logger's progress.csv")
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    columns = ("Trained Epochs", "Average Episodic N-Reward", "Distill Loss")
    if not rows or any(column not in rows[0] for column in columns):
        raise ValueError(f"{path}: expected the released logger's progress.csv (columns {columns})")
    # As run_released.py reads it: 'Trained Epochs' k is logged after update (k + 1) * 1000.
    steps = [(int(float(row["Trained Epochs"])) + 1) * 1000 for row in rows]
    # The logger writes the run's options beside it (variant.json): its seed and pretraining.
    variant = json.loads((path.parent / "variant.json").read_text())
    return Run(
        label=f"released seed {variant['seed']}",
        pretrain_steps=int(variant["pretrain_epochs"]) * int(variant["num_steps_per_epoch"]),
        score={s: 100 * float(row[columns[1]]) for s, row in zip(steps, rows, strict=True)},
        tr_loss={s: float(row[columns[2]]) for s, row in zip(steps, rows, strict=True)},
    )


def dtql_run(run_dir: Path) -> Run:
    record = read_run(run_dir)
    tr_loss = {
        int(row["step"]): row["policy/tr_loss"]
        for row in read_metrics_csv(run_dir / CSV_NAME)
        if row.get("policy/tr_loss") is not None
    }
    to_main = record.pretrain_steps
    note = "" if record.status == "finished" else f" ({record.status})"
    return Run(
        label=f"dtql seed {record.seed}{note}",
        pretrain_steps=to_main,
        score={step - to_main: score for step, score in record.curve if step > to_main},
        tr_loss={step - to_main: loss for step, loss in tr_loss.items()},
    )


def _table(runs: list[Run], curve_of: Callable[[Run], Curve], digits: int) -> list[str]:
    """Markdown rows of one quantity at every main-phase step some run evaluated."""
    steps = sorted({step for run in runs for step in run.score})
    lines = [
        "| main-phase step | " + " | ".join(run.label for run in runs) + " |",
        "| ---: |" + " ---: |" * len(runs),
    ]
    curves = [curve_of(run) for run in runs]
    for step in steps:
        cells = [f"{curve[step]:.{digits}f}" if step in curve else "" for curve in curves]
        lines.append(f"| {step:,} | " + " | ".join(cells) + " |")
    return lines


def side_by_side(ours: list[Run], released: list[Run]) -> list[str]:
    runs = ours + released
    lines = ["Normalized score (10 episodes):", "", *_table(runs, lambda run: run.score, 1)]
    common = min(max(run.score) for run in runs)
    lines += [
        "",
        f"Mean of each run's last {LAST_EVALS} evaluations up to main-phase step "
        f"{common:,} (the last step every run has reached), mean ± s.e. over runs:",
        "",
    ]
    for side, group in (("dtql", ours), ("released code", released)):
        lasts = [
            mean_of_last(sorted((s, v) for s, v in run.score.items() if s <= common), LAST_EVALS)
            for run in group
        ]
        lines.append(
            f"- {side}: {format_cell(lasts)}; per run "
            + ", ".join(f"{value:.1f}" for value in lasts)
        )
    lines += [
        "",
        "Trust-region loss (Eq. 4) on one batch at the evaluation steps (dtql: policy/tr_loss; "
        "released: 'Distill Loss'):",
        "",
        *_table(runs, lambda run: run.tr_loss, 3),
    ]
    pretrain = {run.pretrain_steps for run in runs}
    if len(pretrain) > 1:
        lines += ["", f"Note: the runs pretrained for different step counts: {sorted(pretrain)}"]
    return lines


def draw(ours: list[Run], released: list[Run], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    for group, colour in ((ours, "tab:blue"), (released, "tab:orange")):
        for run in group:
            steps = sorted(run.score)
            scores = [run.score[s] for s in steps]
            ax.plot(steps, scores, marker="o", ms=3, color=colour, label=run.label, alpha=0.85)
    ax.set(xlabel="main-phase step", ylabel="normalized score", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ours", nargs="+", type=Path, required=True, help="dtql run folders")
    parser.add_argument(
        "--released",
        nargs="+",
        type=Path,
        required=True,
        help="the progress.csv of each released run (finished or still going)",
    )
    parser.add_argument("--figure", type=Path, help="where to draw the curves (.png)")
    args = parser.parse_args()
    try:
        ours = [dtql_run(path) for path in args.ours]
        released = [released_run(path) for path in args.released]
    except (OSError, ValueError, KeyError) as error:
        print(f"side_by_side: {error}", file=sys.stderr)
        return 2
    empty = [run.label for run in ours + released if not run.score]
    if empty:
        print(f"side_by_side: no main-phase evaluation yet in {', '.join(empty)}", file=sys.stderr)
        return 2
    print("\n".join(side_by_side(ours, released)))
    if args.figure:
        tasks = {read_run(path).task for path in args.ours}
        draw(ours, released, args.figure, " / ".join(sorted(tasks)) + ": dtql and released code")
        print(f"\nfigure: {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
