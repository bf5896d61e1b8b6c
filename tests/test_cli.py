"""The `dtql` command: presets, data info, and one-line errors with a non-zero exit."""

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from dtql.cli import main


def test_presets_prints_one_preset_a_line_name_first(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 26
    assert lines[0].split()[0] == "halfcheetah-medium-v2"
    assert any(
        line.startswith("antmaze-umaze-v0 alpha=1 expectile=0.9 entropy_coef=1") for line in lines
    )


def test_presets_for_iql_show_iqls_own_recipe(capsys):
    assert main(["presets", "--algo", "iql"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.strip().splitlines()}
    hopper, antmaze = lines["hopper-medium-v2"], lines["antmaze-umaze-v0"]
    for part in ("lr=0.0003", "lr_decay_steps=1000000", "pretrain_steps=0", "critics=iql"):
        assert part in hopper and part in antmaze
    assert "reward_transform=scale_by_return_range" in hopper and "awr_temperature=3" in hopper
    assert "reward_transform=minus_one" in antmaze and "expectile=0.9" in antmaze
    assert "awr_temperature=10" in antmaze and "policy=iql_gaussian" in antmaze


def test_a_reader_that_closes_the_pipe_ends_the_command_quietly():
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `dtql presets | head -1` once head has exited
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "dtql.cli", "presets"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 1
    assert proc.stderr == ""  # no traceback, no "Exception ignored"


def test_data_info_json_has_the_documented_keys(hopper_hdf5, capsys):
    assert main(["data", "info", str(hopper_hdf5), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    keys = {
        "transitions",
        "episodes",
        "terminals",
        "timeouts",
        "truncated_by_end",
        "obs_dim",
        "act_dim",
        "return_mean",
        "return_min",
        "return_max",
    }
    assert keys <= set(info)
    assert (info["obs_dim"], info["act_dim"]) == (11, 3)
    assert info["terminals"] > 0 and info["timeouts"] + info["truncated_by_end"] > 0


def test_console_script_runs_as_a_process(hopper_hdf5):
    done = subprocess.run(
        [sys.executable, "-m", "dtql.cli", "data", "info", str(hopper_hdf5), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout)["act_dim"] == 3


def _bad_dims_file(path):
    with h5py.File(path, "w") as f:
        f["observations"] = np.zeros((20, 5), np.float32)
        f["actions"] = np.zeros((20, 3), np.float32)
        f["rewards"] = np.zeros(20, np.float32)
        f["terminals"] = np.zeros(20, bool)
        f["timeouts"] = np.eye(1, 20, 19, dtype=bool)[0]
    return path


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--task", "hopper-medium-v9"], "unknown task"),
        (["train", "--dataset", "no/such/file.hdf5"], "no/such/file.hdf5"),
        (["train", "--dataset", "BAD_DIMS", "--steps", "1", "--pretrain-steps", "0"], "obs"),
        (["train", "--batch-size", "0", "--dataset", "BAD_DIMS"], "batch_size=0"),
        (["train", "--resume", "."], "config.json"),
        (["train", "--resume", ".", "--seed", "3"], "no other flag but --steps"),
        (["eval", "."], "config.json"),
        (["data", "info", "nothing-here-v0"], "dataset not found"),
        (["data", "summary"], "usage: dtql data info"),
        (["fly"], "unknown command"),
    ],
)
def test_bad_input_gives_a_one_line_error_and_exit_2(argv, message, tmp_path, capsys):
    bad = str(_bad_dims_file(tmp_path / "bad_dims.hdf5"))
    assert main([bad if a == "BAD_DIMS" else a for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
