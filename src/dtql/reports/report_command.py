"""`dtql report DIR`: its flags and what it prints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tyro

from dtql.reports import copy_summaries, write_report


@dataclass(frozen=True)
class ReportArgs:
    """Write a results page from the run folders under DIR: final scores (mean ± standard
    error over seeds, per task and algorithm, domain averages), the protocol, the paper's
    numbers on matching tasks, rliable's IQM and performance profile, and learning curves."""

    root: tyro.conf.Positional[str]
    """A folder of runs (a sweep's --out, or any folder holding run folders)."""
    out: str | None = None
    """The markdown file; default DIR/report.md."""
    figures: str | None = None
    """Folder of the PNG figures; default a 'figures' folder beside the markdown."""
    preamble: str = ""
    """Text put under the title (e.g. the command that made the runs)."""
    summaries: str | None = None
    """First copy what the report reads (each run's config.json, result.json, metrics.csv;
    sessions.jsonl; the datasets' fingerprints in datasets.json) to this folder, to publish:
    `dtql report SUMMARIES` regenerates the same page without checkpoints or datasets. Copies
    of runs DIR no longer has are removed from it."""


def run_report(args: ReportArgs) -> int:
    if args.summaries is not None:
        copied = copy_summaries(Path(args.root), Path(args.summaries))
        print(f"copied the summaries of {copied} runs to {args.summaries}")
    out = Path(args.out) if args.out else Path(args.root) / "report.md"
    figures = Path(args.figures) if args.figures else out.parent / "figures"
    print(write_report(Path(args.root), out, figures, args.preamble))
    print(f"written: {out} (figures in {figures})")
    return 0
