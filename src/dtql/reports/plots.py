"""The report's statistics and figures: rliable's interquartile mean with stratified-bootstrap
confidence intervals and performance profiles, and learning curves (mean and standard-error band
over seeds, one line per algorithm) per task."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dtql.reports.runs import ReportError, RunRecord
from dtql.reports.tables import by_cell, final_scores, ordered_algos

BOOTSTRAP_REPS = 2000
BOOTSTRAP_SEED = 0  # rliable draws from numpy's global generator; seeded so a report regenerates


def score_matrices(records: list[RunRecord]) -> tuple[dict[str, np.ndarray], list[str]]:
    """algo -> [runs, tasks] final scores on the tasks every algorithm finished at least one run
    of; each algorithm keeps as many runs per task as its least-run task has (lowest seeds)."""
    algos, cells = ordered_algos(records), by_cell(records)
    tasks = sorted(
        t
        for t in {r.task for r in records}
        if all(final_scores(cells.get((t, a), [])) for a in algos)
    )
    matrices = {}
    for algo in algos:
        if not tasks:
            break
        per_task = [final_scores(sorted(cells[(t, algo)], key=lambda r: r.seed)) for t in tasks]
        n = min(len(scores) for scores in per_task)
        matrices[algo] = np.array([scores[:n] for scores in per_task]).T
    return matrices, tasks


def aggregate_lines(records: list[RunRecord], figure_dir: Path, link_prefix: str) -> list[str]:
    """IQM with 95% stratified-bootstrap CIs (rliable), and the performance-profile figure."""
    try:
        from rliable import library as rly
        from rliable import metrics, plot_utils
    except ImportError as err:
        raise ReportError(f"dtql report needs rliable: pip install 'dtql[report]' ({err})") from err
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrices, tasks = score_matrices(records)
    if not matrices:
        return ["No task has a finished run of every algorithm; no aggregate."]
    saved = np.random.get_state()
    np.random.seed(BOOTSTRAP_SEED)
    try:
        iqm = lambda scores: np.array([metrics.aggregate_iqm(scores)])  # noqa: E731
        points, intervals = rly.get_interval_estimates(matrices, iqm, reps=BOOTSTRAP_REPS)
        top = max(float(m.max()) for m in matrices.values())
        taus = np.linspace(0.0, max(top, 1.0) * 1.05, 101)
        profiles, profile_cis = rly.create_performance_profile(matrices, taus, reps=BOOTSTRAP_REPS)
    finally:
        np.random.set_state(saved)
    lines = [
        f"Over {len(tasks)} task(s) ({', '.join(tasks)}); runs per task: "
        + ", ".join(f"{a} {m.shape[0]}" for a, m in matrices.items())
        + f". {BOOTSTRAP_REPS} stratified-bootstrap replicates (numpy seed {BOOTSTRAP_SEED}).",
        "",
        "| algo | IQM | 95% CI |",
        "| --- | --- | --- |",
    ]
    for algo in matrices:
        low, high = intervals[algo][:, 0]
        lines.append(f"| {algo} | {points[algo][0]:.1f} | [{low:.1f}, {high:.1f}] |")
    fig, ax = plt.subplots(figsize=(6, 4))
    plot_utils.plot_performance_profiles(
        profiles, taus, performance_profile_cis=profile_cis, ax=ax, xlabel="normalized score (τ)"
    )
    ax.legend(loc="upper right")  # the profile lines carry the algorithm names
    fig.tight_layout()
    path = figure_dir / "performance_profile.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [*lines, "", f"![performance profile]({link_prefix}{path.name})"]


def curve_figures(records: list[RunRecord], figure_dir: Path) -> list[Path]:
    """One PNG per task: normalized score against step and, beside it, the critics' mean Q
    (algorithms with critics), each the mean +- standard error over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    cells = by_cell(records)
    for task in sorted({r.task for r in records}):
        fig, (score_ax, q_ax) = plt.subplots(1, 2, figsize=(11, 4))
        for algo in ordered_algos(records):
            # A failed run's last point is its non-finite evidence: not part of a mean.
            runs = [r for r in cells.get((task, algo), []) if r.status != "failed"]
            _band(score_ax, [dict(r.curve) for r in runs if r.curve], algo, marker="o")
            _band(q_ax, [dict(r.q_curve) for r in runs if r.q_curve], algo, marker=None)
        score_ax.set(xlabel="training step", ylabel="normalized score", title=task)
        q_ax.set(xlabel="training step", ylabel="critics' mean Q (training batch)", title=task)
        for ax in (score_ax, q_ax):
            if ax.lines:
                ax.legend()
        fig.tight_layout()
        path = figure_dir / f"curves-{task}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def _band(ax, curves: list[dict[int, float]], algo: str, marker: str | None) -> None:
    """The mean of the curves over the steps they share, with a standard-error band."""
    if not curves:
        return
    steps = sorted(set.intersection(*(set(c) for c in curves)))
    values = np.array([[c[s] for s in steps] for c in curves])
    mean = values.mean(axis=0)
    stderr = values.std(axis=0, ddof=1) / np.sqrt(len(curves)) if len(curves) > 1 else 0
    ax.plot(steps, mean, marker=marker, label=f"{algo} (n={len(curves)})")
    ax.fill_between(steps, mean - stderr, mean + stderr, alpha=0.2)
