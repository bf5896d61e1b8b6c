"""The metric logs of a training run.

``RunLogger`` writes every logged row three ways into the run folder:

* ``metrics.csv``: one header row (``step`` then every metric key seen so far, in first-seen
  order) and one row per ``log`` call, with empty cells for keys that call did not carry;
* ``metrics.jsonl``: one JSON object per line, ``{"step": ..., <key>: <value>, ...}``;
* ``tb/``: TensorBoard event files (tensorboardX), one scalar curve per key.

Files are flushed after every row, so a killed run keeps what it logged. A run resumed from
the checkpoint at step S drops the rows logged after S (they will be logged again).
"""

from __future__ import annotations

import csv
import io
import json
import operator
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from tensorboardX import SummaryWriter

from dtql.files import write_bytes_atomic

CSV_NAME = "metrics.csv"
# One line per `dtql sweep` on a grid, in the grid's folder (written by dtql.sweeps, read by
# dtql.reports): the wall time each part of a grid took.
SWEEP_SESSIONS_NAME = "sessions.jsonl"
JSONL_NAME = "metrics.jsonl"
TENSORBOARD_DIR = "tb"


# --- Reading -----------------------------------------------------------------------------------


def _complete_lines(path: Path) -> list[str]:
    """The lines of ``path`` that end with a newline.

    A run killed in the middle of a write can leave a last line without its newline; that line
    may be cut anywhere (say ``0.12`` of ``0.125``), so it is dropped rather than misread.
    """
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def read_metrics_csv(path: str | Path) -> list[dict]:
    """The rows of a ``metrics.csv`` as dicts: ``step`` an int, other keys floats or None.

    Every row has every header key; None marks an empty cell (the row did not log that key).
    """
    header, rows = _read_csv(Path(path))
    records = []
    for step, *cells in rows:
        record: dict = {"step": int(step)}
        for key, cell in zip(header[1:], cells, strict=True):
            record[key] = float(cell) if cell else None
        records.append(record)
    return records


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a metrics CSV, each row padded to the header's width."""
    lines = _complete_lines(path)
    if not lines:
        return ["step"], []
    header, *rows = csv.reader(lines)
    if not header or header[0] != "step":
        raise ValueError(f"{path}: first column must be 'step', header is {header}")
    for row in rows:
        if len(row) > len(header):
            raise ValueError(f"{path}: row {row} has more cells than the header {header}")
    return header, [row + [""] * (len(header) - len(row)) for row in rows]


# --- The logger --------------------------------------------------------------------------------


