"""dtql.toylab.suite: argument errors end in one line and write nothing; a short trust-region
run through the entry point (slow) stays on the data and writes its figure and metrics."""

from __future__ import annotations

import dataclasses
import json

import pytest

from dtql.toylab import ToyArgs, run_toy
from dtql.toylab.metrics import METRIC_KEYS


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ToyArgs(scenario="25g-middle"),
            "unknown scenario '25g-middle'; expected one of "
            "25g-far, 25g-hard, 25g-near, swiss-far, swiss-near",
        ),
        (ToyArgs(scenario="25g-far", reg="kl", policy="gaussian"), "needs the implicit"),
        (ToyArgs(tr_steps=0), "--tr-steps must be at least 1"),
    ],
)
def test_bad_arguments_fail_with_one_line(args, message, capsys, tmp_path):
    assert run_toy(dataclasses.replace(args, out=str(tmp_path))) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_trust_region_samples_stay_on_the_data_manifold(capsys, tmp_path):
    """A short DTQL run through the entry point ``run_toy``: BC model and critics pretrained
    briefly, then the far reward's Q pulls the implicit policy outwards while the trust region
    holds it on the data. Its JSON line matches the metrics file it writes."""
    args = ToyArgs(
        scenario="25g-far",
        policy="implicit",
        json=True,
        out=str(tmp_path),
        batch_size=128,
        tr_pretrain_steps=500,
        tr_implicit_steps=200,
    )
    assert run_toy(args) == 0
    record = json.loads(capsys.readouterr().out)
    assert set(METRIC_KEYS) <= set(record)
    assert record["off_manifold_share"] <= 0.05, record
    assert record["modes_covered"] >= 1
    assert (tmp_path / "25g-far-tr-implicit.png").exists()
    saved = json.loads((tmp_path / "25g-far-tr-implicit.json").read_text())
    assert saved["runs"][0] == record
