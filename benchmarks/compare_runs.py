"""Compare two folders of `benchmarks/fixed_seed_runs.sh`: every logged metric, step for step.

    python benchmarks/compare_runs.py BEFORE AFTER

Timing keys (perf/...) and the toy's wall time are left out; keys only one side logs are listed.
Exit code 0 when every shared number is identical, 1 otherwise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RUNS = ("dtql", "kl", "iql", "bc", "dtql-decay")
TOY = ("toy-tr.json", "toy-kl.json")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def compare_run(before: Path, after: Path) -> bool:
    old, new = read_jsonl(before / "metrics.jsonl"), read_jsonl(after / "metrics.jsonl")
    diffs = [
        (a["step"], key, value, b.get(key))
        for a, b in zip(old, new, strict=False)
        for key, value in a.items()
        if not key.startswith("perf/") and b.get(key) != value
    ]
    only_new = sorted({k for r in new for k in r} - {k for r in old for k in r})
    only_old = sorted({k for r in old for k in r} - {k for r in new for k in r})
    same = len(old) == len(new) and not diffs
    print(
        f"{before.name}: {len(old)} vs {len(new)} rows, identical={same}; keys only after: "
        f"{only_new}; only before: {only_old}; first differences: {diffs[:3]}"
    )
    return same


def main() -> int:
    before, after = Path(sys.argv[1]), Path(sys.argv[2])
    ok = all([compare_run(before / run, after / run) for run in RUNS])
    for name in TOY:
        old, new = (json.loads((d / name).read_text()) for d in (before, after))
        old.pop("seconds"), new.pop("seconds")
        print(f"{name}: {'identical' if old == new else f'DIFFERENT {old} vs {new}'}")
        ok &= old == new
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