class RunLogger:
    """Append metric rows to ``run_dir/metrics.csv``, ``metrics.jsonl`` and ``tb/``.

    A fresh logger refuses a folder that already has metric files, so two runs never mix their
    rows; pass ``resume_from_step`` (the step of the checkpoint a stopped run continues from) to
    keep the rows with ``step <= resume_from_step`` and drop the later ones.
    """

    def __init__(self, run_dir: str | Path, *, resume_from_step: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._csv_path = self.run_dir / CSV_NAME
        self._jsonl_path = self.run_dir / JSONL_NAME
        # Metric keys in CSV column order, and every row's cells (for rewrites with new columns).
        self._columns: list[str] = []
        self._rows: list[dict[str, str]] = []
        self._csv_file: TextIO | None = None
        self._closed = False

        if resume_from_step is None:
            for path in (self._csv_path, self._jsonl_path):
                if path.exists():
                    raise FileExistsError(
                        f"{path} exists: pass resume_from_step to continue that run, "
                        "or log to a new run folder"
                    )
        else:
            self._truncate_for_resume(resume_from_step)

        # Start the CSV with its header (and, on resume, the kept rows). Later it is rewritten
        # whole whenever a new key widens the header, and appended to otherwise.
        self._rewrite_csv()
        self._jsonl_file = open(self._jsonl_path, "a", encoding="utf-8")
        # purge_step makes TensorBoard discard the events a previous writer logged at steps
        # >= purge_step, so a resumed run shows one clean curve.
        purge_step = None if resume_from_step is None else resume_from_step + 1
        self._tb = SummaryWriter(
            logdir=str(self.run_dir / TENSORBOARD_DIR),
            purge_step=purge_step,
            # Event files are named by the second they were opened in and opened with "wb". A
            # nanosecond suffix keeps a resume in the same second from erasing the earlier file,
            # and keeps the name order (which TensorBoard reads files in) the order of writing.
            filename_suffix=f".{time.time_ns()}",
        )

    def _truncate_for_resume(self, resume_from_step: int) -> None:
        """Keep only rows with step <= resume_from_step in the CSV (in memory) and the JSONL."""
        if self._csv_path.exists():
            header, rows = _read_csv(self._csv_path)
            kept = [row for row in rows if int(row[0]) <= resume_from_step]
            # The header stays the union of the keys the kept rows carry, in the old order.
            self._columns = [
                key for i, key in enumerate(header[1:], 1) if any(row[i] for row in kept)
            ]
            self._rows = [
                {key: cell for key, cell in zip(header, row, strict=True) if cell} for row in kept
            ]
        kept_lines = []
        if self._jsonl_path.exists():
            kept_lines = [
                line
                for line in _complete_lines(self._jsonl_path)
                if json.loads(line)["step"] <= resume_from_step
            ]
        write_bytes_atomic(self._jsonl_path, "".join(f"{line}\n" for line in kept_lines).encode())

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Write one row: ``step`` and the scalar ``metrics`` (keys like ``critic/q_loss``)."""
        if self._closed:
            raise ValueError("RunLogger.log called after close()")
        step = operator.index(step)  # accepts NumPy/JAX integers, refuses floats
        values = {_check_key(key): _to_float(key, value) for key, value in metrics.items()}

        # str(float) is the shortest text that reads back to the same float; NaN becomes "nan".
        self._rows.append({"step": str(step), **{key: str(v) for key, v in values.items()}})
        new_keys = [key for key in values if key not in self._columns]
        if new_keys:
            self._columns.extend(new_keys)
            self._rewrite_csv()
        else:
            self._csv_writer.writerow(self._cells(self._rows[-1]))
            self._csv_file.flush()

        # json writes NaN / Infinity as the bare tokens NaN / Infinity (Python and pandas read
        # them; strict JSON parsers do not). null would hide a diverged loss.
        self._jsonl_file.write(json.dumps({"step": step, **values}) + "\n")
        self._jsonl_file.flush()

        for key, value in values.items():
            self._tb.add_scalar(key, value, global_step=step)
        self._tb.flush()

    def _cells(self, row: dict[str, str]) -> list[str]:
        return [row["step"], *(row.get(key, "") for key in self._columns)]

    def _rewrite_csv(self) -> None:
        """Write the whole CSV with the current header atomically and reopen it for appending."""
        if self._csv_file is not None:
            self._csv_file.close()
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["step", *self._columns])
        writer.writerows(self._cells(row) for row in self._rows)
        write_bytes_atomic(self._csv_path, buffer.getvalue().encode("utf-8"))
        self._csv_file = open(self._csv_path, "a", newline="", encoding="utf-8")
        self._csv_writer = csv.writer(self._csv_file, lineterminator="\n")

    def close(self) -> None:
        """Flush and close all files; later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        self._csv_file.close()
        self._jsonl_file.close()
        self._tb.close()

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError(f"metric keys must be non-empty strings, got {key!r}")
    if key == "step":
        raise ValueError("'step' is the step column; it cannot be a metric key")
    if "\n" in key or "\r" in key:
        # Line breaks would split a row across lines, which the readers here do not handle.
        raise ValueError(f"metric key {key!r} contains a line break")
    return key


def _to_float(key: str, value: Any) -> float:
    if np.ndim(value) != 0:
        raise TypeError(f"metric {key!r} must be a scalar, got shape {np.shape(value)}")
    return float(value)  # Python/NumPy scalars and 0-d NumPy/JAX arrays
