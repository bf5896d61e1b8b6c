"""dtql's runs beside the released code's on the same task, step for step (issue 24).

    python benchmarks/released_code/side_by_side.py \
      --ours GRID/halfcheetah-medium-v2/dtql/seed_0 GRID/halfcheetah-medium-v2/dtql/seed_1 \
      --released RELEASED_OUT/halfcheetah-medium-v2/seed_0.json [--figure side_by_side.png]

--ours takes dtql run folders; --released takes the seed_<k>.json files `run_released.py` writes
at the end of a run, or the released logger's progress.csv of a run still going. Both sides are
put on main-phase steps (dtql's logged step minus its pretraining steps), so a row compares the
two after the same number of updates. Prints a markdown table of the normalized scores, then each
side's mean of each run's last three evaluations (the field's reading, as `dtql report` gives it)
up to the last step every run of both sides has reached, so that neither side is read later in
training than the other.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from dtql.reports.runs import LAST_EVALS, mean_of_last, read_run
from dtql.reports.tables import format_cell

Curve = dict[int, float]  # main-phase step -> normalized score (x 100)


def released_curve(path: Path) -> tuple[str, int, Curve]:
    """(label, pretraining steps, curve) of one released run: its seed json or progress.csv."""
    if path.suffix == ".json":
        result = json.loads(path.read_text())
        curve = {int(step): float(score) for step, score in result["evaluations"].items()}
        return f"released seed {result['seed']}", int(result["pretrain_steps"]), curve
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    if not rows or "Average Episodic N-Reward" not in rows[0]:
        raise ValueError(
            f"{path}: expected the released logger's progress.csv "
            "(column 'Average Episodic N-Reward')"
        )
    # As run_released.py reads it: 'Trained Epochs' k is logged after update (k + 1) * 1000.
    score = "Average Episodic N-Reward"
    curve = {
        (int(float(row["Trained Epochs"])) + 1) * 1000: 100 * float(row[score]) for row in rows
    }
    seed = path.parent.name.split("seed=")[-1].split("|")[0]  # the released run folder's name
    return f"released seed {seed} (running)", -1, curve


def ours_curve(run_dir: Path) -> tuple[str, int, Curve]:
    record = read_run(run_dir)
    curve = {
        step - record.pretrain_steps: score
        for step, score in record.curve
        if step > record.pretrain_steps
    }
    note = "" if record.status == "finished" else f" ({record.status})"
    return f"dtql seed {record.seed}{note}", record.pretrain_steps, curve


def side_by_side(
    ours: list[tuple[str, int, Curve]], released: list[tuple[str, int, Curve]]
) -> list[str]:
    runs = ours + released
    steps = sorted({step for _, _, curve in runs for step in curve})
    lines = [
        "| main-phase step | " + " | ".join(label for label, _, _ in runs) + " |",
        "| ---: |" + " ---: |" * len(runs),
    ]
    for step in steps:
        cells = [f"{curve[step]:.1f}" if step in curve else "" for _, _, curve in runs]
        lines.append(f"| {step:,} | " + " | ".join(cells) + " |")
    common = min(max(curve) for _, _, curve in runs)
    lines += [
        "",
        f"Mean of each run's last {LAST_EVALS} evaluations up to main-phase step "
        f"{common:,} (the last step every run has reached), mean ± s.e. over runs:",
        "",
    ]
    for side, group in (("dtql", ours), ("released code", released)):
        lasts = [
            mean_of_last(sorted((s, v) for s, v in curve.items() if s <= common), LAST_EVALS)
            for _, _, curve in group
        ]
        lines.append(
            f"- {side}: {format_cell(lasts)}; per run "
            + ", ".join(f"{value:.1f}" for value in lasts)
        )
    pretrain = {steps for _, steps, _ in runs if steps >= 0}
    if len(pretrain) > 1:
        lines += ["", f"Note: the runs pretrained for different step counts: {sorted(pretrain)}"]
    return lines


def draw(
    ours: list[tuple[str, int, Curve]],
    released: list[tuple[str, int, Curve]],
    path: Path,
    title: str,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    for group, colour in ((ours, "tab:blue"), (released, "tab:orange")):
        for label, _, curve in group:
            steps = sorted(curve)
            ax.plot(
                steps,
                [curve[s] for s in steps],
                marker="o",
                ms=3,
                color=colour,
                label=label,
                alpha=0.85,
            )
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
        help="run_released.py's seed_<k>.json, or a running run's progress.csv",
    )
    parser.add_argument("--figure", type=Path, help="where to draw the curves (.png)")
    args = parser.parse_args()
    try:
        ours = [ours_curve(path) for path in args.ours]
        released = [released_curve(path) for path in args.released]
    except (OSError, ValueError, KeyError) as error:
        print(f"side_by_side: {error}", file=sys.stderr)
        return 2
    empty = [label for label, _, curve in ours + released if not curve]
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
