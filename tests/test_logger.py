"""Metric logs: one widening CSV header, JSONL rows, TensorBoard files, clean resumes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dtql.files import write_json_atomic
from dtql.logger import RunLogger, read_metrics_csv


def csv_lines(run_dir) -> list[str]:
    return (run_dir / "metrics.csv").read_text().splitlines()


def jsonl_rows(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_header_is_union_of_keys_with_empty_cells(tmp_path):
    with RunLogger(tmp_path) as logger:
        logger.log(1, {"critic/q_loss": 0.5, "actor/loss": np.float32(2.0)})
        logger.log(2, {"critic/q_loss": 0.25, "eval/normalized_score_mean": 71.5})
        logger.log(3, {"actor/loss": float("nan")})
    assert csv_lines(tmp_path) == [
        "step,critic/q_loss,actor/loss,eval/normalized_score_mean",
        "1,0.5,2.0,",
        "2,0.25,,71.5",
        "3,,nan,",
    ]


def test_rows_are_on_disk_before_close(tmp_path):
    # A killed run keeps its rows: each log call flushes.
    logger = RunLogger(tmp_path)
    logger.log(10, {"a": 1.0})
    logger.log(20, {"a": 2.0})
    assert csv_lines(tmp_path) == ["step,a", "10,1.0", "20,2.0"]
    assert [row["step"] for row in jsonl_rows(tmp_path)] == [10, 20]
    logger.close()
    logger.close()  # closing twice is harmless
    with pytest.raises(ValueError, match="after close"):
        logger.log(30, {"a": 3.0})


def test_jsonl_has_one_object_per_row(tmp_path):
    with RunLogger(tmp_path) as logger:
        logger.log(np.int64(1), {"critic/q_loss": np.array(0.5)})
        logger.log(2, {"eval/normalized_score_mean": 80})
    assert jsonl_rows(tmp_path) == [
        {"step": 1, "critic/q_loss": 0.5},
        {"step": 2, "eval/normalized_score_mean": 80.0},
    ]


def test_read_metrics_csv_round_trip(tmp_path):
    with RunLogger(tmp_path) as logger:
        logger.log(1, {"a": 0.1, "b": -3e-7})
        logger.log(2, {"a": float("nan")})
        logger.log(3, {"b": float("inf")})
    rows = read_metrics_csv(tmp_path / "metrics.csv")
    assert [row["step"] for row in rows] == [1, 2, 3]
    assert all(isinstance(row["step"], int) for row in rows)
    assert rows[0] == {"step": 1, "a": 0.1, "b": -3e-7}  # exact: floats survive their text form
    assert math.isnan(rows[1]["a"]) and rows[1]["b"] is None
    assert rows[2] == {"step": 3, "a": None, "b": float("inf")}


def test_resume_drops_rows_after_the_checkpoint(tmp_path):
    with RunLogger(tmp_path) as logger:
        for step in range(1, 6):
            logger.log(step * 100, {"loss": float(step)})
        logger.log(400, {"eval/score": 50.0})  # the only row with this key is dropped below
    # A run killed mid-write leaves a last line without its newline.
    with open(tmp_path / "metrics.csv", "a") as file:
        file.write("600,6.")
    with open(tmp_path / "metrics.jsonl", "a") as file:
        file.write('{"step": 600, "lo')

    with RunLogger(tmp_path, resume_from_step=300) as logger:
        assert csv_lines(tmp_path) == ["step,loss", "100,1.0", "200,2.0", "300,3.0"]
        assert [row["step"] for row in jsonl_rows(tmp_path)] == [100, 200, 300]
        logger.log(400, {"loss": 4.5})
        logger.log(400, {"eval/score": 55.0})

    assert csv_lines(tmp_path) == [
        "step,loss,eval/score",
        "100,1.0,",
        "200,2.0,",
        "300,3.0,",
        "400,4.5,",
        "400,,55.0",
    ]
    assert [row["step"] for row in jsonl_rows(tmp_path)] == [100, 200, 300, 400, 400]


def test_resume_without_earlier_logs(tmp_path):
    # A run stopped before its first log call has no metric files yet.
    with RunLogger(tmp_path, resume_from_step=0) as logger:
        logger.log(1, {"a": 1.0})
    assert csv_lines(tmp_path) == ["step,a", "1,1.0"]


def test_fresh_logger_refuses_existing_logs(tmp_path):
    with RunLogger(tmp_path) as logger:
        logger.log(1, {"a": 1.0})
    with pytest.raises(FileExistsError, match="resume_from_step"):
        RunLogger(tmp_path)
    assert csv_lines(tmp_path) == ["step,a", "1,1.0"]


def test_tensorboard_event_files(tmp_path):
    with RunLogger(tmp_path) as logger:
        logger.log(1, {"critic/q_loss": 0.5})
    with RunLogger(tmp_path, resume_from_step=1) as logger:
        logger.log(2, {"critic/q_loss": 0.4})
    event_files = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert len(event_files) == 2  # one per writer; the second purges steps >= 2
    assert all(path.stat().st_size > 0 for path in event_files)


@pytest.mark.parametrize(
    "key, error", [("step", ValueError), ("", TypeError), ("a\nb", ValueError)]
)
def test_bad_metric_keys(tmp_path, key, error):
    with RunLogger(tmp_path) as logger, pytest.raises(error):
        logger.log(1, {key: 1.0})


def test_non_scalar_metric_is_refused(tmp_path):
    with RunLogger(tmp_path) as logger, pytest.raises(TypeError, match="scalar"):
        logger.log(1, {"a": np.ones(2)})


def test_write_json_atomic(tmp_path):
    path = tmp_path / "run" / "config.json"
    write_json_atomic(path, {"seed": 0, "algo": "dtql", "agent": {"alpha": 1.0}})
    text = path.read_text()
    assert text.startswith('{\n  "seed": 0,\n  "algo": "dtql"')  # indent 2, order kept
    assert json.loads(text) == {"seed": 0, "algo": "dtql", "agent": {"alpha": 1.0}}
    write_json_atomic(path, [1, 2])
    assert json.loads(path.read_text()) == [1, 2]
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]
